"""Near-identical passages: the same paragraph or example on two pages is one search result naming both places."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

# Word 3-shingles: short enough that one changed word leaves most of a passage's shingles intact, long enough
# that two passages on one subject do not share them by chance.
SHINGLE_WORDS = 3
# Passages whose shingle sets overlap this much (Jaccard) are one result. On documentation where pages include the
# same option lists, passages that repeat one another are mostly cut at other places, so they share only part of
# their text; a rule that needs equal text misses them. See docs/duplicates.md (benchmarks/duplicates.py).
NEAR_IDENTICAL = 0.6

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Place:
    """Another place a result's passage appears: ``text[start:end]`` of document ``source``; lines 1-based."""

    source: str
    start: int
    end: int
    line_start: int
    line_end: int
    page: int | None = None

    def as_dict(self) -> dict:
        """Plain data for JSON, fields in declaration order."""
        return {
            "source": self.source, "start": self.start, "end": self.end, "line_start": self.line_start,
            "line_end": self.line_end, "page": self.page,
        }


def shingles(text: str, size: int = SHINGLE_WORDS) -> frozenset[tuple[str, ...]]:
    """The runs of ``size`` consecutive words in ``text``, case and punctuation ignored (all its words when fewer)."""
    words = _WORD.findall(text.casefold())
    if len(words) <= size:
        return frozenset([tuple(words)])
    return frozenset(tuple(words[i : i + size]) for i in range(len(words) - size + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    """Shared over combined: 1.0 for equal sets, 0.0 for disjoint ones (and for two empty sets)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def near_identical(a: frozenset, b: frozenset, threshold: float = NEAR_IDENTICAL) -> bool:
    """Whether two passages' shingle sets say they are the same text (up to case, punctuation and a few words)."""
    # Sets of very different sizes cannot overlap enough; saying so needs no intersection.
    if min(len(a), len(b)) < threshold * max(len(a), len(b)):
        return False
    return jaccard(a, b) >= threshold


def group_duplicates(texts: Sequence[str], threshold: float = NEAR_IDENTICAL) -> list[list[int]]:
    """Ranked passages in groups of near-identical text, each group led by its best-ranked passage.

    Args:
        texts: passage texts, best first.

    Returns:
        Groups of indexes into ``texts``, in the order of their leaders; each group's later members rank below
        its leader. Without near-identical passages, one group per passage, in rank order.
    """
    sets = [shingles(text) for text in texts]
    groups: list[list[int]] = []
    for index, own in enumerate(sets):
        leader = next((group for group in groups if near_identical(sets[group[0]], own, threshold)), None)
        if leader is None:
            groups.append([index])
        else:
            leader.append(index)
    return groups
