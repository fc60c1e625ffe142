"""Duplicates: identical files are indexed once and cite every path; near-identical passages are one result that
names the other places, and the top k still holds k distinct passages."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from conftest import DATA, SEEDS
from fastapi.testclient import TestClient
from test_cli import run_qa

from qa.api.app import create_app
from qa.cli.render import render_answer
from qa.config import Settings
from qa.index.indexer import build_index
from qa.index.manifest import MANIFEST_FILE
from qa.ingest.corpus import scan_corpus
from qa.search.duplicates import group_duplicates, jaccard, shingles
from qa.search.service import SearchService

DEFAULTS = Settings()
SEEDS_QUESTIONS = [
    json.loads(line)
    for line in (DATA / "seeds_questions.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]
BUILD = dict(chunk_size=DEFAULTS.chunk_size, chunk_overlap=DEFAULTS.chunk_overlap, embed_title=DEFAULTS.embed_title)
MEETING = "004_e4f473833b61ecc8.txt"
MEETING_QUESTION = "What did the Supreme People's Court discuss at the work exchange meeting?"
# One paragraph that two pages share; each page also has a line of its own, so the passages are near-identical.
SHARED = (
    "To descale a kettle, fill it halfway with equal parts white vinegar and water, bring it to the boil, and "
    "leave it to stand for an hour. Pour the mixture away, rinse the kettle three times with clean water, and "
    "boil a full kettle of fresh water once before making tea, so that no taste of vinegar is left behind. "
    "Hard water areas need this every month; soft water areas every three months."
)
KETTLE_QUESTION = "How do I descale a kettle with vinegar?"
# The same advice in other words: similar in meaning, not a repeat.
PARAPHRASE = (
    "Limescale in a kettle comes off with vinegar: half fill it with a mix of vinegar and water, boil it, and let "
    "it sit for about an hour. Then empty it, rinse it well a few times, and boil fresh water once and throw it "
    "away so your tea does not taste of vinegar. Do this monthly where the water is hard."
)


def _corpus(root):
    """Seeds' meeting file at three paths (itself, a copy, a symlink), two pages sharing a paragraph, and a note."""
    root.mkdir()
    shutil.copy(SEEDS / MEETING, root / "meeting.txt")
    (root / "copies").mkdir()
    shutil.copy(SEEDS / MEETING, root / "copies" / "meeting-copy.txt")
    os.symlink("meeting.txt", root / "zz-link.txt")  # relative, so a copy of the corpus links inside itself
    (root / "kitchen.md").write_text(f"Kitchen care\n\n{SHARED}\n", encoding="utf-8")
    (root / "tea.md").write_text(f"Tea at home\n\n{SHARED}\n", encoding="utf-8")
    (root / "eggs.md").write_text(
        "Eggs\n\nA soft-boiled egg needs six minutes in boiling water; a hard-boiled one needs ten.\n", encoding="utf-8"
    )
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory, encoder):
    """The corpus above, indexed, with its service."""
    root = tmp_path_factory.mktemp("duplicates")
    corpus = _corpus(root / "corpus")
    report = build_index(corpus, root / "idx", encoder, **BUILD)
    service = SearchService.open(Settings(index_dir=root / "idx"), encoder=encoder)
    return dict(corpus=corpus, index_dir=root / "idx", report=report, service=service)


def test_a_copy_and_a_symlink_are_indexed_once_under_the_first_path(built):
    scan = scan_corpus(built["corpus"])
    meeting = [d for d in scan.documents if d.doc_id == "copies/meeting-copy.txt"]
    assert [d.aliases for d in meeting] == [("meeting.txt", "zz-link.txt")]
    assert {d.doc_id for d in scan.documents} == {"copies/meeting-copy.txt", "eggs.md", "kitchen.md", "tea.md"}
    assert built["report"].documents == 4 and built["report"].duplicates == 2
    counts = json.loads((built["index_dir"] / MANIFEST_FILE).read_text(encoding="utf-8"))["counts"]
    assert (counts["documents"], counts["duplicates"]) == (4, 2)


def test_same_bytes_under_another_suffix_are_another_document(tmp_path):
    (tmp_path / "note.txt").write_text("# Title\n\nSame bytes, read as plain text.\n", encoding="utf-8")
    shutil.copy(tmp_path / "note.txt", tmp_path / "note.md")
    scan = scan_corpus(tmp_path)
    assert [(d.doc_id, d.aliases) for d in scan.documents] == [("note.md", ()), ("note.txt", ())]


