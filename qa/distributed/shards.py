"""Shards: one corpus indexed as N indexes of disjoint documents, each servable on its own machine.

A sharded index is a directory holding ``shards.json`` and ``shard-0`` .. ``shard-{N-1}``, each an ordinary index
(``qa index``) of the documents whose path relative to the corpus hashes to it (``shard_of``; a document's
aliases go with it), built by ``build_shards`` (`qa index CORPUS --index DIR --shards N`) from one read of the
corpus. Citations name the path relative to the whole corpus, as an unsharded index's do.

Each shard is served by a ``ShardServer``: the calls a router needs (phrase frequencies, keyword search with
the whole index's statistics, vector search, passages, sentence vectors, filters, documents), in the shard's own
ids, on a named build (generation). It keeps the build before its current one open, so a shard rebuilt in place
keeps answering questions the router started on the old one, and answers ``ShardChanged`` for a build it no
longer holds. qa.distributed.shard_router answers questions over the shards as one index; qa.distributed.shard_serving
runs each shard as a Ray Serve deployment.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from qa.embed.encoder import Encoder
from qa.errors import ConfigError, CorpusError, IndexCorrupt, IndexNotFound, QAError, ShardChanged, ShardUnavailable
from qa.index.manifest import MANIFEST_FILE, Manifest
from qa.index.postings import Collection, Postings
from qa.index.segments import SegmentedPostings
from qa.index.sentence_vectors import Quantized
from qa.index.snapshot import directory_identity, open_snapshot
from qa.index.store import StoredChunk, StoredDocument
from qa.ingest.corpus import CorpusScan
from qa.search.filters import SearchFilter

SHARDS_FILE = "shards.json"
SHARDS_FORMAT = 1


def shard_of(doc_id: str, count: int) -> int:
    """The shard a document goes to: a stable hash of its path relative to the corpus, modulo ``count``."""
    digest = hashlib.sha256(doc_id.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count


def corpus_order(doc_id: str) -> tuple[str, ...]:
    """The sort key of the order a build walks a corpus in (folder by folder, names sorted at each level)."""
    return tuple(doc_id.split("/"))


@dataclass(frozen=True)
class ShardLayout:
    """A sharded index: its directory and its shards' sub-directory names, in shard order."""

    root: Path
    names: tuple[str, ...]

    @property
    def dirs(self) -> list[Path]:
        """Each shard's index directory."""
        return [self.root / name for name in self.names]


def is_sharded(index_dir: Path) -> bool:
    """Whether ``index_dir`` holds a sharded index (a ``shards.json``)."""
    return (Path(index_dir) / SHARDS_FILE).is_file()


