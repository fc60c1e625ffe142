"""Retrieval quality on real documentation: one row of figures for the labelled questions over the docs corpus.

    python benchmarks/docs_corpus.py --out /tmp/docs-corpus
    python benchmarks/docs_quality.py --corpus /tmp/docs-corpus --index /tmp/docs-index [--mode hybrid]
        [--questions benchmarks/data/docs_questions.jsonl] [--per-question results.json] [--compare old.json]

Builds (or reuses, while it matches the corpus and settings) an index of the corpus with the ``qa`` this
script imports, asks every question through the search service, and prints: passages indexed, mean passage
characters (over every indexed passage, and over the top 5 shown per question), passage hit@1/3/5 and
MRR@10 (a passage from the answering document that contains the labelled phrase), page hit@5 (a passage
from the answering document among the top 5, whatever it holds), the boilerplate passage share, how many
questions get a boilerplate passage first, and how many answer phrases survive in the indexed document
text and inside a single passage. Then the 10 worst-ranked questions with what ranked first.
``--per-question`` saves each question's ranks and top hit as JSON, and ``--compare`` lists the questions
whose passage rank moved since such a file.

Boilerplate is judged from the raw files with this script's own HTML parser, never with qa's extractor
(which is what changes between runs):
- a *navigation fragment* of a page is the text of an ``<a>`` element inside navigation markup (``nav``,
  ``header``, ``footer``, ``aside`` elements, or an element with a class or role starting or ending with
  nav, toc, sidebar, header, footer, menu, breadcrumb or related, or an id with such a word as one of its
  ``-``/``_`` parts), plus every line and every text node inside such markup other than a header or an
  aside (``header``, id="header", ``aside``: they often hold the page's title and summary, or a prose sidebar);
- a *template line* of a site (the corpus' top-level folder) is a line of text, as this parser splits
  pages into lines at block elements, found on at least 20% (and two or more) of that site's HTML pages
  (sites of 5 or more);
- a passage line is boilerplate when its words can be cut, in order, into navigation fragments of its
  own page and template lines of its site (so it does not matter how the extractor joined them);
- a passage is boilerplate when more than half of its characters (whitespace aside) lie on boilerplate
  lines: weighing by characters keeps a passage of option names with their descriptions, or a heading over
  a paragraph, out. Passages of PDFs and text files never are; a gzipped page (`page.html.gz`) is judged as the
  page it holds. The share is over all passages.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qa.eval.evaluate import EvalReport

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "benchmarks" / "data" / "docs_questions.jsonl"
HTML_SUFFIXES = (".html", ".htm", ".html.gz", ".htm.gz")
TEMPLATE_SHARE = 0.2
TEMPLATE_MIN_PAGES = 5
WORST = 10
_NAV_WORDS = ("nav", "toc", "sidebar", "header", "footer", "menu", "breadcrumb", "related")
_NAV_TAGS = {"nav", "header", "footer", "aside"}
_BLOCK_TAGS = {
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "br",
    "caption",
    "dd",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "tbody",
    "thead",
    "tfoot",
    "tr",
    "ul",
}
_SKIPPED_TAGS = {"script", "style", "noscript", "template", "head"}
_VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def normalise(line: str) -> str:
    """A line with its whitespace runs folded to single spaces and trimmed."""
    return " ".join(line.split())


@dataclass
class _Open:
    """An open element: its tag and what kind of navigation region it starts (if any)."""

    tag: str
    nav_text: bool = False
    nav_links: bool = False


@dataclass
class PageParts:
    """What the boilerplate test needs from one raw HTML page: its lines and its navigation fragments."""

    lines: list[str] = field(default_factory=list)
    nav_fragments: set[str] = field(default_factory=set)


class _PageParser(HTMLParser):
    """Split a page into lines at block elements and collect the text of its navigation markup."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts = PageParts()
        self._stack: list[_Open] = []
        self._line: list[str] = []
        self._nav_line: list[str] = []
        self._link: list[str] | None = None

    def _in(self, attribute: str) -> bool:
        return any(getattr(element, attribute) for element in self._stack)

    def _break(self) -> None:
        for buffer, target in ((self._line, None), (self._nav_line, self.parts.nav_fragments)):
            text = normalise("".join(buffer))
            if text:
                self.parts.lines.append(text) if target is None else target.add(text)
            buffer.clear()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        region = navigation_region(tag, f"{values.get('class', '')} {values.get('role', '')}", values.get("id", ""))
        if tag in _BLOCK_TAGS:
            self._break()
        elif tag in ("td", "th"):
            self.handle_data(" ")
        if tag == "a" and self._in("nav_links"):
            self._link = []
        if tag not in _VOID_TAGS:
            self._stack.append(_Open(tag, nav_text=region == "text", nav_links=region is not None))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._link is not None:
            text = normalise("".join(self._link))
            if text:
                self.parts.nav_fragments.add(text)
            self._link = None
        if any(element.tag == tag for element in self._stack):
            while self._stack and self._stack.pop().tag != tag:
                pass
        if tag in _BLOCK_TAGS:
            self._break()

    def handle_data(self, data: str) -> None:
        if any(element.tag in _SKIPPED_TAGS for element in self._stack):
            return
        in_pre = any(element.tag == "pre" for element in self._stack)
        pieces = data.split("\n") if in_pre else [data.replace("\n", " ")]
        for number, piece in enumerate(pieces):
            if number:
                self._break()
            self._line.append(piece)
            if self._in("nav_text"):
                self._nav_line.append(piece)
                # Each text node on its own too: extractors may put table cells or spans on lines of their own.
                if normalise(piece):
                    self.parts.nav_fragments.add(normalise(piece))
            if self._link is not None:
                self._link.append(piece)

    def close(self) -> None:
        super().close()
        self._break()


