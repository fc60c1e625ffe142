"""Sentence vectors held in memory give exactly what reading them from the store per search gives."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from conftest import DATA
from qa.search import SearchService
from qa.sentences import SentenceVectors

QUESTIONS = [json.loads(line)["question"] for line in (DATA / "seeds_questions.jsonl").read_text(encoding="utf-8").splitlines()]


def _all_chunk_ids(service) -> list[int]:
    return [chunk.id for chunk, _ in service.store.iter_chunks()]


def _queries(service, count: int = 40) -> list[np.ndarray]:
    """Question vectors and random unit vectors: scores of every sign and size."""
    random = np.random.default_rng(7).standard_normal((count, service.manifest.dimension)).astype(np.float32)
    random /= np.linalg.norm(random, axis=1, keepdims=True)
    return [service.dense.embed(q) for q in QUESTIONS[:count]] + list(random)


class _FakeStore:
    """Just what SentenceVectors reads, over a dict of per-chunk vectors."""

    def __init__(self, vectors: dict[int, np.ndarray]) -> None:
        self.vectors = vectors

    def sentence_vector_bytes(self) -> int:
        return sum(v.nbytes for v in self.vectors.values())

    def all_sentence_vectors(self, dimension: int) -> dict[int, np.ndarray]:
        return dict(self.vectors)

    def sentence_vectors_of(self, ids, dimension: int) -> dict[int, np.ndarray]:
        return {i: self.vectors[i] for i in ids if i in self.vectors}


def test_the_seeds_index_keeps_its_sentence_vectors_in_memory(service):
    assert service.sentences.in_memory


def test_in_memory_sentence_vectors_equal_the_stored_ones(service):
    ids = _all_chunk_ids(service)
    stored = service.store.sentence_vectors_of(ids, service.manifest.dimension)
    held = service.sentences.of(ids)
    assert held.keys() == stored.keys() and len(held) == len(ids)
    for chunk_id, vectors in stored.items():
        assert held[chunk_id].dtype == np.float32 and np.array_equal(held[chunk_id], vectors)


@pytest.mark.parametrize("subset", ["all", "every_third", "one"])
def test_best_sentence_scores_are_bit_identical_to_scoring_each_passage_alone(service, subset):
    ids = _all_chunk_ids(service)
    ids = {"all": ids, "every_third": ids[::3], "one": ids[5:6]}[subset]
    stored = service.store.sentence_vectors_of(ids, service.manifest.dimension)
    for query in _queries(service):
        # The arithmetic the blend used before vectors were held in memory: one product per passage.
        expected = {i: float(np.max(v @ query)) for i, v in stored.items() if len(v)}
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
    expected = {1: pytest.approx(0.7), 3: pytest.approx(0.2)}
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