def read_layout(index_dir: Path) -> ShardLayout:
    """The layout of the sharded index at ``index_dir``.

    Raises:
        IndexNotFound: no ``shards.json`` there.
        IndexCorrupt: it is unreadable or names something other than its own shard directories.
    """
    path = Path(index_dir) / SHARDS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexNotFound(f"no sharded index at {index_dir} (no {SHARDS_FILE})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorrupt(f"unreadable {path}: {exc}") from exc
    names = data.get("shards") if isinstance(data, dict) else None
    rebuild = "rebuild it with `qa index CORPUS --index DIR --shards N`"
    if not isinstance(names, list) or not names or data.get("format") != SHARDS_FORMAT:
        raise IndexCorrupt(f"{path} is not a shards file of format {SHARDS_FORMAT}: {rebuild}")
    if names != [f"shard-{number}" for number in range(len(names))]:
        raise IndexCorrupt(f"{path} names shard directories other than shard-0, shard-1, ...: {rebuild}")
    return ShardLayout(Path(index_dir), tuple(names))


def partition(scan: CorpusScan, count: int) -> list[CorpusScan]:
    """A corpus scan split into ``count`` scans by ``shard_of`` each document's path (a document's aliases go with
    it); each part's fingerprint covers its own documents and skipped files only.

    Raises:
        CorpusError: a part would hold no document (fewer documents than shards, or an unlucky split).
    """
    parts = [CorpusScan(root=scan.root, stamp=scan.stamp) for _ in range(count)]
    for document in scan.documents:
        part = parts[shard_of(document.doc_id, count)]
        part.documents.append(document)
        for path in (document.doc_id, *document.aliases):
            if path in scan.stats:
                part.stats[path] = scan.stats[path]
    for skipped in scan.skipped:
        parts[shard_of(skipped.doc_id, count)].skipped.append(skipped)
    for number, part in enumerate(parts):
        if not part.documents:
            raise CorpusError(
                f"shard {number} of {count} would hold no document ({len(scan.documents)} documents in "
                f"{scan.root}): use fewer shards"
            )
        fingerprint = hashlib.sha256()
        for document in part.documents:
            fingerprint.update(
                f"{document.doc_id}\0{document.content_hash}\0{document.aliases}\n".encode("utf-8", "surrogateescape")
            )
        for skipped in part.skipped:
            fingerprint.update(f"{skipped.doc_id}\0{skipped.reason}\n".encode("utf-8", "surrogateescape"))
        part.fingerprint = fingerprint.hexdigest()
    return parts


def build_shards(
    corpus: Path, index_dir: Path, encoder: Encoder, *, shards: int, build: Callable | None = None, **options
) -> list:
    """Index ``corpus`` as ``shards`` ordinary indexes ``index_dir/shard-i`` of disjoint documents, then write
    ``index_dir/shards.json``; a shard already there is updated as `qa index` updates an index.

    The corpus is read once; each shard is then built from its part (``qa.index.indexer.build_index`` with ``scan=``).

    Args:
        build: what builds one shard, called as ``build_index`` is (``corpus, shard directory, encoder,
            scan=part, **options``) and returning its report: ``build_index`` itself by default, or a build that
            embeds on a Ray cluster (``qa.distributed.ray_indexing.build_on_cluster``).
        options: what ``build_index`` takes besides the corpus, directory, encoder and scan.

    Returns:
        Each shard's ``BuildReport``, in shard order.

    Raises:
        ConfigError: ``index_dir`` already holds another number of shards, or holds an unsharded index.
        CorpusError, BuildInProgress, IndexWriteError: as ``build_index``.
    """
    from qa.index.indexer import build_index
    from qa.ingest.corpus import scan_corpus

    index_dir = Path(index_dir)
    if shards < 1:
        raise ConfigError(f"--shards must be at least 1, got {shards}")
    if is_sharded(index_dir) and len(read_layout(index_dir).names) != shards:
        raise ConfigError(
            f"{index_dir} holds {len(read_layout(index_dir).names)} shards, not {shards}: build into a new directory"
        )
    if (index_dir / MANIFEST_FILE).exists():
        raise ConfigError(f"{index_dir} holds an unsharded index: build the shards into a new directory")
    scan = scan_corpus(corpus, main_content=options.get("html_content", "main") == "main")
    parts = partition(scan, shards)
    index_dir.mkdir(parents=True, exist_ok=True)
    build = build or build_index
    reports = [
        build(corpus, index_dir / f"shard-{number}", encoder, scan=part, **options) for number, part in enumerate(parts)
    ]
    _write_layout(index_dir, shards)
    return reports


def _write_layout(index_dir: Path, count: int) -> None:
    """Write ``shards.json`` atomically (a temporary file renamed into place)."""
    data = {
        "format": SHARDS_FORMAT,
        "partition": "sha256 of the document path, modulo the shard count",
        "shards": [f"shard-{number}" for number in range(count)],
    }
    temporary = index_dir / f".{SHARDS_FILE}.tmp"
    temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, index_dir / SHARDS_FILE)


def generation_of(manifest: Manifest) -> str:
    """A name for one build of an index, the same on every copy of it: its creation time and files' checksums."""
    content = json.dumps([manifest.created, manifest.checksums, manifest.segments], sort_keys=True)
    return hashlib.sha256(content.encode()).hexdigest()[:16]


