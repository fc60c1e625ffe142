"""Passage vectors keyed by SQLite chunk ids: one memory-mapped float32 file, searched exactly when small and
through product-quantisation codes, re-ranked exactly on the mapped rows, when large.

The rows file (``vectors.f32``) is the only copy of each passage vector: a 32-byte header (magic, dimension,
count), the chunk ids as little-endian int64 in ascending order, then one little-endian float32 row per id. It is
mapped, not read, so serving memory holds only the pages searches touch (the kernel may drop them again). The
approximate kind adds a FAISS file of fast-scan codes alone (no vectors), whose positions are the rows'. The codes
are flat (``IndexPQFastScan``: every code scanned) or, from ``IVF_MIN_VECTORS`` up, in inverted lists
(``IndexIVFPQFastScan``, whose ids are those positions: a search scans the lists nearest the query); the FAISS type
read from the file tells which, so files of either kind load the same way.
"""

from __future__ import annotations

import ctypes
import functools
import math
import mmap
import os
import struct
import sys
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np

from qa.errors import IndexCorrupt

# Below EXACT_MAX_VECTORS search is exact: a flat scan stays near a millisecond up to there, and above it the
# approximate index is many times faster for a recall just under 1 (benchmarks/scale.py; the figures are in
# docs/performance.md, "Figures behind the code's constants").
EXACT_MAX_VECTORS = 25_000
# The approximate index scans compact product-quantisation codes ("fast scan": one 4-bit sub-quantiser per
# DIMENSIONS_PER_SUBQUANTIZER dimensions, so 192 sub-quantisers and 96 bytes a vector for 384 dimensions, looked
# up in SIMD registers) and re-ranks the best candidates exactly on the mapped float rows. The scan costs little
# next to re-ranking many candidates, so finer codes that need few candidates beat coarser ones that need many;
# HNSW reached a high recall only when slower than a flat scan (docs/performance.md, "Figures behind the code's
# constants").
DIMENSIONS_PER_SUBQUANTIZER = 2
# How many candidates are re-ranked exactly: RERANK_SCALE * sqrt(N), and at least RERANK_PER_RESULT per result
# asked for (the recall this gives at 100k and 1M is in docs/performance.md, "Figures behind the code's constants").
RERANK_SCALE = 1.0
RERANK_PER_RESULT = 20
# PQ codebooks are trained on this many vectors (a fixed-seed sample), enough for 16 centroids per sub-quantiser;
# with fewer than APPROXIMATE_MIN_VECTORS (faiss wants 39 per centroid) the index stays exact whatever is asked.
TRAIN_SAMPLE = 65_536
# The lists' k-means wants this many training vectors per list (fewer and FAISS warns): the sample grows to match.
TRAIN_PER_LIST = 39
APPROXIMATE_MIN_VECTORS = 1_000
# From IVF_MIN_VECTORS up the codes are an inverted file (``IndexIVFPQFastScan``): a coarse k-means of
# IVF_LISTS_SCALE * sqrt(N) lists, and a search scans only the codes of the lists nearest the query rather than all N.
# For the hybrid search's 100 candidates the probe rule (below) scans a fixed number of codes whatever N, a share of
# the index that shrinks as it grows; below IVF_MIN_VECTORS that share is so large that scanning lists one by one
# costs as much as, or more than, one scan of every code, and the lists would only add a k-means to every build
# (benchmarks/ivf_codes.py --first N on the grown SciFact index).
IVF_MIN_VECTORS = 750_000
IVF_LISTS_SCALE = 2.0
# Lists probed: enough that IVF_PROBE_PER_CANDIDATE times as many codes as candidates wanted are scanned on average,
# and never fewer than IVF_MIN_PROBES. A question's nearest passages lie in many lists, not only in those whose
# centroids are nearest to it, so scanning as many codes as candidates would miss many of them; both are set where
# the claims of benchmarks/ivf_codes.py at 1M find as many of their exact top 10 and top 100 as the flat codes do.
IVF_PROBE_PER_CANDIDATE = 128
IVF_MIN_PROBES = 512
# Whether the codes quantise each vector's residual from its list's centroid (finer codes, per-list lookup tables)
# or the vector itself (one lookup table a query); see benchmarks/ivf_codes.py.
IVF_BY_RESIDUAL = False
# Whether the lists' centroids are normalised after each k-means step (spherical k-means, FAISS's choice for an inner
# product file). Lists are chosen by inner product with their centroids, which would otherwise favour long centroids
# (tight clusters) over a nearer short one; benchmarks/ivf_codes.py --spherical 0,1 compares both.
IVF_SPHERICAL = True
# Lists find a query's neighbours only where vectors gather (embeddings of text do; random vectors have nothing to
# gather around, and a query's neighbours lie in lists all over): a build searches IVF_CHECK_QUERIES of its own
# vectors, each moved off itself by noise of norm IVF_CHECK_NOISE, and keeps flat codes instead when the lists find
# fewer than IVF_CHECK_RECALL of their exact top IVF_CHECK_K.
IVF_CHECK_QUERIES = 200
IVF_CHECK_NOISE = 0.5
IVF_CHECK_K = 10
IVF_CHECK_RECALL = 0.98
# A filter that leaves less than FILTER_EXACT_SHARE of the index (or, over the approximate index, fewer than
# EXACT_MAX_VECTORS ids) is searched exactly over the allowed vectors alone. A wider one asks the index for
# FILTER_OVERFETCH times k divided by the share allowed and drops the rest; a row still short of results falls
# back to exact search over the allowed ids. Scoring a chosen subset (compute_distance_subset) costs several
# times as much per vector as a flat scan, hence the share (docs/performance.md, "Figures behind the code's constants").
FILTER_EXACT_SHARE = 0.25
FILTER_OVERFETCH = 2.0
# Slices an approximate index's re-ranking reads its candidate rows in, each on its own thread: how many reads of
# rows that are not in memory are waited for at once (see VectorIndex._scored_in_parts).
READ_PARTS = 8

