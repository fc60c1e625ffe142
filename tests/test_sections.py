"""Sections and code blocks: passages stay inside their section, code blocks stay whole, every passage knows
its heading path and anchor, and dates say where they came from."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest
from conftest import WordCounter
from test_cli import run_qa

from qa.config import Settings
from qa.index.indexer import build_index
from qa.ingest.corpus import scan_corpus
from qa.ingest.formats import Heading
from qa.search.filters import SearchFilter
from qa.search.service import SearchService
from qa.text.chunking import chunk_text
from qa.text.sections import SEPARATOR, heading_paths, place

DEFAULTS = Settings()
BUILD = dict(chunk_size=DEFAULTS.chunk_size, chunk_overlap=DEFAULTS.chunk_overlap, embed_title=DEFAULTS.embed_title)


def _sections_text() -> tuple[str, list[Heading]]:
    """A small manual: a chapter heading straight before its first section, two sections of prose."""
    parts = [
        ("Regular expressions\n", 1, "Regular expressions"),
        ("Module contents\n", 2, "Module contents"),
        ("findall\n", 3, "findall"),
        ("Return all non-overlapping matches of pattern in string. " * 3 + "\n", None, None),
        ("sub\n", 3, "sub"),
        ("Return the string obtained by replacing the leftmost matches. " * 3 + "\n", None, None),
    ]
    text, headings = "", []
    for piece, level, title in parts:
        if level is not None:
            headings.append(Heading(len(text), level, title, anchor=title.lower().replace(" ", "-")))
        text += piece
    return text, headings


def test_passages_never_run_across_a_heading():
    text, headings = _sections_text()
    chunks = chunk_text(text, size=200, overlap=20, count_tokens=WordCounter(), boundaries=[h.start for h in headings])
    sub = next(h.start for h in headings if h.title == "sub")
    assert all(not (c.start < sub < c.end) for c in chunks)
    assert [c.text.splitlines()[0] for c in chunks] == ["Regular expressions", "sub"]


def test_a_heading_with_nothing_under_it_joins_the_section_it_introduces():
    text, headings = _sections_text()
    chunks = chunk_text(text, size=200, overlap=0, count_tokens=WordCounter(), boundaries=[h.start for h in headings])
    assert chunks[0].text.startswith("Regular expressions\nModule contents\nfindall\nReturn all")


def test_without_boundaries_chunking_is_unchanged():
    text, headings = _sections_text()
    plain = chunk_text(text, size=30, overlap=5, count_tokens=WordCounter())
    assert plain == chunk_text(text, size=30, overlap=5, count_tokens=WordCounter(), boundaries=())


def test_overlap_never_carries_text_into_the_next_section():
    text, headings = _sections_text()
    chunks = chunk_text(text, size=12, overlap=6, count_tokens=WordCounter(), boundaries=[h.start for h in headings])
    sub = next(h.start for h in headings if h.title == "sub")
    after = [c for c in chunks if c.start >= sub]
    assert after and after[0].start == sub


def test_a_code_block_that_fits_is_never_cut():
    prose = "Some words about the example that follows here. " * 4
    code = "\n".join(f"    line_{i} = compute({i})" for i in range(12))
    text = prose + "\n" + code + "\n" + prose
    start = len(prose) + 1
    block = (start, start + len(code))
    chunks = chunk_text(text, size=40, overlap=0, count_tokens=WordCounter(), code=[block])
    holding = [c for c in chunks if c.start < block[1] and c.end > block[0]]
    assert len(holding) == 1
    assert code.strip() in holding[0].text  # every line, exactly as written (the passage starts at its first word)


def test_a_code_block_longer_than_a_passage_is_cut_between_lines():
    code = "\n".join(f"value_{i} = {i} + {i}" for i in range(60))
    chunks = chunk_text(code, size=40, overlap=0, count_tokens=WordCounter(), code=[(0, len(code))])
    assert len(chunks) > 1
    assert all(c.text == code[c.start : c.end] and c.text.endswith(tuple("0123456789")) for c in chunks)


def test_heading_paths_nest_by_level_and_allow_skipped_levels():
    headings = [Heading(0, 1, "A"), Heading(5, 3, "C"), Heading(9, 2, "B"), Heading(12, 3, "D"), Heading(20, 1, "E")]
    assert heading_paths(headings) == [
        "A",
        f"A{SEPARATOR}C",
        f"A{SEPARATOR}B",
        f"A{SEPARATOR}B{SEPARATOR}D",
        "E",
    ]


def test_each_passage_gets_its_section_path_and_nearest_anchor():
    text, headings = _sections_text()
    chunks = chunk_text(text, size=200, overlap=0, count_tokens=WordCounter(), boundaries=[h.start for h in headings])
    sub = next(h for h in headings if h.title == "sub")
    anchors = [(h.start, h.anchor) for h in headings] + [(sub.start + 5, "sub-body")]
    anchors.sort()
    placed = place(text, chunks, headings, anchors)
    assert placed[0].section == SEPARATOR.join(["Regular expressions", "Module contents", "findall"])
    assert placed[0].anchor == "findall"  # past the heading lines the passage opens with
    assert placed[1].section == SEPARATOR.join(["Regular expressions", "Module contents", "sub"])
    assert placed[1].anchor == "sub"
    assert [replace(c, section=None, anchor=None) for c in placed] == chunks


def test_a_document_without_headings_has_no_section():
    chunks = chunk_text("Plain text.\nMore text.", size=50, overlap=0, count_tokens=WordCounter())
    assert place("Plain text.\nMore text.", chunks, [], []) == chunks


# ------------------------------------------------------------------------------------------------ dates


def test_a_file_with_no_date_is_dated_by_its_modification_time_and_says_so(tmp_path):
    (tmp_path / "undated.txt").write_text("Notes\n\nNothing here says when it was written.\n", encoding="utf-8")
    (tmp_path / "dated.txt").write_text("Minutes\nDate: 2021-04-05\n\nThe meeting was held.\n", encoding="utf-8")
    os.utime(tmp_path / "undated.txt", (1_600_000_000, 1_600_000_000))  # 2020-09-13 UTC
    scan = scan_corpus(tmp_path)
    meta = {d.doc_id: d.metadata for d in scan.documents}
    assert (meta["undated.txt"].date, meta["undated.txt"].date_source) == ("2020-09-13", "file")
    assert (meta["dated.txt"].date, meta["dated.txt"].date_source) == ("2021-04-05", "text")


@pytest.fixture(scope="module")
def undated_service(tmp_path_factory, encoder):
    """An index of three documents, one of which has no date at all (as a scanned corpus without file times)."""
    corpus = tmp_path_factory.mktemp("undated-corpus")
    (corpus / "old.txt").write_text("Harbour report\nDate: 2019-02-01\n\nThe harbour was dredged in winter.\n")
    (corpus / "new.txt").write_text("Harbour report\nDate: 2023-06-01\n\nThe harbour lights were replaced.\n")
    (corpus / "loose.txt").write_text("Harbour note\n\nThe harbour master keeps a log of every ship.\n")
    scan = scan_corpus(corpus)
    scan.documents = [
        replace(d, metadata=replace(d.metadata, date=None, date_source=None)) if d.doc_id == "loose.txt" else d
        for d in scan.documents
    ]
    index_dir = tmp_path_factory.mktemp("undated-index") / "index"
    build_index(corpus, index_dir, encoder, scan=scan, **BUILD)
    return SearchService.open(Settings(index_dir=index_dir), encoder=encoder)


def test_a_date_filter_says_how_many_undated_documents_it_left_out(undated_service):
    answer = undated_service.search("harbour", 5, search_filter=SearchFilter.of(after="2020"))
    assert [h.citation.source for h in answer.results] == ["new.txt"]
    assert answer.excluded_undated == 1
    assert answer.as_dict()["excluded_undated"] == 1
    unfiltered = undated_service.search("harbour", 5)
    assert unfiltered.excluded_undated == 0 and len(unfiltered.results) == 3
    by_source = undated_service.search("harbour", 5, search_filter=SearchFilter.of(source="new*", before="2030"))
    assert by_source.excluded_undated == 0  # the undated document did not match the source glob anyway


def test_the_cli_and_http_report_undated_documents_left_out(undated_service):
    from fastapi.testclient import TestClient

    from qa.api.app import create_app

    index_dir = undated_service.settings.index_dir
    result = run_qa("ask", "--index", index_dir, "--after", "2030", "harbour")
    assert result.returncode == 0, result.stderr
    assert "1 undated document was left out by the date filter" in result.stdout
    assert "(no passages found)" in result.stdout
    with TestClient(create_app(Settings(index_dir=index_dir), service=undated_service)) as client:
        body = client.post("/search", json={"question": "harbour", "after": "2030"}).json()
    assert body["results"] == [] and body["excluded_undated"] == 1


# ------------------------------------------------------------------------------------------------ output


@pytest.mark.slow  # runs `qa` in subprocesses
def test_cli_prints_passages_with_their_line_breaks(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    example = (
        ">>> f.readline()\n'This is the first line of the file.\\n'\n>>> f.readline()\n'Second line of the file\\n'"
    )
    (corpus / "files.txt").write_text(f"Reading files\n\nTo read a line, call readline:\n\n{example}\n")
    index_dir = tmp_path / "index"
    assert run_qa("index", corpus, "--index", index_dir).returncode == 0
    result = run_qa("ask", "--index", index_dir, "-k", "1", "how do I read one line of a file")
    assert result.returncode == 0, result.stderr
    lines = [line.strip().strip("*") for line in result.stdout.splitlines()]  # supporting sentences are **marked**
    assert ">>> f.readline()" in lines and "'This is the first line of the file.\\n'" in lines
    as_json = json.loads(run_qa("ask", "--index", index_dir, "--json", "-k", "1", "readline").stdout)
    assert example in as_json["results"][0]["text"]


def test_a_word_the_tokenizer_reads_as_one_token_still_makes_bounded_passages(encoder):
    from qa.text.chunking import MAX_CHARS_PER_TOKEN

    blob = "A" * 200_000  # WordPiece reads any word over 100 characters as a single unknown token
    text = f"Header line.\n{blob}\nA closing sentence."
    assert encoder.count_tokens([blob]) == [1]
    chunks = chunk_text(text, size=128, overlap=0, count_tokens=encoder.count_tokens, limit=254)
    assert "".join(c.text for c in chunks).replace("\n", "") == text.replace("\n", "")
    assert max(len(c.text) for c in chunks) <= 254 * MAX_CHARS_PER_TOKEN


@pytest.mark.slow  # builds real indexes
def test_whole_html_pages_are_kept_only_when_asked_and_the_choice_is_part_of_the_index(tmp_path):
    from qa.config import Settings as S
    from qa.errors import ConfigError

    corpus = tmp_path / "site"
    corpus.mkdir()
    (corpus / "page.html").write_text(
        "<html><head><title>Lighthouses</title></head><body><nav><a href='/'>Home</a> <a href='/a'>Archive</a>"
        " <a href='/b'>Contact us</a></nav><main><h1>Lighthouses</h1><p>The lamp is lit at dusk every day.</p>"
        "</main></body></html>",
        encoding="utf-8",
    )
    main_index, all_index = tmp_path / "main", tmp_path / "all"
    assert run_qa("index", corpus, "--index", main_index).returncode == 0
    assert run_qa("index", corpus, "--index", all_index, env={"QA_HTML_CONTENT": "all"}).returncode == 0
    main_doc = json.loads(run_qa("info", "--index", main_index, "--json").stdout)
    assert main_doc["chunking"]["html_content"] == "main"
    assert json.loads(run_qa("info", "--index", all_index, "--json").stdout)["chunking"]["html_content"] == "all"
    main_answer = json.loads(run_qa("ask", "--index", main_index, "--json", "Contact us").stdout)
    all_answer = json.loads(run_qa("ask", "--index", all_index, "--json", "Contact us").stdout)
    assert all("Contact us" not in hit["text"] for hit in main_answer["results"])
    assert any("Contact us" in hit["text"] for hit in all_answer["results"])
    with pytest.raises(ConfigError, match="QA_HTML_CONTENT"):
        S.from_env(environ={"QA_HTML_CONTENT": "everything"})


def test_a_short_preamble_before_the_first_heading_joins_the_first_section():
    text = "---\ntitle: Logs\ndate: 2024-05-02\n---\n\n# Log rotation\n\nRotate the logs every night with logrotate.\n"
    heading = text.index("# Log")
    chunks = chunk_text(text, size=64, overlap=8, count_tokens=WordCounter(), boundaries=[heading])
    assert len(chunks) == 1 and chunks[0].start == 0 and chunks[0].text.endswith("logrotate.")
    long_preamble = "An introduction that runs on for a while. " * 12 + "\n"
    chunks = chunk_text(
        long_preamble + text[heading:], size=64, overlap=8, count_tokens=WordCounter(), boundaries=[len(long_preamble)]
    )
    assert len(long_preamble) in [c.start for c in chunks]  # a real preamble stays its own section
    assert all(c.end <= len(long_preamble) or c.start >= len(long_preamble) for c in chunks)
