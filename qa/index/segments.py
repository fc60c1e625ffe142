"""An index made of segments, so an update writes what changed instead of rewriting the index.

A segment is one set of index files (store, keyword postings, vectors, sentence vectors) written once and never
changed. The first segment is the files at the top of the index directory; an update adds a sub-directory
(``seg-000002``, ...) holding only the documents it added or changed, and *hides* the documents they replace or
that were removed, by listing their rows in the manifest. Its new directory is made of hard links to the old
segments' files, the new segment and a new manifest, and is swapped in whole as before (qa.index.atomic), so an update
costs what changed and a reader still sees one build. Lucene's segments and deletions work this way.

Chunk and document ids stay unique across segments (a new segment's ids follow every id used before), so an id
says which segment holds it. The readers here join the segments into the one store, keyword index and vector
index the service core reads (qa.index.interfaces), with the answers one index of the same documents gives: BM25's row
count, average length and document frequencies are those of the documents shown across every segment, and
vector and keyword results are merged by score. When segments pile up or hide too much, the next update merges
them all into one (qa.index.indexer).
"""

from __future__ import annotations

import heapq
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from qa.errors import IndexCorrupt
from qa.index.manifest import DATABASE_FILE, SENTENCES_FILE, VECTORS_FILE, Manifest
from qa.index.postings import Collection, Postings
from qa.index.sentence_vectors import Quantized, SentenceFile
from qa.index.store import StoredChunk, StoredDocument, StoreReader
from qa.index.vectors import APPROXIMATE, EXACT, VectorIndex
from qa.ingest.corpus import ReusableFile, Skipped
from qa.ingest.metadata import Metadata
from qa.search.filters import SearchFilter

TOP = "."
_NAME = re.compile(r"seg-[0-9]{6}")
# An update merges every segment into one when there would be more than this many (each search visits each), or
# when hidden passages would be more than MAX_HIDDEN_SHARE of all passages in the files (they take room and time).
MAX_SEGMENTS = 8
MAX_HIDDEN_SHARE = 0.25
# A vector segment hiding at most this many passages is searched for k more results than asked and the hidden ones
# dropped; one hiding more is searched among its shown ids alone.
OVERFETCH_MAX = 2_000


@dataclass(frozen=True)
class Segment:
    """One segment as the manifest lists it: its directory, its vector search kind, the ranges of chunk and
    document ids it holds, and the rows of its documents that later segments hide."""

    dir: str
    kind: str
    first_chunk: int
    chunks: int
    first_document: int
    documents: int
    hidden: tuple[int, ...] = ()
    hidden_chunks: int = 0

    @property
    def end_chunk(self) -> int:
        """One past its last chunk id."""
        return self.first_chunk + self.chunks

    @property
    def end_document(self) -> int:
        """One past its last document row."""
        return self.first_document + self.documents

    def to_json(self) -> dict:
        """The manifest entry."""
        return {**asdict(self), "hidden": list(self.hidden)}


def segments_of(manifest: Manifest) -> list[Segment]:
    """The segments of an index, oldest first, checked.

    Raises:
        IndexCorrupt: an entry is malformed, names an unsafe directory, or its id ranges overlap another's.
    """
    found: list[Segment] = []
    for number, entry in enumerate(manifest.segments):
        try:
            segment = Segment(**{**entry, "hidden": tuple(entry.get("hidden", ()))})
            numbers = (segment.first_chunk, segment.chunks, segment.first_document, segment.documents)
            if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in numbers):
                raise TypeError("id ranges must be counts")
            if not all(isinstance(row, int) for row in segment.hidden):
                raise TypeError("hidden rows must be integers")
        except TypeError as exc:
            raise IndexCorrupt(
                f"malformed segment {number} in the manifest: {exc}: rebuild it with `qa index`"
            ) from exc
        if (segment.dir != TOP) if number == 0 else not _NAME.fullmatch(str(segment.dir)):
            raise IndexCorrupt(f"segment {number} of the manifest names {segment.dir!r}: rebuild it with `qa index`")
        if found and (segment.first_chunk < found[-1].end_chunk or segment.first_document < found[-1].end_document):
            raise IndexCorrupt(f"segment {segment.dir} overlaps the one before it: rebuild it with `qa index`")
        found.append(segment)
    return found or [
        Segment(
            TOP,
            manifest.vectors.get("kind", EXACT),
            1,
            int(manifest.counts["chunks"]),
            1,
            int(manifest.counts["documents"]),
        )
    ]


