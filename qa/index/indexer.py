"""Build an index directory from a corpus: read, chunk, embed, store, then swap it in atomically."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypedDict

import numpy as np

from qa.embed.encoder import Encoder, model_id_for
from qa.errors import ConfigError, CorpusError, IndexNotFound, IndexWriteError, QAError
from qa.index.atomic import recover_if_idle, replace_directory, staging_directory
from qa.index.manifest import (
    CHUNKER_VERSION,
    CODES_FILE,
    DATABASE_FILE,
    FORMAT_VERSION,
    KEYWORDS_FILE,
    SENTENCES_FILE,
    VECTORS_FILE,
    Manifest,
    file_checksum,
    file_state,
    segment_files,
    verify_checksums,
)
from qa.index.postings import Postings, build_postings
from qa.index.segments import (
    MAX_HIDDEN_SHARE,
    MAX_SEGMENTS,
    TOP,
    Segment,
    SegmentedStore,
    SegmentFiles,
    hidden_chunk_share,
    hide,
    next_ids,
    open_store,
    previous_stores,
    segments_of,
    store_checksums,
)
from qa.index.sentence_vectors import Quantized, SentenceFile, SentenceFileWriter, quantize
from qa.index.store import PendingText, PreviousDocument, PreviousStamp, StoreWriter, text_hash
from qa.index.vectors import APPROXIMATE, VectorIndex
from qa.ingest.corpus import (
    CorpusScan,
    CorpusWalk,
    Document,
    ReusableFile,
    Skipped,
    corpus_stamp,
    extractor_version,
    format_suffix,
    scan_corpus,
    walk_corpus,
)
from qa.ingest.formats import SUFFIXES, text_structure
from qa.text.chunking import Chunk, chunk_text, known_pieces, split_sentences
from qa.text.sections import place

# Called with (stage, done, total) as a build advances; the CLI draws progress from it.
Progress = Callable[[str, int, int], None]
# Texts handed to the encoder at once (it batches them further for the model).
EMBED_BATCH = 256
# A title is embedded with its passages only if it leaves at least this many tokens for the passage.
MIN_PASSAGE_TOKENS = 64
# This build's sentence vectors wait here (in the staging directory) until written in chunk order.
PENDING_SENTENCES_FILE = "sentences.pending"
# One embedded batch: its inputs' hashes, their passage vectors, and each one's sentence vectors.
EmbeddedBatch = tuple[list[str], np.ndarray, list[np.ndarray]]
# Embeds batches of (hash, pending) passage inputs, yielding each batch embedded (in any order): the seam through
# which a cluster (qa/distributed/ray_indexing.py) embeds for a build.
BatchEmbedder = Callable[[list[list[tuple[str, PendingText]]]], Iterable[EmbeddedBatch]]
# Chunks new and changed documents, yielding each with its passages and their embed inputs (see `chunk_document`), in
# the order given: the seam through which a cluster (qa/distributed/ray_indexing.py) chunks for a build.
DocumentChunker = Callable[[list[Document]], Iterable[tuple[Document, list[Chunk], list[str]]]]


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
    # Segments the index has now (qa.index.segments): 1 after a full build or a merge.
    segments: int = 1
    # Seconds by phase, in the order they ran (see ``_Clock``): what an update's time is made of.
    phases: dict[str, float] = field(default_factory=dict)


class _Clock:
    """Seconds spent in each phase of a build: ``lap(phase)`` gives the time since the previous lap to ``phase``.

    The phases: ``walk`` (listing and stat'ing the corpus, comparing it with the previous index's records),
    ``read`` (reading and extracting the files that changed), ``compare`` (the documents against the previous
    index's), ``chunk`` (cutting new documents into passages and writing every document's rows), ``lookup``
    (finding vectors to reuse), ``embed``, ``write`` (keyword, vector and sentence files, manifest) and ``swap``.
    """

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._mark = time.perf_counter()

    def lap(self, phase: str, minus: float = 0.0) -> None:
        """Count the time since the previous lap, less ``minus`` seconds (counted elsewhere), to ``phase``."""
        now = time.perf_counter()
        self.phases[phase] = self.phases.get(phase, 0.0) + now - self._mark - minus
        self._mark = now


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
        verify_checksums(index_dir, manifest, trust_untouched=True)
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
        chunked = manifest.chunking
        differ = ", ".join(
            f"{k} {chunked.get(k)} -> {chunking.get(k)}"
            for k in sorted(chunking.keys() | chunked.keys())
            if chunking.get(k) != chunked.get(k)
        )
        return None, f"the previous index has other chunking parameters ({differ})"
    return index_dir, None


def _read_by_these_readers(manifest: Manifest) -> bool:
    """Whether the index's documents were read by this qa's extraction code and libraries
    (``qa.ingest.corpus.extractor_version``): only then does the same file stand for the same text."""
    return manifest.corpus.get("extractor") == extractor_version()


def reusable_files(index_dir: Path, html_content: str) -> dict[str, ReusableFile]:
    """The documents of the index at ``index_dir`` by path, with the stat line each file had when it was read,
    for a scan to take instead of reading files that did not change; empty when they cannot stand in for a
    read: no sound index there (checksums are verified), or one whose text came from other extraction code
    or libraries (``qa.ingest.corpus.extractor_version``) or another ``html_content``."""
    try:
        manifest = Manifest.read(Path(index_dir))
        if not _read_by_these_readers(manifest):
            return {}
        if manifest.chunking.get("html_content", "main") != html_content:
            return {}
        verify_checksums(Path(index_dir), manifest, trust_untouched=True)
        store = open_store(Path(index_dir), manifest)
    except QAError:
        return {}
    try:
        if isinstance(store, SegmentedStore):
            return store.reusable_files(store_checksums(manifest))
        return store.reusable_files(store=store_checksums(manifest)[0])
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
    """The previous index's document at any of this document's paths: the row it was taken from (when it was not
    read), else one with the same bytes first, its id before its aliases (so a new copy that sorts first, and so
    becomes the id, still lets the document be copied)."""
    found = [known[path] for path in (document.doc_id, *document.aliases) if path in known]
    same = [previous for previous in found if _trusted(document, previous)]
    same = same or [previous for previous in found if previous.content_hash == document.content_hash]
    candidates = same or found
    return candidates[0] if candidates else None


def _trusted(document: Document, previous: PreviousDocument) -> bool:
    """Whether ``document``, taken from an index instead of read, is ``previous`` as it stands: the same row of a
    store with the same checksum, so the same text and metadata (``Document.stored``)."""
    stored = document.stored
    return stored is not None and stored.store != "" and (stored.store, stored.row) == (previous.store, previous.row)


# Each scanned document with its previous version (or None) and whether that holds it as it is now.
Compared = list[tuple[Document, PreviousDocument | None, bool]]


def _compared(documents: list[Document], known: dict[str, PreviousDocument], store: StoreWriter | None) -> Compared:
    """Compare the scanned ``documents`` with the previous index's (``known``, by path; ``store`` has them attached).

    A document taken from the index is unchanged when it names the row it is compared with; a document read again
    is compared by bytes, metadata and text hash, whose stamps are read for those rows alone (``previous_stamps``).
    """
    pairs = [(document, _previous_of(document, known)) for document in documents]
    to_stamp = [
        before
        for document, before in pairs
        if document.stored is None and before is not None and before.content_hash == document.content_hash
    ]
    stamps = store.previous_stamps(to_stamp) if to_stamp and store is not None else {}
    return [(document, before, _unchanged(document, before, stamps)) for document, before in pairs]


def _unchanged(
    document: Document, previous: PreviousDocument | None, stamps: dict[tuple[str, int], PreviousStamp]
) -> bool:
    """Whether the previous index holds this document as it is now (same bytes, text and metadata)."""
    if previous is None:
        return False
    if document.stored is not None:
        return _trusted(document, previous)
    stamp = stamps.get((previous.schema, previous.row))
    return (
        stamp is not None
        and previous.content_hash == document.content_hash
        and replace(previous.metadata, date_source=stamp.date_source) == document.metadata
        and stamp.text_hash == text_hash(document.text)
    )


def _nothing_changed(
    previous: Manifest, scan: CorpusScan, known: dict[str, PreviousDocument], compared: Compared
) -> bool:
    """Whether the previous index already holds exactly what a build of ``scan`` would write: the same files with
    the same bytes and skip reasons (the fingerprint), and each document's text and metadata as they are now (a
    date taken from a file's modification time moves when the file is touched). Equal fingerprints mean the same
    paths with the same bytes, so the same documents with the same aliases."""
    if previous.corpus.get("fingerprint") != scan.fingerprint:
        return False
    if not all(same for _, _, same in compared):
        return False
    matched = {before.row for _, before, _ in compared if before is not None}  # (all are: each is the same)
    return matched == {previous_document.row for previous_document in known.values()}


def _restamp(index_dir: Path, manifest: Manifest, staging: Path, stamp: str) -> None:
    """Swap in the index at ``index_dir`` (whose manifest is ``manifest``) with its corpus stamp set to ``stamp``
    and its extractor digest to this qa's (a scan found the text the same): the same files (hard links, nothing
    copied or rewritten) under a new manifest, so that the next `qa index` or `qa serve` knows from the file system
    alone that the corpus is unchanged (files were only touched) instead of reading it again."""
    for name in os.listdir(staging):  # what this build began before it knew
        shutil.rmtree(staging / name) if (staging / name).is_dir() else (staging / name).unlink()
    _link_segments(index_dir, staging, segments_of(manifest))
    replace(manifest, corpus={**manifest.corpus, "stamp": stamp, "extractor": extractor_version()}).write(staging)
    replace_directory(staging, index_dir)


def _unchanged_report(
    index_dir: Path, corpus: Path, skipped: list[Skipped], started: float, files_reused: int = 0
) -> BuildReport:
    """The report of a build that found nothing to change and left the index at ``index_dir`` as it was (its
    counts are the manifest's: nothing changed them)."""
    counts = Manifest.read(index_dir).counts
    return BuildReport(
        index_dir=index_dir,
        corpus=corpus,
        documents=int(counts["documents"]),
        chunks=int(counts["chunks"]),
        skipped=skipped,
        seconds=time.perf_counter() - started,
        update=True,
        unchanged=int(counts["documents"]),
        duplicates=int(counts.get("duplicates", 0)),
        rewritten=False,
        files_reused=files_reused,
    )


def unchanged_index(
    index_dir: Path,
    corpus: Path,
    *,
    model: str,
    chunk_size: int,
    chunk_overlap: int,
    embed_title: bool,
    precision: str | None = None,
    html_content: str = "main",
    walk: CorpusWalk | None = None,
) -> BuildReport | None:
    """The report of `qa index` when the index at ``index_dir`` already reflects ``corpus`` with these settings,
    told without reading a document or loading the model (``unchanged_since_build``); None when a build must
    look. An index whose files fail their checksums is never called unchanged: the build then replaces it.

    ``walk`` is a walk of ``corpus`` just made (``qa.ingest.corpus.walk_corpus``), which the build can then take too.
    """
    started = time.perf_counter()
    index_dir = Path(index_dir).absolute()
    if not unchanged_since_build(
        index_dir,
        corpus,
        model=model,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        embed_title=embed_title,
        precision=precision,
        html_content=html_content,
        walk=walk,
    ):
        return None
    try:
        manifest = Manifest.read(index_dir)
        verify_checksums(index_dir, manifest, trust_untouched=True)
        store = open_store(index_dir, manifest)
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
    merge: bool = False,
    embed_batches: BatchEmbedder | None = None,
    chunk_documents: DocumentChunker | None = None,
    walk: CorpusWalk | None = None,
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
        merge: write every document into one segment again (re-using every vector), even when the update
            would only add one, or nothing changed but the index has several segments.
        embed_batches: embeds the batches of passage inputs no previous index had (a cluster's, e.g.
            ``qa.distributed.ray_indexing.RayEmbedder``); None embeds them here with ``encoder``, batch by batch.
        chunk_documents: chunks the new and changed documents (a cluster's, e.g.
        ``qa.distributed.ray_indexing.RayChunker``);
            None chunks each here with ``encoder``'s tokenizer as it is written.
        walk: a walk of ``corpus`` already made (``qa.ingest.corpus.walk_corpus``, for the stamp check of `qa index`),
        so
            the scan does not walk it again; its time is then not in the report's.

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
    clock = _Clock()
    if scan is None:
        reuse = {} if full else reusable_files(index_dir, html_content)
        scan = scan_corpus(corpus, main_content=html_content == "main", reuse=reuse, walk=walk)
        clock.lap("walk", minus=scan.read_seconds)
        clock.phases["read"] = scan.read_seconds
    if not scan.documents:
        kinds = ", ".join(SUFFIXES)
        raise CorpusError(f"nothing to index in {scan.root}: no readable {kinds} files ({len(scan.skipped)} skipped)")
    report = progress or (lambda stage, done, total: None)
    index_dir = Path(index_dir).absolute()
    chunking = chunking_parameters(chunk_size, chunk_overlap, embed_title, html_content)
    with _writing(index_dir), staging_directory(index_dir) as staging:
        # Decided under the build lock, so no other build can swap the previous index out meanwhile.
        previous: Path | None
        full_reason: str | None  # why this is a full build (None: an update)
        if full:
            previous, full_reason = None, "a full build was asked for"
        else:
            previous, full_reason = previous_index(
                index_dir, encoder.model_id, encoder.dimension, encoder.max_tokens, chunking, encoder.precision
            )
        before = Manifest.read(previous) if previous is not None else None
        segments = segments_of(before) if before is not None else []
        # An update first plans to add a segment; it writes the top files instead when it merges every segment.
        target = staging / _new_segment_name(segments) if segments else staging
        target.mkdir(exist_ok=True)
        first_chunk, first_document = next_ids(segments) if segments else (1, 1)
        store = StoreWriter(target / DATABASE_FILE, first_chunk=first_chunk, first_document=first_document)
        known: dict[str, PreviousDocument] = {}
        if previous is not None and before is not None:  # (before is read from previous)
            try:
                known = store.attach_previous(previous_stores(previous, before))
            except QAError as exc:
                previous, full_reason = None, f"the previous index cannot be reused: {exc}"
                store, target = _write_at_top(store, target, staging), staging
        compared = _compared(scan.documents, known, store if previous is not None else None)
        if any(document.stored is not None and not same for document, _, same in compared):
            # Files taken from an index that is not the one reused after all (none, or one another build swapped
            # in since): read them, their text is needed now.
            clock.lap("compare")
            scan = scan_corpus(corpus, main_content=html_content == "main")
            clock.lap("read")
            compared = _compared(scan.documents, known, store if previous is not None else None)
        if (
            previous is not None
            and before is not None
            and not (merge and len(segments) > 1)
            and _nothing_changed(before, scan, known, compared)
        ):
            store.detach_previous()
            store.close()
            if before.corpus.get("stamp") != scan.stamp or not _read_by_these_readers(before):
                _restamp(previous, before, staging, scan.stamp)
            return _unchanged_report(index_dir, scan.root, list(scan.skipped), started, scan.reused)
        plan = _plan(compared, known)
        hidden_counts = store.previous_chunk_counts(plan.replaced) if previous is not None else {}
        kept = hide(segments, hidden_counts) if previous is not None else []
        if kept and (merge or _merge_all(kept)):
            assert previous is not None and before is not None  # kept holds only a reused index's segments
            # One new set of top files from every shown document (copied, not embedded again).
            store, target = _write_at_top(store, target, staging), staging
            known = store.attach_previous(previous_stores(previous, before))
            kept = []
        elif len(kept) + 1 > MAX_SEGMENTS:
            kept = kept[:1]  # the later segments' shown documents are copied into the new one, which replaces them
        adding = bool(kept)
        # The attached stores (previous0 is the first segment's) whose documents stay where they are.
        staying = {f"previous{number}" for number in range(len(kept))}
        if chunk_documents is None:
            # A changed Markdown document's earlier version, whose unchanged sections' passages it can reuse.
            earlier = _earlier_versions(plan, before) if previous is not None and before is not None else {}

            def chunk_documents(documents: list[Document]) -> Iterator[tuple[Document, list[Chunk], list[str]]]:
                for document in documents:
                    found = earlier.get(id(document))
                    version = store.previous_version(found) if found is not None else None
                    yield (
                        document,
                        *chunk_document(document, encoder, chunk_size, chunk_overlap, embed_title, earlier=version),
                    )

        chunked = iter(chunk_documents([document for document, _, unchanged in plan.documents if not unchanged]))
        clock.lap("compare")
        report("chunking", 0, len(scan.documents))
        for number, (document, previous_document, unchanged) in enumerate(plan.documents, start=1):
            # Documents go in corpus order either way, so a full build's chunk ids follow the corpus.
            if unchanged and previous_document is not None:  # (only a document with a previous version is unchanged)
                paths = {document.doc_id, *document.aliases}
                if previous_document.schema in staying and previous_document.paths == paths:
                    pass  # it stays where it is, in its segment
                else:  # its rows again: in the merged files, or (same text under other paths) in the segment
                    store.copy_document(document, previous_document)
            else:
                _add_chunked(store, document, next(chunked))
            report("chunking", number, len(scan.documents))
        store.add_skipped(scan.skipped)
        store.add_file_stats(scan.stats)
        clock.lap("chunk")
        # From the store's rows, so an update's postings are those of a clean build of the same documents.
        build_postings(store.keyword_rows(), target / KEYWORDS_FILE)
        clock.lap("write")
        # The new postings name each new passage's words, through which the previous segments' are searched.
        reused = store.reusable_inputs(Postings.open_path(target / KEYWORDS_FILE)) if previous is not None else {}
        store.detach_previous()
        clock.lap("lookup")
        pending = _embed(store, encoder, reused, staging / PENDING_SENTENCES_FILE, report, embed_batches)
        clock.lap("embed")
        ids, hashes = store.chunk_hashes()
        store.close()
        sources = VectorSources(pending, reused, SegmentFiles(previous, segments) if previous is not None else None)
        kind = _write_vectors(target, ids, hashes, sources, encoder.dimension)
        pending.discard()
        segment = Segment(
            target.name if adding else TOP,
            kind,
            first_chunk if adding else 1,
            len(ids),
            first_document if adding else 1,
            store.documents_written,
        )
        if adding:
            assert previous is not None and before is not None  # kept holds only a reused index's segments
            _link_segments(previous, staging, kept)
            live_chunks = sum(s.chunks - s.hidden_chunks for s in kept) + len(ids)
            checksums = {name: before.checksums[name] for s in kept for name in segment_files(s.dir, s.kind)}
            layout = [*kept, segment]
        else:
            live_chunks, checksums, layout = len(ids), {}, [segment]
        for name in segment_files(segment.dir, kind):
            checksums[name] = file_checksum(staging / name)
        Manifest(
            format_version=FORMAT_VERSION,
            model=encoder.model_id,
            encoder={"backend": encoder.backend, "precision": encoder.precision},
            vectors={"kind": layout[0].kind},
            dimension=encoder.dimension,
            max_tokens=encoder.max_tokens,
            chunking=chunking,
            corpus={
                "root": str(scan.root),
                "fingerprint": scan.fingerprint,
                "stamp": scan.stamp,
                "extractor": extractor_version(),
            },
            counts={
                "documents": len(scan.documents),
                "chunks": live_chunks,
                "skipped": len(scan.skipped),
                "duplicates": scan.duplicates,
            },
            checksums=checksums,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            files=_top_files(layout[0].kind),
            segments=[s.to_json() for s in layout],
            # The old segments' files were checked before they were linked here; the new ones were just hashed.
            written={name: file_state(staging / name) for name in checksums},
        ).write(staging)
        clock.lap("write")
        replace_directory(staging, index_dir)
    clock.lap("swap")  # the staging directory's removal on the way out is part of it
    return BuildReport(
        index_dir=index_dir,
        corpus=scan.root,
        documents=len(scan.documents),
        chunks=live_chunks,
        skipped=list(scan.skipped),
        seconds=time.perf_counter() - started,
        update=previous is not None,
        full_reason=full_reason,
        added=plan.added,
        changed=plan.changed,
        removed=len(plan.removed),
        unchanged=plan.unchanged,
        passages_embedded=pending.count,
        passages_reused=len(reused),
        added_documents=plan.added_documents,
        changed_documents=plan.changed_documents,
        removed_documents=plan.removed_documents,
        duplicates=scan.duplicates,
        files_reused=scan.reused,
        segments=len(layout),
        phases=clock.phases,
    )


@dataclass
class _Plan:
    """How a build treats each scanned document against the previous index: ``documents`` holds, in corpus order,
    each document with its previous version (or None) and whether that is unchanged; ``replaced`` the previous
    documents a new version or a removal takes the place of."""

    documents: list[tuple[Document, PreviousDocument | None, bool]]
    replaced: list[PreviousDocument]
    removed: list[PreviousDocument]
    removed_documents: list[str]
    added_documents: list[str]
    changed_documents: list[str]
    unchanged: int

    @property
    def added(self) -> int:
        return len(self.added_documents)

    @property
    def changed(self) -> int:
        return len(self.changed_documents)


def _plan(compared: Compared, known: dict[str, PreviousDocument]) -> _Plan:
    """How a build treats each scanned document (``compared`` with the previous index's: ``_compared``; ``known``
    holds the previous documents by path)."""
    matched: set[int] = set()  # rows of the previous index's documents that are still here
    planned: list[tuple[Document, PreviousDocument | None, bool]] = []
    replaced: list[PreviousDocument] = []
    added: list[str] = []
    changed: list[str] = []
    unchanged = 0
    for document, before, same in compared:
        if before is not None:
            matched.add(before.row)
        if before is None:  # never the same: there is nothing to be the same as (_unchanged)
            added.append(document.doc_id)
        elif same:
            unchanged += 1
            if before.paths != {document.doc_id, *document.aliases}:
                replaced.append(before)  # a segment update writes it again under its paths now
        else:
            changed.append(document.doc_id)
            replaced.append(before)
        planned.append((document, before, same))
    gone = {previous.row: previous for previous in known.values() if previous.row not in matched}
    removed_paths = sorted(path for path, previous in known.items() if previous.row not in matched)
    return _Plan(planned, [*replaced, *gone.values()], list(gone.values()), removed_paths, added, changed, unchanged)


def _merge_all(segments: list[Segment]) -> bool:
    """Whether an update should write every shown document into one new set of top files: when it would leave
    more than ``MAX_HIDDEN_SHARE`` of the passages hidden, or too many segments whose later ones together
    outweigh half the first (otherwise only the later ones are merged, into the update's own segment). Either
    way a passage is copied again only after the segments holding it have grown or changed by a like amount,
    so the time of merges spread over updates stays proportional to what changed (as in Lucene's merges)."""
    if hidden_chunk_share(segments) > MAX_HIDDEN_SHARE:
        return True
    later = sum(s.chunks for s in segments[1:])
    return len(segments) + 1 > MAX_SEGMENTS and 2 * later > segments[0].chunks


def _new_segment_name(segments: list[Segment]) -> str:
    """A directory name for the next segment, after every one the index has."""
    numbers = [int(s.dir.removeprefix("seg-")) for s in segments if s.dir != TOP]
    return f"seg-{max(numbers, default=1) + 1:06d}"


def _write_at_top(store: StoreWriter, target: Path, staging: Path) -> StoreWriter:
    """Drop the segment store begun at ``target`` and start the top files' store instead (ids from 1)."""
    store.detach_previous()
    store.close()
    if target != staging:
        shutil.rmtree(target)
    return StoreWriter(staging / DATABASE_FILE)


def _earlier_versions(plan: "_Plan", before: Manifest) -> dict[int, PreviousDocument]:
    """The previous version of each changed document (by ``id`` of the scanned document) whose passages can be
    found again piece by piece: a Markdown or reStructuredText file (its headings and code blocks are a function of
    its stored text, ``qa.ingest.formats.text_structure``) extracted by this very code (``extractor_version``)."""
    if not _read_by_these_readers(before):
        return {}
    return {
        id(document): previous
        for document, previous, unchanged in plan.documents
        if not unchanged and previous is not None and text_structure(format_suffix(document.doc_id)) is not None
    }


def _passage_limits(
    title: str | None, encoder: Encoder, chunk_size: int, chunk_overlap: int, embed_title: bool
) -> tuple[str | None, int, int, int]:
    """``(title embedded or None, passage size, overlap, model room)`` for a document with this title."""
    title = title if embed_title else None
    size, room = chunk_size, encoder.max_tokens
    if title:
        # The title shares the model's window with the passage: shrink passages so nothing is cut off,
        # unless the title would leave too little room, in which case it is not embedded.
        left = encoder.max_tokens - encoder.count_tokens([f"{title}\n"])[0]
        if left >= MIN_PASSAGE_TOKENS:
            size, room = min(chunk_size, left), left
        else:
            title = None
    return title, size, min(chunk_overlap, size // 2), room


def chunk_document(
    document: Document,
    encoder: Encoder,
    chunk_size: int,
    chunk_overlap: int,
    embed_title: bool,
    earlier: tuple[str, str | None, list[Chunk]] | None = None,
) -> tuple[list[Chunk], list[str]]:
    """A new or changed document's passages (with sections and anchors) and the text the model embeds for each.

    Only ``encoder``'s tokenizer is used (``count_tokens``, ``max_tokens``), so a node that chunks needs no more.

    Args:
        earlier: the text, title and passages of the document's previous version, a file whose format has its
            structure in its text (``qa.ingest.formats.text_structure``; ``StoreWriter.previous_version``): the passages
            of the sections it shares with this one are taken from it rather than cut again
            (``qa.text.chunking.known_pieces``), the same passages either way.
    """
    limits = (encoder, chunk_size, chunk_overlap, embed_title)
    title, size, overlap, room = _passage_limits(document.metadata.title, *limits)
    reuse = None
    structure = text_structure(format_suffix(document.doc_id)) if earlier is not None else None
    if structure is not None and earlier is not None:  # (structure is looked up only with an earlier version)
        text, earlier_title, passages = earlier
        _, old_size, old_overlap, old_room = _passage_limits(earlier_title, *limits)
        headings, code = structure(text)
        reuse = known_pieces(
            text,
            passages,
            size=old_size,
            overlap=old_overlap,
            limit=old_room,
            boundaries=[h.start for h in headings],
            code=code,
        )
    chunks = chunk_text(
        document.text,
        size=size,
        overlap=overlap,
        count_tokens=encoder.count_tokens,
        limit=room,
        boundaries=[h.start for h in document.headings],
        code=document.code,
        reuse=reuse,
    )
    chunks = place(document.text, chunks, document.headings, document.anchors)
    return chunks, [embed_input(title, c.text, title is not None) for c in chunks]


def _add_chunked(store: StoreWriter, document: Document, chunked: tuple[Document, list[Chunk], list[str]]) -> None:
    """Write a chunked document into ``store`` (``chunked`` is what the build's chunker gave for it).

    Raises:
        ValueError: the chunker gave another document than the one due (it must keep the order it was given).
    """
    given, chunks, inputs = chunked
    if given.doc_id != document.doc_id or given.content_hash != document.content_hash:
        raise ValueError(f"the chunker returned {given.doc_id} where {document.doc_id} was due")
    store.add_document(document, chunks, inputs)


def embed_batch(encoder: Encoder, batch: list[tuple[str, PendingText]]) -> EmbeddedBatch:
    """Embed one batch of ``(hash, pending)`` passage inputs: their hashes, passage vectors and sentence vectors."""
    spans = [
        [(p.passage_offset + s.start, p.passage_offset + s.end) for s in split_sentences(p.passage)] for _, p in batch
    ]
    vectors, sentence_vectors = encoder.encode_with_spans([p.embed_input for _, p in batch], spans)
    return [h for h, _ in batch], vectors, sentence_vectors


def _embed(
    store: StoreWriter,
    encoder: Encoder,
    reused: dict[str, int],
    pending_path: Path,
    report: Progress,
    embed_batches: BatchEmbedder | None = None,
) -> "FreshVectors":
    """Embed every passage input of ``store`` that is not ``reused`` from the previous index, here or through
    ``embed_batches`` (which may return the batches in any order)."""
    # Longest first, so texts of one length share a model batch (less padding) and the slowest batches
    # are not left for the end of the progress bar.
    pending = sorted(store.missing_embeddings(reused), key=lambda item: -len(item[1].embed_input))
    batches = [pending[first : first + EMBED_BATCH] for first in range(0, len(pending), EMBED_BATCH)]
    if embed_batches is None:

        def embed_batches(batches: list[list[tuple[str, PendingText]]]) -> Iterator[EmbeddedBatch]:
            return (embed_batch(encoder, batch) for batch in batches)

    fresh = FreshVectors(encoder.dimension, pending_path)
    report("embedding", 0, len(pending))
    for hashes, vectors, sentence_vectors in embed_batches(batches):
        fresh.add(hashes, vectors, sentence_vectors)
        report("embedding", fresh.count, len(pending))
    return fresh


def _write_vectors(target: Path, ids: np.ndarray, hashes: list[str], sources: "VectorSources", dimension: int) -> str:
    """Write a segment's vector, codes and sentences files into ``target``; returns its vector search kind."""
    vector_index = VectorIndex.build(ids, sources.passage_vectors(hashes, dimension))
    approximate = vector_index.kind == APPROXIMATE
    vector_index.save(target / VECTORS_FILE, target / CODES_FILE if approximate else None)
    sources.write_sentences(target / SENTENCES_FILE, ids, hashes, dimension)
    return vector_index.kind


def _top_files(kind: str) -> dict:
    """The manifest's ``files``: the top segment's files by role."""
    files = {"vectors": VECTORS_FILE, "sentences": SENTENCES_FILE, "database": DATABASE_FILE, "keywords": KEYWORDS_FILE}
    return {**files, "codes": CODES_FILE} if kind == APPROXIMATE else files


def _link_segments(index_dir: Path, staging: Path, segments: list[Segment]) -> None:
    """Hard-link the files of ``segments`` from the index at ``index_dir`` into ``staging`` (nothing is copied:
    segment files are never changed once written)."""
    for segment in segments:
        if segment.dir != TOP:
            (staging / segment.dir).mkdir(exist_ok=True)
        for name in segment_files(segment.dir, segment.kind):
            (staging / name).unlink(missing_ok=True)  # the store this build opened before it knew
            try:
                os.link(index_dir / name, staging / name)
            except OSError:  # a file system without hard links: a copy is the same file, only slower
                shutil.copy2(index_dir / name, staging / name)


class _BuildSettings(TypedDict):
    """The settings ``staleness`` and ``unchanged_since_build`` compare an index with."""

    model: str
    chunk_size: int
    chunk_overlap: int
    embed_title: bool
    precision: str
    html_content: str


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

    @property
    def count(self) -> int:
        """How many passage inputs were embedded."""
        return len(self._ordinals)

    def add(self, hashes: list[str], vectors: np.ndarray, sentence_vectors: list[np.ndarray]) -> None:
        """Keep one batch: a passage vector and its sentence vectors per hash."""
        block = len(self._blocks)
        self._blocks.append(np.asarray(vectors, dtype=np.float32))
        for row, (key, sentences) in enumerate(zip(hashes, sentence_vectors, strict=True)):
            self._where[key] = (block, row)
            self._ordinals[key] = len(self._ordinals)
            assert self._writer is not None  # a build adds every batch before it reads any sentences back
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
        if ordinal is None:
            return None
        assert self._sentences is not None  # loaded above when the writer closed; only discard unsets it
        return self._sentences.at(ordinal)

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

    def __init__(self, fresh: FreshVectors, reused: dict[str, int], previous: SegmentFiles | None) -> None:
        self.fresh, self.reused, self.previous = fresh, reused, previous

    def _previous(self) -> SegmentFiles:
        """The previous index's files, which every input not embedded now was reused from."""
        assert self.previous is not None  # reused inputs come only from a previous index (empty without one)
        return self.previous

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
            vectors[wanted_rows] = self._previous().vectors([self.reused[key] for key in wanted_keys], dimension)
        return vectors

    def write_sentences(self, path: Path, ids: np.ndarray, hashes: list[str], dimension: int) -> None:
        """Write the sentences file: each chunk's 8-bit sentence vectors, in chunk id order."""
        reused = [self.reused[key] for key in dict.fromkeys(hashes) if self.fresh.sentences(key) is None]
        old = self._previous().sentences(reused) if reused else {}
        writer = SentenceFileWriter(path, dimension)
        try:
            for chunk_id, key in zip(ids.tolist(), hashes):
                found = self.fresh.sentences(key)
                writer.add(chunk_id, *(found if found is not None else old[self.reused[key]]))
        finally:
            writer.close()


def staleness(
    index_dir: Path,
    scan: CorpusScan,
    *,
    model: str,
    chunk_size: int,
    chunk_overlap: int,
    embed_title: bool,
    precision: str | None = None,
    html_content: str = "main",
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
    # The same files read by other extraction code may give other text: the build compares it and, where it came
    # out the same, keeps the index's files under the new digest (``_restamp``), so this costs one read.
    if reason is None and not _read_by_these_readers(manifest):
        return "its documents were read by another version of qa's document readers"
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
    index_dir: Path,
    corpus: Path,
    *,
    model: str,
    chunk_size: int,
    chunk_overlap: int,
    embed_title: bool,
    precision: str | None = None,
    html_content: str = "main",
    walk: CorpusWalk | None = None,
) -> bool:
    """Whether the index at ``index_dir`` was built from ``corpus`` as the file system shows it now, with these
    settings: known from the manifest and a walk of the corpus (:func:`qa.ingest.corpus.corpus_stamp`), reading no
    document, so a no-op `qa index` or `qa serve` start costs milliseconds, not a scan.

    False whenever that cannot be told this way (no index, another corpus or setting, a file touched or changed,
    an index built before stamps were recorded, text extracted by other code or libraries than this qa's, see
    ``qa.ingest.corpus.extractor_version``): the caller then scans, and the scan decides.

    ``walk``: a walk of ``corpus`` already made (``qa.ingest.corpus.walk_corpus``), whose stamp is taken instead of
    walking.
    """
    try:
        manifest = Manifest.read(Path(index_dir))
        stamp = walk.stamp if walk is not None else corpus_stamp(corpus)
    except QAError:
        return False
    chunking = chunking_parameters(chunk_size, chunk_overlap, embed_title, html_content)
    return (
        _settings_differ(manifest, model=model, chunking=chunking, precision=precision) is None
        and manifest.corpus.get("root") == str(Path(corpus).expanduser().resolve())
        and manifest.corpus.get("stamp") == stamp
        and _read_by_these_readers(manifest)
    )


@dataclass(frozen=True)
class BuildDefaults:
    """What ``ensure_index`` builds a new index with when neither its arguments nor an existing index say."""

    model: str
    chunk_size: int
    chunk_overlap: int
    embed_title: bool
    precision: str


def ensure_index(
    index_dir: Path,
    *,
    corpus: Path | None,
    default_corpus: Path | None,
    model: str | None,
    chunk_size: int | None,
    chunk_overlap: int | None,
    defaults: BuildDefaults,
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
    else from ``defaults``; ``load_model(name, precision)`` loads
    the model for a build. ``html_content`` ("main" or "all") comes from the argument, else the existing index,
    else "main". A copied index whose corpus is not on this machine is used as it is.

    Returns:
        ``(report, reason)`` after a build, ``(None, None)`` when nothing needed doing.
    """
    index_dir = Path(index_dir)
    # This is a build step, so it may write: a swap cut short between its two renames gets its index back here,
    # before the index is judged missing and built again from the corpus.
    recover_if_idle(index_dir)
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
    model = model or (manifest.model if manifest else defaults.model)
    chunk_size = chunk_size or (manifest.chunking["size"] if manifest else defaults.chunk_size)
    chunk_overlap = (
        chunk_overlap
        if chunk_overlap is not None
        else (manifest.chunking["overlap"] if manifest else defaults.chunk_overlap)
    )
    embed_title = manifest.chunking.get("embed_title", defaults.embed_title) if manifest else defaults.embed_title
    precision = precision or (manifest.precision if manifest else defaults.precision)
    html_content = html_content or (manifest.chunking.get("html_content", "main") if manifest else "main")
    settings = _BuildSettings(
        model=model,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        embed_title=embed_title,
        precision=precision,
        html_content=html_content,
    )
    try:
        walk = walk_corpus(corpus)
    except QAError:
        walk = None  # the scan below says what is wrong with the corpus
    if unchanged_since_build(index_dir, Path(corpus), **settings, walk=walk):
        return None, None
    scan = scan_corpus(
        corpus, main_content=html_content == "main", reuse=reusable_files(index_dir, html_content), walk=walk
    )
    reason = staleness(index_dir, scan, **settings)
    if reason is None:
        return None, None
    encoder = load_model(model, precision)
    report = build_index(
        Path(corpus),
        index_dir,
        encoder,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        embed_title=embed_title,
        html_content=html_content,
        scan=scan,
        progress=progress,
    )
    return report, reason
