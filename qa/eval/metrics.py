"""Document-level ranking metrics (nDCG, recall, MRR, hit rate) with BEIR / pytrec_eval definitions."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

# Conventions shared by every metric below:
# - `ranked` is the system's ranking of document ids, best first. Duplicates are removed (first occurrence kept)
#   before scoring, so a document retrieved through several passages counts once, at its best rank.
# - `relevant` maps judged document ids to a grade. A document is relevant when its grade is > 0; grades <= 0
#   (judged non-relevant) count as unjudged, as in trec_eval with relevance_level=1.
# - `k` must be >= 1; k larger than the ranking simply uses the whole ranking.


def dedupe_ranking(ranked: Iterable[str]) -> list[str]:
    """Return `ranked` without repeats, keeping the first occurrence of each id in order (passages -> documents)."""
    return list(dict.fromkeys(ranked))


def _top_k(ranked: Iterable[str], k: int) -> list[str]:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return dedupe_ranking(ranked)[:k]


def _positive(relevant: Mapping[str, int]) -> dict[str, int]:
    return {doc: grade for doc, grade in relevant.items() if grade > 0}


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """Normalised discounted cumulative gain at k, as trec_eval's ndcg_cut.k.

    DCG@k = sum over ranks i = 1..k of rel(d_i) / log2(i + 1), with linear gain (the grade itself, not 2^rel - 1).
    The ideal DCG@k applies the same formula to the positive grades sorted in descending order.

    Returns:
        DCG@k / IDCG@k in [0, 1]; 0.0 when no document has a positive grade.
    """
    gains = _positive(relevant)
    top = _top_k(ranked, k)
    ideal = sorted(gains.values(), reverse=True)[:k]
    idcg = sum(grade / math.log2(rank + 1) for rank, grade in enumerate(ideal, start=1))
    if idcg == 0:
        return 0.0
    dcg = sum(gains.get(doc, 0) / math.log2(rank + 1) for rank, doc in enumerate(top, start=1))
    return dcg / idcg


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Share of the relevant documents (grade > 0) that appear in the top k; 0.0 when there are none."""
    positive = _positive(relevant)
    if not positive:
        return 0.0
    found = sum(1 for doc in _top_k(ranked, k) if doc in positive)
    return found / len(positive)


def mrr_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """Reciprocal rank (1 / rank) of the first relevant document within the top k, else 0.0."""
    positive = _positive(relevant)
    for rank, doc in enumerate(_top_k(ranked, k), start=1):
        if doc in positive:
            return 1.0 / rank
    return 0.0


def hit_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """1.0 if any relevant document (grade > 0) is in the top k, else 0.0."""
    positive = _positive(relevant)
    return 1.0 if any(doc in positive for doc in _top_k(ranked, k)) else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks, like numpy.percentile.

    Raises:
        ValueError: if `values` is empty or q is outside [0, 100].
    """
    if not values:
        raise ValueError("percentile of an empty sequence")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be within [0, 100], got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    fraction = position - lower
    return float(ordered[lower] + (ordered[upper] - ordered[lower]) * fraction)


@dataclass
class MetricSummary:
    """Mean document-level metrics over the judged queries of one run."""

    ndcg_at_10: float
    recall_at_10: float
    recall_at_100: float
    mrr_at_10: float
    hit_at_5: float
    queries: int

    def as_dict(self) -> dict[str, float | int]:
        """Return the fields as a plain dict (for JSON output)."""
        return asdict(self)


def summarise(runs: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]) -> MetricSummary:
    """Average every metric over the queries in `qrels` that have at least one relevant document.

    Args:
        runs: query id -> ranked document ids (best first). A judged query missing here scores 0 on every metric.
            Queries in `runs` without judgments are ignored.
        qrels: query id -> {document id: grade}.

    Returns:
        The means, and the number of queries they were taken over (all zeros when that number is 0).
    """
    judged = [qid for qid, relevant in qrels.items() if _positive(relevant)]
    if not judged:
        return MetricSummary(0.0, 0.0, 0.0, 0.0, 0.0, queries=0)
    totals = [0.0] * 5
    for qid in judged:
        ranked, relevant = runs.get(qid, []), qrels[qid]
        scores = (
            ndcg_at_k(ranked, relevant, 10),
            recall_at_k(ranked, relevant, 10),
            recall_at_k(ranked, relevant, 100),
            mrr_at_k(ranked, relevant, 10),
            hit_at_k(ranked, relevant, 5),
        )
        totals = [total + score for total, score in zip(totals, scores)]
    n = len(judged)
    ndcg, recall10, recall100, mrr, hit = (total / n for total in totals)
    return MetricSummary(ndcg, recall10, recall100, mrr, hit, queries=n)


def mean_hit_at_k(runs: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]], k: int) -> float:
    """Mean hit@k over the queries in `qrels` with a relevant document, as `summarise` averages.

    A judged query missing from `runs` counts as a miss; 0.0 when no query is judged.
    """
    judged = [qid for qid, relevant in qrels.items() if _positive(relevant)]
    if not judged:
        return 0.0
    return sum(hit_at_k(runs.get(qid, []), qrels[qid], k) for qid in judged) / len(judged)