def test_every_citation_of_a_copied_document_names_its_other_paths(built):
    answer = built["service"].search(MEETING_QUESTION, 5)
    meeting = [hit for hit in answer.results if hit.citation.source == "copies/meeting-copy.txt"]
    assert meeting, [hit.citation.source for hit in answer.results]
    assert all(hit.citation.aliases == ["meeting.txt", "zz-link.txt"] for hit in meeting)
    assert all(hit.citation.aliases == [] for hit in answer.results if hit not in meeting)
    assert not any(hit.citation.source in ("meeting.txt", "zz-link.txt") for hit in answer.results)


@pytest.mark.parametrize("path", ["copies/meeting-copy.txt", "meeting.txt", "zz-link.txt"])
def test_a_document_can_be_looked_up_by_any_of_its_paths(built, path):
    document = built["service"].document(path)
    assert document.doc_id == "copies/meeting-copy.txt"
    assert document.aliases == ("meeting.txt", "zz-link.txt")
    assert document.text == (SEEDS / MEETING).read_text(encoding="utf-8")


def test_http_serves_a_document_by_alias_and_search_names_aliases_and_duplicates(built):
    app = create_app(Settings(index_dir=built["index_dir"]), service=built["service"])
    with TestClient(app) as client:
        by_alias = client.get("/documents/zz-link.txt")
        assert by_alias.status_code == 200
        body = by_alias.json()
        assert body["id"] == "copies/meeting-copy.txt" and body["aliases"] == ["meeting.txt", "zz-link.txt"]
        assert client.get("/documents/copies/nothing.txt").status_code == 404
        found = client.post("/search", json={"question": KETTLE_QUESTION, "top_k": 3}).json()
        first = found["results"][0]
        assert first["citation"]["aliases"] == []
        assert [place["source"] for place in first["duplicates"]] == [
            "tea.md" if first["citation"]["source"] == "kitchen.md" else "kitchen.md"
        ]
        schema = client.get("/openapi.json").json()["components"]["schemas"]
        assert "duplicates" in schema["SearchHit"]["properties"] and "aliases" in schema["CitationModel"]["properties"]
        assert "aliases" in schema["DocumentResponse"]["properties"]


def test_two_pages_sharing_a_paragraph_give_one_result_naming_both(built):
    answer = built["service"].search(KETTLE_QUESTION, 3)
    sources = [hit.citation.source for hit in answer.results]
    assert sources[0] in ("kitchen.md", "tea.md") and not {"kitchen.md", "tea.md"} <= set(sources)
    (other,) = answer.results[0].duplicates
    assert {sources[0], other.source} == {"kitchen.md", "tea.md"}
    document = built["service"].document(other.source)
    assert SHARED in document.text[other.start : other.end]
    assert other.line_start == 1 and other.line_end == document.text.count("\n")


def test_collapsed_duplicates_leave_top_k_distinct_results(built):
    service = built["service"]
    # One of the passages repeats another: the top 4 are the 4 best of the rest.
    answer = service.search(KETTLE_QUESTION, 4)
    assert len(answer.results) == len({hit.text for hit in answer.results}) == 4
    assert [hit.rank for hit in answer.results] == [1, 2, 3, 4]
    shown = [(hit.citation.source, hit.citation.start) for hit in answer.results]
    ranked = service.rank(KETTLE_QUESTION, 10, mode="hybrid").ranked
    chunks = service.store.chunks([i for i, _ in ranked])
    repeat = answer.results[0].duplicates[0].source
    leaders = [(chunks[i].doc_id, chunks[i].start) for i, _ in ranked if chunks[i].doc_id != repeat]
    assert shown == leaders[:4]  # the ranking with the repeat taken out, otherwise in the same order


@pytest.mark.parametrize("mode", ["hybrid", "dense", "keyword"])
def test_seeds_answers_are_the_ranking_unchanged_when_nothing_repeats(service, mode):
    for question in [MEETING_QUESTION, *(item["question"] for item in SEEDS_QUESTIONS)]:
        answer = service.search(question, 10, mode=mode)
        ranked = service.rank(question, 10, mode=mode).ranked
        chunks = service.store.chunks([i for i, _ in ranked])
        assert [(h.citation.source, h.citation.start, h.score) for h in answer.results] == [
            (chunks[i].doc_id, chunks[i].start, round(score, 6)) for i, score in ranked
        ], question
        assert all(hit.duplicates == [] and hit.citation.aliases == [] for hit in answer.results)


def test_terminal_answer_has_an_also_in_line(built):
    text = render_answer(built["service"].search(KETTLE_QUESTION, 2))
    assert "also in: tea.md (chars" in text or "also in: kitchen.md (chars" in text
    meeting = render_answer(built["service"].search(MEETING_QUESTION, 1))
    assert "   -- also in: meeting.txt; zz-link.txt" in meeting.splitlines()


