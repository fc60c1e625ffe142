"""The vector index picks exact or approximate search by size; both keep ids, filters, reconstruct and save/load."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

import qa.index.vectors as vectors_module
from qa.index.vectors import APPROXIMATE, EXACT, EXACT_MAX_VECTORS, VectorIndex

# Slow tier (see conftest.py): builds FAISS indexes at the sizes that switch to approximate search.
pytestmark = pytest.mark.slow

N = 2_000
DIMENSION = 384


def _unit(rows: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, DIMENSION)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data():
    """Random unit vectors (the hard case for an approximate index) under ids that are not positions."""
    return np.arange(N, dtype=np.int64) * 7 + 3, _unit(N, 0)


@pytest.fixture(scope="module")
def approximate(data):
    """The same vectors forced onto the approximate path."""
    return VectorIndex.build(*data, exact_max=100)


@pytest.fixture(scope="module")
def exact(data):
    return VectorIndex.build(*data)


def _truth(data, queries, k, allowed=None):
    ids, vectors = data
    keep = np.ones(len(ids), dtype=bool) if allowed is None else np.isin(ids, allowed)
    cosine = queries @ vectors[keep].T
    return ids[keep][np.argsort(-cosine, axis=1, kind="stable")[:, :k]]


def _recall(found, truth):
    return np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found.tolist(), truth.tolist())])


def test_size_chooses_the_index_type(data, exact, approximate):
    assert N < EXACT_MAX_VECTORS and exact.kind == EXACT
    assert approximate.kind == APPROXIMATE
    ids, vectors = data
    assert VectorIndex.build(ids[:1_000], vectors[:1_000], exact_max=1_000).kind == APPROXIMATE
    assert VectorIndex.build(ids[:999], vectors[:999], exact_max=1_000).kind == EXACT
    # Too few vectors to train the quantiser: exact whatever the threshold.
    assert VectorIndex.build(ids[:999], vectors[:999], exact_max=0).kind == EXACT
    assert VectorIndex.build(ids[:0], vectors[:0], exact_max=0).kind == EXACT


def test_approximate_recall_at_10_against_exact_search(data, approximate, exact):
    queries = _unit(200, 1)
    _, found = approximate.search(queries, 10)
    _, exact_found = exact.search(queries, 10)
    assert _recall(found, exact_found) >= 0.98
    assert _recall(exact_found, _truth(data, queries, 10)) == 1.0


@pytest.mark.parametrize("kind", [EXACT, APPROXIMATE])
def test_ids_are_the_ids_given_and_scores_are_cosines(data, exact, approximate, kind):
    index = exact if kind == EXACT else approximate
    ids, vectors = data
    # A stored vector's nearest neighbour is itself, under its own id, with cosine 1.
    scores, found = index.search(vectors[[0, 5, 1999]], 3)
    assert found[:, 0].tolist() == [ids[0], ids[5], ids[1999]]
    assert np.allclose(scores[:, 0], 1.0, atol=1e-4)
    assert set(found.ravel().tolist()) <= set(ids.tolist())
    rows = {int(i): r for r, i in enumerate(ids)}
    for row in range(3):
        expected = vectors[[rows[int(i)] for i in found[row]]] @ vectors[[0, 5, 1999][row]]
        assert np.allclose(scores[row], expected, atol=1e-4)


@pytest.mark.parametrize("kind", [EXACT, APPROXIMATE])
@pytest.mark.parametrize("allowed_count", [1, 7, 60, 1_500])
def test_filter_returns_only_allowed_ids_and_enough_of_them(data, exact, approximate, kind, allowed_count):
    index = exact if kind == EXACT else approximate
    ids, _ = data
    allowed = np.random.default_rng(allowed_count).choice(ids, allowed_count, replace=False)
    queries = _unit(5, 2)
    k = 20
    scores, found = index.search(queries, k, allowed=allowed)
    for row in range(len(queries)):
        real = found[row][found[row] != -1]
        assert set(real.tolist()) <= set(allowed.tolist())
        assert len(real) == min(k, allowed_count)
        assert np.all(np.diff(scores[row][: len(real)]) <= 1e-6)
    assert _recall(found[:, : min(k, allowed_count)], _truth(data, queries, min(k, allowed_count), allowed)) >= 0.98


@pytest.mark.parametrize("kind", [EXACT, APPROXIMATE])
@pytest.mark.parametrize("overfetch", [2.0, 0.1])
def test_wide_filter_still_fills_k_from_allowed_ids(data, exact, approximate, monkeypatch, kind, overfetch):
    # A wide filter goes through the whole index and drops what is not allowed; with too little
    # over-fetching (0.1) every row comes back short and falls back to exact search over the allowed ids.
    index = exact if kind == EXACT else approximate
    monkeypatch.setattr(vectors_module, "EXACT_MAX_VECTORS", 100)
    monkeypatch.setattr(vectors_module, "FILTER_OVERFETCH", overfetch)
    ids, _ = data
    allowed = np.random.default_rng(5).choice(ids, 1_200, replace=False)
    queries = _unit(20, 6)
    _, found = index.search(queries, 30, allowed=allowed)
    assert set(found.ravel().tolist()) <= set(allowed.tolist()) and -1 not in found
    assert _recall(found, _truth(data, queries, 30, allowed)) >= 0.98


def test_filter_with_ids_not_in_the_index_or_none_at_all(exact, approximate, data):
    ids, vectors = data
    for index in (exact, approximate):
        _, found = index.search(vectors[:1], 5, allowed=np.array([ids[0], -5, 4]))
        assert found[0].tolist()[0] == ids[0] and set(found[0].tolist()[1:]) == {-1}
        for nothing in (np.array([], dtype=np.int64), np.array([-5, 4, 10**12])):
            _, found = index.search(vectors[:1], 5, allowed=nothing)
            assert set(found[0].tolist()) == {-1}


@pytest.mark.parametrize("kind", [EXACT, APPROXIMATE])
def test_save_and_load_keep_the_type_parameters_and_results(data, exact, approximate, kind, tmp_path):
    index = exact if kind == EXACT else approximate
    codes = tmp_path / "codes.faiss" if kind == APPROXIMATE else None
    index.save(tmp_path / "vectors.f32", codes)
    loaded = VectorIndex.load(tmp_path / "vectors.f32", codes)
    assert loaded.kind == kind and len(loaded) == N and loaded.dimension == DIMENSION
    assert loaded.rerank_depth(10) == index.rerank_depth(10)
    queries = _unit(50, 3)
    before, after = index.search(queries, 10), loaded.search(queries, 10)
    assert np.array_equal(before[1], after[1]) and np.allclose(before[0], after[0])


@pytest.mark.parametrize("kind", [EXACT, APPROXIMATE])
def test_reconstruct_returns_the_stored_vectors(data, exact, approximate, kind):
    index = exact if kind == EXACT else approximate
    ids, vectors = data
    assert np.allclose(index.reconstruct([int(ids[9]), int(ids[0]), int(ids[1234])]), vectors[[9, 0, 1234]], atol=1e-6)


def test_an_empty_index_finds_nothing_with_or_without_a_filter(data):
    ids, vectors = data
    empty = VectorIndex.build(ids[:0], vectors[:0])
    for allowed in (None, ids[:3]):
        scores, found = empty.search(vectors[:2], 5, allowed=allowed)
        assert found.shape[0] == 2 and set(found.ravel().tolist()) == {-1}


def test_searches_from_a_worker_thread_run_on_one_openmp_thread(exact, data):
    """OpenMP's thread count is per calling thread; a server searches from worker threads, not the main one."""
    import threading

    import faiss

    seen = {}

    def worker():
        seen["before"] = faiss.omp_get_max_threads()
        exact.search(data[1][:1], 5)
        seen["after"] = faiss.omp_get_max_threads()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen["after"] == 1