def next_ids(segments: Sequence[Segment]) -> tuple[int, int]:
    """The first chunk id and document row a new segment takes: above every one used so far."""
    return max(s.end_chunk for s in segments), max(s.end_document for s in segments)


def segment_dir(index_dir: Path, segment: Segment) -> Path:
    """Where a segment's files are."""
    return Path(index_dir) if segment.dir == TOP else Path(index_dir) / segment.dir


def segment_file(segment: Segment, name: str) -> str:
    """The path inside the index of a segment's file ``name``, as the manifest's checksums name it."""
    return name if segment.dir == TOP else f"{segment.dir}/{name}"


def _group(ids: Sequence[int] | np.ndarray, starts: np.ndarray) -> dict[int, list[int]]:
    """Ids by the number of the segment whose range holds them (``starts``: each segment's first id)."""
    ids = np.asarray(ids, dtype=np.int64)
    owners = np.searchsorted(starts, ids, side="right") - 1
    grouped: dict[int, list[int]] = {}
    for owner, chunk_id in zip(owners.tolist(), ids.tolist()):
        grouped.setdefault(owner, []).append(chunk_id)
    return grouped


class SegmentedStore:
    """The documents of every segment as one store (qa.index.interfaces.DocumentStore, plus what tools and builds read);
    each segment's store leaves out its hidden documents itself."""

    keywords: "SegmentedPostings | None" = None

    def __init__(self, stores: Sequence[StoreReader], segments: Sequence[Segment]) -> None:
        self.stores, self.segments = list(stores), list(segments)
        self.path = self.stores[0].path
        self._chunk_starts = np.array([s.first_chunk for s in segments], dtype=np.int64)
        self._document_starts = np.array([s.first_document for s in segments], dtype=np.int64)

    def close(self) -> None:
        """Close every segment's store; later reads fail."""
        for store in self.stores:
            store.close()
        self.keywords = None

    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        """Chunks by id, from the segments that hold them."""
        found: dict[int, StoredChunk] = {}
        for owner, wanted in _group(ids, self._chunk_starts).items():
            if owner >= 0:
                found.update(self.stores[owner].chunks(wanted))
        return found

    def section_leads(self, ids: Sequence[int]) -> set[int]:
        """Which of ``ids`` open a headed section (a document's passages all live in one segment)."""
        found: set[int] = set()
        for owner, wanted in _group(ids, self._chunk_starts).items():
            if owner >= 0:
                found |= self.stores[owner].section_leads(wanted)
        return found

    def iter_chunks(self) -> Iterator[tuple[StoredChunk, int]]:
        """Every shown chunk with its token count, in document order (a document lives in one segment)."""
        return heapq.merge(*(store.iter_chunks() for store in self.stores), key=lambda pair: pair[0].doc_id)

    def document(self, doc_id: str) -> StoredDocument | None:
        """One shown document by its id or one of its aliases, or None."""
        for store in reversed(self.stores):
            found = store.document(doc_id)
            if found is not None:
                return found
        return None

    def documents(self) -> list[tuple[str, Metadata, int]]:
        """``(doc_id, metadata, chunk count)`` for every shown document, by id."""
        return sorted((row for store in self.stores for row in store.documents()), key=lambda row: row[0])

    def aliases_of(self, document_rows: Sequence[int]) -> dict[int, tuple[str, ...]]:
        """The aliases of documents by row, from the segments that hold them."""
        found: dict[int, tuple[str, ...]] = {}
        for owner, rows in _group(document_rows, self._document_starts).items():
            if owner >= 0:
                found.update(self.stores[owner].aliases_of(rows))
        return found

    def file_stats(self) -> dict[str, str]:
        """Each indexed path's stat line as the last build saw it (the newest segment records every path)."""
        return self.stores[-1].file_stats()

    def reusable_files(self, checksums: Sequence[str] = ()) -> dict[str, ReusableFile]:
        """Every shown document's paths with the stat lines of the last build (see ``StoreReader.reusable_files``);
        ``checksums`` are the segments' store checksums (``store_checksums``), which the documents name."""
        stats = self.file_stats()
        found: dict[str, ReusableFile] = {}
        for number, store in enumerate(self.stores):
            found.update(store.reusable_files(stats, checksums[number] if number < len(checksums) else ""))
        return found

    def skipped(self) -> list[Skipped]:
        """Files the last build did not index, and why."""
        return self.stores[-1].skipped()

    def sentence_vectors_of(self, ids: Sequence[int], dimension: int) -> dict[int, Quantized]:
        """Per-sentence vectors of chunks, by id, from the segments that hold them."""
        found: dict[int, Quantized] = {}
        for owner, wanted in _group(ids, self._chunk_starts).items():
            if owner >= 0:
                found.update(self.stores[owner].sentence_vectors_of(wanted, dimension))
        return found

    def sentence_vector_bytes(self) -> int:
        """Total stored size of every segment's sentence vectors."""
        return sum(store.sentence_vector_bytes() for store in self.stores)

    def all_sentence_vectors(self, dimension: int) -> dict[int, Quantized]:
        """Per-sentence vectors of every shown chunk, by id."""
        found: dict[int, Quantized] = {}
        for store in self.stores:
            hidden = set(store.hidden_chunks().tolist())
            found.update((i, v) for i, v in store.all_sentence_vectors(dimension).items() if i not in hidden)
        return found

    def count_undated(self, search_filter: SearchFilter) -> int:
        """How many shown documents a date filter leaves out only because they have no date."""
        return sum(store.count_undated(search_filter) for store in self.stores)

    def allowed_chunks(self, search_filter: SearchFilter) -> np.ndarray:
        """Ids of the shown chunks the filter lets through, sorted (segments hold ascending id ranges)."""
        return np.concatenate([store.allowed_chunks(search_filter) for store in self.stores])