def navigation_region(tag: str, classes: str, element_id: str = "") -> str | None:
    """What an element holds of navigation: "text" (all its text), "links" (its links only) or None.

    Args:
        classes: the element's class and role values, space-separated; one names navigation when it starts
            or ends with a navigation word ("navheader", "sphinxsidebar", "mainmenu") and does not start with
            "no-" ("no-sidebar").
        element_id: the id; it names navigation only when one of its ``-``/``_`` parts is such a word, since
            ids of content sections are made from their titles ("toctree-directive").
    """
    # A header often holds the page's own title and summary, an aside a prose sidebar (reST's sidebar directive).
    if tag in ("header", "aside"):
        return "links"
    if tag in _NAV_TAGS:
        return "text"
    # A class of the "no-sidebar" kind says the element has none (the Apache manual's <body class="no-sidebar">).
    names = [name for name in classes.lower().split() if not name.startswith("no-")]
    matched = [name for name in names if name.startswith(_NAV_WORDS) or name.endswith(_NAV_WORDS)]
    matched += [part for part in re.split(r"[-_\s]+", element_id.lower()) if part in _NAV_WORDS + ("navigation",)]
    if not matched:
        return None
    # A header (id="header", class="page-header") often holds the page's own title and summary.
    headers_only = all("header" in name and "nav" not in name for name in matched)
    return "links" if headers_only else "text"


def parse_page(raw: bytes) -> PageParts:
    """The lines and navigation fragments of one raw HTML page (decoded as UTF-8, bad bytes replaced)."""
    parser = _PageParser()
    parser.feed(raw.decode("utf-8", errors="replace"))
    parser.close()
    return parser.parts


def _page_bytes(path: Path) -> bytes:
    """A page's raw HTML, decompressed when it is stored gzipped (``page.html.gz``, as Debian ships large ones)."""
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.name.lower().endswith(".gz") else raw


def site_of(doc_id: str) -> str:
    """The site a corpus file belongs to: its top-level folder."""
    return doc_id.split("/", 1)[0]


