"""Pure fusion of ranked lists: reciprocal rank fusion and normalised-score fusion."""

from __future__ import annotations

import heapq
from operator import itemgetter
from typing import Mapping, Sequence

Ranked = Sequence[tuple[int, float]]


def reciprocal_rank_fusion(
    lists: Sequence[Ranked], *, k: float = 60.0, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """Fuse ranked lists by summing ``weight / (k + rank)`` (rank from 1) for each id; best first."""
    weights = weights or [1.0] * len(lists)
    fused: dict[int, float] = {}
    for ranked, weight in zip(lists, weights):
        for rank, (item, _) in enumerate(ranked, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))


def min_max(scores: Mapping[int, float]) -> dict[int, float]:
    """Scale scores to [0, 1] by the list's minimum and maximum (all 1.0 when they are equal)."""
    return window_min_max(scores, 0)


def window_min_max(scores: Mapping[int, float], window: int) -> dict[int, float]:
    """Scale scores so the best is 1.0 and the ``window``-th best 0.0; scores below the window go below 0.

    The scale is set by the head of the list alone, so it does not change with how deep the list was fetched
    or with low scores added for candidates another list brought in. Plain min-max (the lowest score at 0.0;
    all 1.0 when every score is equal) when ``window`` is 0, when the list is no longer than the window, or when
    the window's scores are all equal.
    """
    if not scores:
        return {}
    high, low = max(scores.values()), min(scores.values())
    if 0 < window < len(scores):
        window_low = heapq.nlargest(window, scores.values())[-1]
        low = window_low if window_low < high else low
    if high == low:
        return {item: 1.0 for item in scores}
    return {item: (score - low) / (high - low) for item, score in scores.items()}


def normalised_score_fusion(
    dense: Mapping[int, float], keyword: Mapping[int, float], *, dense_weight: float, window: int = 0
) -> list[tuple[int, float]]:
    """Fuse by ``w * norm(dense) + (1 - w) * norm(keyword)``, each list scaled by ``window_min_max``.

    An id missing from a list scores that list's lowest scaled score there (0 with plain min-max).

    Args:
        dense: cosine similarity per candidate (ideally for every candidate of both lists).
        keyword: BM25 score per candidate that matched any query term.
        dense_weight: ``w`` in [0, 1].
        window: scale each list by its best and its ``window``-th best score; 0 for its best and lowest.

    Returns:
        ``(id, fused score)``, best first; at most 1, and at least 0 when no list is longer than the window.
    """
    dense_n, keyword_n = window_min_max(dense, window), window_min_max(keyword, window)
    # Missing from a list ranks below everything the list returned.
    dense_floor, keyword_floor = min(dense_n.values(), default=0.0), min(keyword_n.values(), default=0.0)
    items = set(dense_n) | set(keyword_n)
    fused = {
        i: dense_weight * dense_n.get(i, dense_floor) + (1.0 - dense_weight) * keyword_n.get(i, keyword_floor)
        for i in items
    }
    # Best score first, ties by ascending id: sort by id, then stably by score (the order a
    # ``(-score, id)`` key gives, without building a tuple per item).
    ordered = sorted(fused.items())
    ordered.sort(key=itemgetter(1), reverse=True)
    return ordered
