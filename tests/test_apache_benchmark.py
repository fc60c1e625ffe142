"""The held-out Apache documentation set: its corpus script, its label checker, and the shape of its labels."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import apache_corpus  # noqa: E402
import apache_phrases  # noqa: E402
from docs_quality import navigation_region  # noqa: E402

QUESTIONS = ROOT / "benchmarks" / "data" / "apache_questions.jsonl"
PAGE = """<html><head><title>Widgets</title><script>var x = "hidden words";</script></head><body>
<div id="page-header"><a href="../index.html">Modules</a> | <a href="d.html">Directives</a></div>
<h1>Widget  Module</h1><p>Turn the <code>Widget</code>
directive on to enable widgets.</p><p>Widgets spin.</p><p>Widgets spin.</p></body></html>"""


def _questions() -> list[dict]:
    return [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture()
def fake_manual(tmp_path) -> Path:
    """A manual folder as the package lays it out: pages in folders, a compressed page, an image and a style sheet."""
    root = tmp_path / "manual" / "en"
    (root / "mod").mkdir(parents=True)
    (root / "images").mkdir()
    (root / "index.html").write_text(PAGE, encoding="utf-8")
    (root / "mod" / "mod_widget.html").write_text(PAGE.replace("Widgets spin.", "Gears turn."), encoding="utf-8")
    (root / "mod" / "mod_gear.html.gz").write_bytes(gzip.compress(b"<p>Gears mesh with widgets.</p>"))
    (root / "images" / "logo.png").write_bytes(b"\x89PNG")
    (root / "style.css").write_text("p { color: red }", encoding="utf-8")
    return root


def test_corpus_copies_only_html_pages_under_one_site_folder_and_decompresses_gz(fake_manual, tmp_path, capsys):
    out = tmp_path / "corpus"
    assert apache_corpus.main(["--out", str(out), "--manual", str(fake_manual)]) == 0
    files = sorted(path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file())
    assert files == ["httpd/index.html", "httpd/mod/mod_gear.html", "httpd/mod/mod_widget.html"]
    assert (out / "httpd/mod/mod_gear.html").read_bytes() == b"<p>Gears mesh with widgets.</p>"
    assert (out / "httpd/index.html").read_text(encoding="utf-8") == PAGE
    assert "3 pages" in capsys.readouterr().out


def test_corpus_is_the_same_when_built_twice_and_refuses_to_overwrite(fake_manual, tmp_path, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    assert apache_corpus.main(["--out", str(first), "--manual", str(fake_manual)]) == 0
    assert apache_corpus.main(["--out", str(second), "--manual", str(fake_manual)]) == 0

    def listing(root: Path) -> list[tuple[str, bytes]]:
        return sorted((path.relative_to(root).as_posix(), path.read_bytes()) for path in root.rglob("*.html"))

    assert listing(first) == listing(second)
    assert apache_corpus.main(["--out", str(first), "--manual", str(fake_manual)]) == 1
    assert "--replace" in capsys.readouterr().err
    assert apache_corpus.main(["--out", str(first), "--manual", str(fake_manual), "--replace"]) == 0


def test_corpus_script_names_the_package_when_the_manual_is_missing(tmp_path, capsys):
    assert apache_corpus.main(["--out", str(tmp_path / "out"), "--manual", str(tmp_path / "absent")]) == 1
    assert "apt-get install -y apache2-doc" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_visible_text_leaves_out_the_head_and_folds_whitespace_across_inline_markup():
    text = apache_phrases.visible_text(PAGE.encode("utf-8"))
    assert "Turn the Widget directive on to enable widgets." in text
    assert "Widget Module" in text
    assert "hidden words" not in text and "Widgets</title>" not in text
    # Block elements never run two paragraphs' words together.
    assert "widgets. Widgets spin." in text


def test_label_check_counts_occurrences_and_fails_on_a_missing_phrase_or_page(tmp_path, capsys):
    (tmp_path / "httpd").mkdir()
    (tmp_path / "httpd" / "page.html").write_text(PAGE, encoding="utf-8")
    rows = [
        {"id": "once", "question": "q", "document": "httpd/page.html", "phrase": "Turn the Widget directive on"},
        {"id": "twice", "question": "q", "document": "httpd/page.html", "phrase": "Widgets spin."},
        {"id": "absent", "question": "q", "document": "httpd/page.html", "phrase": "Gears turn."},
        {"id": "no-page", "question": "q", "document": "httpd/other.html", "phrase": "Widgets spin."},
    ]
    counts = {question["id"]: count for question, count, _before in apache_phrases.check(tmp_path, rows)}
    assert counts == {"once": 1, "twice": 2, "absent": 0, "no-page": -1}
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps(row) + "\n" for row in rows[:2]), encoding="utf-8")
    assert apache_phrases.main(["--corpus", str(tmp_path), "--questions", str(questions)]) == 0
    questions.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    assert apache_phrases.main(["--corpus", str(tmp_path), "--questions", str(questions)]) == 1
    assert "2 missing" in capsys.readouterr().out


def test_question_set_has_seventy_or_more_labelled_questions_across_the_manual():
    questions = _questions()
    assert len(questions) >= 70 and len({q["id"] for q in questions}) == len(questions)
    for question in questions:
        assert set(question) == {"id", "question", "document", "phrase"}, question["id"]
        assert question["document"].startswith("httpd/") and question["document"].endswith(".html"), question["id"]
        phrase = question["phrase"]
        assert phrase == " ".join(phrase.split()) and 3 <= len(phrase.split()) <= 30, question["id"]
    folders = {Path(q["document"]).parent.name for q in questions}
    assert {"howto", "mod", "programs", "rewrite", "ssl", "vhosts", "misc"} <= folders
    # Mostly paraphrases: a question rarely repeats its answer phrase.
    copied = [q["id"] for q in questions if q["phrase"].lower() in q["question"].lower()]
    assert len(copied) <= len(questions) // 10, copied


needs_manual = pytest.mark.skipif(not apache_corpus.MANUAL.is_dir(), reason=f"install {apache_corpus.PACKAGE}")


@needs_manual
def test_every_label_phrase_is_in_its_page_of_the_installed_manual(tmp_path):
    out = tmp_path / "corpus"
    assert apache_corpus.main(["--out", str(out)]) == 0
    results = apache_phrases.check(out, _questions())
    assert [question["id"] for question, count, _before in results if count < 1] == []


@pytest.mark.parametrize("classes", ["no-sidebar", "no-toc no-footer"])
def test_a_class_saying_the_page_has_no_sidebar_does_not_make_the_page_navigation(classes):
    assert navigation_region("body", classes, "manual-page") is None
    # A real sidebar class beside it still counts.
    assert navigation_region("div", f"{classes} sidebar") == "text"
