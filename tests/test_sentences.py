"""Sentence vectors are stored at 8 bits; held in memory they give exactly what reading them per search gives."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from conftest import DATA
from qa.search import SearchService
from qa.sentences import SentenceVectors, dequantize, pack_sentence_vectors, quantize, unpack_sentence_vectors

QUESTIONS = [json.loads(line)["question"] for line in (DATA / "seeds_questions.jsonl").read_text(encoding="utf-8").splitlines()]


def _all_chunk_ids(service) -> list[int]:
    return [chunk.id for chunk, _ in service.store.iter_chunks()]


def _queries(service, count: int = 40) -> list[np.ndarray]:
    """Question vectors and random unit vectors: scores of every sign and size."""
    random = np.random.default_rng(7).standard_normal((count, service.manifest.dimension)).astype(np.float32)
    random /= np.linalg.norm(random, axis=1, keepdims=True)
    return [service.dense.embed(q) for q in QUESTIONS[:count]] + list(random)


class _FakeStore:
    """Just what SentenceVectors reads, over a dict of per-chunk float vectors (stored 8-bit, as the store does)."""

    def __init__(self, vectors: dict[int, np.ndarray]) -> None:
        self.blobs = {i: pack_sentence_vectors(v) for i, v in vectors.items()}
        self.dimension = next(iter(vectors.values())).shape[1]

    def sentence_vector_bytes(self) -> int:
        return sum(len(b) for b in self.blobs.values())

    def all_sentence_vectors(self, dimension: int):
        return {i: unpack_sentence_vectors(b, dimension) for i, b in self.blobs.items()}

    def sentence_vectors_of(self, ids, dimension: int):
        return {i: unpack_sentence_vectors(self.blobs[i], dimension) for i in ids if i in self.blobs}


def test_the_seeds_index_keeps_its_sentence_vectors_in_memory(service):
    assert service.sentences.in_memory


def test_in_memory_sentence_vectors_equal_the_stored_ones(service):
    ids = _all_chunk_ids(service)
    stored = service.store.sentence_vectors_of(ids, service.manifest.dimension)
    held = service.sentences.of(ids)
    assert held.keys() == stored.keys() and len(held) == len(ids)
    for chunk_id, (codes, scales) in stored.items():
        assert codes.dtype == np.int8 and scales.dtype == np.float32
        assert held[chunk_id].dtype == np.float32 and np.array_equal(held[chunk_id], dequantize(codes, scales))


@pytest.mark.parametrize("subset", ["all", "every_third", "one"])
def test_best_sentence_scores_are_bit_identical_to_scoring_each_passage_alone(service, subset):
    ids = _all_chunk_ids(service)
    ids = {"all": ids, "every_third": ids[::3], "one": ids[5:6]}[subset]
    stored = service.store.sentence_vectors_of(ids, service.manifest.dimension)
    for query in _queries(service):
        # The arithmetic the blend used before vectors were held in memory: one product per passage.
        expected = {i: float(np.max(dequantize(*v) @ query)) for i, v in stored.items() if len(v[0])}
        assert service.sentences.best(query, ids) == expected


def test_passages_without_sentence_vectors_have_no_best_sentence_either_way():
    dimension = 4
    vectors = {
        1: np.eye(dimension, dtype=np.float32)[:2],
        2: np.zeros((0, dimension), dtype=np.float32),
        3: np.eye(dimension, dtype=np.float32)[2:3],
    }
    query = np.array([0.1, 0.7, 0.2, 0.0], dtype=np.float32)
    held = SentenceVectors(_FakeStore(vectors), dimension)
    read = SentenceVectors(_FakeStore(vectors), dimension, max_memory_bytes=0)
    assert held.in_memory and not read.in_memory
    expected = {1: pytest.approx(0.7, abs=0.005), 3: pytest.approx(0.2, abs=0.005)}
    assert held.best(query, [1, 2, 3, 4]) == expected == read.best(query, [1, 2, 3, 4])
    assert held.of([2, 4]).keys() == {2}


@pytest.mark.parametrize("mode", ["hybrid", "dense", "keyword"])
def test_search_answers_are_identical_with_sentence_vectors_read_per_search(service, mode):
    reading = SearchService(service.settings, service.manifest, service.store, service.dense)
    reading.sentences = SentenceVectors(service.store, service.manifest.dimension, max_memory_bytes=0)
    assert not reading.sentences.in_memory
    for question in QUESTIONS:
        for top_k in (5, 100):
            ours, theirs = service.search(question, top_k, mode=mode), reading.search(question, top_k, mode=mode)
            assert dataclasses.replace(ours, took_ms=0) == dataclasses.replace(theirs, took_ms=0)


@pytest.mark.parametrize("dimension", [4, 384])
def test_8_bit_sentence_vectors_are_within_half_a_step_of_the_float_ones(dimension):
    vectors = np.random.default_rng(dimension).standard_normal((50, dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors[7] = 0.0  # a zero vector (an empty span) stays zero rather than dividing by zero
    codes, scales = quantize(vectors)
    assert codes.dtype == np.int8 and scales.dtype == np.float32 and np.abs(codes).max() <= 127
    back = dequantize(codes, scales)
    assert np.all(np.abs(back - vectors) <= scales[:, None] / 2 + 1e-7)
    assert not back[7].any()
    # A unit query's cosine moves by at most |error| <= sqrt(dimension) * half a step; at 384 dimensions far less.
    moved = np.abs(back @ vectors[3] - vectors @ vectors[3])
    assert np.all(moved <= np.sqrt(dimension) * scales / 2 + 1e-6)
    assert dimension < 384 or moved.max() < 0.003


def test_a_passages_sentence_vectors_are_stored_in_a_quarter_of_float32s_bytes_and_read_back():
    vectors = np.random.default_rng(1).standard_normal((6, 384)).astype(np.float32)
    blob = pack_sentence_vectors(vectors)
    assert len(blob) == 6 * (384 + 4) < vectors.nbytes / 3.9
    codes, scales = unpack_sentence_vectors(blob, 384)
    assert np.array_equal((codes, scales)[0], quantize(vectors)[0]) and np.array_equal(scales, quantize(vectors)[1])
    empty = unpack_sentence_vectors(pack_sentence_vectors(np.zeros((0, 384), dtype=np.float32)), 384)
    assert empty[0].shape == (0, 384) and empty[1].shape == (0,)


def test_the_store_holds_no_passage_vectors_and_8_bit_sentence_vectors(seeds_index):
    import sqlite3

    from qa.chunking import split_sentences
    from qa.manifest import DATABASE_FILE

    db = sqlite3.connect(seeds_index / DATABASE_FILE)
    try:
        columns = [row[1] for row in db.execute("PRAGMA table_info(embeddings)")]
        rows = db.execute(
            "SELECT c.text, LENGTH(e.sentence_vectors) FROM chunks c JOIN embeddings e USING (text_hash)"
        ).fetchall()
    finally:
        db.close()
    assert columns == ["text_hash", "sentence_vectors"]
    assert rows and all(size == len(split_sentences(text)) * (384 + 4) for text, size in rows)