class BoilerplateDetector:
    """Judge passages against the raw HTML pages they came from (see the module docstring for the rule)."""

    def __init__(self, pages: dict[str, PageParts]) -> None:
        self._pages = pages
        self._templates = _template_lines(pages)
        self._fragments: dict[str, tuple[set[tuple[str, ...]], int]] = {}

    @classmethod
    def from_corpus(cls, root: Path, doc_ids: list[str]) -> "BoilerplateDetector":
        """Parse every HTML file among ``doc_ids`` under ``root``."""
        return cls(
            {
                doc_id: parse_page(_page_bytes(root / doc_id))
                for doc_id in doc_ids
                if doc_id.lower().endswith(HTML_SUFFIXES)
            }
        )

    def template_lines(self, site: str) -> set[str]:
        """The lines found on at least 20% of the site's pages (empty for sites under 5 pages)."""
        return self._templates.get(site, set())

    def line_is_boilerplate(self, doc_id: str, line: str) -> bool:
        """Whether the line's words can be cut, in order, into its page's nav fragments and site's template lines."""
        words = line.split()
        if not words or doc_id not in self._pages:
            return False
        fragments, longest = self._fragments_of(doc_id)
        reachable = [True] + [False] * len(words)
        for start in range(len(words)):
            if not reachable[start]:
                continue
            for end in range(start + 1, min(len(words), start + longest) + 1):
                if tuple(words[start:end]) in fragments:
                    reachable[end] = True
        return reachable[-1]

    def is_boilerplate(self, doc_id: str, passage: str) -> bool:
        """Whether more than half of the passage's characters (whitespace aside) lie on boilerplate lines."""
        if doc_id not in self._pages:
            return False
        weights = [
            (len("".join(line.split())), self.line_is_boilerplate(doc_id, line)) for line in passage.splitlines()
        ]
        total = sum(weight for weight, _flagged in weights)
        return total > 0 and 2 * sum(weight for weight, flagged in weights if flagged) > total

    def _fragments_of(self, doc_id: str) -> tuple[set[tuple[str, ...]], int]:
        if doc_id not in self._fragments:
            texts = self._pages[doc_id].nav_fragments | self.template_lines(site_of(doc_id))
            fragments = {tuple(text.split()) for text in texts if text.split()}
            self._fragments[doc_id] = fragments, max((len(f) for f in fragments), default=0)
        return self._fragments[doc_id]


def _template_lines(pages: dict[str, PageParts]) -> dict[str, set[str]]:
    """Per site, the lines on at least TEMPLATE_SHARE of its pages (and on two or more)."""
    by_site: dict[str, list[PageParts]] = {}
    for doc_id, parts in pages.items():
        by_site.setdefault(site_of(doc_id), []).append(parts)
    templates: dict[str, set[str]] = {}
    for site, site_pages in by_site.items():
        if len(site_pages) < TEMPLATE_MIN_PAGES:
            continue
        counts = Counter(line for parts in site_pages for line in set(parts.lines))
        least = max(2.0, TEMPLATE_SHARE * len(site_pages))  # a line on one page is that page's own
        templates[site] = {line for line, pages_with in counts.items() if pages_with >= least}
    return templates


def boilerplate_share(detector: BoilerplateDetector, passages: list[tuple[str, str]]) -> float:
    """Share of ``(doc_id, text)`` passages judged boilerplate; 0.0 for none."""
    if not passages:
        return 0.0
    return sum(detector.is_boilerplate(doc_id, text) for doc_id, text in passages) / len(passages)


def first_rank(ranking: list[str], wanted) -> int | None:
    """1-based rank of the first entry for which ``wanted(entry)`` holds, or None."""
    return next((rank for rank, entry in enumerate(ranking, start=1) if wanted(entry)), None)


