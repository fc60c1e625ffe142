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
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "line_start": self.line_start,
            "line_end": self.line_end,
            "page": self.page,
        }


def shingles(text: str, size: int = SHINGLE_WORDS) -> frozenset[tuple[str, ...]]:
    """The runs of ``size`` consecutive words in ``text``, case and punctuation ignored (all its words when fewer)."""
    words = _WORD.findall(text.casefold())
    if len(words) <= size:
        return frozenset([tuple(words)])
    return frozenset(zip(*(words[i:] for i in range(size))))


def jaccard(a: frozenset, b: frozenset) -> float:
    """Shared over combined: 1.0 for equal sets, 0.0 for disjoint ones (and for two empty sets)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def group_duplicates(texts: Sequence[str], threshold: float = NEAR_IDENTICAL) -> list[list[int]]:
    """Ranked passages in groups of near-identical text, each group led by its best-ranked passage.

    A passage joins the best-ranked group whose leader's shingles and its own have a :func:`jaccard` of at least
    ``threshold``: the same text up to case, punctuation, a few words and where the passage was cut.

    Args:
        texts: passage texts, best first.

    Returns:
        Groups of indexes into ``texts``, in the order of their leaders; each group's later members rank below
        its leader. Without near-identical passages, one group per passage, in rank order.
    """
    sets = [shingles(text) for text in texts]
    groups: list[list[int]] = []
    # Shingle -> the groups whose leader has it: a passage is compared only with leaders it shares shingles with,
    # counted in one pass over its own shingles instead of a set intersection per leader.
    holders: dict[tuple[str, ...], list[int]] = {}
    for index, own in enumerate(sets):
        shared: dict[int, int] = {}
        for shingle in own:
            for group in holders.get(shingle, ()):
                shared[group] = shared.get(group, 0) + 1
        leader = next(
            (g for g in sorted(shared) if shared[g] / (len(own) + len(sets[groups[g][0]]) - shared[g]) >= threshold),
            None,
        )
        if leader is not None:
            groups[leader].append(index)
            continue
        for shingle in own:
            holders.setdefault(shingle, []).append(len(groups))
        groups.append([index])
    return groups