class SegmentedPostings:
    """Every segment's keyword postings ranked as one index: BM25 statistics over the shown rows of all of them."""

    def __init__(self, parts: Sequence[Postings], hidden: Sequence[np.ndarray]) -> None:
        """Args:
        hidden: per part, the chunk ids of its hidden rows."""
        self.parts = list(parts)
        # Per part, a mask over its rows of those shown (None when it hides nothing).
        self._shown = [~part.rows_of(ids) if len(ids) else None for part, ids in zip(parts, hidden)]
        self.n_rows = sum(int(part.n_rows if shown is None else shown.sum()) for part, shown in zip(parts, self._shown))
        self.total_tokens = sum(
            int(part.total_tokens if shown is None else part.row_tokens[shown].sum(dtype=np.int64))
            for part, shown in zip(parts, self._shown)
        )
        self.avgdl = self.total_tokens / self.n_rows if self.n_rows else 1.0

    def frequency(self, tokens: Sequence[str]) -> int:
        """Shown rows of every segment that match a phrase."""
        total = 0
        for part, shown in zip(self.parts, self._shown):
            rows = part.phrase_postings(tokens)[0]
            total += len(rows) if shown is None else int(np.count_nonzero(shown[rows]))
        return total

    def rank(
        self,
        phrases: Sequence[Sequence[str]],
        k: int,
        *,
        weights: tuple[float, float] = (1.0, 1.0),
        allowed: np.ndarray | None = None,
        collection: Collection | None = None,
    ) -> list[tuple[int, float]]:
        """The best ``k`` shown rows of all segments for an OR of ``phrases``, as ``Postings.search`` ranks one
        index of the same rows: ``(chunk id, score)``, best first, ties by chunk id; only ``allowed`` ids (shown
        ones, from ``SegmentedStore.allowed_chunks``) when given. ``collection``, when given, supplies the
        statistics of a larger whole these segments are part of (a shard's, qa.distributed.shards) instead of their
        own."""
        if k < 1 or not self.n_rows:
            return []
        if collection is None:
            collection = Collection(self.n_rows, self.avgdl, tuple(self.frequency(tokens) for tokens in phrases))
        found: list[tuple[int, float]] = []
        for part, shown in zip(self.parts, self._shown):
            mask = part.rows_of(allowed) if allowed is not None else shown
            found += part.search(phrases, k, weights=weights, allowed=mask, collection=collection)
        found.sort(key=lambda pair: (-pair[1], pair[0]))
        return found[:k]


