"""Where a passage sits in its document: the path of headings above it and the nearest element id (anchor)."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import replace
from typing import Sequence

from qa.ingest.formats import Heading
from qa.text.chunking import Chunk

# Between the headings of a section path, as people write breadcrumbs.
SEPARATOR = " › "


def heading_paths(headings: Sequence[Heading]) -> list[str]:
    """For each heading, the path from its outermost enclosing heading down to it (``"A › B › C"``).

    A heading encloses the ones after it until a heading of its level or an outer one; levels may skip (h1 then
    h3), and a deeper heading with nothing between is simply nested.
    """
    stack: list[Heading] = []
    paths = []
    for heading in headings:
        while stack and stack[-1].level >= heading.level:
            stack.pop()
        stack.append(heading)
        paths.append(SEPARATOR.join(h.title for h in stack if h.title))
    return paths


def _body_start(text: str, chunk: Chunk, heading_starts: set[int]) -> int:
    """Where the chunk's own content starts: past the heading lines it opens with, so a passage that begins
    with a chapter heading and its first sub-heading belongs to the sub-heading."""
    point = chunk.start
    while point in heading_starts:
        line_end = text.find("\n", point, chunk.end)
        if line_end < 0:
            break
        following = line_end + 1
        while following < chunk.end and text[following] in " \t\n":
            following += 1
        if following >= chunk.end:
            break
        point = following
    return point


def place(
    text: str, chunks: Sequence[Chunk], headings: Sequence[Heading], anchors: Sequence[tuple[int, str]]
) -> list[Chunk]:
    """``chunks`` with ``section`` and ``anchor`` set from the document's headings and element ids.

    The section is the path of the innermost heading at or before the chunk's content; the anchor is the id
    nearest before it: the last element id, or that heading's own, whichever is later. Both stay None where
    the document has neither.
    """
    if not headings and not anchors:
        return list(chunks)
    paths = heading_paths(headings)
    heading_starts = [h.start for h in headings]
    starts_set = set(heading_starts)
    anchor_offsets = [offset for offset, _ in anchors]
    placed = []
    for chunk in chunks:
        point = _body_start(text, chunk, starts_set)
        h = bisect_right(heading_starts, point) - 1
        section = paths[h] if h >= 0 and paths[h] else None
        a = bisect_right(anchor_offsets, point) - 1
        found = [anchors[a]] if a >= 0 else []
        heading_anchor = headings[h].anchor if h >= 0 else None
        if heading_anchor:
            found.append((headings[h].start, heading_anchor))
        anchor = max(found, key=lambda pair: pair[0])[1] if found else None
        placed.append(replace(chunk, section=section, anchor=anchor))
    return placed
