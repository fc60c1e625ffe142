"""Inverted-file codes: built from their threshold up, saved and loaded, searched (filtered too) with the recall of
the flat codes, beside flat codes files written before them; any other FAISS type is still refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import DATA, SEEDS

import qa.index.vectors as vectors_module
from qa.config import Settings
from qa.errors import IndexCorrupt
from qa.index.indexer import build_index
from qa.index.manifest import CODES_FILE, VECTORS_FILE
from qa.index.vectors import APPROXIMATE, VectorIndex
from qa.search.service import SearchService

# Slow tier (see conftest.py): builds inverted-file FAISS indexes big enough to need them.
pytestmark = pytest.mark.slow

N = 8_000
CLUSTERS = 40
DIMENSION = 384
IVF_MIN = 4_000
QUESTIONS = [
    json.loads(line)["question"] for line in (DATA / "seeds_questions.jsonl").read_text(encoding="utf-8").splitlines()
]


def _unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def _clustered(rows: int, seed: int, centres: np.ndarray) -> np.ndarray:
    """Unit vectors scattered around ``centres`` (topics, as passages' embeddings gather)."""
    rng = np.random.default_rng(seed)
    around = centres[rng.integers(0, len(centres), rows)]
    return _unit(around + rng.standard_normal((rows, DIMENSION)) * (0.6 / np.sqrt(DIMENSION)))


@pytest.fixture(scope="module")
def data():
    """Clustered unit vectors under ids that are not positions, and queries drawn like them."""
    centres = _unit(np.random.default_rng(0).standard_normal((CLUSTERS, DIMENSION)))
    return np.arange(N, dtype=np.int64) * 5 + 11, _clustered(N, 1, centres), _clustered(100, 2, centres)


@pytest.fixture(scope="module")
def inverted(data):
    """Inverted codes, searched through fewer lists than by default: at this size the default probes every list,
    and the choice of lists would not be tested."""
    ids, vectors, _ = data
    index = VectorIndex.build(ids, vectors, exact_max=100, ivf_min=IVF_MIN)
    index.probe_per_candidate, index.min_probes = 1, 32
    return index


@pytest.fixture(scope="module")
def flat(data):
    ids, vectors, _ = data
    return VectorIndex.build(ids, vectors, exact_max=100, ivf_min=N + 1)


@pytest.fixture(scope="module")
def exact(data):
    ids, vectors, _ = data
    return VectorIndex(ids, vectors)


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found.tolist(), truth.tolist())]))


def test_codes_are_inverted_from_the_threshold_up_and_flat_below(data, inverted, flat):
    import faiss

    ids, vectors, _ = data
    assert inverted.kind == flat.kind == APPROXIMATE
    assert inverted.lists == vectors_module.ivf_lists(N) and isinstance(inverted._codes, faiss.IndexIVFPQFastScan)
    assert flat.lists == 0 and isinstance(flat._codes, faiss.IndexPQFastScan)
    assert VectorIndex.build(ids[:IVF_MIN], vectors[:IVF_MIN], exact_max=100, ivf_min=IVF_MIN).lists
    assert not VectorIndex.build(ids[: IVF_MIN - 1], vectors[: IVF_MIN - 1], exact_max=100, ivf_min=IVF_MIN).lists


@pytest.mark.parametrize("k", [1, 10, 100])
def test_inverted_codes_find_the_exact_neighbours_as_the_flat_codes_do(data, inverted, flat, exact, k):
    queries = data[2]
    truth = exact.search(queries, k)[1]
    assert inverted.probes(inverted.rerank_depth(k)) < inverted.lists // (2 if k == 100 else 4)
    assert _recall(inverted.search(queries, k)[1], truth) >= 0.95
    assert _recall(inverted.search(queries, k)[1], truth) >= _recall(flat.search(queries, k)[1], truth) - 0.02


def test_inverted_codes_are_saved_and_loaded_with_the_same_results(data, inverted, tmp_path):
    inverted.save(tmp_path / VECTORS_FILE, tmp_path / CODES_FILE)
    loaded = VectorIndex.load(tmp_path / VECTORS_FILE, tmp_path / CODES_FILE)
    assert loaded.kind == APPROXIMATE and loaded.lists == inverted.lists
    loaded.probe_per_candidate, loaded.min_probes = inverted.probe_per_candidate, inverted.min_probes
    for k in (10, 100):
        scores, ids = loaded.search(data[2], k)
        expected_scores, expected_ids = inverted.search(data[2], k)
        assert np.array_equal(ids, expected_ids) and np.array_equal(scores, expected_scores)


def test_vectors_without_clusters_keep_flat_codes_when_the_lists_would_miss_their_neighbours(data, monkeypatch):
    # Random vectors gather nowhere: a query's neighbours are in lists all over, and with few lists probed the
    # build's own check finds the lists missing them, so it keeps flat codes. Clustered vectors keep the lists.
    monkeypatch.setattr(vectors_module, "IVF_PROBE_PER_CANDIDATE", 2)
    monkeypatch.setattr(vectors_module, "IVF_MIN_PROBES", 1)
    ids, clustered, _ = data
    random = _unit(np.random.default_rng(3).standard_normal((N, DIMENSION)))
    unclustered = VectorIndex.build(ids, random, exact_max=100, ivf_min=IVF_MIN)
    assert unclustered.kind == APPROXIMATE and unclustered.lists == 0
    assert _recall(unclustered.search(random[:50], 10)[1], VectorIndex(ids, random).search(random[:50], 10)[1]) >= 0.95
    gathered = VectorIndex.build(ids, clustered, exact_max=100, ivf_min=IVF_MIN)
    assert gathered.lists > 0 and gathered.check_recall() >= vectors_module.IVF_CHECK_RECALL