@pytest.mark.parametrize("dimension", [256, 512, 1024])
def test_other_models_dimensions_get_an_approximate_index_too(dimension):
    # One sub-quantiser per two dimensions: every even dimension divides (1024 did not divide into 96 before).
    vectors = np.random.default_rng(dimension).standard_normal((1_500, dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(1_500, dtype=np.int64) + 11
    index = VectorIndex.build(ids, vectors, exact_max=1_000)
    assert index.kind == APPROXIMATE and index.rerank_scale == vectors_module.RERANK_SCALE
    _, found = index.search(vectors[:20], 5)
    assert found[:, 0].tolist() == ids[:20].tolist()


def test_odd_dimensions_stay_exact():
    vectors = _unit(1_500, 9)[:, :383].copy()
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert VectorIndex.build(np.arange(1_500, dtype=np.int64), vectors, exact_max=1_000).kind == EXACT


def test_reranking_in_parallel_slices_gives_the_scores_of_one_pass(data, approximate, monkeypatch):
    # The approximate index scores its candidate rows in slices on a pool of threads (so that reads of rows not in
    # memory overlap); every id and score must be the one a single pass over all candidates gives.
    queries = _unit(7, 11)
    sliced_calls = []
    scored_in_parts = VectorIndex._scored_in_parts
    monkeypatch.setattr(
        VectorIndex, "_scored_in_parts", lambda self, *a: sliced_calls.append(1) or scored_in_parts(self, *a)
    )
    sliced = approximate.search(queries, 50)
    assert sliced_calls
    monkeypatch.setattr(vectors_module, "READ_PARTS", 10**6)  # more slices than candidates: one pass
    whole = approximate.search(queries, 50)
    assert len(sliced_calls) == 1
    assert np.array_equal(sliced[1], whole[1]) and np.array_equal(sliced[0], whole[0])
    assert _recall(sliced[1][:, :10], _truth(data, queries, 10)) >= 0.9


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_forked_child_reranks_on_threads_of_its_own(approximate):
    # A process that searched, then forked (a server's workers, a tool's children), leaves the child a thread pool
    # whose threads do not exist there: the child must not wait on them.
    queries = _unit(2, 12)
    expected = approximate.search(queries, 20)
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if it answers, the same, in time
        signal.alarm(60)
        found = approximate.search(queries, 20)
        os._exit(0 if np.array_equal(found[1], expected[1]) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