class SegmentedVectors:
    """Every segment's vectors searched as one index (qa.index.interfaces.VectorStore), hidden passages left out."""

    def __init__(self, parts: Sequence[VectorIndex], hidden: Sequence[np.ndarray], dimension: int) -> None:
        """Args:
        hidden: per part, the chunk ids of its hidden rows (sorted)."""
        kept = [(part, ids) for part, ids in zip(parts, hidden) if len(part)]
        self.parts = [part for part, _ in kept]
        self.hidden = [np.asarray(ids, dtype=np.int64) for _, ids in kept]
        self._dimension = dimension
        self._starts = np.array([int(part.ids[0]) for part in self.parts], dtype=np.int64)
        self._shown_ids: dict[int, np.ndarray] = {}
        self.kind = APPROXIMATE if any(part.kind == APPROXIMATE for part in self.parts) else EXACT

    @property
    def dimension(self) -> int:
        """Length of each vector."""
        return self._dimension

    def __len__(self) -> int:
        return sum(len(part) - len(ids) for part, ids in zip(self.parts, self.hidden))

    @property
    def ids(self) -> np.ndarray:
        """Every shown chunk id, ascending."""
        if not self.parts:
            return np.empty(0, dtype=np.int64)
        return np.concatenate([self._shown(number) for number in range(len(self.parts))])

    def _shown(self, number: int) -> np.ndarray:
        """The shown ids of part ``number`` (made once)."""
        if number not in self._shown_ids:
            part, hidden = self.parts[number], self.hidden[number]
            ids = np.asarray(part.ids)
            self._shown_ids[number] = ids[~np.isin(ids, hidden)] if len(hidden) else ids
        return self._shown_ids[number]

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` ``(scores, ids)`` per query row over every segment; ids of -1 pad rows when fewer qualify."""
        k = max(1, k)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        found_scores, found_ids = [], []
        for number, (part, hidden) in enumerate(zip(self.parts, self.hidden)):
            if allowed is not None:
                ids = np.asarray(part.ids)
                inside = allowed[(allowed >= ids[0]) & (allowed <= ids[-1])]
                if not len(inside):
                    continue
                scores, ids = part.search(queries, k, inside)
            elif not len(hidden):
                scores, ids = part.search(queries, k)
            elif len(hidden) <= OVERFETCH_MAX:
                scores, ids = part.search(queries, k + len(hidden))
                scores, ids = _without(scores, ids, hidden, k)
            else:
                scores, ids = part.search(queries, k, self._shown(number))
            found_scores.append(scores)
            found_ids.append(ids)
        if not found_scores:
            return np.full((len(queries), k), -np.inf, np.float32), np.full((len(queries), k), -1, np.int64)
        return _best(np.concatenate(found_scores, axis=1), np.concatenate(found_ids, axis=1), k)

    def reconstruct(self, ids: list[int]) -> np.ndarray:
        """The stored vectors of the given ids, one row each.

        Raises:
            KeyError: an id is in no segment.
        """
        rows = np.empty((len(ids), self._dimension), dtype=np.float32)
        owners = np.searchsorted(self._starts, np.asarray(ids, dtype=np.int64), side="right") - 1
        for owner in set(owners.tolist()):
            at = np.flatnonzero(owners == owner)
            if owner < 0:
                raise KeyError(f"ids not in the vector index: {np.asarray(ids)[at][:5].tolist()}")
            rows[at] = self.parts[owner].reconstruct([ids[i] for i in at])
        return rows


def _without(scores: np.ndarray, ids: np.ndarray, hidden: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` results of each row that are not ``hidden``, padded with -inf / -1."""
    keep = ~np.isin(ids, hidden)
    out_scores = np.full((len(ids), k), -np.inf, dtype=np.float32)
    out_ids = np.full((len(ids), k), -1, dtype=np.int64)
    for row in range(len(ids)):
        chosen = np.flatnonzero(keep[row])[:k]
        out_scores[row, : len(chosen)] = scores[row, chosen]
        out_ids[row, : len(chosen)] = ids[row, chosen]
    return out_scores, out_ids


def _best(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of each row's merged results, best first (ties by id; padding last)."""
    out_scores = np.full((len(ids), k), -np.inf, dtype=np.float32)
    out_ids = np.full((len(ids), k), -1, dtype=np.int64)
    for row in range(len(ids)):
        real = np.flatnonzero(ids[row] >= 0)
        order = real[np.lexsort((ids[row, real], -scores[row, real]))][:k]
        out_scores[row, : len(order)] = scores[row, order]
        out_ids[row, : len(order)] = ids[row, order]
    return out_scores, out_ids


def open_store(index_dir: Path, manifest: Manifest) -> StoreReader | SegmentedStore:
    """The documents of the index at ``index_dir`` by path (for builds and tools; a service opens its snapshot).

    Raises:
        IndexCorrupt: a segment's store cannot be read.
    """
    segments = segments_of(manifest)
    stores: list[StoreReader] = []
    try:
        for segment in segments:
            stores.append(StoreReader(segment_dir(index_dir, segment) / DATABASE_FILE, hidden=segment.hidden))
    except BaseException:
        for store in stores:
            store.close()
        raise
    return stores[0] if len(stores) == 1 and not segments[0].hidden else SegmentedStore(stores, segments)


