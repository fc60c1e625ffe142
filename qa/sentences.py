"""Per-sentence vectors of passages, for the best-sentence blend and supporting sentences.

They are stored at 8 bits: each sentence vector as int8 codes times one float32 scale (its largest component
over 127), a quarter of float32's bytes. Every use goes through the same dequantisation (``codes * scale``, back
to float32), so a score is computed on the same floats wherever the codes came from.

A small index keeps them all in memory, loaded once with the index; a large one reads the candidates'
vectors from SQLite per search, in one query. Either way the arithmetic is the same call on the same
shapes as scoring one passage at a time (``vectors @ query`` over a passage's ``(sentences, dimension)``
rows), so scores do not depend on where the vectors came from: one matrix product over all sentences
at once would round differently in BLAS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:
    from qa.store import StoreReader

# Largest total of sentence vectors kept in memory (stored bytes: 8-bit codes plus a float32 scale per sentence):
# 64 MiB holds about 170,000 sentences of a 384-dimensional model. Above it, vectors are read per search instead.
MAX_MEMORY_BYTES = 64 * 1024 * 1024
# Codes span -CODE_MAX..CODE_MAX, symmetric, so a component and its negation quantise alike.
CODE_MAX = 127

# Stored sentence vectors: ``(codes, scales)``, int8 of shape (sentences, dimension) and float32 (sentences,).
Quantized = tuple[np.ndarray, np.ndarray]


def quantize(vectors: np.ndarray) -> Quantized:
    """8-bit codes of float vectors (one per row), each row with its own scale: its largest magnitude / 127."""
    vectors = np.asarray(vectors, dtype=np.float32)
    largest = np.abs(vectors).max(axis=1) if vectors.size else np.zeros(len(vectors), dtype=np.float32)
    scales = (largest / CODE_MAX).astype(np.float32)
    safe = np.where(scales > 0, scales, 1.0).astype(np.float32)
    codes = np.clip(np.rint(vectors / safe[:, None]), -CODE_MAX, CODE_MAX).astype(np.int8)
    return codes, scales


def dequantize(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Float32 vectors back from codes and their scales (any leading shape: ``codes[..., d] * scales[...]``)."""
    return codes.astype(np.float32) * scales[..., None]


def pack_sentence_vectors(vectors: np.ndarray) -> bytes:
    """The stored form of a passage's float32 sentence vectors: all int8 codes, then the float32 scales."""
    codes, scales = quantize(vectors)
    return codes.tobytes() + scales.astype("<f4").tobytes()


def unpack_sentence_vectors(blob: bytes, dimension: int) -> Quantized:
    """``(codes, scales)`` from what ``pack_sentence_vectors`` wrote for ``dimension``-dimensional vectors."""
    count = len(blob) // (dimension + 4)
    codes = np.frombuffer(blob, dtype=np.int8, count=count * dimension).reshape(count, dimension)
    return codes, np.frombuffer(blob, dtype="<f4", count=count, offset=count * dimension).astype(np.float32)


class SentenceVectors:
    """Sentence vectors by chunk id, from memory when the index is small enough, else from the store."""

    def __init__(self, store: "StoreReader", dimension: int, max_memory_bytes: int | None = None) -> None:
        """Hold every sentence vector in memory if they take at most ``max_memory_bytes`` (MAX_MEMORY_BYTES)."""
        self.store = store
        self.dimension = dimension
        # chunk id -> (sentence count, position in that count's group); None when reading from the store.
        self._where: dict[int, tuple[int, int]] | None = None
        # sentence count -> every in-memory passage with that many sentences, stacked: codes (passages, n,
        # dimension) and scales (passages, n).
        self._groups: dict[int, Quantized] = {}
        total = store.sentence_vector_bytes()
        if total <= (MAX_MEMORY_BYTES if max_memory_bytes is None else max_memory_bytes):
            self._load(store.all_sentence_vectors(dimension))

    @property
    def in_memory(self) -> bool:
        """Whether every passage's sentence vectors are held in memory."""
        return self._where is not None

    def _load(self, by_id: Mapping[int, Quantized]) -> None:
        """Stack passages by sentence count, so a passage's rows are a contiguous ``(n, dimension)`` slice."""
        members: dict[int, list[int]] = {}
        for chunk_id, (codes, _) in by_id.items():
            members.setdefault(len(codes), []).append(chunk_id)
        where: dict[int, tuple[int, int]] = {}
        for count, ids in members.items():
            codes = np.empty((len(ids), count, self.dimension), dtype=np.int8)
            scales = np.empty((len(ids), count), dtype=np.float32)
            for position, chunk_id in enumerate(ids):
                codes[position], scales[position] = by_id[chunk_id]
                where[chunk_id] = (count, position)
            self._groups[count] = (codes, scales)
        self._where = where

    def of(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """Each chunk's ``(sentences, dimension)`` float32 vectors, by id (ids without any row are left out)."""
        if self._where is None:
            return {i: dequantize(*stored) for i, stored in self.store.sentence_vectors_of(ids, self.dimension).items()}
        found = {}
        for chunk_id in ids:
            place = self._where.get(chunk_id)
            if place is not None:
                codes, scales = self._groups[place[0]]
                found[chunk_id] = dequantize(codes[place[1]], scales[place[1]])
        return found

    def best(self, query: np.ndarray, ids: Sequence[int], loaded: Mapping[int, np.ndarray] | None = None) -> dict[int, float]:
        """The highest sentence cosine of each passage that has sentence vectors, by chunk id.

        Args:
            loaded: the vectors of ``ids`` already read with ``of`` (only used when they are not in memory).
        """
        if self._where is None:
            vectors = self.of(ids) if loaded is None else loaded
            return {i: float((v @ query).max()) for i, v in vectors.items() if len(v)}
        # One product per sentence count over the wanted passages' dequantised rows: numpy's matmul runs the same
        # gemv per (n, dimension) slice as a product per passage would, so every score is bit for bit the
        # per-passage one.
        wanted: dict[int, list[tuple[int, int]]] = {}
        for chunk_id in ids:
            place = self._where.get(chunk_id)
            if place is not None and place[0]:
                wanted.setdefault(place[0], []).append((chunk_id, place[1]))
        best: dict[int, float] = {}
        for count, members in wanted.items():
            codes, scales = self._groups[count]
            positions = [position for _, position in members]
            scores = (dequantize(codes[positions], scales[positions]) @ query).max(axis=1).tolist()
            best.update(zip([chunk_id for chunk_id, _ in members], scores))
        return best
