"""FAISS vector index over unit vectors keyed by SQLite chunk ids: exact when small, approximate when large."""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path

import numpy as np

from qa.errors import IndexCorrupt

# Below EXACT_MAX_VECTORS search is exact. benchmarks/scale.py on this 2-core machine, idle (1 search thread, k=10,
# random unit 384-d vectors), median exact / approximate ms (approximate recall@10): 25k 1.28 / 0.17 (0.994),
# 100k 6.6 / 0.50 (0.994), 1M 57 / 4.39 (0.999). Exact search stays near a millisecond up to 25,000 vectors
# (4.9 ms there at load ~11); above it the approximate index is many times faster for a recall under 1.
EXACT_MAX_VECTORS = 25_000
# The approximate index scans compact product-quantisation codes ("fast scan": one 4-bit sub-quantiser per
# DIMENSIONS_PER_SUBQUANTIZER dimensions, so 192 sub-quantisers and 96 bytes a vector for 384 dimensions, looked
# up in SIMD registers) and re-ranks the best candidates exactly on the stored float vectors. At 1M the scan takes ~3.6 ms and each re-ranked candidate ~0.5 us, so finer codes that need few
# candidates beat coarse ones that need many: 96 sub-quantisers needed 12,000 candidates for recall@10 0.99
# (6.8 ms), 128 needed 3,000 for 0.984 (4.0 ms), 192 needs 500 for 0.991 (3.9 ms) and 1,000 for 0.997 (4.1 ms).
# Random vectors give graph and cluster indexes no structure to use: HNSW (M=32, efConstruction=80) on
# 100,000 reached recall@10 0.956 only at efSearch 2048, in 32 ms, slower than flat search.
DIMENSIONS_PER_SUBQUANTIZER = 2
# How many candidates are re-ranked exactly: RERANK_SCALE * sqrt(N), and at least RERANK_PER_RESULT per result
# asked for (1M: 1,000 for k=10; recall@100 with 2,000 is 0.986, at 100k 0.998). Indexes written with coarser
# codes (96 sub-quantisers for 384 dimensions, before) keep the depth they were tuned with, LEGACY_RERANK_SCALE.
RERANK_SCALE = 1.0
LEGACY_RERANK_SCALE = 12.0
RERANK_PER_RESULT = 20
# PQ codebooks are trained on this many vectors (a fixed-seed sample), enough for 16 centroids per sub-quantiser;
# with fewer than APPROXIMATE_MIN_VECTORS (faiss wants 39 per centroid) the index stays exact whatever is asked.
TRAIN_SAMPLE = 65_536
APPROXIMATE_MIN_VECTORS = 1_000
# A filter that leaves less than FILTER_EXACT_SHARE of the index (or, over the approximate index, fewer than
# EXACT_MAX_VECTORS ids) is searched exactly over the allowed vectors alone. A wider one asks the index for
# FILTER_OVERFETCH times k divided by the share allowed and drops the rest; a row still short of results falls
# back to exact search over the allowed ids. Scoring a chosen subset (compute_distance_subset) costs 3-5 times
# as much per vector as a flat scan (15,000 of 50,000 vectors took as long as all 50,000; at 1M, 100,000 took
# 89 ms against 186 ms for all), hence the share.
FILTER_EXACT_SHARE = 0.25
FILTER_OVERFETCH = 2.0

