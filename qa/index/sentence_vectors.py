"""Per-sentence vectors of passages, for the best-sentence blend and supporting sentences.

They are stored at 8 bits: each sentence vector as int8 codes times one float32 scale (its largest component
over 127), a quarter of float32's bytes. Every use goes through the same dequantisation (``codes * scale``, back
to float32), so a score is computed on the same floats wherever the codes came from.

They live in the index's sentences file (``sentences.i8``, memory-mapped; see :class:`SentenceFile`), not in
SQLite, where each passage's few kilobytes took a page of their own. A small index keeps them all in memory,
copied once with the index; a large one reads the candidates' vectors from the mapped file per search. Either
way the arithmetic is the same call on the same shapes as scoring one passage at a time (``vectors @ query``
over a passage's ``(sentences, dimension)`` rows), so scores do not depend on where the vectors came from: one
matrix product over all sentences at once would round differently in BLAS.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from qa.errors import IndexCorrupt
from qa.index.vectors import map_file, open_by_path

if TYPE_CHECKING:
    from qa.index.interfaces import ServiceStore

# Largest total of sentence vectors kept in memory (stored bytes: 8-bit codes plus a float32 scale per sentence):
# 64 MiB holds about 170,000 sentences of a 384-dimensional model. Above it, vectors are read per search instead.
MAX_MEMORY_BYTES = 64 * 1024 * 1024
# Codes span -CODE_MAX..CODE_MAX, symmetric, so a component and its negation quantise alike.
CODE_MAX = 127

# Stored sentence vectors: ``(codes, scales)``, int8 of shape (sentences, dimension) and float32 (sentences,).
Quantized = tuple[np.ndarray, np.ndarray]

SENTENCES_MAGIC = b"QASENT01"
# magic, dimension, reserved (0), passages, sentences: 32 bytes. The file continues with every sentence's int8
# codes (passage after passage, in ascending chunk id order), every sentence's float32 scale, the chunk ids
# (int64), and where each passage's sentences start ((passages + 1) int64: passage i has sentences
# starts[i]..starts[i + 1]); each section padded to 8 bytes. All little-endian.
SENTENCES_HEADER = struct.Struct("<8sIIQQ")


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


def _padded(size: int) -> int:
    """``size`` rounded up to a multiple of 8 (each section of the sentences file starts aligned)."""
    return (size + 7) // 8 * 8


class SentenceFileWriter:
    """Writes a sentences file, passage by passage in ascending chunk id order."""

    def __init__(self, path: Path, dimension: int) -> None:
        self.path, self.dimension = Path(path), dimension
        self._handle = open(self.path, "wb")
        self._handle.write(b"\0" * SENTENCES_HEADER.size)
        self._ids: list[int] = []
        self._counts: list[int] = []
        self._scales: list[np.ndarray] = []

    def add(self, chunk_id: int, codes: np.ndarray, scales: np.ndarray) -> None:
        """Append one passage's sentence codes and scales (``quantize`` output).

        Raises:
            ValueError: ``chunk_id`` is not above the last one, or the shapes do not fit.
        """
        if self._ids and chunk_id <= self._ids[-1]:
            raise ValueError(f"chunk ids must ascend: {chunk_id} after {self._ids[-1]}")
        codes = np.ascontiguousarray(codes, dtype=np.int8).reshape(-1, self.dimension)
        if len(scales) != len(codes):
            raise ValueError("one scale per sentence")
        self._handle.write(codes.tobytes())
        self._ids.append(int(chunk_id))
        self._counts.append(len(codes))
        self._scales.append(np.asarray(scales, dtype="<f4"))

    def close(self) -> None:
        """Write the scales, ids and starts after the codes, then the header; close the file."""
        sentences = sum(self._counts)
        handle = self._handle
        handle.write(b"\0" * (_padded(sentences * self.dimension) - sentences * self.dimension))
        scales = np.concatenate(self._scales) if self._scales else np.zeros(0, dtype="<f4")
        handle.write(scales.astype("<f4").tobytes() + b"\0" * (_padded(4 * sentences) - 4 * sentences))
        handle.write(np.asarray(self._ids, dtype="<i8").tobytes())
        handle.write(np.concatenate([[0], np.cumsum(self._counts, dtype=np.int64)]).astype("<i8").tobytes())
        handle.seek(0)
        handle.write(SENTENCES_HEADER.pack(SENTENCES_MAGIC, self.dimension, 0, len(self._ids), sentences))
        handle.close()


class SentenceFile:
    """A mapped sentences file: each passage's 8-bit sentence vectors by chunk id."""

    def __init__(self, ids: np.ndarray, starts: np.ndarray, codes: np.ndarray, scales: np.ndarray) -> None:
        self.ids, self._starts, self._codes, self._scales = ids, starts, codes, scales

    @classmethod
    def open(cls, fd: int, label: Path, *, populate: bool = True) -> "SentenceFile":
        """Map the sentences file open at ``fd`` (which the caller may close afterwards).

        Args:
            label: the file's path, for messages only.
            populate: map every page at once (see ``qa.index.vectors.map_file``).

        Raises:
            IndexCorrupt: not a sentences file, or its sizes, ids or starts are not what its header says.
        """
        size = os.fstat(fd).st_size
        wrong = f"sentences file {label} is damaged or not one: rebuild it with `qa index`"
        if size < SENTENCES_HEADER.size:
            raise IndexCorrupt(wrong)
        magic, dimension, _, passages, sentences = SENTENCES_HEADER.unpack(os.pread(fd, SENTENCES_HEADER.size, 0))
        codes_at = SENTENCES_HEADER.size
        scales_at = codes_at + _padded(sentences * dimension)
        ids_at = scales_at + _padded(4 * sentences)
        starts_at = ids_at + 8 * passages
        if magic != SENTENCES_MAGIC or not dimension or size != starts_at + 8 * (passages + 1):
            raise IndexCorrupt(wrong)
        # Beyond the in-memory limit a search reads its candidates' rows only (see SentenceVectors).
        mapped = map_file(fd, size, scattered=size > MAX_MEMORY_BYTES, populate=populate)
        ids = np.frombuffer(mapped, dtype="<i8", count=passages, offset=ids_at)
        starts = np.frombuffer(mapped, dtype="<i8", count=passages + 1, offset=starts_at)
        if (
            (passages > 1 and not np.all(ids[1:] > ids[:-1]))
            or starts[0] != 0
            or starts[-1] != sentences
            or (passages and not np.all(starts[1:] >= starts[:-1]))
        ):
            raise IndexCorrupt(wrong)
        codes = np.frombuffer(mapped, dtype=np.int8, count=sentences * dimension, offset=codes_at)
        scales = np.frombuffer(mapped, dtype="<f4", count=sentences, offset=scales_at)
        for array in (ids, starts, codes, scales):
            array.flags.writeable = False  # mapped read-only: a write would crash
        return cls(ids, starts, codes.reshape(sentences, dimension), scales)

    @classmethod
    def load(cls, path: Path, *, populate: bool = True) -> "SentenceFile":
        """Map the sentences file at ``path`` (by path: for builds and tools, not for serving a snapshot).

        Raises:
            IndexCorrupt: it is missing or not a sentences file.
        """
        return open_by_path(
            path, lambda fd: cls.open(fd, Path(path), populate=populate), f"sentences file missing: {path}"
        )

    @property
    def dimension(self) -> int:
        """Length of each sentence vector."""
        return int(self._codes.shape[1])

    @property
    def nbytes(self) -> int:
        """Bytes of every passage's codes and scales."""
        return int(self._codes.nbytes + self._scales.nbytes)

    def __len__(self) -> int:
        return len(self.ids)

    def at(self, position: int) -> Quantized:
        """The codes and scales of the passage at ``position`` (views of the map)."""
        first, last = int(self._starts[position]), int(self._starts[position + 1])
        return self._codes[first:last], self._scales[first:last]

    def of(self, ids: Sequence[int]) -> dict[int, Quantized]:
        """Codes and scales by chunk id, for the ids that are in the file."""
        wanted = np.asarray(ids, dtype=np.int64)
        if not len(wanted) or not len(self.ids):
            return {}
        positions = np.minimum(np.searchsorted(self.ids, wanted), len(self.ids) - 1)
        return {int(i): self.at(p) for i, p in zip(wanted, positions) if self.ids[p] == i}

    def all(self) -> dict[int, Quantized]:
        """Codes and scales of every passage, by chunk id."""
        return {int(chunk_id): self.at(position) for position, chunk_id in enumerate(self.ids)}