def previous_stores(index_dir: Path, manifest: Manifest) -> list[tuple[Path, tuple[int, ...], str]]:
    """Each segment's store path with the rows it hides and its checksum, for a build to attach
    (``StoreWriter.attach_previous``)."""
    segments = segments_of(manifest)
    return [
        (segment_dir(index_dir, s) / DATABASE_FILE, s.hidden, checksum)
        for s, checksum in zip(segments, store_checksums(manifest), strict=True)
    ]


def store_checksums(manifest: Manifest) -> list[str]:
    """Each segment's store checksum as the manifest records it ("" where it records none): equal checksums mean
    equal rows, so a document taken from one index's store can be trusted in another's with the same checksum."""
    return [manifest.checksums.get(segment_file(s, DATABASE_FILE), "") for s in segments_of(manifest)]


def hidden_chunk_share(segments: Sequence[Segment]) -> float:
    """The share of the passages in the files that are hidden."""
    total = sum(s.chunks for s in segments)
    return sum(s.hidden_chunks for s in segments) / total if total else 0.0


def hide(segments: Sequence[Segment], rows: Mapping[int, int]) -> list[Segment]:
    """``segments`` with more document rows hidden: ``rows`` maps each row to hide to its passage count."""
    starts = np.array([s.first_document for s in segments], dtype=np.int64)
    changed = list(segments)
    for owner, wanted in _group(sorted(rows), starts).items():
        segment = changed[owner]
        changed[owner] = Segment(
            segment.dir,
            segment.kind,
            segment.first_chunk,
            segment.chunks,
            segment.first_document,
            segment.documents,
            tuple(sorted({*segment.hidden, *wanted})),
            segment.hidden_chunks + sum(rows[row] for row in wanted),
        )
    return changed


class SegmentFiles:
    """The vector and sentence files of every segment of an index, by chunk id, for a build to reuse vectors from
    (opened by path, each when first needed)."""

    def __init__(self, index_dir: Path, segments: Sequence[Segment]) -> None:
        self.index_dir = Path(index_dir)
        self.segments = [s for s in segments if s.chunks]
        self._starts = np.array([s.first_chunk for s in self.segments], dtype=np.int64)
        self._vectors: dict[int, VectorIndex] = {}
        self._sentences: dict[int, SentenceFile] = {}

    def _owners(self, ids: Sequence[int]) -> np.ndarray:
        """The number of the segment holding each id.

        Raises:
            IndexCorrupt: an id is in no segment.
        """
        owners = np.searchsorted(self._starts, np.asarray(ids, dtype=np.int64), side="right") - 1
        if len(owners) and owners.min() < 0:
            raise IndexCorrupt(f"the previous index at {self.index_dir} lacks vectors its store names: use --full")
        return owners

    def vectors(self, ids: Sequence[int], dimension: int) -> np.ndarray:
        """The passage vectors of chunk ``ids``, one row each.

        Raises:
            IndexCorrupt: an id is not in its segment's vector file, or the dimension differs.
        """
        rows = np.empty((len(ids), dimension), dtype=np.float32)
        owners = self._owners(ids)
        for owner in set(owners.tolist()):
            if owner not in self._vectors:
                path = segment_dir(self.index_dir, self.segments[owner]) / VECTORS_FILE
                self._vectors[owner] = VectorIndex.load(path, populate=False)  # a few rows are read
            index = self._vectors[owner]
            if index.dimension != dimension:
                raise IndexCorrupt(f"the previous index at {self.index_dir} has vectors of another dimension")
            at = np.flatnonzero(owners == owner)
            positions = index.positions_of(np.asarray(ids, dtype=np.int64)[at])
            if (positions < 0).any():
                raise IndexCorrupt(f"the previous index at {self.index_dir} lacks vectors its store names: use --full")
            rows[at] = index.rows_at(positions)
        return rows

    def sentences(self, ids: Sequence[int]) -> dict[int, Quantized]:
        """The 8-bit sentence vectors of chunk ``ids``, by id.

        Raises:
            IndexCorrupt: one is not in its segment's sentences file.
        """
        found: dict[int, Quantized] = {}
        owners = self._owners(ids)
        for owner in set(owners.tolist()):
            if owner not in self._sentences:
                path = segment_dir(self.index_dir, self.segments[owner]) / SENTENCES_FILE
                self._sentences[owner] = SentenceFile.load(path, populate=False)  # only the ones asked for are read
            found.update(self._sentences[owner].of(np.asarray(ids, dtype=np.int64)[owners == owner]))
        if len(found) != len(set(ids)):
            raise IndexCorrupt(f"the previous index at {self.index_dir} lacks sentences its store names: use --full")
        return found
