"""Tests for qa.eval.metrics: every metric against hand-computed examples, plus edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from qa.eval.metrics import (
    MetricSummary,
    dedupe_ranking,
    hit_at_k,
    mrr_at_k,
    ndcg_at_k,
    percentile,
    recall_at_k,
    summarise,
)

# Handy constant: 1 / log2(3) = 0.63093 (the discount at rank 2); the discount at rank 1 is 1 and at rank 3 is 1/2.
TOL = 1e-4


@pytest.mark.parametrize(
    ("ranked", "relevant", "k", "expected"),
    [
        # Perfect order. DCG = 2/1 + 1/log2(3) = IDCG -> 1.0
        (["d2", "d1"], {"d1": 1, "d2": 2}, 10, 1.0),
        # DCG = 0/1 + 1/log2(3) + 2/log2(4) = 0.63093 + 1.0 = 1.63093
        # IDCG = 2/log2(2) + 1/log2(3) = 2 + 0.63093 = 2.63093 -> 1.63093 / 2.63093 = 0.61991
        (["d3", "d1", "d2"], {"d1": 1, "d2": 2}, 10, 0.61991),
        # Cut at k=2: DCG@2 = 0/1 + 1/log2(3) = 0.63093; IDCG@2 = 2.63093 -> 0.23981
        (["d3", "d1", "d2"], {"d1": 1, "d2": 2}, 2, 0.23981),
        # Binary, the one relevant doc at rank 2: DCG = 1/log2(3) = 0.63093, IDCG = 1 -> 0.63093
        (["a", "b", "c"], {"b": 1}, 10, 0.63093),
        # Linear gain, not 2^rel - 1: DCG = 1/1 + 3/log2(3) = 2.89279; IDCG = 3/1 + 1/log2(3) = 3.63093 -> 0.79671
        # (exponential gain would give (1 + 7*0.63093) / (7 + 0.63093) = 0.70981)
        (["d1", "d2"], {"d1": 1, "d2": 3}, 10, 0.79671),
        # k larger than the list: DCG = 1; IDCG = 1 + 1/log2(3) = 1.63093 -> 0.61315
        (["d1"], {"d1": 1, "d2": 1}, 10, 0.61315),
        # Ideal DCG is cut at k too: IDCG@1 = 1 (one slot), DCG@1 = 1 -> 1.0
        (["a"], {"a": 1, "b": 1, "c": 1}, 1, 1.0),
        # A grade-0 judgment has no gain and does not enter the ideal: DCG = 1/log2(3), IDCG = 1 -> 0.63093
        (["x", "a"], {"x": 0, "a": 1}, 10, 0.63093),
        # Duplicates removed first: [d3, d3, d1, d1, d2] -> [d3, d1, d2], same as the second row -> 0.61991
        (["d3", "d3", "d1", "d1", "d2"], {"d1": 1, "d2": 2}, 10, 0.61991),
        # Relevant doc never retrieved -> DCG = 0 -> 0.0
        (["a", "b"], {"z": 1}, 10, 0.0),
        # Empty ranking -> 0.0
        ([], {"a": 1}, 10, 0.0),
    ],
)
def test_ndcg_at_k_matches_hand_computed_values(ranked, relevant, k, expected):
    assert ndcg_at_k(ranked, relevant, k) == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize("relevant", [{}, {"a": 0}, {"a": 0, "b": 0}], ids=["no-judgments", "one-zero", "all-zero"])
def test_every_metric_is_zero_when_no_document_is_relevant(relevant):
    ranked = ["a", "b"]
    assert ndcg_at_k(ranked, relevant, 10) == 0.0
    assert recall_at_k(ranked, relevant, 10) == 0.0
    assert mrr_at_k(ranked, relevant, 10) == 0.0
    assert hit_at_k(ranked, relevant, 10) == 0.0


@pytest.mark.parametrize(
    ("ranked", "relevant", "k", "expected"),
    [
        # Relevant = {a, c, z}; top 2 = [a, b] holds a -> 1/3
        (["a", "b", "c"], {"a": 1, "c": 1, "z": 1}, 2, 1 / 3),
        # top 3 = [a, b, c] holds a, c -> 2/3
        (["a", "b", "c"], {"a": 1, "c": 1, "z": 1}, 3, 2 / 3),
        # k larger than the list: still a, c of three -> 2/3
        (["a", "b", "c"], {"a": 1, "c": 1, "z": 1}, 100, 2 / 3),
        # Grade-0 entries are not in the denominator: relevant = {a} only -> 1/1
        (["a"], {"a": 1, "b": 0}, 10, 1.0),
        # ... and retrieving a grade-0 doc earns nothing -> 0/1
        (["b"], {"a": 1, "b": 0}, 10, 0.0),
        # Graded relevance counts each relevant doc once: a (grade 3) found of {a, b} -> 1/2
        (["a"], {"a": 3, "b": 1}, 10, 0.5),
        # Duplicates removed first: [a, a, a, b] -> [a, b]; top 2 holds both -> 2/2
        # (without deduplication the top 2 would be [a, a])
        (["a", "a", "a", "b"], {"a": 1, "b": 1}, 2, 1.0),
    ],
)
def test_recall_at_k_matches_hand_computed_values(ranked, relevant, k, expected):
    assert recall_at_k(ranked, relevant, k) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("ranked", "relevant", "k", "expected"),
    [
        # First relevant at rank 1 -> 1/1
        (["a", "b"], {"a": 1, "b": 1}, 10, 1.0),
        # First relevant (c) at rank 3 -> 1/3
        (["a", "b", "c"], {"c": 1}, 10, 1 / 3),
        # ... but outside k=2 -> 0
        (["a", "b", "c"], {"c": 1}, 2, 0.0),
        # Grade-0 doc at rank 1 is not relevant; a at rank 2 -> 1/2
        (["x", "a"], {"x": 0, "a": 1}, 10, 0.5),
        # Duplicates removed first: [x, x, x, a] -> [x, a]; a at rank 2 within k=3 -> 1/2
        # (without deduplication a would be at rank 4, outside k)
        (["x", "x", "x", "a"], {"a": 1}, 3, 0.5),
        # Nothing relevant retrieved -> 0
        (["x", "y"], {"a": 1}, 10, 0.0),
    ],
)
def test_mrr_at_k_matches_hand_computed_values(ranked, relevant, k, expected):
    assert mrr_at_k(ranked, relevant, k) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("ranked", "relevant", "k", "expected"),
    [
        # f is at rank 6: outside the top 5 -> 0, inside the top 6 -> 1
        (["a", "b", "c", "d", "e", "f"], {"f": 1}, 5, 0.0),
        (["a", "b", "c", "d", "e", "f"], {"f": 1}, 6, 1.0),
        # k larger than the list
        (["a"], {"a": 2}, 100, 1.0),
        # Duplicates removed first: [x * 5, a] -> [x, a]; a at rank 2 within k=5 -> 1
        (["x", "x", "x", "x", "x", "a"], {"a": 1}, 5, 1.0),
        # A grade-0 doc is not a hit
        (["x"], {"x": 0}, 5, 0.0),
    ],
)
def test_hit_at_k_matches_hand_computed_values(ranked, relevant, k, expected):
    assert hit_at_k(ranked, relevant, k) == expected


@pytest.mark.parametrize("metric", [ndcg_at_k, recall_at_k, mrr_at_k, hit_at_k])
@pytest.mark.parametrize("k", [0, -1])
def test_metrics_reject_k_below_one(metric, k):
    with pytest.raises(ValueError, match="k must be at least 1"):
        metric(["a"], {"a": 1}, k)


@pytest.mark.parametrize(
    ("ranked", "expected"),
    [
        ([], []),
        (["a", "b", "c"], ["a", "b", "c"]),
        (["a", "b", "a", "c", "b"], ["a", "b", "c"]),
        (["c", "c", "c"], ["c"]),
    ],
)
def test_dedupe_ranking_keeps_first_occurrence_order(ranked, expected):
    assert dedupe_ranking(ranked) == expected


def test_dedupe_ranking_accepts_any_iterable():
    assert dedupe_ranking(doc for doc in "abab") == ["a", "b"]


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        # Position (n-1) * q/100 in the sorted list, interpolated linearly.
        ([1, 2, 3, 4], 50, 2.5),  # position 1.5 -> 2 + 0.5 * (3 - 2)
        ([1, 2, 3, 4], 25, 1.75),  # position 0.75 -> 1 + 0.75 * (2 - 1)
        ([4, 1, 3, 2], 0, 1.0),  # unsorted input; the minimum
        ([4, 1, 3, 2], 100, 4.0),  # the maximum
        ([10, 20], 95, 19.5),  # position 0.95 -> 10 + 0.95 * 10
        ([7], 90, 7.0),  # a single value
    ],
)
def test_percentile_matches_hand_computed_values(values, q, expected):
    assert percentile(values, q) == pytest.approx(expected)


@pytest.mark.parametrize("size", [1, 2, 5, 100, 1001])
def test_percentile_matches_numpy_on_random_data(size):
    rng = np.random.default_rng(size)
    values = rng.exponential(scale=50.0, size=size).tolist()
    for q in [0, 1, 5, 25, 33.3, 50, 75, 90, 95, 99, 99.9, 100]:
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12, abs=1e-12)


def test_percentile_of_empty_sequence_raises():
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)


@pytest.mark.parametrize("q", [-0.1, 100.1])
def test_percentile_rejects_q_outside_0_to_100(q):
    with pytest.raises(ValueError, match="within"):
        percentile([1.0, 2.0], q)


def test_summarise_averages_over_judged_queries_and_scores_missing_runs_as_zero():
    qrels = {
        "q1": {"a": 1},
        "q2": {"b": 1},
        "q3": {"z": 0},  # no relevant doc: excluded from the mean
        "q4": {"c": 1},  # missing from runs: scores 0 everywhere
    }
    runs = {
        "q1": ["x", "a"],  # a at rank 2: nDCG 0.63093, R@10 1, R@100 1, MRR 1/2, hit@5 1
        "q2": [f"n{i}" for i in range(19)] + ["b"],  # b at rank 20: only R@100 = 1
        "q3": ["z"],
        "unjudged": ["a"],  # not in qrels: ignored
    }
    summary = summarise(runs, qrels)
    # Mean over q1, q2, q4 (n = 3):
    assert summary.queries == 3
    assert summary.ndcg_at_10 == pytest.approx(0.63093 / 3, abs=TOL)  # 0.21031
    assert summary.recall_at_10 == pytest.approx(1 / 3)  # (1 + 0 + 0) / 3
    assert summary.recall_at_100 == pytest.approx(2 / 3)  # (1 + 1 + 0) / 3
    assert summary.mrr_at_10 == pytest.approx(1 / 6)  # (1/2 + 0 + 0) / 3
    assert summary.hit_at_5 == pytest.approx(1 / 3)  # (1 + 0 + 0) / 3


def test_summarise_removes_duplicate_passages_of_one_document():
    # Three passages of d1 then d2: as documents [d1, d2], a perfect ranking.
    summary = summarise({"q": ["d1", "d1", "d1", "d2"]}, {"q": {"d1": 2, "d2": 1}})
    assert summary.ndcg_at_10 == pytest.approx(1.0)
    assert summary.recall_at_10 == 1.0


def test_summarise_with_no_judged_queries_is_all_zero():
    summary = summarise({"q": ["a"]}, {"q": {"a": 0}})
    assert summary == MetricSummary(0.0, 0.0, 0.0, 0.0, 0.0, queries=0)


def test_metric_summary_as_dict_has_every_field():
    summary = MetricSummary(0.5, 0.25, 0.75, 0.4, 0.6, queries=7)
    assert summary.as_dict() == {
        "ndcg_at_10": 0.5,
        "recall_at_10": 0.25,
        "recall_at_100": 0.75,
        "mrr_at_10": 0.4,
        "hit_at_5": 0.6,
        "queries": 7,
    }
