"""reStructuredText: section titles and literal blocks found as docutils finds them, the text served as written, and
a Sphinx build's published sources (``_sources/page.rst.txt``) left out when their page is indexed beside them."""

from __future__ import annotations

import json

import pytest
from test_cli import run_qa

from qa.config import Settings
from qa.index.indexer import build_index
from qa.ingest.corpus import format_suffix, scan_corpus
from qa.ingest.formats import extract
from qa.ingest.formats.rst import plain_title, rst_structure
from qa.search.service import SearchService

GUIDE = """\
.. _guide:

===============
 Using Kettles
===============

:Release: 2.1

Kettles boil water.

Filling
=======

Fill the kettle to the line. The following is literal::

    Not a title
    ===========

    kettle.fill(litres=1)

Boiling
=======

.. code-block:: python
   :linenos:

   kettle.boil()
   kettle.wait()

Descaling the ``element``
-------------------------

Use vinegar once a month.

>>> kettle.descale()
True

----

After a transition, still in Descaling.

Tiny
--

Not a title: the underline is shorter than the text and than four characters.

Safety notes
~~~~~

Never boil an empty kettle: four characters make a title even when shorter than the text.
"""


def _titles(text):
    headings, _code = rst_structure(text)
    return [(heading.level, heading.title, text[heading.start :].split("\n", 1)[0]) for heading in headings]


def test_titles_take_their_levels_from_the_order_their_adornments_first_appear():
    assert _titles(GUIDE) == [
        (1, "Using Kettles", "==============="),
        (2, "Filling", "Filling"),
        (2, "Boiling", "Boiling"),
        (3, "Descaling the element", "Descaling the ``element``"),
        (4, "Safety notes", "Safety notes"),
    ]


def test_literal_blocks_code_directives_and_doctests_are_code_and_hold_no_titles():
    _headings, code = rst_structure(GUIDE)
    blocks = [GUIDE[start:end] for start, end in code]
    assert blocks == [
        "    Not a title\n    ===========\n\n    kettle.fill(litres=1)",
        "   kettle.boil()\n   kettle.wait()",
        ">>> kettle.descale()\nTrue",
    ]


def test_a_transition_a_directive_and_a_paragraph_line_are_not_titles():
    text = "Intro\n\n-----\n\n.. note::\n   ======\n\nA paragraph\nwith a second line\n==================\n"
    assert _titles(text) == []
    assert _titles("` `\n===\n\nText.\n") == []  # markup alone names no section


@pytest.mark.parametrize(
    ("title", "plain"),
    [
        (":option:`--app <celery --app>` argument", "--app argument"),
        ("New ``celery`` umbrella command", "New celery umbrella command"),
        ("Why is Task.delay/apply\\*/the worker hanging?", "Why is Task.delay/apply*/the worker hanging?"),
        ("Exchange is no longer *auto delete*", "Exchange is no longer auto delete"),
        ("`Django <https://example.org>`_ and **you**", "Django and you"),
        ("2*3*4 stays", "2*3*4 stays"),
    ],
)
def test_titles_read_as_rendered(title, plain):
    assert plain_title(title) == plain


def test_an_rst_file_is_served_as_written_titled_by_its_first_section():
    raw = GUIDE.replace("\n", "\r\n").encode("utf-8")
    extracted = extract(raw, ".rst")
    assert extracted.text == raw.decode("utf-8")
    assert extracted.title == "Using Kettles"
    assert [h.title for h in extracted.headings][:2] == ["Using Kettles", "Filling"]


def test_sources_published_as_text_are_read_in_their_own_format():
    assert format_suffix("docs/_sources/guide.rst.txt") == ".rst"
    assert format_suffix("NOTES.MD.TXT") == ".md"
    assert [format_suffix(name) for name in ("notes.txt", "a/b.tar.gz", ".rst.txt")] == [".txt", ".tar", ".txt"]


@pytest.fixture()
def sphinx_corpus(tmp_path):
    """A Sphinx build's pages with their published sources, a source whose page is gone, and a README.rst."""
    root = tmp_path / "corpus"
    (root / "html" / "_sources" / "howto").mkdir(parents=True)
    page = (
        "<html><head><title>Using Kettles</title></head><body><div role='main'><h1 id='kettles'>Using Kettles"
        "</h1><p>Kettles boil water.</p><h2 id='filling'>Filling</h2><p>Fill the kettle to the line.</p>"
        "</div></body></html>"
    )
    (root / "html" / "howto" / "kettles.html").parent.mkdir(parents=True)
    (root / "html" / "howto" / "kettles.html").write_text(page, encoding="utf-8")
    (root / "html" / "_sources" / "howto" / "kettles.rst.txt").write_text(GUIDE, encoding="utf-8")
    (root / "html" / "_sources" / "teapots.rst.txt").write_text(
        "Teapots\n=======\n\nWarming\n-------\n\nWarm the teapot with hot water before the leaves go in.\n",
        encoding="utf-8",
    )
    (root / "README.rst").write_text(
        "Tea project\n###########\n\nInstalling\n==========\n\nRun ``pip install tea`` to install the tea tools.\n",
        encoding="utf-8",
    )
    return root


