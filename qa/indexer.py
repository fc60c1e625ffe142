"""Build an index directory from a corpus: read, chunk, embed, store, then swap it in atomically."""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from qa.atomic import replace_directory, staging_directory
from qa.chunking import chunk_text, split_sentences
from qa.encoder import Encoder, model_id_for
from qa.errors import ConfigError, CorpusError, IndexCorrupt, IndexNotFound, IndexWriteError, QAError
from qa.formats import SUFFIXES
from qa.ingest import CorpusScan, Document, ReusableFile, Skipped, corpus_stamp, extractor_version, scan_corpus
from qa.manifest import (
    CHUNKER_VERSION,
    CODES_FILE,
    DATABASE_FILE,
    FORMAT_VERSION,
    KEYWORDS_FILE,
    MANIFEST_FILE,
    SENTENCES_FILE,
    VECTORS_FILE,
    Manifest,
    file_checksum,
    verify_checksums,
)
from qa.postings import build_postings
from qa.sections import place
from qa.sentences import Quantized, SentenceFile, SentenceFileWriter, quantize
from qa.store import PreviousDocument, StoreReader, StoreWriter, text_hash
from qa.vectors import APPROXIMATE, VectorIndex

# Called with (stage, done, total) as a build advances; the CLI draws progress from it.
Progress = Callable[[str, int, int], None]
# Texts handed to the encoder at once (it batches them further for the model).
EMBED_BATCH = 256
# A title is embedded with its passages only if it leaves at least this many tokens for the passage.
MIN_PASSAGE_TOKENS = 64
# This build's sentence vectors wait here (in the staging directory) until written in chunk order.
PENDING_SENTENCES_FILE = "sentences.pending"


@dataclass
class BuildReport:
    """What a build did, for the CLI to print.

    ``update`` is True when the previous index was reused (unchanged documents copied, known passage texts not
    embedded again); otherwise ``full_reason`` says why everything was built afresh. Documents are counted
    against the previous index: after a full build every document counts as added. ``duplicates`` counts the
    files folded into another file's document because their bytes are identical (not in ``documents``).
    """

    index_dir: Path
    corpus: Path
    documents: int
    chunks: int
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0
    update: bool = False
    full_reason: str | None = None
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    passages_embedded: int = 0
    passages_reused: int = 0
    added_documents: list[str] = field(default_factory=list)
    changed_documents: list[str] = field(default_factory=list)
    removed_documents: list[str] = field(default_factory=list)
    duplicates: int = 0
    # False when nothing had changed, so the index was left as it was (not rewritten, so not reloaded).
    rewritten: bool = True
    # Documents taken from the previous index without reading their files (unchanged on disk).
    files_reused: int = 0


def chunking_parameters(size: int, overlap: int, embed_title: bool, html_content: str = "main") -> dict:
    """The chunking block of the manifest; equal blocks mean equal passages and vectors for the same files.

    ``html_content`` is what an HTML page contributes ("main" or "all"): it changes the text itself.
    """
    return {
        "unit": "tokens",
        "size": size,
        "overlap": overlap,
        "splitter": f"sentences-v{CHUNKER_VERSION}",
        "embed_title": embed_title,
        "html_content": html_content,
    }


def embed_input(title: str | None, passage: str, embed_title: bool) -> str:
    """The text the model embeds for a passage: optionally its document's title on a line before it."""
    return f"{title}\n{passage}" if embed_title and title else passage


@contextmanager
def _writing(index_dir: Path) -> Iterator[None]:
    """Turn a failure to write the new index (disk full, read-only folder, a file where a folder should be) into
    :class:`IndexWriteError`, which names the index and the reason in one line.

    Raises:
        IndexWriteError: writing failed; the staging directory is removed and the previous index left as it was.
    """
    try:
        yield
    except sqlite3.Error as exc:
        raise IndexWriteError(f"cannot write the index at {index_dir}: {exc}") from exc
    except (FileExistsError, NotADirectoryError) as exc:  # mkdir's words for "a file is in the way"
        raise IndexWriteError(f"cannot write the index at {index_dir}: {exc.filename} is not a folder") from exc
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise IndexWriteError(f"cannot write the index at {index_dir}: {exc.strerror or exc}{where}") from exc


