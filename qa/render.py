"""Plain-text rendering of answers and index summaries for the terminal."""

from __future__ import annotations

import textwrap

from qa.search import Answer, Citation


def citation_line(citation: Citation) -> str:
    """One line that lets a reader find the passage: source, title, date, characters and lines."""
    parts = [f"source: {citation.source}"]
    if citation.title:
        parts.append(f"title: {citation.title}")
    parts.append(f"date: {citation.date or 'unknown'}")
    parts.append(f"chars {citation.start}-{citation.end}")
    lines = f"line {citation.line_start}" if citation.line_start == citation.line_end else f"lines {citation.line_start}-{citation.line_end}"
    parts.append(lines)
    return " | ".join(parts)


def render_answer(answer: Answer, *, width: int = 100) -> str:
    """Numbered passages, each followed by its citation line."""
    out = [f"Q: {answer.question}"]
    if not answer.results:
        out.append("   (no passages found)")
    for hit in answer.results:
        # Passages keep their words; only line breaks and runs of spaces are folded for the terminal.
        body = " ".join(hit.text.split())
        wrapped = textwrap.fill(body, width=width, initial_indent="   ", subsequent_indent="   ")
        out.append(f"{hit.rank}. [score {hit.score:.3f}]")
        out.append(wrapped)
        out.append(f"   -- {citation_line(hit.citation)}")
    return "\n".join(out)