EXACT = "exact"
APPROXIMATE = "approximate"

# Linux's madvise advice to fault a whole range in at once (5.14 and later); Python names it from 3.13.
MADV_POPULATE_READ = 22

ROWS_MAGIC = b"QAVECT01"
# magic, dimension, reserved (0), count; padded to ROWS_HEADER_BYTES so the ids and rows after it are aligned.
ROWS_HEADER = struct.Struct("<8sIIQ")
ROWS_HEADER_BYTES = 32


def _faiss():
    """Import FAISS only where vectors are touched."""
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError("faiss is not installed: pip install faiss-cpu") from exc
    return faiss


def _subquantizers(dimension: int) -> int:
    """Sub-quantisers for ``dimension``-dimensional vectors; 0 when the dimensions do not divide evenly (odd
    dimensions, which no common model has: such an index stays exact)."""
    return dimension // DIMENSIONS_PER_SUBQUANTIZER if dimension % DIMENSIONS_PER_SUBQUANTIZER == 0 else 0


_THREAD = threading.local()


def _one_search_thread() -> None:
    """One OpenMP thread for searches made on the calling thread.

    At these sizes threading overhead costs more than it saves. OpenMP's thread count is per calling thread:
    a count set on the main thread does not reach the worker threads a server answers requests on, which would
    then search with every core, and slower (docs/performance.md, "Figures behind the code's constants").
    """
    if not getattr(_THREAD, "single", False):
        _faiss().omp_set_num_threads(1)
        _THREAD.single = True