class ShardIndex:
    """One build of one shard, opened as a snapshot: the calls a router makes, in the shard's own chunk ids."""

    def __init__(self, index_dir: Path) -> None:
        """Raises: IndexNotFound, IndexIncompatible, IndexCorrupt: the shard's index cannot be opened."""
        snapshot = open_snapshot(Path(index_dir))
        self.manifest, self.store, self.vectors = snapshot.manifest, snapshot.store, snapshot.vectors
        keywords = snapshot.store.keywords
        assert keywords is not None  # open_snapshot loads every segment's postings
        self.postings: Postings | SegmentedPostings = keywords
        self.generation = generation_of(self.manifest)

    def close(self) -> None:
        """Let go of the files."""
        self.store.close()

    def describe(self) -> dict:
        """What the router needs once per build: the manifest, keyword statistics, vector and sentence sizes,
        and each document with passages as ``(row, doc_id, first chunk id, passage count)``."""
        first: dict[int, list] = {}
        for chunk, _ in self.store.iter_chunks():
            entry = first.get(chunk.document_row)
            if entry is None:
                first[chunk.document_row] = [chunk.doc_id, chunk.id, 1]
            else:
                entry[1], entry[2] = min(entry[1], chunk.id), entry[2] + 1
        documents = [(row, doc_id, start, count) for row, (doc_id, start, count) in first.items()]
        return {
            "generation": self.generation,
            "manifest": self.manifest,
            "documents": documents,
            "keyword_rows": int(self.postings.n_rows),
            "keyword_tokens": int(self.postings.total_tokens),
            "vectors": len(self.vectors),
            "kind": self.vectors.kind,
            "sentence_bytes": int(self.store.sentence_vector_bytes()),
        }

    def frequencies(self, phrases: Sequence[Sequence[str]]) -> list[int]:
        """How many of this shard's passages match each phrase."""
        if isinstance(self.postings, SegmentedPostings):
            return [self.postings.frequency(tokens) for tokens in phrases]
        return [len(self.postings.phrase_postings(tokens)[0]) for tokens in phrases]

    def keyword_search(
        self,
        phrases: Sequence[Sequence[str]],
        k: int,
        weights: tuple[float, float],
        allowed: np.ndarray | None,
        collection: Collection,
    ) -> list[tuple[int, float]]:
        """The best ``k`` passages here for an OR of ``phrases``, scored with the whole index's ``collection``."""
        if isinstance(self.postings, SegmentedPostings):
            return self.postings.rank(phrases, k, weights=weights, allowed=allowed, collection=collection)
        mask = self.postings.rows_of(allowed) if allowed is not None else None
        return self.postings.search(phrases, k, weights=weights, allowed=mask, collection=collection)

    def vector_search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` ``(scores, ids)`` per query row here (see ``VectorStore.search``)."""
        return self.vectors.search(queries, k, allowed)

    def reconstruct(self, ids: list[int]) -> np.ndarray:
        """Stored passage vectors, one row per id."""
        return self.vectors.reconstruct(ids)

    def chunks(self, ids: list[int]) -> dict[int, StoredChunk]:
        """Passages by id."""
        return self.store.chunks(ids)

    def sentence_vectors(self, ids: list[int]) -> dict[int, Quantized]:
        """Stored sentence vectors of passages, by id."""
        return self.store.sentence_vectors_of(ids, self.manifest.dimension)

    def all_sentence_vectors(self) -> dict[int, Quantized]:
        """Stored sentence vectors of every passage, by id."""
        return self.store.all_sentence_vectors(self.manifest.dimension)

    def allowed_chunks(self, search_filter: SearchFilter) -> np.ndarray:
        """The passage ids here a filter lets through, sorted."""
        return self.store.allowed_chunks(search_filter)

    def count_undated(self, search_filter: SearchFilter) -> int:
        """Documents here a date filter leaves out for want of a date."""
        return self.store.count_undated(search_filter)

    def document(self, doc_id: str) -> StoredDocument | None:
        """A document by id or alias, or None."""
        return self.store.document(doc_id)

    def documents(self) -> list:
        """``(doc_id, metadata, passage count)`` of every document here."""
        return self.store.documents()

    def aliases_of(self, rows: list[int]) -> dict[int, tuple[str, ...]]:
        """The other paths of documents here, by row."""
        return self.store.aliases_of(rows)

    def section_leads(self, ids: list[int]) -> list[int]:
        """Which of the passage ids here open a headed section."""
        return sorted(self.store.section_leads(ids))


# The ShardIndex methods a router may call through ``ShardServer.call``.
CALLS = frozenset(
    {
        "frequencies",
        "keyword_search",
        "vector_search",
        "reconstruct",
        "chunks",
        "sentence_vectors",
        "section_leads",
        "all_sentence_vectors",
        "allowed_chunks",
        "count_undated",
        "document",
        "documents",
        "aliases_of",
    }
)


class ShardServer:
    """One shard as served: its current build, plus the one before it for questions started on that one. The index
    is opened when first described, and again when its directory was rebuilt (looked at whenever the router asks
    for the generation)."""

    def __init__(self, index_dir: Path, name: str) -> None:
        self.index_dir, self.name = Path(index_dir), name
        self._lock = threading.Lock()
        self._builds: dict[str, ShardIndex] = {}
        self._current: ShardIndex | None = None
        self._identity: tuple | None = None

    def refresh(self) -> None:
        """Open the shard's index (again) if it was not open or its directory was replaced since the last look.

        Raises:
            IndexNotFound, IndexIncompatible, IndexCorrupt: the index cannot be opened (one open before stays).
        """
        identity = _directory_identity(self.index_dir)
        if self._current is not None and identity == self._identity:
            return
        with self._lock:
            if self._current is not None and identity == self._identity:
                return  # another thread opened it meanwhile
            fresh = ShardIndex(self.index_dir)
            previous = self._current
            retired = [build for key, build in self._builds.items() if build is not previous]
            self._builds = {fresh.generation: fresh, **({previous.generation: previous} if previous else {})}
            self._current, self._identity = fresh, identity
        for build in retired:
            if build.generation not in self._builds:
                build.close()

    def close(self) -> None:
        """Let go of every build held; later calls answer with an error (the router then names this shard)."""
        with self._lock:
            for build in self._builds.values():
                build.close()

    def _refreshed(self) -> ShardIndex:
        """The current build, after looking for a rebuilt index (see ``refresh``)."""
        self.refresh()
        current = self._current
        assert current is not None  # refresh opened a build or raised, and nothing unsets it
        return current

    def describe(self) -> dict:
        """The current build's ``ShardIndex.describe``, with this shard's name."""
        return {**self._refreshed().describe(), "name": self.name}

    def generation(self) -> str:
        """The current build's generation (after looking for a rebuilt index)."""
        return self._refreshed().generation

    def call(self, generation: str, method: str, args: tuple) -> tuple:
        """``method(*args)`` on build ``generation``, as ``("ok", result)`` or ``("error", kind, message)`` (so
        the router sees the same plain data through Ray as in this process)."""
        try:
            build = self._builds.get(generation)
            if build is None:
                raise ShardChanged(f"shard {self.name} was rebuilt while answering this question: ask again")
            if method not in CALLS:
                raise ShardUnavailable(f"shard {self.name} has no call {method!r}")
            return ("ok", getattr(build, method)(*args))
        except QAError as exc:
            return ("error", type(exc).__name__, str(exc))
        except Exception as exc:  # a damaged or vanished file under a served index: the router names the shard
            return ("error", type(exc).__name__, first_line(exc))


def _directory_identity(index_dir: Path) -> tuple | None:
    """The identity of the index directory and its manifest now (None when missing)."""
    try:
        return directory_identity(os.stat(index_dir), os.stat(Path(index_dir) / MANIFEST_FILE))
    except OSError:
        return None


def first_line(exc: BaseException) -> str:
    """An exception's kind and first line of message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
