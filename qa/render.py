"""Plain-text rendering of answers and index summaries for the terminal."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Callable

from qa.search import Answer, Citation, Hit

if TYPE_CHECKING:
    from qa.evaluate import EvalReport


def citation_line(citation: Citation) -> str:
    """One line that lets a reader find the passage: source, title, date, characters, lines and (PDF) pages."""
    parts = [f"source: {citation.source}"]
    if citation.title:
        parts.append(f"title: {citation.title}")
    parts.append(f"date: {citation.date or 'unknown'}")
    parts.append(f"chars {citation.start}-{citation.end}")
    lines = f"line {citation.line_start}" if citation.line_start == citation.line_end else f"lines {citation.line_start}-{citation.line_end}"
    parts.append(lines)
    if citation.page is not None:
        same = citation.page_end in (None, citation.page)
        parts.append(f"page {citation.page}" if same else f"pages {citation.page}-{citation.page_end}")
    return " | ".join(parts)


def also_in_line(hit: Hit) -> str | None:
    """Where else the passage is: the document's other paths, then near-identical passages elsewhere; None if
    nowhere."""
    places = list(hit.citation.aliases)
    for place in hit.duplicates:
        lines = f"lines {place.line_start}-{place.line_end}"
        if place.line_start == place.line_end:
            lines = f"line {place.line_start}"
        places.append(f"{place.source} (chars {place.start}-{place.end}, {lines})")
    return f"also in: {'; '.join(places)}" if places else None


def _emphasised(hit: Hit, style: Callable[[str], str]) -> str:
    """The passage with its supporting sentences styled, whitespace folded for the terminal."""
    pieces, cursor = [], hit.citation.start
    for mark in hit.citation.highlight:
        pieces.append(" ".join(hit.text[cursor - hit.citation.start : mark.start - hit.citation.start].split()))
        pieces.append(style(" ".join(hit.text[mark.start - hit.citation.start : mark.end - hit.citation.start].split())))
        cursor = mark.end
    pieces.append(" ".join(hit.text[cursor - hit.citation.start :].split()))
    return " ".join(p for p in pieces if p)


def render_answer(answer: Answer, *, width: int = 100, color: bool = False) -> str:
    """Numbered passages with supporting sentences emphasised, each followed by its citation line.

    Args:
        color: emphasise with terminal bold; otherwise with ``**...**`` markers.
    """
    style = (lambda text: f"\x1b[1m{text}\x1b[0m") if color else (lambda text: f"**{text}**")
    out = [f"Q: {answer.question}"]
    if not answer.results:
        out.append("   (no passages found)")
    elif not answer.answerable:
        out.append(f"   (the documents may not answer this: confidence {answer.confidence:.2f}; closest passages follow)")
    for hit in answer.results:
        wrapped = textwrap.fill(_emphasised(hit, style), width=width, initial_indent="   ", subsequent_indent="   ")
        out.append(f"{hit.rank}. [score {hit.score:.3f}]")
        out.append(wrapped)
        out.append(f"   -- {citation_line(hit.citation)}")
        also = also_in_line(hit)
        if also:
            out.append(f"   -- {also}")
    return "\n".join(out)


def render_eval_table(reports: "list[EvalReport]", *, split: str | None = None) -> str:
    """One row per mode: the quality metrics, latency and mean passage length."""
    header = ["mode", "nDCG@10", "R@10", "R@100", "MRR@10", "hit@5", "queries", "median ms", "p95 ms", "chars", "highlight"]
    rows = [
        [
            r.mode,
            f"{r.metrics.ndcg_at_10:.4f}",
            f"{r.metrics.recall_at_10:.4f}",
            f"{r.metrics.recall_at_100:.4f}",
            f"{r.metrics.mrr_at_10:.4f}",
            f"{r.metrics.hit_at_5:.4f}",
            str(r.metrics.queries),
            f"{r.latency_median_ms:.1f}",
            f"{r.latency_p95_ms:.1f}",
            f"{r.mean_passage_chars:.0f}",
            "-" if r.highlight_accuracy is None else f"{r.highlight_accuracy:.3f}",
        ]
        for r in reports
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [f"dataset: {reports[0].dataset}" + (f" (split {split})" if split else "") if reports else "no results"]
    for row in [header, *rows]:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    return "\n".join(lines)
