"""Check the labels of a question set against the raw HTML: each phrase occurs in its page's visible text.

    python benchmarks/apache_phrases.py --corpus /tmp/apacheq-corpus
        [--questions benchmarks/data/apache_questions.jsonl]

The page's visible text is read with this script's own parser (html.parser; ``head``, ``script`` and
``style`` left out; a space at every block element; whitespace runs folded), never with qa's extractor, so a
label does not depend on what qa keeps. A label is good when its phrase occurs exactly once in that text, or
when the first of its occurrences is the one meant: for a repeated phrase the script prints the count and the
words before the first occurrence, for a person to judge. Exits 1 when a document is missing or a phrase is
not in it.
"""

from __future__ import annotations

import argparse
import json
import sys
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "benchmarks" / "data" / "apache_questions.jsonl"
_HIDDEN_TAGS = {"head", "script", "style", "noscript", "template"}
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
    "td",
    "th",
    "thead",
    "tfoot",
    "tr",
    "ul",
}
_VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _VisibleText(HTMLParser):
    """Collect a page's visible text, with a space wherever a block element starts or ends."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self._hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden_depth += 1
        if tag in _BLOCK_TAGS:
            self.pieces.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS and self._hidden_depth:
            self._hidden_depth -= 1
        if tag in _BLOCK_TAGS and tag not in _VOID_TAGS:
            self.pieces.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth:
            self.pieces.append(data)


def visible_text(raw: bytes) -> str:
    """A page's visible text with whitespace runs folded to single spaces (decoded as UTF-8)."""
    parser = _VisibleText()
    parser.feed(raw.decode("utf-8", errors="replace"))
    parser.close()
    return " ".join("".join(parser.pieces).split())


def check(corpus: Path, questions: list[dict]) -> list[tuple[dict, int, str]]:
    """Each question with its phrase's number of occurrences in its document (-1: no such document) and the
    words just before the first occurrence."""
    texts: dict[str, str | None] = {}
    results = []
    for question in questions:
        document = question["document"]
        if document not in texts:
            path = corpus / document
            texts[document] = visible_text(path.read_bytes()) if path.is_file() else None
        text, phrase = texts[document], " ".join(question["phrase"].split())
        if text is None:
            results.append((question, -1, ""))
            continue
        first = text.find(phrase)
        results.append((question, text.count(phrase), text[max(0, first - 60) : first] if first >= 0 else ""))
    return results


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: print every label that is missing or repeated; exit 1 when one is missing."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="folder made by benchmarks/apache_corpus.py")
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    args = parser.parse_args(argv)
    questions = [json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    results = check(args.corpus, questions)
    missing = 0
    for question, count, before in results:
        if count == 1:
            continue
        missing += count <= 0
        state = {-1: "no such document", 0: "phrase not found"}.get(count, f"{count} occurrences, first after")
        print(f"{question['id']:12} {state} {before!r}" if count > 1 else f"{question['id']:12} {state}")
    once = sum(1 for _question, count, _before in results if count == 1)
    print(f"{len(results)} questions: {once} phrases once, {len(results) - once - missing} repeated, {missing} missing")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