class SentenceVectors:
    """Sentence vectors by chunk id, from memory when the index is small enough, else from the store."""

    def __init__(self, store: "ServiceStore", dimension: int, max_memory_bytes: int | None = None) -> None:
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

    def best(
        self, query: np.ndarray, ids: Sequence[int], loaded: Mapping[int, np.ndarray] | None = None
    ) -> dict[int, float]:
        """The highest sentence cosine of each passage that has sentence vectors, by chunk id.

        Args:
            loaded: the vectors of ``ids`` already read with ``of`` (only used when they are not in memory).
        """
        if self._where is None:
            if loaded is not None:
                return {i: float((v @ query).max()) for i, v in loaded.items() if len(v)}
            return _best_by_count(query, _stacked(self.store.sentence_vectors_of(ids, self.dimension)))
        wanted: dict[int, list[tuple[int, int]]] = {}
        for chunk_id in ids:
            place = self._where.get(chunk_id)
            if place is not None and place[0]:
                wanted.setdefault(place[0], []).append((chunk_id, place[1]))
        stacked = {}
        for count, members in wanted.items():
            codes, scales = self._groups[count]
            positions = [position for _, position in members]
            stacked[count] = ([chunk_id for chunk_id, _ in members], codes[positions], scales[positions])
        return _best_by_count(query, stacked)


def _stacked(stored: Mapping[int, Quantized]) -> dict[int, tuple[list[int], np.ndarray, np.ndarray]]:
    """Passages' stored codes and scales stacked by sentence count: count -> (chunk ids, codes, scales)."""
    members: dict[int, list[int]] = {}
    for chunk_id, (codes, _) in stored.items():
        if len(codes):
            members.setdefault(len(codes), []).append(chunk_id)
    return {
        count: (ids, np.stack([stored[i][0] for i in ids]), np.stack([stored[i][1] for i in ids]))
        for count, ids in members.items()
    }


def _best_by_count(
    query: np.ndarray, stacked: Mapping[int, tuple[list[int], np.ndarray, np.ndarray]]
) -> dict[int, float]:
    """Each passage's highest sentence cosine from ``_stacked``'s groups, by chunk id.

    One product per sentence count over the group's dequantised ``(passages, n, dimension)`` rows: numpy's matmul
    runs the same gemv per ``(n, dimension)`` slice as a product per passage would, so every score is bit for bit
    the per-passage one, wherever the codes came from.
    """
    best: dict[int, float] = {}
    for ids, codes, scales in stacked.values():
        best.update(zip(ids, (dequantize(codes, scales) @ query).max(axis=1).tolist()))
    return best