def test_a_published_source_beside_its_page_is_skipped_naming_the_page(sphinx_corpus):
    scan = scan_corpus(sphinx_corpus)
    assert sorted(d.doc_id for d in scan.documents) == [
        "README.rst",
        "html/_sources/teapots.rst.txt",
        "html/howto/kettles.html",
    ]
    reasons = {s.doc_id: s.reason for s in scan.skipped}
    assert reasons == {"html/_sources/howto/kettles.rst.txt": "the source of html/howto/kettles.html, which is indexed"}
    orphan = next(d for d in scan.documents if d.doc_id.endswith("teapots.rst.txt"))
    assert orphan.metadata.title == "Teapots"
    assert [h.title for h in orphan.headings] == ["Teapots", "Warming"]


def test_rst_passages_cite_their_section_exactly_through_the_index_and_the_cli(sphinx_corpus, tmp_path, encoder):
    index_dir = tmp_path / "index"
    build_index(sphinx_corpus, index_dir, encoder, chunk_size=128, chunk_overlap=24)
    service = SearchService.open(Settings(index_dir=index_dir), encoder=encoder)
    hit = service.search("how do I install the tea tools", 3).as_dict()["results"][0]
    citation = hit["citation"]
    assert (citation["source"], citation["title"]) == ("README.rst", "Tea project")
    assert citation["section"] == "Tea project › Installing"
    raw = (sphinx_corpus / "README.rst").read_text(encoding="utf-8")
    assert raw[citation["start"] : citation["end"]] == hit["text"]
    assert "pip install tea" in hit["text"]
    result = run_qa("index", sphinx_corpus, "--index", tmp_path / "cli-index", "--json", "--progress", "none")
    assert result.returncode == 0, result.stderr
    skipped = json.loads(result.stdout)["skipped"]
    assert [s["source"] for s in skipped] == ["html/_sources/howto/kettles.rst.txt"]


@pytest.mark.slow  # runs `qa index` in a subprocess
def test_qa_index_names_the_first_skipped_files_and_counts_the_rest(tmp_path):
    root = tmp_path / "build"
    (root / "_sources").mkdir(parents=True)
    for number in range(25):
        (root / f"page{number:02d}.html").write_text(f"<h1>Page {number}</h1><p>Text of page {number}.</p>")
        (root / "_sources" / f"page{number:02d}.rst.txt").write_text(f"Page {number}\n=======\n\nText.\n")
    result = run_qa("index", root, "--index", tmp_path / "index", "--progress", "none")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 21 and warnings[0] == (
        "warning: skipped _sources/page00.rst.txt: the source of page00.html, which is indexed"
    )
    assert warnings[-1].startswith("warning: and 5 more skipped files: `qa info --index ")
    listed = run_qa("info", "--index", tmp_path / "index", "--json")
    assert len(json.loads(listed.stdout)["skipped"]) == 25


@pytest.mark.parametrize(
    ("pattern", "plain"),
    [
        ("*a ", "*a *a"),
        ("**a b ", "**a b **a b"),
        (":r:` ", ":r: :r:"),
        ("``a`", "aaa"),
        ("`x` ", "x x x"),
    ],
)
def test_a_hostile_megabyte_title_is_read_in_one_pass(pattern, plain):
    """Titles made of nothing but markup openings: a reading that backtracked per character (as a lazy ``.*?`` up
    to a backreference does) would take hours on a megabyte; this one reads them as text, once."""
    title = pattern * (1_000_000 // len(pattern))
    text = f"{title}\n====\n\nBody.\n"
    [heading] = rst_structure(text)[0]
    assert heading.start == 0 and heading.title.startswith(plain)


def test_an_old_sphinx_source_published_as_plain_txt_beside_its_page_is_skipped_naming_the_page(tmp_path):
    """Sphinx before 1.5 published ``_sources/page.txt`` (not ``.rst.txt``); it is the page's source all the same."""
    (tmp_path / "_sources" / "howto").mkdir(parents=True)
    (tmp_path / "howto").mkdir()
    (tmp_path / "howto" / "kettles.html").write_text("<h1>Kettles</h1><p>Kettles boil water.</p>", encoding="utf-8")
    (tmp_path / "_sources" / "howto" / "kettles.txt").write_text(GUIDE, encoding="utf-8")
    (tmp_path / "_sources" / "notes.txt").write_text("Notes without a page are read.\n", encoding="utf-8")
    scan = scan_corpus(tmp_path)
    assert sorted(d.doc_id for d in scan.documents) == ["_sources/notes.txt", "howto/kettles.html"]
    assert [(s.doc_id, s.reason) for s in scan.skipped] == [
        ("_sources/howto/kettles.txt", "the source of howto/kettles.html, which is indexed"),
    ]
