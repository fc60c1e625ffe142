"""FAISS vector index: exact inner-product search over unit vectors, keyed by SQLite chunk ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qa.errors import IndexCorrupt


def _faiss():
    """Import FAISS only where vectors are touched."""
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError("faiss is not installed: pip install faiss-cpu") from exc
    return faiss


class VectorIndex:
    """Vectors with int64 ids; ``search`` returns the best ids and their cosine similarities."""

    def __init__(self, index) -> None:
        self._index = index

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray) -> "VectorIndex":
        """An exact index over ``vectors`` (unit length), each stored under its chunk id."""
        faiss = _faiss()
        dimension = vectors.shape[1]
        # Vectors are normalised, so inner product is cosine similarity.
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        if len(ids):
            index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.ascontiguousarray(ids, dtype=np.int64))
        return cls(index)

    @classmethod
    def load(cls, path: Path) -> "VectorIndex":
        """Read a FAISS file written by ``save``.

        Raises:
            IndexCorrupt: the file is missing or unreadable.
        """
        faiss = _faiss()
        if not path.is_file():
            raise IndexCorrupt(f"vector file missing: {path}")
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise IndexCorrupt(f"cannot read vector file {path}: {str(exc).splitlines()[0]}") from exc
        # One thread per query: at these sizes the threading overhead costs more than it saves.
        faiss.omp_set_num_threads(1)
        return cls(index)

    def save(self, path: Path) -> None:
        """Write the index to ``path``."""
        _faiss().write_index(self._index, str(path))

    @property
    def dimension(self) -> int:
        """Length of each vector."""
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` ``(scores, ids)`` per query row; ids of -1 pad rows when fewer vectors qualify.

        Args:
            allowed: if given, only these ids may be returned (the filter applies before ranking).
        """
        k = max(1, min(k, len(self))) if len(self) else 1
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if allowed is None:
            return self._index.search(queries, k)
        faiss = _faiss()
        if len(allowed) == 0:
            return np.full((len(queries), k), -np.inf, dtype=np.float32), np.full((len(queries), k), -1, dtype=np.int64)
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        return self._index.search(queries, k, params=faiss.SearchParameters(sel=selector))

    def reconstruct(self, ids: list[int]) -> np.ndarray:
        """The stored vectors of the given ids, one row each."""
        return np.vstack([self._index.reconstruct(int(i)) for i in ids])