def test_flat_codes_files_written_before_inverted_ones_still_load_and_search_the_same(data, flat, tmp_path):
    flat.save(tmp_path / VECTORS_FILE, tmp_path / CODES_FILE)
    loaded = VectorIndex.load(tmp_path / VECTORS_FILE, tmp_path / CODES_FILE)
    assert loaded.kind == APPROXIMATE and loaded.lists == 0 and loaded.probes(1_000) == 0
    scores, ids = loaded.search(data[2], 10)
    expected_scores, expected_ids = flat.search(data[2], 10)
    assert np.array_equal(ids, expected_ids) and np.array_equal(scores, expected_scores)


def test_probed_lists_too_small_for_the_candidates_wanted_are_widened_until_they_hold_them(data, inverted):
    index = VectorIndex(inverted.ids, inverted._rows, inverted._codes)
    index.probe_per_candidate, index.min_probes = 0, 1  # one list: about N / lists codes, fewer than wanted
    depth = index.rerank_depth(100)
    assert depth > 3 * N / index.lists
    candidates = index._candidates(data[2][:5], depth)
    assert candidates.shape == (5, depth) and (candidates >= 0).all()
    assert all(len(set(row.tolist())) == depth for row in candidates)
    _, ids = index.search(data[2][:5], 100)
    assert (ids != -1).all()


@pytest.mark.parametrize("allowed_count", [7, 1_000, 2_500, 7_000])
def test_filtered_search_over_inverted_codes_returns_only_allowed_ids_and_k_of_them(
    data, inverted, exact, monkeypatch, allowed_count
):
    # 2,500 and 7,000 of 8,000 are wide filters (asked of the codes, then dropped); with EXACT_MAX_VECTORS lowered
    # they are not searched exactly over the allowed ids alone.
    monkeypatch.setattr(vectors_module, "EXACT_MAX_VECTORS", 100)
    ids, _, queries = data
    allowed = np.random.default_rng(allowed_count).choice(ids, allowed_count, replace=False)
    k = 20
    wanted = min(k, allowed_count)
    scores, found = inverted.search(queries[:20], k, allowed=allowed)
    assert set(found[:, :wanted].ravel().tolist()) <= set(allowed.tolist()) and (found[:, wanted:] == -1).all()
    assert all(np.all(np.diff(row[:wanted]) <= 1e-6) for row in scores)
    assert _recall(found[:, :wanted], exact.search(queries[:20], wanted, allowed=allowed)[1]) >= 0.95


@pytest.mark.parametrize("kind", ["ivf_flat", "l2_quantizer"])
def test_other_inverted_faiss_indexes_are_refused_as_codes(data, tmp_path, kind):
    import faiss

    ids, vectors, _ = data
    VectorIndex(ids, vectors).save(tmp_path / VECTORS_FILE)
    if kind == "ivf_flat":
        codes = faiss.IndexIVFFlat(faiss.IndexFlatIP(DIMENSION), DIMENSION, 16, faiss.METRIC_INNER_PRODUCT)
    else:
        codes = faiss.IndexIVFPQFastScan(faiss.IndexFlatL2(DIMENSION), DIMENSION, 16, 192, 4)
    codes.train(vectors)
    codes.add(vectors)
    faiss.write_index(codes, str(tmp_path / CODES_FILE))
    with pytest.raises(IndexCorrupt, match="unexpected index type"):
        VectorIndex.load(tmp_path / VECTORS_FILE, tmp_path / CODES_FILE)


@pytest.fixture(scope="module")
def seeds_with_codes(encoder, tmp_path_factory):
    """The seeds indexed twice with the approximate kind forced on: flat codes, and inverted codes."""
    built = {}
    for kind, ivf_min in (("flat", 10**9), ("inverted", 0)):
        index_dir = tmp_path_factory.mktemp(kind) / "index"
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(vectors_module, "EXACT_MAX_VECTORS", 0)
            patch.setattr(vectors_module, "APPROXIMATE_MIN_VECTORS", 50)
            patch.setattr(vectors_module, "IVF_MIN_VECTORS", ivf_min)
            defaults = Settings()
            build_index(
                SEEDS,
                index_dir,
                encoder,
                chunk_size=defaults.chunk_size,
                chunk_overlap=defaults.chunk_overlap,
                embed_title=defaults.embed_title,
            )
        built[kind] = index_dir
    return built


def test_a_service_over_inverted_codes_gives_the_answers_of_one_over_flat_codes(seeds_with_codes, encoder):
    services = {
        kind: SearchService.open(Settings(index_dir=path), encoder=encoder) for kind, path in seeds_with_codes.items()
    }
    assert services["inverted"].dense.vectors.lists > 0 and services["flat"].dense.vectors.lists == 0
    for question in QUESTIONS:
        for mode in ("hybrid", "dense"):
            answers = {
                kind: [
                    (h.citation.source, h.citation.start, h.citation.end)
                    for h in service.search(question, 5, mode=mode).results
                ]
                for kind, service in services.items()
            }
            assert answers["inverted"] == answers["flat"], (question, mode)