def previous_index(
    index_dir: Path, model_id: str, dimension: int, max_tokens: int, chunking: dict, precision: str = "fp32"
) -> tuple[Path | None, str | None]:
    """Whether the index at ``index_dir`` can seed an update built with these settings.

    Returns:
        ``(index_dir, None)`` when it can, else ``(None, why not)``.
    """
    try:
        manifest = Manifest.read(index_dir)
        verify_checksums(index_dir, manifest)
    except IndexNotFound:
        return None, "there is no previous index"
    except QAError as exc:
        return None, f"the previous index cannot be reused: {exc}"
    if manifest.model != model_id:
        return None, f"the previous index was built with model {manifest.model}, not {model_id}"
    was = manifest.precision
    if was != precision:  # its vectors would not be the ones this build computes
        return None, f"the previous index was embedded at {was} precision, not {precision}"
    if manifest.dimension != dimension or manifest.max_tokens != max_tokens:
        return None, "the previous index has another vector dimension or token limit"
    if manifest.chunking != chunking:
        was = manifest.chunking
        differ = ", ".join(
            f"{k} {was.get(k)} -> {chunking.get(k)}" for k in sorted(chunking.keys() | was.keys())
            if chunking.get(k) != was.get(k)
        )
        return None, f"the previous index has other chunking parameters ({differ})"
    return index_dir, None


def reusable_files(index_dir: Path, html_content: str) -> dict[str, ReusableFile]:
    """The documents of the index at ``index_dir`` by path, with the stat line each file had when it was read,
    for a scan to take instead of reading files that did not change; empty when they cannot stand in for a
    read: no sound index there (checksums are verified), or one whose text came from other extraction code
    or libraries (``qa.ingest.extractor_version``) or another ``html_content``."""
    try:
        manifest = Manifest.read(Path(index_dir))
        if manifest.corpus.get("extractor") != extractor_version():
            return {}
        if manifest.chunking.get("html_content", "main") != html_content:
            return {}
        verify_checksums(Path(index_dir), manifest)
        store = StoreReader(Path(index_dir) / DATABASE_FILE)
    except QAError:
        return {}
    try:
        return store.reusable_files()
    except sqlite3.Error:
        return {}
    finally:
        store.close()


def recorded_precision(index_dir: Path) -> str | None:
    """The precision the index at ``index_dir`` was embedded at; None when there is no readable index."""
    try:
        return Manifest.read(Path(index_dir)).precision
    except QAError:
        return None


def _previous_of(document: Document, known: dict[str, PreviousDocument]) -> PreviousDocument | None:
    """The previous index's document at any of this document's paths: one with the same bytes first, its id before
    its aliases (so a new copy that sorts first, and so becomes the id, still lets the document be copied)."""
    found = [known[path] for path in (document.doc_id, *document.aliases) if path in known]
    same = [previous for previous in found if previous.content_hash == document.content_hash]
    return (same or found or [None])[0]


def _unchanged(document: Document, previous: PreviousDocument | None) -> bool:
    """Whether the previous index holds this document as it is now (same bytes, text and metadata)."""
    return (
        previous is not None
        and previous.content_hash == document.content_hash
        and previous.metadata == document.metadata
        and previous.text_hash == text_hash(document.text)
    )


def _nothing_changed(previous: Path, scan: CorpusScan, known: dict[str, PreviousDocument]) -> bool:
    """Whether the previous index already holds exactly what a build of ``scan`` would write: the same files with
    the same bytes and skip reasons (the fingerprint), and each document's text and metadata as they are now (a
    date taken from a file's modification time moves when the file is touched). Equal fingerprints mean the same
    paths with the same bytes, so the same documents with the same aliases."""
    if Manifest.read(previous).corpus.get("fingerprint") != scan.fingerprint:
        return False
    matched = set()
    for document in scan.documents:
        before = _previous_of(document, known)
        if not _unchanged(document, before):
            return False
        matched.add(before.row)
    return matched == {previous_document.row for previous_document in known.values()}


