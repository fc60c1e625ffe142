"""Sentence vectors are stored at 8 bits; held in memory they give exactly what reading them per search gives."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from conftest import DATA

from qa.index.sentence_vectors import SentenceFile, SentenceFileWriter, SentenceVectors, dequantize, quantize
from qa.search.service import SearchService

QUESTIONS = [
    json.loads(line)["question"] for line in (DATA / "seeds_questions.jsonl").read_text(encoding="utf-8").splitlines()
]


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
        self.stored = {i: quantize(v) for i, v in vectors.items()}

    def sentence_vector_bytes(self) -> int:
        return sum(codes.nbytes + scales.nbytes for codes, scales in self.stored.values())

    def all_sentence_vectors(self, dimension: int):
        return dict(self.stored)

    def sentence_vectors_of(self, ids, dimension: int):
        return {i: self.stored[i] for i in ids if i in self.stored}


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


def test_the_sentences_file_gives_back_each_passages_codes_in_a_quarter_of_float32s_bytes(tmp_path):
    rng = np.random.default_rng(1)
    passages = {3: rng.standard_normal((6, 384)), 8: np.zeros((0, 384)), 9: rng.standard_normal((1, 384))}
    writer = SentenceFileWriter(tmp_path / "sentences.i8", 384)
    for chunk_id, vectors in passages.items():
        writer.add(chunk_id, *quantize(vectors))
    writer.close()
    stored = SentenceFile.load(tmp_path / "sentences.i8")
    assert stored.ids.tolist() == [3, 8, 9] and stored.nbytes == 7 * (384 + 4)
    assert (tmp_path / "sentences.i8").stat().st_size < 7 * 384 * 4 / 3
    for chunk_id, (codes, scales) in stored.of([9, 3, 8, 4]).items():
        expected_codes, expected_scales = quantize(passages[chunk_id])
        assert np.array_equal(codes, expected_codes) and np.array_equal(scales, expected_scales)
    assert stored.of([4]) == {} and stored.all().keys() == {3, 8, 9}


def test_the_store_holds_no_vectors_and_the_sentences_file_one_8_bit_row_per_sentence(seeds_index):
    import sqlite3

    from qa.index.manifest import DATABASE_FILE, SENTENCES_FILE
    from qa.text.chunking import split_sentences

    db = sqlite3.connect(seeds_index / DATABASE_FILE)
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        texts = dict(db.execute("SELECT id, text FROM chunks").fetchall())
    finally:
        db.close()
    assert "embeddings" not in tables
    stored = SentenceFile.load(seeds_index / SENTENCES_FILE)
    assert sorted(texts) == stored.ids.tolist()
    for chunk_id, (codes, _scales) in stored.all().items():
        assert codes.dtype == np.int8 and codes.shape == (len(split_sentences(texts[chunk_id])), 384)
