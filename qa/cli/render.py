"""Plain-text rendering of answers and index summaries for the terminal."""

from __future__ import annotations

import re
import textwrap
from typing import TYPE_CHECKING, Callable

from qa.search.service import Answer, Citation, Hit

if TYPE_CHECKING:
    from qa.eval.evaluate import EvalReport
    from qa.index.info import IndexInfo


# What a terminal may act on rather than show: C0 controls, DEL and C1 controls (ESC and CSI start escape
# sequences; CR and backspace overwrite what was printed), plus the line separators and bidirectional overrides
# and isolates that can make one line look like another. Passage text keeps its newlines and tabs.
_UNSAFE_IN_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_IN_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    char = match.group()
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def safe_line(value: object) -> str:
    """``value`` as one printable line for a terminal: control characters written as escapes (``\\x1b``,
    ``\\n``), so a title or file name can neither drive the terminal nor forge another line."""
    return _UNSAFE_IN_LINE.sub(_escape, str(value))


def safe_text(value: str) -> str:
    """Passage text for a terminal: like ``safe_line``, but newlines and tabs are kept as they are."""
    return _UNSAFE_IN_TEXT.sub(_escape, value)


def citation_line(citation: Citation) -> str:
    """One line that lets a reader find the passage: source, title, section, date, characters, lines and (PDF)
    pages."""
    parts = [f"source: {safe_line(citation.source)}" + (f"#{safe_line(citation.anchor)}" if citation.anchor else "")]
    if citation.title:
        parts.append(f"title: {safe_line(citation.title)}")
    if citation.section:
        parts.append(f"section: {safe_line(citation.section)}")
    date = safe_line(citation.date or "unknown")
    if citation.date and citation.date_source == "file":
        date += " (file modified)"
    parts.append(f"date: {date}")
    parts.append(f"chars {citation.start}-{citation.end}")
    lines = (
        f"line {citation.line_start}"
        if citation.line_start == citation.line_end
        else f"lines {citation.line_start}-{citation.line_end}"
    )
    parts.append(lines)
    if citation.page is not None:
        same = citation.page_end in (None, citation.page)
        parts.append(f"page {citation.page}" if same else f"pages {citation.page}-{citation.page_end}")
    return " | ".join(parts)


def also_in_line(hit: Hit) -> str | None:
    """Where else the passage is: the document's other paths, then near-identical passages elsewhere; None if
    nowhere."""
    places = [safe_line(alias) for alias in hit.citation.aliases]
    for place in hit.duplicates:
        lines = f"lines {place.line_start}-{place.line_end}"
        if place.line_start == place.line_end:
            lines = f"line {place.line_start}"
        places.append(f"{safe_line(place.source)} (chars {place.start}-{place.end}, {lines})")
    return f"also in: {'; '.join(places)}" if places else None


def _emphasised(hit: Hit, style: Callable[[str], str]) -> str:
    """The passage with its supporting sentences styled, line breaks kept as written (a style never spans
    a line break, so each line stands alone), and control characters of the document escaped (before styling
    adds the terminal's own)."""
    pieces, cursor, base = [], hit.citation.start, hit.citation.start
    for mark in hit.citation.highlight:
        pieces.append(safe_text(hit.text[cursor - base : mark.start - base]))
        marked = safe_text(hit.text[mark.start - base : mark.end - base])
        pieces.append("\n".join(style(line) if line.strip() else line for line in marked.split("\n")))
        cursor = mark.end
    pieces.append(safe_text(hit.text[cursor - base :]))
    return "".join(pieces)