def _restamp(index_dir: Path, staging: Path, stamp: str) -> None:
    """Swap in the index at ``index_dir`` with its corpus stamp set to ``stamp``: the same files (hard links,
    nothing copied or rewritten) under a new manifest, so that the next `qa index` or `qa serve` knows from the
    file system alone that the corpus is unchanged (files were only touched) instead of reading it again."""
    for name in os.listdir(index_dir):
        if name != MANIFEST_FILE and (index_dir / name).is_file():
            (staging / name).unlink(missing_ok=True)  # the store this build opened before it knew
            os.link(index_dir / name, staging / name)
    manifest = Manifest.read(index_dir)
    manifest.corpus = {**manifest.corpus, "stamp": stamp}
    manifest.write(staging)
    replace_directory(staging, index_dir)


def _unchanged_report(
    index_dir: Path, corpus: Path, skipped: list[Skipped], started: float, files_reused: int = 0
) -> BuildReport:
    """The report of a build that found nothing to change and left the index at ``index_dir`` as it was (its
    counts are the manifest's: nothing changed them)."""
    counts = Manifest.read(index_dir).counts
    return BuildReport(
        index_dir=index_dir, corpus=corpus, documents=int(counts["documents"]), chunks=int(counts["chunks"]),
        skipped=skipped, seconds=time.perf_counter() - started, update=True, unchanged=int(counts["documents"]),
        duplicates=int(counts.get("duplicates", 0)), rewritten=False, files_reused=files_reused,
    )


def unchanged_index(
    index_dir: Path, corpus: Path, *, model: str, chunk_size: int, chunk_overlap: int, embed_title: bool,
    precision: str | None = None, html_content: str = "main",
) -> BuildReport | None:
    """The report of `qa index` when the index at ``index_dir`` already reflects ``corpus`` with these settings,
    told without reading a document or loading the model (``unchanged_since_build``); None when a build must
    look. An index whose files fail their checksums is never called unchanged: the build then replaces it."""
    started = time.perf_counter()
    index_dir = Path(index_dir).absolute()
    if not unchanged_since_build(
        index_dir, corpus, model=model, chunk_size=chunk_size, chunk_overlap=chunk_overlap, embed_title=embed_title,
        precision=precision, html_content=html_content,
    ):
        return None
    try:
        manifest = Manifest.read(index_dir)
        verify_checksums(index_dir, manifest)
        store = StoreReader(index_dir / DATABASE_FILE)
    except QAError:
        return None
    try:
        skipped = store.skipped()
    finally:
        store.close()
    return _unchanged_report(index_dir, Path(manifest.corpus["root"]), skipped, started)