class VectorIndex:
    """Vectors with int64 ids; ``search`` returns the best ids and their cosine similarities.

    The rows (float32, one per id, ids ascending) are searched exactly when small; from ``EXACT_MAX_VECTORS`` up,
    fast-scan PQ codes (held in memory; flat, or in inverted lists from ``IVF_MIN_VECTORS`` up) find candidates
    that are re-ranked exactly on the rows. ``reconstruct`` and filtered search always read the rows, so they stay
    exact.
    """

    def __init__(self, ids: np.ndarray, rows: np.ndarray, codes=None) -> None:
        """Search ``rows`` (one per id of ``ids``, ascending), through ``codes`` (an ``IndexPQFastScan``, or an
        ``IndexIVFPQFastScan`` whose ids are row positions, over the same rows) when given.

        Raises:
            IndexCorrupt: the codes do not describe these rows.
        """
        self._ids, self._rows, self._codes = ids, rows, codes
        if codes is not None and (int(codes.ntotal) != len(ids) or int(codes.d) != rows.shape[1]):
            raise IndexCorrupt(
                f"the vector codes ({int(codes.ntotal)} of {int(codes.d)} dims) do not match the vector rows "
                f"({len(ids)} of {rows.shape[1]}): rebuild with `qa index`"
            )
        self.kind = EXACT if codes is None else APPROXIMATE
        # Inverted lists of the codes (0: flat codes, every one scanned).
        self.lists = int(codes.nlist) if codes is not None and _is_inverted(codes) else 0
        # Re-ranking depth per result and per sqrt(N) (approximate indexes only; benchmarks/scale.py sweeps them).
        self.rerank_per_result = RERANK_PER_RESULT
        self.rerank_scale = RERANK_SCALE
        # Lists probed per candidate wanted and at least (inverted codes only; benchmarks/ivf_codes.py sweeps them).
        self.probe_per_candidate = IVF_PROBE_PER_CANDIDATE
        self.min_probes = IVF_MIN_PROBES

    @classmethod
    def build(
        cls, ids: np.ndarray, vectors: np.ndarray, exact_max: int | None = None, ivf_min: int | None = None
    ) -> "VectorIndex":
        """An index over ``vectors`` (unit length), each stored under its chunk id.

        Args:
            exact_max: below this many vectors the index is exact, from it up approximate (default
                ``EXACT_MAX_VECTORS``, read when called so tests can lower it; below ``APPROXIMATE_MIN_VECTORS``
                it is exact regardless).
            ivf_min: from this many vectors up an approximate index's codes are inverted lists (default
                ``IVF_MIN_VECTORS``, read when called).

        Raises:
            ValueError: an id occurs twice.
        """
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(ids) > 1 and not np.all(ids[1:] > ids[:-1]):
            order = np.argsort(ids, kind="stable")
            ids, vectors = ids[order], vectors[order]
            if not np.all(ids[1:] > ids[:-1]):
                raise ValueError("vector ids must be distinct")
        ids, rows = np.ascontiguousarray(ids), np.ascontiguousarray(vectors)
        # Vectors are normalised, so inner product is cosine similarity.
        subquantizers = _subquantizers(rows.shape[1])
        exact_max = EXACT_MAX_VECTORS if exact_max is None else exact_max
        if len(ids) < max(exact_max, APPROXIMATE_MIN_VECTORS) or not subquantizers:
            return cls(ids, rows)
        ivf_min = IVF_MIN_VECTORS if ivf_min is None else ivf_min
        if len(ids) >= ivf_min:
            inverted = cls(ids, rows, _train_codes(rows, subquantizers, ivf_lists(len(ids))))
            if inverted.check_recall() >= IVF_CHECK_RECALL:
                return inverted
        return cls(ids, rows, _train_codes(rows, subquantizers))

    @classmethod
    def load(cls, rows_path: Path, codes_path: Path | None = None, *, populate: bool = True) -> "VectorIndex":
        """Map a rows file written by ``save``, with its codes file for the approximate kind (``populate``: see
        ``map_file``).

        Raises:
            IndexCorrupt: a file is missing, unreadable or not what ``save`` writes.
        """
        if not Path(rows_path).is_file():
            raise IndexCorrupt(f"vector file missing: {rows_path}")
        fd = os.open(rows_path, os.O_RDONLY)
        try:
            ids, rows = map_rows(fd, Path(rows_path), populate=populate)
        finally:
            os.close(fd)  # the map lasts without it
        if codes_path is None:
            return cls(ids, rows)
        if not Path(codes_path).is_file():
            raise IndexCorrupt(f"vector codes file missing: {codes_path}")
        try:
            codes = _faiss().read_index(str(codes_path))
        except RuntimeError as exc:
            raise IndexCorrupt(f"cannot read vector codes file {codes_path}: {str(exc).splitlines()[0]}") from exc
        return cls(ids, rows, checked_codes(codes, Path(codes_path)))

    def save(self, rows_path: Path, codes_path: Path | None = None) -> None:
        """Write the rows file to ``rows_path`` and, for the approximate kind, the codes to ``codes_path``.

        Search parameters are not in the files: ``search`` derives them from size.

        Raises:
            ValueError: an approximate index without ``codes_path``.
            OSError: a file cannot be written (FAISS's write errors are raised as OSError too).
        """
        if self._codes is not None and codes_path is None:
            raise ValueError("an approximate vector index needs a file for its codes")
        header = ROWS_HEADER.pack(ROWS_MAGIC, self.dimension, 0, len(self)).ljust(ROWS_HEADER_BYTES, b"\0")
        with open(rows_path, "wb") as handle:
            handle.write(header)
            if len(self):  # (a segment of an update that only removed documents has no vectors)
                # ``.data`` is the array's memoryview (numpy's stubs give ndarray the buffer protocol only on 3.12+).
                handle.write(np.ascontiguousarray(self._ids, dtype="<i8").data.cast("B"))
                handle.write(np.ascontiguousarray(self._rows, dtype="<f4").data.cast("B"))
        if self._codes is not None:
            try:
                _faiss().write_index(self._codes, str(codes_path))
            except RuntimeError as exc:  # FAISS reports a failed write (disk full) this way
                raise OSError(str(exc).splitlines()[0]) from exc

    @property
    def dimension(self) -> int:
        """Length of each vector."""
        return int(self._rows.shape[1])

    @property
    def ids(self) -> np.ndarray:
        """The chunk ids, ascending, one per row (read-only)."""
        return self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def check_recall(self, queries: int | None = None, noise: float | None = None) -> float:
        """Recall@``IVF_CHECK_K`` of this index's search against exact search, for a fixed-seed sample of its own
        vectors moved off themselves by ``noise`` (defaults: ``IVF_CHECK_QUERIES``, ``IVF_CHECK_NOISE``)."""
        queries = IVF_CHECK_QUERIES if queries is None else queries
        noise = IVF_CHECK_NOISE if noise is None else noise
        rng = np.random.default_rng(0)
        moved = self._rows[np.sort(rng.choice(len(self), min(queries, len(self)), replace=False))]
        scale = np.float32(noise / math.sqrt(self.dimension))
        moved = moved + rng.standard_normal(moved.shape, dtype=np.float32) * scale
        moved = np.ascontiguousarray(moved / np.linalg.norm(moved, axis=1, keepdims=True), dtype=np.float32)
        k = min(IVF_CHECK_K, len(self))
        _one_search_thread()
        truth = self._exact(moved, k)[1]
        found = np.stack([self.search(query[None, :], k)[1][0] for query in moved])
        return float(np.mean([len(set(f) & set(t)) / k for f, t in zip(found.tolist(), truth.tolist())]))

    def probes(self, depth: int) -> int:
        """How many inverted lists a search for ``depth`` candidates scans (0 for flat codes or none)."""
        if not self.lists:
            return 0
        wanted = math.ceil(self.probe_per_candidate * depth * self.lists / len(self))
        return min(self.lists, max(self.min_probes, wanted))

    def rerank_depth(self, k: int) -> int:
        """How many candidates the approximate index re-ranks exactly for ``k`` results (0 when exact)."""
        if self.kind == EXACT:
            return 0
        return min(len(self), max(self.rerank_per_result * k, math.ceil(self.rerank_scale * math.sqrt(len(self)))))

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` ``(scores, ids)`` per query row; ids of -1 pad rows when fewer vectors qualify.

        Args:
            allowed: if given, only these ids may be returned (the filter applies before ranking, so ``k``
                results come back whenever ``k`` allowed vectors exist).
        """
        _one_search_thread()
        k = max(1, min(k, len(self))) if len(self) else 1
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if not len(self) or (allowed is not None and len(allowed) == 0):
            return _nothing(len(queries), k)
        if allowed is None:
            return self._exact(queries, k) if self.kind == EXACT else self._approximate(queries, k)
        positions = self._positions(allowed)
        share = len(positions) / len(self)
        # A small allowed set is cheaper to score on its own than to dig for in the whole index.
        if share < FILTER_EXACT_SHARE or (self.kind == APPROXIMATE and len(positions) < EXACT_MAX_VECTORS):
            return self._exact_at(queries, k, positions)
        # Neither ID selectors (ignored by the codes, slow on a flat scan) nor scoring a wide allowed set one
        # vector at a time pays: ask the index for enough to survive the filter, re-ranking (when approximate)
        # as many more candidates as the filter will throw away.
        depth = min(len(self), math.ceil(k * FILTER_OVERFETCH / share))
        if self.kind == EXACT:
            found_scores, found_ids = self._exact(queries, depth)
        else:
            found_scores, found_ids = self._approximate(queries, depth, math.ceil(self.rerank_depth(k) / share))
        allowed_mask = np.zeros(len(self), dtype=bool)
        allowed_mask[positions] = True
        keep = (found_ids != -1) & allowed_mask[self._positions_of(found_ids)]
        scores, ids = _nothing(len(queries), k)
        short = []
        for row in range(len(queries)):
            row_ids = found_ids[row][keep[row]][:k]
            if len(row_ids) < min(k, len(positions)):
                short.append(row)
                continue
            ids[row, : len(row_ids)] = row_ids
            scores[row, : len(row_ids)] = found_scores[row][keep[row]][:k]
        if short:
            scores[short], ids[short] = self._exact_at(queries[short], k, positions)
        return scores, ids

    def _exact(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact search over every row: the routine ``IndexFlatIP.search`` runs, so the same ids and scores."""
        faiss = _faiss()
        scores = np.empty((len(queries), k), dtype=np.float32)
        positions = np.empty((len(queries), k), dtype=np.int64)
        faiss.knn_inner_product(
            faiss.swig_ptr(queries),
            faiss.swig_ptr(self._rows),
            self.dimension,
            len(queries),
            len(self),
            k,
            faiss.swig_ptr(scores),
            faiss.swig_ptr(positions),
        )
        return scores, np.where(positions < 0, -1, self._ids[np.maximum(positions, 0)])

    def _approximate(self, queries: np.ndarray, k: int, rerank: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Unfiltered search through the codes, re-ranking at least ``rerank_depth(k)`` candidates exactly."""
        depth = min(len(self), max(rerank, self.rerank_depth(k)))
        return self._best_of(queries, k, self._candidates(queries, depth))

    def _candidates(self, queries: np.ndarray, depth: int) -> np.ndarray:
        """Row positions of each query's best ``depth`` candidates by their codes (``depth`` at most ``len``).

        Inverted codes scan ``probes(depth)`` lists; when those hold fewer than ``depth`` codes for some query (its
        nearest lists are small ones), the search is repeated over more lists, so a short result means the index
        is short, never that the probes were.
        """
        if not self.lists:
            return self._codes.search(queries, depth)[1]
        probes = self.probes(depth)
        while True:
            found = self._codes.search(queries, depth, params=_faiss().SearchParametersIVF(nprobe=probes))[1]
            if probes >= self.lists or (found[:, -1] >= 0).all():
                return found
            probes = min(self.lists, 4 * probes)

    def _exact_at(self, queries: np.ndarray, k: int, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact search over the rows at ``positions`` alone (sorted, so memory is read forwards)."""
        if len(positions) == 0:
            return _nothing(len(queries), k)
        return self._best_of(queries, k, np.broadcast_to(positions, (len(queries), len(positions))))

    def _best_of(self, queries: np.ndarray, k: int, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The best ``k`` of each query's candidate row positions (-1 for none), scored exactly on the rows.

        Scores only those rows (``fvec_inner_products_by_idx``, what ``IndexFlat.compute_distance_subset`` and
        ``IndexRefineFlat`` run): an ID selector over a flat scan still visits every vector.
        """
        missing = candidates < 0
        labels = np.ascontiguousarray(np.where(missing, 0, candidates), dtype=np.int64)
        if self.kind == APPROXIMATE and labels.shape[1] >= 2 * READ_PARTS:
            cosine = self._scored_in_parts(queries, labels)
        else:
            cosine = _inner_products(queries, self._rows, labels)
        cosine[missing] = -np.inf
        scores, ids = _nothing(len(queries), k)
        found = min(k, labels.shape[1])
        best = np.argpartition(-cosine, found - 1, axis=1)[:, :found]
        order = np.argsort(-np.take_along_axis(cosine, best, axis=1), axis=1, kind="stable")
        best = np.take_along_axis(best, order, axis=1)
        scores[:, :found] = np.take_along_axis(cosine, best, axis=1)
        chosen = self._ids[np.take_along_axis(labels, best, axis=1)]
        ids[:, :found] = np.where(np.take_along_axis(missing, best, axis=1), -1, chosen)
        return scores, ids

    def _scored_in_parts(self, queries: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """``_inner_products`` of the candidate rows, scored in ``READ_PARTS`` column slices on as many threads.

        The rows of a large index are scattered reads of a mapped file: when they are not in memory (a server
        whose memory holds less than the file), each is a page fault waiting on the disk, and one thread waits for
        them one after another. Slices on threads (FAISS releases the GIL) keep that many reads in flight. Each
        product is computed alone either way, so the scores are the same bit for bit.
        """
        bounds = np.linspace(0, labels.shape[1], READ_PARTS + 1).astype(int)
        parts = [np.ascontiguousarray(labels[:, a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        scored = _read_pool().map(lambda part: _inner_products(queries, self._rows, part, single=True), parts)
        return np.concatenate(list(scored), axis=1)

    def _positions(self, allowed: np.ndarray) -> np.ndarray:
        """Row positions of the allowed ids that are in the index, sorted, each once."""
        allowed = np.asarray(allowed, dtype=np.int64)
        at = np.minimum(np.searchsorted(self._ids, allowed), len(self._ids) - 1)
        positions = at[self._ids[at] == allowed]
        # Allowed ids usually come sorted, and so do their positions: then checking is all the sorting needed (and
        # np.unique, which hashes, took several times as long as either).
        if len(positions) > 1 and not np.all(positions[1:] >= positions[:-1]):
            positions = np.sort(positions)
        return positions[np.r_[True, positions[1:] != positions[:-1]]] if len(positions) else positions

    def _positions_of(self, ids: np.ndarray) -> np.ndarray:
        """Row positions of ids known to be in the index (any shape)."""
        return np.minimum(np.searchsorted(self._ids, ids), len(self._ids) - 1)

    def positions_of(self, ids: np.ndarray) -> np.ndarray:
        """Row positions of ``ids``, -1 for ids not in the index."""
        wanted = np.asarray(ids, dtype=np.int64)
        if not len(self):
            return np.full(wanted.shape, -1, dtype=np.int64)
        positions = self._positions_of(wanted)
        return np.where(self._ids[positions] == wanted, positions, -1)

    def rows_at(self, positions: np.ndarray) -> np.ndarray:
        """The vectors at row ``positions``, one row each (a copy)."""
        positions = np.asarray(positions, dtype=np.int64)
        return np.array(self._rows[positions], dtype=np.float32).reshape(len(positions), self.dimension)

    def reconstruct(self, ids: list[int]) -> np.ndarray:
        """The stored vectors of the given ids, one row each.

        Raises:
            KeyError: an id is not in the index.
        """
        positions = self.positions_of(np.asarray(ids, dtype=np.int64))
        if (positions < 0).any():
            raise KeyError(f"ids not in the vector index: {np.asarray(ids)[positions < 0][:5].tolist()}")
        return self.rows_at(positions)


def _inner_products(queries: np.ndarray, rows: np.ndarray, labels: np.ndarray, single: bool = False) -> np.ndarray:
    """Each query row's inner product with the rows at its row of ``labels`` (contiguous int64 positions).

    Args:
        single: set this thread to one OpenMP thread first (a pool thread; see ``_one_search_thread``).
    """
    if single:
        _one_search_thread()
    faiss = _faiss()
    products = np.empty(labels.shape, dtype=np.float32)
    faiss.fvec_inner_products_by_idx(
        faiss.swig_ptr(products),
        faiss.swig_ptr(queries),
        faiss.swig_ptr(rows),
        faiss.swig_ptr(labels),
        rows.shape[1],
        len(queries),
        labels.shape[1],
    )
    return products


_READ_POOL: tuple[int, ThreadPoolExecutor] | None = None
_READ_POOL_LOCK = threading.Lock()


def _read_pool() -> ThreadPoolExecutor:
    """The threads that score an approximate index's candidate rows in parallel slices, one pool per process: a
    forked child gets its own (the parent's threads do not exist in it, so their queue would never be served)."""
    global _READ_POOL
    with _READ_POOL_LOCK:
        if _READ_POOL is None or _READ_POOL[0] != os.getpid():
            _READ_POOL = (os.getpid(), ThreadPoolExecutor(max_workers=READ_PARTS, thread_name_prefix="qa-rows"))
        return _READ_POOL[1]


def _nothing(queries: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores of -inf and ids of -1 for ``queries`` rows of ``k`` results (to fill in)."""
    return np.full((queries, k), -np.inf, dtype=np.float32), np.full((queries, k), -1, dtype=np.int64)


def ivf_lists(count: int) -> int:
    """Inverted lists for the codes of ``count`` vectors."""
    return max(1, round(IVF_LISTS_SCALE * math.sqrt(count)))


def _train_codes(
    rows: np.ndarray, subquantizers: int, lists: int = 0, by_residual: bool | None = None, spherical: bool | None = None
):
    """Fast-scan PQ codes of ``rows``, trained on a fixed-seed sample of them.

    Args:
        lists: 0 for flat codes (``IndexPQFastScan``), else the number of inverted lists (``IndexIVFPQFastScan``
            over an exact inner-product quantiser of the lists' centroids).
        by_residual: inverted codes quantise residuals from their centroid (default ``IVF_BY_RESIDUAL``).
        spherical: the lists' centroids are unit vectors (default ``IVF_SPHERICAL``).
    """
    faiss = _faiss()
    dimension = rows.shape[1]
    if lists:
        codes = faiss.IndexIVFPQFastScan(
            faiss.IndexFlatIP(dimension), dimension, lists, subquantizers, 4, faiss.METRIC_INNER_PRODUCT
        )
        codes.by_residual = IVF_BY_RESIDUAL if by_residual is None else by_residual
        codes.cp.spherical = IVF_SPHERICAL if spherical is None else spherical
    else:
        codes = faiss.IndexPQFastScan(dimension, subquantizers, 4, faiss.METRIC_INNER_PRODUCT)
    previous = faiss.omp_get_max_threads()
    try:
        sample, wanted = rows, max(TRAIN_SAMPLE, TRAIN_PER_LIST * lists)
        if len(rows) > wanted:
            sample = rows[np.sort(np.random.default_rng(0).choice(len(rows), wanted, replace=False))]
        # Training runs k-means as many short parallel loops; on a machine shared with other work, threads
        # waiting on each other at every barrier made it many times slower than one thread.
        faiss.omp_set_num_threads(1)
        codes.train(np.ascontiguousarray(sample))
        # Adding (encoding every vector) is one long parallel loop: use every core, then restore the
        # thread count searches run with.
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        codes.add(rows)
    finally:
        faiss.omp_set_num_threads(previous)
    return codes


def map_rows(fd: int, label: Path, *, populate: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Map the rows file open at ``fd``: its ids and its rows, read-only views of the mapped file.

    The map holds no file descriptor (Python's ``mmap`` keeps a duplicate open) and lasts as long as the arrays
    do, so a retired index leaves no file open once its last request ends.

    Args:
        label: the file's path, for messages only (the file is read through ``fd``).

    Raises:
        IndexCorrupt: not a rows file, or its size or ids are not what its header says.
    """
    size = os.fstat(fd).st_size
    if size < ROWS_HEADER_BYTES:
        raise IndexCorrupt(f"vector file {label} is too short to be one: rebuild it with `qa index`")
    magic, dimension, _, count = ROWS_HEADER.unpack(os.pread(fd, ROWS_HEADER.size, 0))
    if magic != ROWS_MAGIC or not dimension or size != ROWS_HEADER_BYTES + count * (8 + 4 * dimension):
        raise IndexCorrupt(
            f"vector file {label} is not a vector file of the size it states: rebuild it with `qa index`"
        )
    mapped = map_file(fd, size, scattered=count >= EXACT_MAX_VECTORS, populate=populate)
    ids = np.frombuffer(mapped, dtype="<i8", count=count, offset=ROWS_HEADER_BYTES)
    if count > 1 and not np.all(ids[1:] > ids[:-1]):
        raise IndexCorrupt(f"vector file {label} has ids out of order: rebuild it with `qa index`")
    rows = np.frombuffer(mapped, dtype="<f4", count=count * dimension, offset=ROWS_HEADER_BYTES + 8 * count)
    ids.flags.writeable = rows.flags.writeable = False  # the pages are mapped read-only: a write would crash
    return ids, rows.reshape(count, dimension)


T = TypeVar("T")


def open_by_path(path: Path, open_fd: Callable[[int], T], missing: str) -> T:
    """``open_fd`` of a read-only descriptor of ``path``, closed afterwards (a map made from it outlives it): how
    builds and tools open an index file by path, where a service goes through its snapshot's pinned directory.

    Raises:
        IndexCorrupt: ``missing`` when there is no such file, or whatever ``open_fd`` raises.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise IndexCorrupt(missing) from None
    try:
        return open_fd(fd)
    finally:
        os.close(fd)


def map_file(fd: int, size: int, scattered: bool, populate: bool = True):
    """A read-only shared map of ``size`` bytes of ``fd`` as a buffer; unmapped when the last array over it goes.

    The map holds no file descriptor (Python's ``mmap`` keeps a duplicate open), so the caller may close ``fd``.

    Args:
        scattered: reads will be scattered rows (re-ranking), so the kernel should not read ahead: that would
            only fill memory with rows nobody asked for.
        populate: map every page at once, for a reader that will touch them all (a build that copies a few rows
            from an old segment does not). Never done for ``scattered`` reads: those touch a few rows a search, and
            a server should hold resident what its searches read, not the whole file.
    """
    libc = _libc()
    if libc is None:  # no C library to call (not POSIX): Python's map, which keeps a descriptor open
        return mmap.mmap(fd, size, access=mmap.ACCESS_READ)
    address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
    if address in (None, ctypes.c_void_p(-1).value):
        error = ctypes.get_errno()
        raise OSError(error, f"cannot map the vector file: {os.strerror(error)}")
    buffer = (ctypes.c_char * size).from_address(address)
    weakref.finalize(buffer, libc.munmap, address, size)
    if scattered and hasattr(mmap, "MADV_RANDOM"):
        libc.madvise(address, size, mmap.MADV_RANDOM)
    if populate and not scattered and sys.platform == "linux":
        # Map every page now (they are in the page cache: the checksum has just read the file), so the first
        # full scans do not each pay a page fault per page. The pages stay page cache, shared with other
        # processes and reclaimable. Kernels before 5.14 do not know this advice and refuse it harmlessly.
        libc.madvise(address, size, getattr(mmap, "MADV_POPULATE_READ", MADV_POPULATE_READ))
    return buffer


@functools.lru_cache(maxsize=1)
def _libc():
    """The C library's mmap, munmap and madvise, typed; None where there is none to load."""
    if os.name != "posix":
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return libc


def _is_inverted(codes) -> bool:
    """Whether ``codes`` are inverted-file fast-scan codes over an inner-product quantiser, as ``build`` makes."""
    faiss = _faiss()
    if not isinstance(codes, faiss.IndexIVFPQFastScan):
        return False
    # A fresh wrapper for the type check only: the index owns its quantiser.
    return isinstance(faiss.downcast_index(codes.quantizer), faiss.IndexFlatIP)


def checked_codes(codes, label: Path):
    """``codes`` if they are fast-scan PQ codes as ``build`` makes: flat (``IndexPQFastScan``) or in inverted
    lists (``IndexIVFPQFastScan``).

    Raises:
        IndexCorrupt: another kind of FAISS index.
    """
    # ``read_index`` already returns the most derived type; downcasting again would give a second wrapper that
    # does not own the index, left dangling once the first is collected.
    if not isinstance(codes, _faiss().IndexPQFastScan) and not _is_inverted(codes):
        raise IndexCorrupt(f"unexpected index type {type(codes).__name__} in {label}: rebuild it with `qa index`")
    return codes