def _indented(text: str, width: int, indent: str = "   ") -> str:
    """Each line of ``text`` wrapped to ``width`` on its own, keeping its leading spaces (code stays aligned);
    blank lines kept, trailing blank lines dropped."""
    out = []
    for line in text.rstrip().split("\n"):
        if not line.strip():
            out.append("")
            continue
        lead = indent + line[: len(line) - len(line.lstrip())].replace("\t", "    ")
        out.append(
            textwrap.fill(
                line.strip(),
                width=width,
                initial_indent=lead,
                subsequent_indent=lead,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return "\n".join(out)


def render_answer(answer: Answer, *, width: int = 100, color: bool = False) -> str:
    """Numbered passages with supporting sentences emphasised, each followed by its citation line.

    Args:
        color: emphasise with terminal bold; otherwise with ``**...**`` markers.
    """
    style = (lambda text: f"\x1b[1m{text}\x1b[0m") if color else (lambda text: f"**{text}**")
    out = [f"Q: {safe_line(answer.question)}"]
    if answer.excluded_undated:
        n = answer.excluded_undated
        out.append(f"   ({n} undated document{'s were' if n != 1 else ' was'} left out by the date filter)")
    if not answer.results:
        out.append("   (no passages found)")
    elif not answer.answerable:
        out.append(
            f"   (the documents may not answer this: confidence {answer.confidence:.2f}; closest passages follow)"
        )
    for hit in answer.results:
        out.append(f"{hit.rank}. [score {hit.score:.3f}]")
        out.append(_indented(_emphasised(hit, style), width))
        out.append(f"   -- {citation_line(hit.citation)}")
        also = also_in_line(hit)
        if also:
            out.append(f"   -- {also}")
    return "\n".join(out)


def render_eval_table(reports: "list[EvalReport]", *, split: str | None = None) -> str:
    """One row per mode: the quality metrics, latency and mean passage length (question sets: hit@1/3, doc hit@5)."""
    header = [
        "mode",
        "nDCG@10",
        "R@10",
        "R@100",
        "MRR@10",
        "hit@5",
        "queries",
        "median ms",
        "p95 ms",
        "chars",
        "highlight",
    ]
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
    if any(r.questions is not None for r in reports):
        # Question sets: passage hit@1/3 and page-level hit@5 join the row (BEIR tables stay as they were).
        header += ["hit@1", "hit@3", "doc hit@5"]
        for row, r in zip(rows, reports):
            figures = r.questions
            row += (
                ["-"] * 3
                if figures is None
                else [f"{figures.hit_at_1:.4f}", f"{figures.hit_at_3:.4f}", f"{figures.doc_hit_at_5:.4f}"]
            )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [f"dataset: {reports[0].dataset}" + (f" (split {split})" if split else "") if reports else "no results"]
    for row in [header, *rows]:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    return "\n".join(lines)


def render_info(info: IndexInfo) -> str:
    """`qa info`'s text: the index, model, chunking and contents, then a line per document and per skipped file."""
    manifest = info.manifest
    # Every value printed below comes from documents or the manifest: each is escaped to one safe line.
    chunking = {key: safe_line(value) for key, value in manifest.chunking.items()}
    lines = [
        f"index:     {safe_line(info.index_dir)} (format {manifest.format_version}, "
        f"built {safe_line(manifest.created)})",
        f"model:     {safe_line(manifest.model)} ({manifest.dimension} dimensions, cosine; embedded with "
        f"{safe_line(manifest.encoder.get('backend'))} {safe_line(manifest.encoder.get('precision'))}; "
        f"{safe_line(manifest.vectors.get('kind', 'exact'))} vector search)",
        f"chunking:  {chunking['size']} tokens, overlap {chunking['overlap']} ({chunking['splitter']})",
        f"corpus:    {safe_line(manifest.corpus.get('root'))}",
    ]
    folded = manifest.counts.get("duplicates", 0)
    lines.append(
        f"contents:  {manifest.counts['documents']} documents, {manifest.counts['chunks']} passages, "
        f"{len(info.skipped)} skipped" + (f", {folded} identical files folded into others" if folded else "")
    )
    if len(manifest.segments) > 1:
        hidden = sum(int(s.get("hidden_chunks", 0)) for s in manifest.segments)
        lines.append(
            f"segments:  {len(manifest.segments)} (updates added them; {hidden} replaced passages still in "
            "their files until a merge: `qa index --merge`)"
        )
    for doc_id, meta, n in info.documents:
        lines.append(
            f"  {safe_line(doc_id)}  [{safe_line(meta.date or 'no date')}, {n} passages]  "
            f"{safe_line(meta.title or '(no title)')}"
        )
    lines.extend(f"  skipped {safe_line(s.doc_id)}: {safe_line(s.reason)}" for s in info.skipped)
    return "\n".join(lines)
