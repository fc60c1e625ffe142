"""Fusion of dense and keyword rankings: pure cases, and real passages only one retriever can find."""

from __future__ import annotations

from random import Random

import pytest

from qa.config import Settings
from qa.index.indexer import build_index
from qa.search.fusion import min_max, normalised_score_fusion, reciprocal_rank_fusion, window_min_max
from qa.search.service import SearchService


def test_rrf_sums_reciprocal_ranks():
    fused = dict(reciprocal_rank_fusion([[(1, 0.9), (2, 0.8)], [(2, 5.0), (3, 4.0)]], k=60))
    assert fused[2] == pytest.approx(1 / 62 + 1 / 61)
    assert fused[1] == pytest.approx(1 / 61)
    assert fused[3] == pytest.approx(1 / 62)
    assert [i for i, _ in reciprocal_rank_fusion([[(1, 0.9), (2, 0.8)], [(2, 5.0), (3, 4.0)]])][0] == 2


def test_min_max_scales_to_unit_range_and_handles_ties():
    assert min_max({1: 2.0, 2: 4.0, 3: 3.0}) == {1: 0.0, 2: 1.0, 3: 0.5}
    assert min_max({1: 7.0, 2: 7.0}) == {1: 1.0, 2: 1.0}
    assert min_max({}) == {}


def test_window_min_max_scales_by_the_best_and_the_window_th_best():
    scores = {1: 10.0, 2: 8.0, 3: 6.0, 4: 2.0}
    assert window_min_max(scores, 3) == {1: 1.0, 2: 0.5, 3: 0.0, 4: -1.0}


@pytest.mark.parametrize("window", [0, 4, 10])
def test_window_min_max_is_min_max_when_the_list_fits_the_window(window):
    scores = {1: 10.0, 2: 8.0, 3: 6.0, 4: 2.0}
    assert window_min_max(scores, window) == min_max(scores)


def test_window_min_max_falls_back_to_min_max_when_the_window_is_flat():
    assert window_min_max({1: 5.0, 2: 5.0, 3: 1.0}, 2) == {1: 1.0, 2: 1.0, 3: 0.0}


@pytest.mark.parametrize("seed", range(10))
def test_window_scale_of_the_head_ignores_how_deep_the_list_goes(seed):
    random = Random(seed)
    head = {i: random.uniform(0.5, 1.0) for i in range(20)}
    tail = {i: random.uniform(-0.2, 0.49) for i in range(20, 20 + random.randint(1, 300))}
    assert {i: window_min_max({**head, **tail}, 20)[i] for i in head} == pytest.approx(window_min_max(head, 20))


def test_fusion_window_keeps_a_far_low_score_from_flattening_a_list():
    # Candidate 9 came from keywords only, with a very low cosine. Over the whole dense list it sets the
    # minimum and squeezes the gap between 1 and 2 to almost nothing, so keywords decide; with a window of
    # three dense scores that gap keeps its size and meaning decides.
    dense = {1: 0.80, 2: 0.60, 3: 0.55, 9: -0.90}
    keyword = {2: 5.0, 1: 4.0, 9: 1.0}
    assert normalised_score_fusion(dense, keyword, dense_weight=0.5)[0][0] == 2
    assert normalised_score_fusion(dense, keyword, dense_weight=0.5, window=3)[0][0] == 1


def test_fusion_window_puts_ids_missing_from_a_list_below_all_it_returned():
    dense = {1: 0.9, 2: 0.8, 3: 0.7, 4: 0.1, 5: 0.5}
    keyword = {1: 9.0, 2: 6.0, 3: 3.0, 4: 1.0}  # 5 matched no keyword
    fused = dict(normalised_score_fusion(dense, keyword, dense_weight=0.5, window=3))
    scaled = window_min_max(keyword, 3)
    assert min(scaled.values()) < 0
    assert fused[5] == pytest.approx(0.5 * window_min_max(dense, 3)[5] + 0.5 * min(scaled.values()))


@pytest.mark.parametrize("seed", range(20))
def test_score_fusion_orders_by_score_then_ascending_id_with_many_ties(seed):
    random = Random(seed)
    # Few distinct values, so many fused scores tie exactly.
    dense = {i: random.choice([0.1, 0.2, 0.3, 0.5]) for i in random.sample(range(200), 80)}
    keyword = {i: random.choice([1.0, 2.0, 4.0]) for i in random.sample(range(200), 60)}
    fused = normalised_score_fusion(dense, keyword, dense_weight=random.choice([0.0, 0.3, 0.5, 1.0]))
    assert fused == sorted(fused, key=lambda pair: (-pair[1], pair[0]))
    assert {i for i, _ in fused} == set(dense) | set(keyword)


def test_score_fusion_keeps_items_found_by_only_one_list():
    dense = {1: 0.8, 2: 0.5, 3: 0.2}  # 3 is the dense-only item
    keyword = {1: 10.0, 4: 12.0, 5: 1.0}  # 4 is keyword-only and the best keyword match
    fused = dict(normalised_score_fusion(dense, keyword, dense_weight=0.5))
    assert fused[1] == pytest.approx(0.5 * 1.0 + 0.5 * (9 / 11))
    assert fused[4] == pytest.approx(0.5 * 1.0)
    assert fused[3] == pytest.approx(0.0)
    assert set(fused) == {1, 2, 3, 4, 5}


@pytest.mark.parametrize("weight, first", [(1.0, 1), (0.0, 4)])
def test_score_fusion_weight_moves_between_the_two_rankings(weight, first):
    dense = {1: 0.9, 4: 0.1}
    keyword = {1: 1.0, 4: 9.0}
    assert normalised_score_fusion(dense, keyword, dense_weight=weight)[0][0] == first


@pytest.fixture(scope="module")
def fusion_index(tmp_path_factory, encoder):
    corpus = tmp_path_factory.mktemp("fusion-corpus")
    documents = {
        "parts.txt": "Maintenance log\nThe gasket with part number ZK4471 was replaced on the north pump last week.",
        "cats.txt": "Animal habits\nFelines doze through most of the day, often for sixteen hours or more.",
        "tea.txt": "Tea notes\nGreen tea should steep for two minutes in water just below boiling.",
        "trains.txt": "Rail timetable\nThe express to the coast leaves every morning at seven from platform two.",
        "garden.txt": "Garden diary\nTomatoes need full sun, regular watering and a stake to climb.",
    }
    for name, text in documents.items():
        (corpus / name).write_text(text, encoding="utf-8")
    index_dir = tmp_path_factory.mktemp("fusion") / "idx"
    build_index(corpus, index_dir, encoder, chunk_size=64, chunk_overlap=0)
    return SearchService.open(Settings(index_dir=index_dir), encoder=encoder)


def test_hybrid_finds_a_passage_only_keywords_can_find(fusion_index):
    # A part number means nothing to the embedding model, but matches exactly as a keyword.
    question = "ZK4471"
    assert fusion_index.search(question, 1, mode="keyword").results[0].citation.source == "parts.txt"
    assert fusion_index.search(question, 1, mode="hybrid").results[0].citation.source == "parts.txt"


def test_hybrid_finds_a_passage_only_meaning_can_find(fusion_index):
    # No word of the question occurs in the answer: only the embedding sees that felines are cats.
    question = "How long do kittens nap?"
    assert not any(h.citation.source == "cats.txt" for h in fusion_index.search(question, 5, mode="keyword").results)
    assert fusion_index.search(question, 1, mode="dense").results[0].citation.source == "cats.txt"
    assert fusion_index.search(question, 1, mode="hybrid").results[0].citation.source == "cats.txt"