def build_index(
    corpus: Path,
    index_dir: Path,
    encoder: Encoder,
    *,
    chunk_size: int,
    chunk_overlap: int,
    embed_title: bool = False,
    html_content: str = "main",
    scan: CorpusScan | None = None,
    progress: Progress | None = None,
    full: bool = False,
) -> BuildReport:
    """Index every readable document under ``corpus`` into ``index_dir``, replacing it atomically.

    When ``index_dir`` holds a sound index built with the same model and chunking, this is an update: the new
    index is still written beside it and swapped in whole, but documents whose content is unchanged are copied
    from it (passages, vectors and all), only new and changed documents are chunked, and only passage texts the
    previous index never embedded go to the model. The result equals a clean build of the same corpus.

    Args:
        embed_title: embed each passage with its document's title before it (the keyword index always has it).
        html_content: "main" keeps an HTML page's main content only, "all" its whole visible text.
        scan: a scan of ``corpus`` already made (to avoid reading it twice); made here when None.
        progress: optional callback for progress display.
        full: build from scratch even when the previous index could be reused.

    Raises:
        CorpusError: the corpus is unreadable or has nothing to index.
        ConfigError: the chunk size exceeds what the model can read.
        BuildInProgress: another build holds the lock.
    """
    started = time.perf_counter()
    if chunk_size > encoder.max_tokens:
        raise ConfigError(
            f"chunk size {chunk_size} exceeds the model's limit of {encoder.max_tokens} tokens per passage "
            f"({encoder.model_id}); use --chunk-size {encoder.max_tokens} or less"
        )
    if scan is None:
        reuse = {} if full else reusable_files(index_dir, html_content)
        scan = scan_corpus(corpus, main_content=html_content == "main", reuse=reuse)
    if not scan.documents:
        kinds = ", ".join(SUFFIXES)
        raise CorpusError(f"nothing to index in {scan.root}: no readable {kinds} files ({len(scan.skipped)} skipped)")
    report = progress or (lambda stage, done, total: None)
    index_dir = Path(index_dir).absolute()
    chunking = chunking_parameters(chunk_size, chunk_overlap, embed_title, html_content)
    with _writing(index_dir), staging_directory(index_dir) as staging:
        # Decided under the build lock, so no other build can swap the previous index out meanwhile.
        if full:
            previous, full_reason = None, "a full build was asked for"
        else:
            previous, full_reason = previous_index(
                index_dir, encoder.model_id, encoder.dimension, encoder.max_tokens, chunking, encoder.precision
            )
        store = StoreWriter(staging / DATABASE_FILE)
        known: dict[str, PreviousDocument] = {}
        if previous is not None:
            try:
                known = store.attach_previous(previous / DATABASE_FILE)
            except QAError as exc:
                previous, full_reason = None, f"the previous index cannot be reused: {exc}"
        if previous is not None and _nothing_changed(previous, scan, known):
            store.detach_previous()
            store.close()
            if Manifest.read(previous).corpus.get("stamp") != scan.stamp:
                _restamp(previous, staging, scan.stamp)
            return _unchanged_report(index_dir, scan.root, list(scan.skipped), started, scan.reused)
        n_chunks = added = changed = unchanged = 0
        added_documents: list[str] = []
        changed_documents: list[str] = []
        matched: set[int] = set()  # rows of the previous index's documents that are still here
        report("chunking", 0, len(scan.documents))
        for number, document in enumerate(scan.documents, start=1):
            # Documents go in corpus order either way, so chunk ids equal those of a clean build.
            before = _previous_of(document, known)
            if before is not None:
                matched.add(before.row)
            if _unchanged(document, before):
                n_chunks += store.copy_document(document, before)
                unchanged += 1
                report("chunking", number, len(scan.documents))
                continue
            added, changed = (added + 1, changed) if before is None else (added, changed + 1)
            (added_documents if before is None else changed_documents).append(document.doc_id)
            title = document.metadata.title if embed_title else None
            size, room = chunk_size, encoder.max_tokens
            if title:
                # The title shares the model's window with the passage: shrink passages so nothing is cut off,
                # unless the title would leave too little room, in which case it is not embedded.
                left = encoder.max_tokens - encoder.count_tokens([f"{title}\n"])[0]
                if left >= MIN_PASSAGE_TOKENS:
                    size, room = min(chunk_size, left), left
                else:
                    title = None
            overlap = min(chunk_overlap, size // 2)
            chunks = chunk_text(
                document.text, size=size, overlap=overlap, count_tokens=encoder.count_tokens, limit=room,
                boundaries=[h.start for h in document.headings], code=document.code,
            )
            chunks = place(document.text, chunks, document.headings, document.anchors)
            inputs = [embed_input(title, c.text, title is not None) for c in chunks]
            store.add_document(document, chunks, inputs)
            n_chunks += len(chunks)
            report("chunking", number, len(scan.documents))
        store.add_skipped(scan.skipped)
        store.add_file_stats(scan.stats)
        removed_documents = sorted(path for path, previous in known.items() if previous.row not in matched)
        removed = len({previous.row for previous in known.values()} - matched)
        reused = store.reusable_inputs() if previous is not None else {}
        store.detach_previous()
        # From the store's rows, so an update's postings are those of a clean build of the same corpus.
        build_postings(store.keyword_rows(), staging / KEYWORDS_FILE)

        # Longest first, so texts of one length share a model batch (less padding) and the slowest batches
        # are not left for the end of the progress bar.
        pending = sorted(store.missing_embeddings(reused), key=lambda item: -len(item[1].embed_input))
        fresh = FreshVectors(encoder.dimension, staging / PENDING_SENTENCES_FILE)
        report("embedding", 0, len(pending))
        for first in range(0, len(pending), EMBED_BATCH):
            batch = pending[first : first + EMBED_BATCH]
            spans = [
                [(p.passage_offset + s.start, p.passage_offset + s.end) for s in split_sentences(p.passage)]
                for _, p in batch
            ]
            vectors, sentence_vectors = encoder.encode_with_spans([p.embed_input for _, p in batch], spans)
            fresh.add([h for h, _ in batch], vectors, sentence_vectors)
            report("embedding", min(first + EMBED_BATCH, len(pending)), len(pending))

        ids, hashes = store.chunk_hashes()
        store.close()
        sources = VectorSources(fresh, reused, previous)
        vector_index = VectorIndex.build(ids, sources.passage_vectors(hashes, encoder.dimension))
        files = {
            "vectors": VECTORS_FILE, "sentences": SENTENCES_FILE, "database": DATABASE_FILE, "keywords": KEYWORDS_FILE,
        }
        if vector_index.kind == APPROXIMATE:
            files["codes"] = CODES_FILE
        vector_index.save(staging / VECTORS_FILE, staging / CODES_FILE if vector_index.kind == APPROXIMATE else None)
        sources.write_sentences(staging / SENTENCES_FILE, ids, hashes, encoder.dimension)
        fresh.discard()
        Manifest(
            format_version=FORMAT_VERSION,
            model=encoder.model_id,
            encoder={"backend": encoder.backend, "precision": encoder.precision},
            vectors={"kind": vector_index.kind},
            dimension=encoder.dimension,
            max_tokens=encoder.max_tokens,
            chunking=chunking,
            corpus={
                "root": str(scan.root), "fingerprint": scan.fingerprint, "stamp": scan.stamp,
                "extractor": extractor_version(),
            },
            counts={
                "documents": len(scan.documents), "chunks": n_chunks, "skipped": len(scan.skipped),
                "duplicates": scan.duplicates,
            },
            checksums={name: file_checksum(staging / name) for name in files.values()},
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            files=files,
        ).write(staging)
        replace_directory(staging, index_dir)
    return BuildReport(
        index_dir=index_dir,
        corpus=scan.root,
        documents=len(scan.documents),
        chunks=n_chunks,
        skipped=list(scan.skipped),
        seconds=time.perf_counter() - started,
        update=previous is not None,
        full_reason=full_reason,
        added=added,
        changed=changed,
        removed=removed,
        unchanged=unchanged,
        passages_embedded=len(pending),
        passages_reused=len(reused),
        added_documents=added_documents,
        changed_documents=changed_documents,
        removed_documents=removed_documents,
        duplicates=scan.duplicates,
        files_reused=scan.reused,
    )


class FreshVectors:
    """What this build embeds, by embed-input hash: passage vectors held in memory, sentence vectors quantised into
    a pending sentences file in the staging directory (under ordinal ids), until both are written in chunk order."""

    def __init__(self, dimension: int, pending_path: Path) -> None:
        self._blocks: list[np.ndarray] = []
        self._where: dict[str, tuple[int, int]] = {}
        self._ordinals: dict[str, int] = {}
        self._pending_path = pending_path
        self._writer: SentenceFileWriter | None = SentenceFileWriter(pending_path, dimension)
        self._sentences: SentenceFile | None = None

    def add(self, hashes: list[str], vectors: np.ndarray, sentence_vectors: list[np.ndarray]) -> None:
        """Keep one batch: a passage vector and its sentence vectors per hash."""
        block = len(self._blocks)
        self._blocks.append(np.asarray(vectors, dtype=np.float32))
        for row, (key, sentences) in enumerate(zip(hashes, sentence_vectors, strict=True)):
            self._where[key] = (block, row)
            self._ordinals[key] = len(self._ordinals)
            self._writer.add(self._ordinals[key], *quantize(sentences))

    def vector(self, key: str) -> np.ndarray | None:
        """The passage vector embedded for ``key``, or None."""
        place = self._where.get(key)
        return None if place is None else self._blocks[place[0]][place[1]]

    def sentences(self, key: str) -> Quantized | None:
        """The 8-bit sentence vectors embedded for ``key``, or None."""
        if self._writer is not None:
            self._writer.close()
            self._writer, self._sentences = None, SentenceFile.load(self._pending_path)
        ordinal = self._ordinals.get(key)
        return None if ordinal is None else self._sentences.at(ordinal)

    def discard(self) -> None:
        """Remove the pending file (everything in it has been written into the index's files by then)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._sentences = None
        self._pending_path.unlink(missing_ok=True)


class VectorSources:
    """Where each embed input's vectors come from: this build's ``fresh`` ones, or the ``previous`` index's files
    at the id of a chunk that had the same input there (``reused``)."""

    def __init__(self, fresh: FreshVectors, reused: dict[str, int], previous: Path | None) -> None:
        self.fresh, self.reused, self.previous = fresh, reused, previous

    def _previous_positions(self, keys: list[str], ids: np.ndarray) -> np.ndarray:
        """Row positions in the previous index's files of the chunks ``reused`` names for ``keys``.

        Raises:
            IndexCorrupt: one of them is not there.
        """
        positions = np.searchsorted(ids, np.array([self.reused[key] for key in keys], dtype=np.int64))
        positions = np.minimum(positions, max(len(ids) - 1, 0))
        if len(keys) and (not len(ids) or not np.array_equal(ids[positions], [self.reused[k] for k in keys])):
            raise IndexCorrupt(
                f"the previous index at {self.previous} lacks vectors its store names: rebuild with --full"
            )
        return positions

    def passage_vectors(self, hashes: list[str], dimension: int) -> np.ndarray:
        """Each chunk's passage vector, row for row with ``hashes``."""
        vectors = np.empty((len(hashes), dimension), dtype=np.float32)
        wanted_rows, wanted_keys = [], []
        for row, key in enumerate(hashes):
            vector = self.fresh.vector(key)
            if vector is not None:
                vectors[row] = vector
            else:
                wanted_rows.append(row)
                wanted_keys.append(key)
        if wanted_rows:
            old = VectorIndex.load(self.previous / VECTORS_FILE)
            if old.dimension != dimension:
                raise IndexCorrupt(f"the previous index at {self.previous} has vectors of another dimension")
            vectors[wanted_rows] = old.rows_at(self._previous_positions(wanted_keys, np.asarray(old.ids)))
        return vectors

    def write_sentences(self, path: Path, ids: np.ndarray, hashes: list[str], dimension: int) -> None:
        """Write the sentences file: each chunk's 8-bit sentence vectors, in chunk id order."""
        old = SentenceFile.load(self.previous / SENTENCES_FILE) if self.previous is not None and self.reused else None
        reused_keys = [key for key in dict.fromkeys(hashes) if self.fresh.sentences(key) is None]
        at = dict(zip(reused_keys, self._previous_positions(reused_keys, old.ids if old else np.zeros(0, np.int64))))
        writer = SentenceFileWriter(path, dimension)
        try:
            for chunk_id, key in zip(ids.tolist(), hashes):
                found = self.fresh.sentences(key)
                writer.add(chunk_id, *(found if found is not None else old.at(int(at[key]))))
        finally:
            writer.close()


def staleness(
    index_dir: Path, scan: CorpusScan, *, model: str, chunk_size: int, chunk_overlap: int, embed_title: bool,
    precision: str | None = None, html_content: str = "main",
) -> str | None:
    """Why the index at ``index_dir`` does not reflect ``scan`` with these settings; None when it does."""
    try:
        manifest = Manifest.read(Path(index_dir))
    except QAError as exc:
        return str(exc)
    chunking = chunking_parameters(chunk_size, chunk_overlap, embed_title, html_content)
    reason = _settings_differ(manifest, model=model, chunking=chunking, precision=precision)
    if reason is None and manifest.corpus.get("fingerprint") != scan.fingerprint:
        return f"the corpus {scan.root} has changed since it was built"
    return reason


def _settings_differ(manifest: Manifest, *, model: str, chunking: dict, precision: str | None) -> str | None:
    """Why an index was built with other settings than these; None when they are its own."""
    if manifest.model != model_id_for(model):
        return f"it was built with model {manifest.model}, not {model}"
    if manifest.chunking != chunking:
        return "its chunking parameters differ"
    was = manifest.precision
    if precision is not None and was != precision:
        return f"it was embedded at {was} precision, not {precision}"
    return None


def unchanged_since_build(
    index_dir: Path, corpus: Path, *, model: str, chunk_size: int, chunk_overlap: int, embed_title: bool,
    precision: str | None = None, html_content: str = "main",
) -> bool:
    """Whether the index at ``index_dir`` was built from ``corpus`` as the file system shows it now, with these
    settings: known from the manifest and a walk of the corpus (:func:`qa.ingest.corpus_stamp`), reading no
    document, so a no-op `qa index` or `qa serve` start costs milliseconds, not a scan.

    False whenever that cannot be told this way (no index, another corpus or setting, a file touched or changed,
    an index built before stamps were recorded): the caller then scans, and the scan decides.
    """
    try:
        manifest = Manifest.read(Path(index_dir))
        stamp = corpus_stamp(corpus)
    except QAError:
        return False
    chunking = chunking_parameters(chunk_size, chunk_overlap, embed_title, html_content)
    return (
        _settings_differ(manifest, model=model, chunking=chunking, precision=precision) is None
        and manifest.corpus.get("root") == str(Path(corpus).expanduser().resolve())
        and manifest.corpus.get("stamp") == stamp
    )


def ensure_index(
    index_dir: Path,
    *,
    corpus: Path | None,
    default_corpus: Path | None,
    model: str | None,
    chunk_size: int | None,
    chunk_overlap: int | None,
    defaults: tuple[str, int, int, bool, str],
    load_model: Callable[[str, str], Encoder],
    precision: str | None = None,
    progress: Progress | None = None,
    html_content: str | None = None,
) -> tuple[BuildReport | None, str | None]:
    """Build the index if it is missing, update it if it no longer matches its corpus; leave a fresh one alone.

    An update reuses what the previous index holds (see ``build_index``); a change of model or chunking means
    a full build.

    The corpus is ``corpus`` if given, else the one the index was built from (when it still exists here),
    else ``default_corpus``. Model and chunking come from the arguments, else from the existing index,
    else from ``defaults`` (model, size, overlap, embed_title, precision); ``load_model(name, precision)`` loads
    the model for a build. ``html_content`` ("main" or "all") comes from the argument, else the existing index,
    else "main". A copied index whose corpus is not on this machine is used as it is.

    Returns:
        ``(report, reason)`` after a build, ``(None, None)`` when nothing needed doing.
    """
    index_dir = Path(index_dir)
    try:
        manifest: Manifest | None = Manifest.read(index_dir)
    except QAError:
        manifest = None
    if corpus is None and manifest is not None:
        recorded = Path(manifest.corpus.get("root", ""))
        corpus = recorded if recorded.is_dir() else None
        if corpus is None:
            return None, None
    if corpus is None:
        corpus = default_corpus
    if corpus is None:
        return None, None
    model = model or (manifest.model if manifest else defaults[0])
    chunk_size = chunk_size or (manifest.chunking["size"] if manifest else defaults[1])
    chunk_overlap = chunk_overlap if chunk_overlap is not None else (manifest.chunking["overlap"] if manifest else defaults[2])
    embed_title = manifest.chunking.get("embed_title", defaults[3]) if manifest else defaults[3]
    precision = precision or (manifest.precision if manifest else defaults[4])
    html_content = html_content or (manifest.chunking.get("html_content", "main") if manifest else "main")
    settings = dict(
        model=model, chunk_size=chunk_size, chunk_overlap=chunk_overlap, embed_title=embed_title, precision=precision,
        html_content=html_content,
    )
    if unchanged_since_build(index_dir, Path(corpus), **settings):
        return None, None
    scan = scan_corpus(
        corpus, main_content=html_content == "main", reuse=reusable_files(index_dir, html_content)
    )
    reason = staleness(index_dir, scan, **settings)
    if reason is None:
        return None, None
    encoder = load_model(model, precision)
    report = build_index(
        Path(corpus), index_dir, encoder, chunk_size=chunk_size, chunk_overlap=chunk_overlap, embed_title=embed_title,
        html_content=html_content, scan=scan, progress=progress,
    )
    return report, reason