def per_question(dataset, report, service, mode: str, detector: BoilerplateDetector) -> list[dict]:
    """Each question's passage rank, page rank and top hit (and whether it is boilerplate), from the report's
    rankings plus one top-1 search."""
    from qa.eval.evaluate import PHRASE_MATCH

    rows = []
    for query in dataset.queries:
        document = next(iter(query.relevant))
        top = service.search(query.text, 1, mode=mode, highlights=False).results
        rows.append(
            {
                "id": query.id,
                "question": query.text,
                "document": document,
                "phrase": query.phrase,
                "passage_rank": first_rank(report.runs.get(query.id, []), lambda entry: entry == PHRASE_MATCH),
                "page_rank": first_rank(
                    report.document_runs.get(query.id, []), lambda source, document=document: source == document
                ),
                "top_source": top[0].citation.source if top else None,
                "top_text": " ".join(top[0].text.split())[:200] if top else None,
                "top_is_boilerplate": bool(top) and detector.is_boilerplate(top[0].citation.source, top[0].text),
            }
        )
    return rows


def _sort_key_worst(row: dict) -> tuple[float, float]:
    missing = float("inf")
    return (row["passage_rank"] or missing, row["page_rank"] or missing)


def phrase_presence(dataset, store, passages_by_doc: dict[str, list[str]]) -> tuple[int, int, int]:
    """(phrases in their document's indexed text, phrases inside one passage of it, questions)."""
    in_text = in_passage = 0
    for query in dataset.queries:
        document = next(iter(query.relevant))
        stored = store.document(document)
        if stored is not None and query.phrase and query.phrase in stored.text:
            in_text += 1
        if query.phrase and any(query.phrase in text for text in passages_by_doc.get(document, [])):
            in_passage += 1
    return in_text, in_passage, len(dataset.queries)


@dataclass
class Measurement:
    """Everything one run prints: the eval report, the passages, the boilerplate share and per-question rows."""

    mode: str
    report: "EvalReport"
    passages: list[tuple[str, str]]
    boilerplate_share: float
    phrases_in_text: int
    phrases_in_a_passage: int
    questions: list[dict]

    def summary(self) -> dict:
        """The run as plain data for ``--per-question`` (figures first, then one entry per question)."""
        return {
            "mode": self.mode,
            "passages": len(self.passages),
            "mean_chars_all": round(self.mean_chars(), 1),
            "boilerplate_share": round(self.boilerplate_share, 4),
            "phrases_in_text": self.phrases_in_text,
            "phrases_in_a_passage": self.phrases_in_a_passage,
            **self.report.as_dict(),
            "questions": self.questions,
        }

    def mean_chars(self) -> float:
        """Mean characters over every indexed passage."""
        return sum(len(text) for _doc, text in self.passages) / len(self.passages) if self.passages else 0.0


def measure(corpus: Path, questions: Path, index: Path | None, mode: str) -> Measurement:
    """Index the corpus (or reuse ``index``), ask every question and judge every passage."""
    from qa.config import Settings
    from qa.embed.encoder import DEFAULT_MODEL, load_encoder
    from qa.eval.datasets import load_dataset
    from qa.eval.evaluate import BEIR_PASSAGES, evaluate
    from qa.search.service import SearchService

    settings = Settings.from_env()
    encoder = load_encoder(DEFAULT_MODEL, settings.encoder, precision=settings.precision, cache_dir=settings.cache_dir)
    dataset = load_dataset(questions, corpus=corpus)
    with tempfile.TemporaryDirectory(prefix="docs-quality-") as scratch:
        index_dir = index or Path(scratch) / "index"
        log = lambda message: print(message, file=sys.stderr)  # noqa: E731
        (report,) = evaluate(dataset, settings, encoder, [mode], index_dir=index_dir, log=log)
        service = SearchService.open(replace(settings, index_dir=index_dir, max_top_k=BEIR_PASSAGES), encoder=encoder)
        passages = [(chunk.doc_id, chunk.text) for chunk, _tokens in service.store.iter_chunks()]
        passages_by_doc: dict[str, list[str]] = {}
        for doc_id, text in passages:
            passages_by_doc.setdefault(doc_id, []).append(text)
        detector = BoilerplateDetector.from_corpus(corpus, sorted(passages_by_doc))
        in_text, in_passage, _total = phrase_presence(dataset, service.store, passages_by_doc)
        rows = per_question(dataset, report, service, mode, detector)
    return Measurement(mode, report, passages, boilerplate_share(detector, passages), in_text, in_passage, rows)