EXACT = "exact"
APPROXIMATE = "approximate"


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

    At these sizes threading overhead costs more than it saves (7-10 ms for a small search with two).
    OpenMP's thread count is per calling thread: a count set on the main thread does not reach the worker
    threads a server answers requests on, which would then search with every core (measured: a search
    from a worker thread took 18 ms against 10.5 ms on the main thread before this was set per thread).
    """
    if not getattr(_THREAD, "single", False):
        _faiss().omp_set_num_threads(1)
        _THREAD.single = True


class VectorIndex:
    """Vectors with int64 ids; ``search`` returns the best ids and their cosine similarities.

    Small indexes are exact (``IndexFlatIP``); from ``EXACT_MAX_VECTORS`` up they are approximate
    (``IndexRefineFlat`` over ``IndexPQFastScan``), which keeps the float vectors too, so ``reconstruct`` and
    filtered search stay exact. Both sit in an ``IndexIDMap2`` whose ids are the SQLite chunk rowids.
    """

    def __init__(self, index) -> None:
        faiss = _faiss()
        self._index = index
        inner = faiss.downcast_index(index.index) if hasattr(index, "id_map") else None
        if isinstance(inner, faiss.IndexFlat):
            self.kind, self._flat = EXACT, inner
        elif isinstance(inner, faiss.IndexRefine):
            self.kind, self._flat = APPROXIMATE, faiss.downcast_index(inner.refine_index)
            if not isinstance(self._flat, faiss.IndexFlat):
                raise IndexCorrupt(f"unexpected refine index {type(self._flat).__name__} in the vector file")
        else:
            raise IndexCorrupt(f"unexpected vector index type {type(inner or index).__name__}: rebuild with `qa index`")
        # Re-ranking depth per result and per sqrt(N) (approximate indexes only; benchmarks/scale.py sweeps them).
        self.rerank_per_result = RERANK_PER_RESULT
        self.rerank_scale = RERANK_SCALE
        codes = faiss.downcast_index(inner.base_index) if self.kind == APPROXIMATE else None
        if codes is not None and getattr(codes, "M", 0) < _subquantizers(int(index.d)):
            self.rerank_scale = LEGACY_RERANK_SCALE
        self._lookup: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, exact_max: int = EXACT_MAX_VECTORS) -> "VectorIndex":
        """An index over ``vectors`` (unit length), each stored under its chunk id.

        Args:
            exact_max: below this many vectors the index is exact, from it up approximate (tests lower it;
                below ``APPROXIMATE_MIN_VECTORS`` it is exact regardless).
        """
        faiss = _faiss()
        dimension = vectors.shape[1]
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        # Vectors are normalised, so inner product is cosine similarity.
        subquantizers = _subquantizers(dimension)
        if len(ids) < max(exact_max, APPROXIMATE_MIN_VECTORS) or not subquantizers:
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        else:
            codes = faiss.IndexPQFastScan(dimension, subquantizers, 4, faiss.METRIC_INNER_PRODUCT)
            index = faiss.IndexIDMap2(faiss.IndexRefineFlat(codes))
        previous = faiss.omp_get_max_threads()
        try:
            if not index.is_trained:
                sample = vectors
                if len(vectors) > TRAIN_SAMPLE:
                    rows = np.random.default_rng(0).choice(len(vectors), TRAIN_SAMPLE, replace=False)
                    sample = vectors[np.sort(rows)]
                # Training runs k-means as many short parallel loops; on a machine shared with other work, two
                # threads waiting on each other at every barrier took 100 s where one took 4 s (3,000 vectors).
                faiss.omp_set_num_threads(1)
                index.train(sample)
            # Adding (encoding every vector) is one long parallel loop: use every core, then restore the
            # thread count searches run with.
            faiss.omp_set_num_threads(os.cpu_count() or 1)
            if len(ids):
                index.add_with_ids(vectors, ids)
        finally:
            faiss.omp_set_num_threads(previous)
        return cls(index)

    @classmethod
    def load(cls, path: Path) -> "VectorIndex":
        """Read a FAISS file written by ``save``.

        Raises:
            IndexCorrupt: the file is missing, unreadable or holds an index of another kind.
        """
        faiss = _faiss()
        if not path.is_file():
            raise IndexCorrupt(f"vector file missing: {path}")
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise IndexCorrupt(f"cannot read vector file {path}: {str(exc).splitlines()[0]}") from exc
        return cls(index)

    def save(self, path: Path) -> None:
        """Write the index to ``path``. Search parameters are not in the file: ``search`` derives them from size."""
        _faiss().write_index(self._index, str(path))

    @property
    def dimension(self) -> int:
        """Length of each vector."""
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal)

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
            return np.full((len(queries), k), -np.inf, dtype=np.float32), np.full((len(queries), k), -1, dtype=np.int64)
        if allowed is None:
            return self._index.search(queries, k) if self.kind == EXACT else self._approximate(queries, k)
        positions = self._positions(allowed)
        share = len(positions) / len(self)
        # A small allowed set is cheaper to score on its own than to dig for in the whole index.
        if share < FILTER_EXACT_SHARE or (self.kind == APPROXIMATE and len(positions) < EXACT_MAX_VECTORS):
            return self._exact_at(queries, k, positions)
        # Neither ID selectors (ignored by the approximate index, slow on the flat one) nor scoring a wide allowed
        # set one vector at a time pays: ask the index for enough to survive the filter, re-ranking (when
        # approximate) as many more candidates as the filter will throw away.
        depth = min(len(self), math.ceil(k * FILTER_OVERFETCH / share))
        if self.kind == EXACT:
            found_scores, found_ids = self._index.search(queries, depth)
        else:
            found_scores, found_ids = self._approximate(queries, depth, math.ceil(self.rerank_depth(k) / share))
        allowed_mask = np.zeros(len(self), dtype=bool)
        allowed_mask[positions] = True
        keep = (found_ids != -1) & allowed_mask[self._positions_of(found_ids)]
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
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

    def _approximate(self, queries: np.ndarray, k: int, rerank: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Unfiltered search of the approximate index, re-ranking at least ``rerank_depth(k)`` candidates exactly."""
        faiss = _faiss()
        rerank = min(len(self), max(rerank, self.rerank_depth(k)))
        # Passed with each search (not stored on the index, where write_index drops it and threads would race).
        params = faiss.IndexRefineSearchParameters(k_factor=rerank / k)
        return self._index.search(queries, k, params=params)

    def _id_lookup(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The chunk id at each storage position, those ids sorted, and the positions in that order."""
        if self._lookup is None:
            stored = _faiss().vector_to_array(self._index.id_map).astype(np.int64)
            order = np.argsort(stored, kind="stable")
            self._lookup = (stored, stored[order], order)
        return self._lookup

    def _positions(self, allowed: np.ndarray) -> np.ndarray:
        """Storage positions of the allowed ids that are in the index, sorted, each once."""
        _, sorted_ids, order = self._id_lookup()
        allowed = np.asarray(allowed, dtype=np.int64)
        at = np.minimum(np.searchsorted(sorted_ids, allowed), len(sorted_ids) - 1)
        positions = np.sort(order[at[sorted_ids[at] == allowed]])
        return positions[np.r_[True, positions[1:] != positions[:-1]]] if len(positions) else positions

    def _positions_of(self, ids: np.ndarray) -> np.ndarray:
        """Storage positions of ids known to be in the index (any shape)."""
        _, sorted_ids, order = self._id_lookup()
        return order[np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)]

    def _exact_at(self, queries: np.ndarray, k: int, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact search over the stored vectors at ``positions``, returning chunk ids.

        Scores only those vectors (``compute_distance_subset``): an ID selector on the flat index still
        visits every vector and measured 13 times slower than an unfiltered search.
        """
        faiss = _faiss()
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        if len(positions) == 0:
            return scores, ids
        # ``positions`` come sorted, so memory is read forwards.
        labels = np.ascontiguousarray(np.broadcast_to(positions, (len(queries), len(positions))))
        cosine = np.empty(labels.shape, dtype=np.float32)
        self._flat.compute_distance_subset(
            len(queries), faiss.swig_ptr(queries), len(positions), faiss.swig_ptr(cosine), faiss.swig_ptr(labels)
        )
        found = min(k, len(positions))
        best = np.argpartition(-cosine, found - 1, axis=1)[:, :found]
        best = np.take_along_axis(best, np.argsort(-np.take_along_axis(cosine, best, axis=1), axis=1, kind="stable"), axis=1)
        scores[:, :found] = np.take_along_axis(cosine, best, axis=1)
        ids[:, :found] = self._id_lookup()[0][positions[best]]
        return scores, ids

    def reconstruct(self, ids: list[int]) -> np.ndarray:
        """The stored vectors of the given ids, one row each."""
        return np.vstack([self._index.reconstruct(int(i)) for i in ids])
