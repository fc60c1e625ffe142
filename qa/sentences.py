"""Per-sentence vectors of passages, for the best-sentence blend and supporting sentences.

A small index keeps them all in memory, loaded once with the index; a large one reads the candidates'
vectors from SQLite per search, in one query. Either way the arithmetic is the same call on the same
shapes as scoring one passage at a time (``vectors @ query`` over a passage's ``(sentences, dimension)``
rows), so scores do not depend on where the vectors came from: one matrix product over all sentences
at once would round differently in BLAS.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from qa.store import StoreReader

# Largest total of sentence vectors kept in memory (float32 bytes): 64 MiB holds about 43,000 sentences of
# a 384-dimensional model (some 10,000 passages). Above it, vectors are read per search instead.
MAX_MEMORY_BYTES = 64 * 1024 * 1024


class SentenceVectors:
    """Sentence vectors by chunk id, from memory when the index is small enough, else from the store."""

    def __init__(self, store: StoreReader, dimension: int, max_memory_bytes: int | None = None) -> None:
        """Hold every sentence vector in memory if they take at most ``max_memory_bytes`` (MAX_MEMORY_BYTES)."""
        self.store = store
        self.dimension = dimension
        # chunk id -> (sentence count, position in that count's group); None when reading from the store.
        self._where: dict[int, tuple[int, int]] | None = None
        # sentence count -> every in-memory passage with that many sentences, stacked (passages, n, dimension).
        self._groups: dict[int, np.ndarray] = {}
        total = store.sentence_vector_bytes()
        if total <= (MAX_MEMORY_BYTES if max_memory_bytes is None else max_memory_bytes):
            self._load(store.all_sentence_vectors(dimension))

    @property
    def in_memory(self) -> bool:
        """Whether every passage's sentence vectors are held in memory."""
        return self._where is not None

    def _load(self, by_id: Mapping[int, np.ndarray]) -> None:
        """Stack passages by sentence count, so a passage's rows are a contiguous ``(n, dimension)`` slice."""
        members: dict[int, list[int]] = {}
        for chunk_id, vectors in by_id.items():
            members.setdefault(len(vectors), []).append(chunk_id)
        where: dict[int, tuple[int, int]] = {}
        for count, ids in members.items():
            stacked = np.empty((len(ids), count, self.dimension), dtype=np.float32)
            for position, chunk_id in enumerate(ids):
                stacked[position] = by_id[chunk_id]
                where[chunk_id] = (count, position)
            self._groups[count] = stacked
        self._where = where

    def of(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """Each chunk's ``(sentences, dimension)`` float32 vectors, by id (ids without any row are left out)."""
        if self._where is None:
            return self.store.sentence_vectors_of(ids, self.dimension)
        found = {}
        for chunk_id in ids:
            place = self._where.get(chunk_id)
            if place is not None:
                found[chunk_id] = self._groups[place[0]][place[1]]
        return found

    def best(self, query: np.ndarray, ids: Sequence[int], loaded: Mapping[int, np.ndarray] | None = None) -> dict[int, float]:
        """The highest sentence cosine of each passage that has sentence vectors, by chunk id.

        Args:
            loaded: the vectors of ``ids`` already read with ``of`` (only used when they are not in memory).
        """
        if self._where is None:
            vectors = self.of(ids) if loaded is None else loaded
            return {i: float((v @ query).max()) for i, v in vectors.items() if len(v)}
        # One product per sentence count: numpy's matmul runs the same gemv per (n, dimension) slice as a
        # product per passage would, so every score is bit for bit the per-passage one.
        wanted: dict[int, list[tuple[int, int]]] = {}
        for chunk_id in ids:
            place = self._where.get(chunk_id)
            if place is not None and place[0]:
                wanted.setdefault(place[0], []).append((chunk_id, place[1]))
        best: dict[int, float] = {}
        for count, members in wanted.items():
            stacked = self._groups[count]
            if 2 * len(members) >= len(stacked):
                # Most of the group is wanted: scoring all of it beats copying the wanted rows out first.
                scores = (stacked @ query).max(axis=1).tolist()
                best.update((chunk_id, scores[position]) for chunk_id, position in members)
            else:
                scores = (stacked[[position for _, position in members]] @ query).max(axis=1).tolist()
                best.update(zip([chunk_id for chunk_id, _ in members], scores))
        return best