def test_cli_ask_shows_aliases_and_duplicates_in_text_and_json(built):
    shown = run_qa("ask", "--index", built["index_dir"], KETTLE_QUESTION, "--top-k", "2")
    assert shown.returncode == 0, shown.stderr
    assert "also in: " in shown.stdout
    as_json = run_qa("ask", "--index", built["index_dir"], MEETING_QUESTION, "--top-k", "1", "--json")
    first = json.loads(as_json.stdout)["results"][0]
    assert first["citation"]["aliases"] == ["meeting.txt", "zz-link.txt"] and first["duplicates"] == []


def _rows(index_dir):
    """Every document (id, bytes, text, aliases) and passage (place, text) the index shows, across its segments,
    the manifest counts, and the keyword ranking of a few questions."""
    from qa.index.manifest import Manifest
    from qa.index.segments import open_store

    store = open_store(index_dir, Manifest.read(index_dir))
    try:
        documents = [store.document(doc_id) for doc_id, _, _ in store.documents()]
        rows = {
            "documents": [(d.doc_id, d.content_hash, d.text, d.aliases) for d in documents],
            "chunks": [(c.doc_id, c.start, c.end, c.text) for c, _ in store.iter_chunks()],
        }
    finally:
        store.close()
    rows["counts"] = json.loads((index_dir / MANIFEST_FILE).read_text(encoding="utf-8"))["counts"]
    service = SearchService.open(Settings(index_dir=index_dir))
    try:
        rows["keywords"] = [
            [
                (h.citation.source, h.citation.start, round(h.score, 9))
                for h in service.search(q, mode="keyword").results
            ]
            for q in ("eggs boiled minutes", "meeting", "tea")
        ]
    finally:
        service.close()
    return rows


@pytest.mark.parametrize(
    "change",
    [
        lambda corpus: shutil.copy(corpus / "eggs.md", corpus / "a-eggs.md"),  # a copy that sorts first: the new id
        lambda corpus: shutil.copy(corpus / "eggs.md", corpus / "z-eggs.md"),  # a copy that sorts last: an alias
        lambda corpus: (corpus / "copies" / "meeting-copy.txt").unlink(),  # the id goes: the next alias takes over
        lambda corpus: (corpus / "zz-link.txt").unlink(),  # an alias goes
    ],
    ids=["copy-first", "copy-last", "remove-id", "remove-alias"],
)
def test_update_after_adding_or_removing_a_copy_equals_a_clean_build(built, encoder, tmp_path, change):
    corpus = tmp_path / "corpus"
    shutil.copytree(built["corpus"], corpus, symlinks=True)
    index_dir = tmp_path / "idx"
    shutil.copytree(built["index_dir"], index_dir)
    change(corpus)
    report = build_index(corpus, index_dir, encoder, **BUILD)
    clean = build_index(corpus, tmp_path / "clean", encoder, full=True, **BUILD)
    assert report.update and report.passages_embedded == 0
    assert (report.added, report.changed, report.removed) == (0, 0, 0) and report.unchanged == clean.documents
    assert _rows(index_dir) == _rows(tmp_path / "clean")


@pytest.mark.parametrize(
    "texts, groups",
    [
        (["alpha beta gamma delta", "something else entirely here"], [[0], [1]]),
        (["Alpha, beta; gamma delta!", "alpha beta gamma delta", "other words"], [[0, 1], [2]]),
        (["other words", SHARED, "Tea at home. " + SHARED], [[0], [1, 2]]),
        ([SHARED, PARAPHRASE], [[0], [1]]),
    ],
    ids=["distinct", "case-and-punctuation", "near-identical", "same-subject-in-other-words"],
)
def test_group_duplicates_keeps_rank_order_and_groups_near_identical_texts(texts, groups):
    assert group_duplicates(texts) == groups


def test_shingle_jaccard_is_one_for_equal_text_and_zero_for_disjoint():
    assert jaccard(shingles("a b c d"), shingles("A b, c d.")) == 1.0
    assert jaccard(shingles("a b c d"), shingles("e f g h")) == 0.0


def test_cli_info_says_how_many_identical_files_were_folded(built):
    shown = run_qa("info", "--index", built["index_dir"])
    assert shown.returncode == 0, shown.stderr
    assert "contents:  4 documents" in shown.stdout and "2 identical files folded into others" in shown.stdout
    counts = json.loads(run_qa("info", "--index", built["index_dir"], "--json").stdout)["counts"]
    assert (counts["documents"], counts["duplicates"]) == (4, 2)
