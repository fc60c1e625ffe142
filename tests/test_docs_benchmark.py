"""The documentation benchmark: its boilerplate detector on small pages, its corpus script, and its labels."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from qa.ingest.formats import extract

sys.path.insert(0, str(ROOT / "benchmarks"))
import docs_corpus  # noqa: E402
import docs_quality  # noqa: E402
from docs_quality import (  # noqa: E402
    BoilerplateDetector,
    boilerplate_share,
    first_rank,
    navigation_region,
    parse_page,
)

QUESTIONS = ROOT / "benchmarks" / "data" / "docs_questions.jsonl"

PAGE = """<html><head><title>{title}</title><style>p {{color: red}}</style></head><body>
<div class="navheader"><table><tr><td><a href="a.html">Prev</a></td><td>Chapter 3. Widgets</td>
<td><a href="b.html">Next</a></td></tr></table></div>
<div id="header"><h1>{title}</h1><p><a href="x.html">See also</a> the catalogue of parts</p></div>
<div class="body"><h2>Assembly</h2><p>{body}</p></div>
<footer>Copyright 2024 The Widget Project</footer>
</body></html>"""


def _page(title: str, body: str) -> bytes:
    return PAGE.format(title=title, body=body).encode("utf-8")


@pytest.fixture()
def widget_site() -> BoilerplateDetector:
    """Ten pages of one site sharing a navigation bar, a section title and a footer; each has its own body."""
    pages = {
        f"widgets/page{n}.html": parse_page(_page(f"Widget {n}", f"Turn screw number {n} clockwise until it stops."))
        for n in range(10)
    }
    return BoilerplateDetector(pages)


@pytest.mark.parametrize(
    "tag, classes, element_id, region",
    [
        ("nav", "", "", "text"),
        ("aside", "", "", "links"),
        ("aside", "sidebar", "", "links"),
        ("footer", "", "", "text"),
        ("header", "", "", "links"),
        ("div", "", "header", "links"),
        ("div", "page-header", "", "links"),
        ("div", "navheader", "", "text"),
        ("div", "sphinxsidebar", "", "text"),
        ("div", "related navigation", "", "text"),
        ("div", "toc", "", "text"),
        ("ul", "menu mainmenu", "", "text"),
        ("div", "", "site-navigation", "text"),
        # Content sections take their ids from their titles: "toctree" or "headers" there is not navigation.
        ("section", "", "toctree-directive", None),
        ("section", "", "email-headers", None),
        ("div", "body", "", None),
        ("p", "", "", None),
    ],
)
def test_navigation_region_is_read_from_tag_class_and_id(tag, classes, element_id, region):
    assert navigation_region(tag, classes, element_id) == region


def test_page_parser_splits_lines_at_blocks_and_keeps_navigation_apart():
    parts = parse_page(_page("Widget 1", "Turn screw number 1 clockwise."))
    assert "Turn screw number 1 clockwise." in parts.lines
    assert "Prev Chapter 3. Widgets Next" in parts.lines  # table cells of one row make one line
    assert {"Prev", "Next", "Prev Chapter 3. Widgets Next", "Copyright 2024 The Widget Project"} <= parts.nav_fragments
    # The header's title is not navigation, only its links are; style text is never a line.
    assert "See also" in parts.nav_fragments and "Widget 1" not in parts.nav_fragments
    assert not any("color" in line for line in parts.lines)


def test_lines_on_a_fifth_of_a_sites_pages_are_template_lines(widget_site):
    template = widget_site.template_lines("widgets")
    assert "Assembly" in template and "Copyright 2024 The Widget Project" in template
    assert not any("screw number" in line for line in template)
    assert widget_site.template_lines("elsewhere") == set()


@pytest.mark.parametrize(
    "passage, boilerplate",
    [
        ("Prev\nChapter 3. Widgets\nNext", True),
        # However the extractor joins the pieces, a line made only of fragments is boilerplate.
        ("Prev Chapter 3. Widgets Next Copyright 2024 The Widget Project", True),
        ("Prev Next\nAssembly\nCopyright 2024 The Widget Project", True),
        ("Assembly\nTurn screw number 2 clockwise until it stops.", False),
        ("Next, turn screw number 2 clockwise until it stops.", False),
        ("Widget 2\nTurn screw number 2 clockwise until it stops.", False),
        ("", False),
    ],
)
def test_a_passage_is_boilerplate_when_most_of_its_characters_are_navigation_or_template(
    widget_site, passage, boilerplate
):
    assert widget_site.is_boilerplate("widgets/page2.html", passage) is boilerplate


def test_passages_of_files_that_are_not_parsed_html_are_never_boilerplate(widget_site):
    assert not widget_site.is_boilerplate("manuals/guide.pdf", "Prev\nNext")
    share = boilerplate_share(widget_site, [("widgets/page1.html", "Prev\nNext"), ("manuals/guide.pdf", "Prev")])
    assert share == pytest.approx(0.5)
    assert boilerplate_share(widget_site, []) == 0.0


def test_a_gzipped_page_is_judged_as_the_page_it_holds(tmp_path):
    (tmp_path / "widgets").mkdir()
    page = PAGE.format(title="Widgets", body="Bolt the widget to its frame.")
    (tmp_path / "widgets" / "page.html.gz").write_bytes(gzip.compress(page.encode("utf-8")))
    detector = BoilerplateDetector.from_corpus(tmp_path, ["widgets/page.html.gz"])
    assert detector.is_boilerplate("widgets/page.html.gz", "Prev\nNext")
    assert not detector.is_boilerplate("widgets/page.html.gz", "Bolt the widget to its frame.")


def test_first_rank_is_one_based_and_none_when_absent():
    assert first_rank(["b", "a", "a"], lambda entry: entry == "a") == 2
    assert first_rank(["b"], lambda entry: entry == "a") is None


def test_corpus_script_names_the_packages_to_install(tmp_path):
    absent = docs_corpus.Source("no-such-doc", tmp_path / "missing", "x", ("*.html",))
    assert docs_corpus.missing_packages((absent,)) == ["no-such-doc"]


needs_docs = pytest.mark.skipif(
    bool(docs_corpus.missing_packages()), reason=f"install {' '.join(docs_corpus.missing_packages())}"
)


@pytest.fixture(scope="module")
def docs_corpus_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "corpus"
    assert docs_corpus.main(["--out", str(out)]) == 0
    return out


@needs_docs
def test_corpus_holds_four_sites_pdfs_duplicates_and_a_symlink_but_no_python_docs(docs_corpus_dir):
    files = [path for path in docs_corpus_dir.rglob("*") if path.is_file()]
    html = [path for path in files if path.suffix == ".html"]
    assert 150 <= len(html) <= 300
    assert len([path for path in files if path.suffix == ".pdf"]) >= 3
    assert {path.relative_to(docs_corpus_dir).parts[0] for path in html} >= {"postgresql", "git", "sphinx", "sqlite"}
    for original, copy in docs_corpus.DUPLICATES.items():
        assert (docs_corpus_dir / original).read_bytes() == (docs_corpus_dir / copy).read_bytes()
    link = docs_corpus_dir / docs_corpus.SYMLINK[0]
    assert link.is_symlink() and link.resolve().is_relative_to(docs_corpus_dir.resolve())
    assert not any("python" in str(path.relative_to(docs_corpus_dir)).lower() for path in files)


@needs_docs
def test_corpus_is_the_same_when_built_twice(docs_corpus_dir, tmp_path):
    again = tmp_path / "again"
    assert docs_corpus.main(["--out", str(again)]) == 0
    listing = lambda root: sorted(str(p.relative_to(root)) for p in root.rglob("*"))  # noqa: E731
    assert listing(again) == listing(docs_corpus_dir)


@needs_docs
def test_every_answer_phrase_is_in_its_document_with_and_without_main_content(docs_corpus_dir):
    questions = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(questions) >= 70 and len({q["id"] for q in questions}) == len(questions)
    texts: dict[str, tuple[str, str]] = {}
    for question in questions:
        document = question["document"]
        if document not in texts:
            raw, suffix = (docs_corpus_dir / document).read_bytes(), Path(document).suffix
            texts[document] = (
                extract(raw, suffix, main_content=True).text,
                extract(raw, suffix, main_content=False).text,
            )
        phrase = question["phrase"]
        assert "\n" not in phrase and 4 <= len(phrase.split()) <= 10, question["id"]
        assert all(phrase in text for text in texts[document]), question["id"]


@pytest.fixture()
def tiny_docs(tmp_path) -> tuple[Path, Path]:
    """A corpus of ten widget pages with a navigation bar, one text file, and two questions about them."""
    corpus = tmp_path / "corpus"
    (corpus / "widgets").mkdir(parents=True)
    bodies = [f"Turn screw number {n} clockwise until it stops, then tighten the lock nut by hand." for n in range(10)]
    bodies[3] = (
        "To recharge the battery, plug the widget into a USB port and wait until the light turns green. "
        "A full charge takes about two hours and lasts for a week of daily use."
    )
    for n, body in enumerate(bodies):
        (corpus / "widgets" / f"page{n}.html").write_bytes(_page(f"Widget {n}", body))
    (corpus / "notes.txt").write_text("Widgets ship in boxes of twelve, packed in recycled paper.\n", encoding="utf-8")
    questions = tmp_path / "questions.jsonl"
    rows = [
        {
            "id": "w1",
            "question": "how do I charge the battery of my widget",
            "document": "widgets/page3.html",
            "phrase": "plug the widget into a USB port",
        },
        {
            "id": "w2",
            "question": "how many widgets come in one box",
            "document": "notes.txt",
            "phrase": "Widgets ship in boxes of twelve",
        },
    ]
    questions.write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    return corpus, questions


@pytest.mark.slow  # indexes and asks with the real model
def test_docs_quality_prints_one_row_and_saves_per_question_ranks_to_compare(tiny_docs, tmp_path, capsys):
    corpus, questions = tiny_docs
    saved, index = tmp_path / "run.json", tmp_path / "index"
    args = ["--corpus", str(corpus), "--questions", str(questions), "--index", str(index)]
    assert docs_quality.main([*args, "--per-question", str(saved)]) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    assert header.split()[:3] == ["mode", "passages", "chars"]
    assert row.split()[-2:] == ["2/2", "2/2"]  # both phrases survive in the text and inside one passage
    assert "boilerplate first" in header
    run = json.loads(saved.read_text(encoding="utf-8"))
    assert run["passages"] >= 11 and 0 < run["boilerplate_share"] < 1
    assert [q["id"] for q in run["questions"]] == ["w1", "w2"]
    first = run["questions"][0]
    assert first["passage_rank"] == 1 and first["top_source"] == "widgets/page3.html"
    assert first["top_is_boilerplate"] is False
    # A second run reuses the index and, compared with the first, finds nothing moved.
    assert docs_quality.main([*args, "--compare", str(saved)]) == 0
    assert "0 questions ranked better, 0 worse" in capsys.readouterr().out


def test_changes_since_an_earlier_run_count_better_and_worse_ranks():
    previous = {
        "questions": [{"id": "a", "passage_rank": 4}, {"id": "b", "passage_rank": 1}, {"id": "c", "passage_rank": None}]
    }
    rows = [{"id": "a", "passage_rank": 1}, {"id": "b", "passage_rank": None}, {"id": "c", "passage_rank": None}]
    text = docs_quality.render_changes(rows, previous)
    assert "1 questions ranked better, 1 worse" in text
    assert "a          4 -> 1" in text and "b          1 -> -" in text and "c " not in text
