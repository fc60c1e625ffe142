"""What each main-content rule of round six buys: the boilerplate share with every rule, then with each turned off.

    python benchmarks/boilerplate_rules.py --corpus /tmp/docs-corpus [--questions benchmarks/data/docs_questions.jsonl]

Reads the corpus with qa's readers (one rule of ``qa/ingest/formats/html.py`` patched out per row), cuts every document
into passages as the indexer does (the model's tokenizer only: nothing is embedded), and judges each passage with
``docs_quality.py``'s own parser, so the share is the one ``docs_quality.py`` reports for an index of that text.
Each row also counts the labelled phrases still in their document's text. Ranking is not measured here: that
needs an index (``docs_quality.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from docs_quality import QUESTIONS, BoilerplateDetector  # noqa: E402

import qa.ingest.formats.html as html  # noqa: E402


def _without_language_links(measure):
    """``_measure`` as it is, then every element's count of language links set back to zero."""

    def measured(root):
        measure(root)
        for node in html._elements(root):
            node.language_links = 0

    return measured


# Each row: what is turned off, as (attribute of qa.ingest.formats.html, replacement built from the original).
VARIANTS = {
    "every rule": {},
    "no link-line sections": {"_link_line_sections": lambda original: lambda root: set()},
    "no closing short line": {"_LINK_LINE_MAX_WORDS": lambda original: -1},
    "no language-bar rule": {"_measure": _without_language_links},
    "no notices above the title": {"_notices_above_title": lambda original: lambda root: set()},
    "no generated-page skip": {"generated_page": lambda original: lambda document: None},
}


@contextmanager
def patched(changes: dict):
    """``qa.ingest.formats.html`` with ``changes`` applied, restored afterwards."""
    originals = {name: getattr(html, name) for name in changes}
    try:
        for name, make in changes.items():
            setattr(html, name, make(originals[name]))
        yield
    finally:
        for name, value in originals.items():
            setattr(html, name, value)


def measure(corpus: Path, questions: list[dict], encoder, settings) -> dict:
    """Passages, boilerplate passages and phrases in their document's text for the corpus as qa reads it now."""
    from qa.index.indexer import chunk_document
    from qa.ingest.corpus import scan_corpus

    scan = scan_corpus(corpus)
    passages: list[tuple[str, str]] = []
    texts: dict[str, str] = {}
    for document in scan.documents:
        chunks, _ = chunk_document(document, encoder, settings.chunk_size, settings.chunk_overlap, settings.embed_title)
        for path in (document.doc_id, *document.aliases):
            texts[path] = document.text
        passages += [(document.doc_id, chunk.text) for chunk in chunks]
    detector = BoilerplateDetector.from_corpus(corpus, sorted({doc_id for doc_id, _ in passages}))
    flagged = sum(detector.is_boilerplate(doc_id, text) for doc_id, text in passages)
    present = sum(question["phrase"] in texts.get(question["document"], "") for question in questions)
    return {"documents": len(scan.documents), "passages": len(passages), "boilerplate": flagged, "phrases": present}


def main(argv: list[str] | None = None) -> int:
    """Print one row per variant."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    args = parser.parse_args(argv)
    from qa.config import Settings
    from qa.embed.encoder import DEFAULT_MODEL, load_encoder

    settings = Settings.from_env()
    encoder = load_encoder(DEFAULT_MODEL, settings.encoder, precision=settings.precision, cache_dir=settings.cache_dir)
    questions = [json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    print(f"{'variant':28} {'documents':>9} {'passages':>8} {'boilerplate':>11} {'share':>6}  phrases in text")
    for name, changes in VARIANTS.items():
        with patched(changes):
            row = measure(args.corpus, questions, encoder, settings)
        share = row["boilerplate"] / row["passages"] if row["passages"] else 0.0
        print(
            f"{name:28} {row['documents']:9} {row['passages']:8} {row['boilerplate']:11} {share:6.2%}  "
            f"{row['phrases']}/{len(questions)}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
