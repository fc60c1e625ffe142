"""Pure fusion of ranked lists: reciprocal rank fusion and normalised-score fusion."""

from __future__ import annotations

from operator import itemgetter
from typing import Mapping, Sequence

Ranked = Sequence[tuple[int, float]]


def reciprocal_rank_fusion(lists: Sequence[Ranked], *, k: float = 60.0, weights: Sequence[float] | None = None) -> list[tuple[int, float]]:
    """Fuse ranked lists by summing ``weight / (k + rank)`` (rank from 1) for each id; best first."""
    weights = weights or [1.0] * len(lists)
    fused: dict[int, float] = {}
    for ranked, weight in zip(lists, weights):
        for rank, (item, _) in enumerate(ranked, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))


def min_max(scores: Mapping[int, float]) -> dict[int, float]:
    """Scale scores to [0, 1] by the list's minimum and maximum (all 1.0 when they are equal)."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high == low:
        return {item: 1.0 for item in scores}
    return {item: (score - low) / (high - low) for item, score in scores.items()}


def normalised_score_fusion(
    dense: Mapping[int, float], keyword: Mapping[int, float], *, dense_weight: float
) -> list[tuple[int, float]]:
    """Fuse by ``w * minmax(dense) + (1 - w) * minmax(keyword)``; an id missing from a list scores 0 there.

    Args:
        dense: cosine similarity per candidate (ideally for every candidate of both lists).
        keyword: BM25 score per candidate that matched any query term.
        dense_weight: ``w`` in [0, 1].

    Returns:
        ``(id, fused score in [0, 1])``, best first.
    """
    dense_n, keyword_n = min_max(dense), min_max(keyword)
    items = set(dense_n) | set(keyword_n)
    fused = {i: dense_weight * dense_n.get(i, 0.0) + (1.0 - dense_weight) * keyword_n.get(i, 0.0) for i in items}
    # Best score first, ties by ascending id: sort by id, then stably by score (the order a
    # ``(-score, id)`` key gives, without building a tuple per item).
    ordered = sorted(fused.items())
    ordered.sort(key=itemgetter(1), reverse=True)
    return ordered