def render_row(run: Measurement) -> str:
    """The header and the one row of figures."""
    report, figures, total = run.report, run.report.questions, len(run.questions)
    header = [
        "mode",
        "passages",
        "chars",
        "top5 chars",
        "hit@1",
        "hit@3",
        "hit@5",
        "MRR@10",
        "doc hit@5",
        "boilerplate",
        "boilerplate first",
        "phrase in text",
        "phrase in a passage",
    ]
    row = [
        run.mode,
        str(len(run.passages)),
        f"{run.mean_chars():.0f}",
        f"{report.mean_passage_chars:.0f}",
        f"{figures.hit_at_1:.3f}",
        f"{figures.hit_at_3:.3f}",
        f"{report.metrics.hit_at_5:.3f}",
        f"{report.metrics.mrr_at_10:.3f}",
        f"{figures.doc_hit_at_5:.3f}",
        f"{run.boilerplate_share:.2%}",
        f"{sum(item['top_is_boilerplate'] for item in run.questions)}/{total}",
        f"{run.phrases_in_text}/{total}",
        f"{run.phrases_in_a_passage}/{total}",
    ]
    widths = [max(len(a), len(b)) for a, b in zip(header, row)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)) for line in (header, row))


def render_worst(rows: list[dict], depth: int, count: int = WORST) -> str:
    """The ``count`` worst-ranked questions, each with the passage that ranked first instead."""
    lines = [f"worst {count} questions (passage rank/page rank; '-' = not in the top {depth}):"]
    for item in sorted(rows, key=_sort_key_worst, reverse=True)[:count]:
        ranks = f"{item['passage_rank'] or '-'}/{item['page_rank'] or '-'}"
        lines.append(f"{item['id']:10} {ranks:7} {item['question']}")
        first = f"{item['top_source']}: {(item['top_text'] or '')[:140]!r}"
        lines.append(f"{'':18} want {item['document']}; first: {first}")
    return "\n".join(lines)


def render_changes(rows: list[dict], previous: dict) -> str:
    """Questions whose passage rank moved since a ``--per-question`` file of an earlier run."""
    before = {item["id"]: item["passage_rank"] for item in previous.get("questions", [])}
    missing = float("inf")
    moved = [
        (item["id"], before[item["id"]], item["passage_rank"])
        for item in rows
        if item["id"] in before and before[item["id"]] != item["passage_rank"]
    ]
    better = sum(1 for _qid, old, new in moved if (new or missing) < (old or missing))
    lines = [f"since the earlier run: {better} questions ranked better, {len(moved) - better} worse"]
    lines += [f"{qid:10} {old or '-'} -> {new or '-'}" for qid, old, new in moved]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: index (or reuse), ask, and print the row and the worst questions."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="folder made by benchmarks/docs_corpus.py")
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--index", type=Path, default=None, help="keep the index here and reuse it while it matches")
    parser.add_argument("--mode", default="hybrid", choices=["hybrid", "dense", "keyword"])
    parser.add_argument("--per-question", type=Path, default=None, help="write each question's ranks here (JSON)")
    parser.add_argument("--compare", type=Path, default=None, help="a --per-question file of an earlier run")
    args = parser.parse_args(argv)
    from qa.eval.evaluate import QUESTION_PASSAGES

    run = measure(args.corpus, args.questions, args.index, args.mode)
    print(render_row(run))
    print()
    print(render_worst(run.questions, QUESTION_PASSAGES))
    if args.compare:
        print()
        print(render_changes(run.questions, json.loads(args.compare.read_text(encoding="utf-8"))))
    if args.per_question:
        args.per_question.write_text(json.dumps(run.summary(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"per-question results written to {args.per_question}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
