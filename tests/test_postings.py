"""The keyword postings rank exactly as FTS5's bm25() did: same rows, same scores, filters before ranking."""

from __future__ import annotations

import json
import random
import shutil
import sqlite3

import numpy as np
import pytest
from conftest import DATA

import qa.index.postings
from qa.config import Settings
from qa.errors import IndexCorrupt
from qa.index.manifest import DATABASE_FILE, KEYWORDS_FILE, MANIFEST_FILE, file_checksum
from qa.index.postings import TOKENIZER, KeywordRow, Postings, QueryTokenizer, build_postings
from qa.index.store import StoreReader, keyword_rows
from qa.search.filters import SearchFilter
from qa.search.keyword import KeywordRetriever, match_expression, query_terms
from qa.search.service import SearchService
from qa.text.cjk import fts_form

WEIGHTS = [(1.0, 1.0), (2.5, 0.5), (0.0, 1.0)]
SCORE_TOLERANCE = 1e-5


def fts5_table(rows: list[KeywordRow]) -> sqlite3.Connection:
    """An in-memory FTS5 table holding ``rows`` as the store's ``chunks_fts`` held them before the postings."""
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE VIRTUAL TABLE chunks_fts USING fts5(context, text, tokenize = '{TOKENIZER}')")
    db.executemany(
        "INSERT INTO chunks_fts (rowid, context, text) VALUES (?, ?, ?)",
        [(r.chunk_id, r.context, r.text) for r in rows],
    )
    return db


def fts5_ranking(db: sqlite3.Connection, question: str, weights, allowed=None) -> list[tuple[int, float]]:
    """Every row FTS5 matches for ``question``, scored as the store's keyword search scored it, best first."""
    expression = match_expression(question)
    if expression is None:
        return []
    restrict = f" AND rowid IN ({','.join(str(int(i)) for i in allowed)})" if allowed is not None else ""
    return db.execute(
        f"SELECT rowid, -bm25(chunks_fts, {weights[0]}, {weights[1]}) AS score FROM chunks_fts"
        f" WHERE chunks_fts MATCH ?{restrict} ORDER BY score DESC",
        (expression,),
    ).fetchall()


def assert_same_top_k(found: list[tuple[int, float]], everything: list[tuple[int, float]], k: int) -> None:
    """``found`` is a top ``k`` of FTS5's full ranking ``everything``: same scores, and the same rows up to ties
    (a tie group cut by ``k`` may be any of its rows; the postings take the lowest chunk ids)."""
    assert len(found) == min(k, len(everything))
    if not found:
        return
    fts_scores = dict(everything)
    for (chunk_id, score), (_, expected) in zip(found, everything):
        assert fts_scores[chunk_id] == pytest.approx(score, abs=SCORE_TOLERANCE)
        assert score == pytest.approx(expected, abs=SCORE_TOLERANCE)
    last = everything[len(found) - 1][1]
    must = {i for i, s in everything if s > last + SCORE_TOLERANCE}
    may = {i for i, s in everything if s >= last - SCORE_TOLERANCE}
    assert must <= {i for i, _ in found} <= may
    for (first, score), (second, next_score) in zip(found, found[1:]):
        assert score > next_score or (score == next_score and first < second)


WORDS = "alpha beta gamma delta running runs runner cat cats tea teas green policy policies the of and".split()
CJK = ["人民检察院", "两个一百年", "里程碑意义", "法治", "东京の天気", "서울 회의"]


def generated_rows(seed: int = 7, n: int = 400) -> list[KeywordRow]:
    """Rows with repeated words, identical copies (ties), stems, titles in the context, empty contexts and CJK text;
    chunk ids with gaps, as an updated store may not have them contiguous."""
    pick = random.Random(seed)
    rows, chunk_id = [], 0
    for number in range(n):
        chunk_id += pick.choice((1, 1, 2, 5))
        if number % 10 == 9:  # a copy of an earlier row: the same score for the same question
            rows.append(KeywordRow(chunk_id, rows[-3].context, rows[-3].text))
            continue
        words = [pick.choice(WORDS) for _ in range(pick.randint(0, 40))]
        if pick.random() < 0.2:
            words.insert(pick.randint(0, len(words)), pick.choice(CJK))
        title = " ".join(pick.choice(WORDS) for _ in range(pick.randint(0, 4)))
        context = fts_form(title + (f"\nMarch {number % 28 + 1} 2024" if pick.random() < 0.5 else ""))
        rows.append(KeywordRow(chunk_id, context, fts_form(" ".join(words))))
    return rows


GENERATED_QUESTIONS = [
    "alpha",
    "running cats",
    "the green tea policy",
    "policies of the runner",
    "beta gamma delta alpha",
    "the of and",
    "teas",
    "两个一百年的里程碑",
    "人民检察院 tea",
    "東京の天気は",
    "서울 회의",
    "zeta",
    "run",
]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    rows = generated_rows()
    path = tmp_path_factory.mktemp("postings") / KEYWORDS_FILE
    build_postings(rows, path, batch=64)  # several batches, so terms meet again across them
    return rows, Postings.open_path(path), fts5_table(rows)


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("k", [1, 5, 100, 1000])
@pytest.mark.parametrize(("slot_factor", "seed_factor", "search_factor"), [(0, 1, 16), (64, 32, 0), (10**9, 4, 10**9)])
def test_generated_corpus_top_k_equals_fts5_with_ties_stems_cjk_and_column_weights(
    generated, weights, k, slot_factor, seed_factor, search_factor, monkeypatch
):
    # Each way of finding and scoring candidates (binary search or row maps; small or large first bar) is exact.
    monkeypatch.setattr(qa.index.postings, "_SLOT_MAP_FACTOR", slot_factor)
    monkeypatch.setattr(qa.index.postings, "_SEED_FACTOR", seed_factor)
    monkeypatch.setattr(qa.index.postings, "_BINARY_SEARCH_FACTOR", search_factor)
    _, postings, db = generated
    tokenizer = QueryTokenizer()
    for question in GENERATED_QUESTIONS:
        found = postings.search(tokenizer.tokens(query_terms(question)), k, weights=weights)
        assert_same_top_k(found, fts5_ranking(db, question, weights), k)


def test_row_lengths_and_term_counts_are_fts5s_own(generated):
    rows, postings, db = generated
    sizes = dict(db.execute("SELECT id, sz FROM chunks_fts_docsize"))
    assert postings.n_rows == len(rows) and list(postings.chunk_ids) == [r.chunk_id for r in rows]
    db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS vocabulary USING fts5vocab(chunks_fts, 'row')")
    vocabulary = [r[0] for r in db.execute("SELECT term FROM vocabulary")]
    assert [postings.term(i) for i in range(postings.n_terms)] == vocabulary
    for position, chunk_id in enumerate(postings.chunk_ids):
        blob, total, offset = sizes[int(chunk_id)], 0, 0
        while offset < len(blob):  # FTS5 stores each column's token count as a varint
            value = 0
            while True:
                byte = blob[offset]
                offset += 1
                value = (value << 7) | (byte & 0x7F)
                if not byte & 0x80:
                    break
            total += value
        assert postings.row_tokens[position] == total


@pytest.mark.parametrize("weights", WEIGHTS[:2])
def test_generated_corpus_filters_apply_before_ranking_and_equal_fts5_restricted(generated, weights):
    rows, postings, db = generated
    tokenizer = QueryTokenizer()
    allowed = np.array([r.chunk_id for r in rows[::7]], dtype=np.int64)
    for question in GENERATED_QUESTIONS:
        everything = fts5_ranking(db, question, weights, allowed)
        found = postings.search(
            tokenizer.tokens(query_terms(question)), 10, weights=weights, allowed=postings.rows_of(allowed)
        )
        assert_same_top_k(found, everything, 10)
        assert {i for i, _ in found} <= set(allowed.tolist())


def test_a_term_split_into_several_tokens_matches_rows_holding_them_all_in_one_column(tmp_path):
    rows = [
        KeywordRow(1, "", "call snake_case here"),
        KeywordRow(2, "", "a snake and a case"),
        KeywordRow(3, "snake", "case"),
        KeywordRow(4, "", "only a snake"),
    ]
    build_postings(rows, tmp_path / KEYWORDS_FILE)
    postings = Postings.open_path(tmp_path / KEYWORDS_FILE)
    tokens = QueryTokenizer().tokens(["snake_case"])
    assert tokens == [("snake", "case")]
    # FTS5 matches rows 1 only (the tokens side by side); without positions, row 2 matches too: never row 3
    # (the tokens in different columns) nor row 4.
    assert {i for i, _ in postings.search(tokens, 10)} == {1, 2}
    assert [i for i, _ in fts5_ranking(fts5_table(rows), "snake_case", (1.0, 1.0))] == [1]


def test_questions_with_no_indexed_term_return_nothing(generated):
    _, postings, _ = generated
    tokenizer = QueryTokenizer()
    for question in ("zeta omega", "___", "xyzzy plugh"):
        assert postings.search(tokenizer.tokens(query_terms(question)), 10) == []


SEEDS_QUESTIONS = [json.loads(line)["question"] for line in (DATA / "seeds_questions.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("weights", WEIGHTS[:2])
def test_seeds_index_keyword_top_k_equals_fts5_over_the_same_rows(seeds_index, weights):
    store = StoreReader(seeds_index / DATABASE_FILE)
    with sqlite3.connect(seeds_index / DATABASE_FILE) as source:
        db = fts5_table(list(keyword_rows(source)))
    retriever = KeywordRetriever(store, context_weight=weights[0], text_weight=weights[1])
    for question in SEEDS_QUESTIONS + ["两个一百年", "Yin Jun", "railway procuratorates reform"]:
        assert_same_top_k(retriever.retrieve(question, 20), fts5_ranking(db, question, weights), 20)


def test_seeds_keyword_filter_returns_k_results_whenever_k_allowed_rows_match(service):
    source = "002_*"
    answer = service.search(
        "the procuratorate and the law", 5, mode="keyword", search_filter=SearchFilter.of(source=source)
    )
    assert len(answer.results) == 5 and all(h.citation.source.startswith("002_") for h in answer.results)
    allowed = service.store.allowed_chunks(SearchFilter.of(source=source))
    found = service.keyword.retrieve("the procuratorate and the law", 1000, allowed)
    assert {i for i, _ in found} <= set(allowed.tolist()) and len(found) >= 5


def test_a_damaged_postings_file_is_refused_by_its_checksum(index_copy):
    path = index_copy / KEYWORDS_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt, match="checksum"):
        SearchService.open(Settings(index_dir=index_copy))


def test_a_missing_postings_file_is_refused(index_copy):
    (index_copy / KEYWORDS_FILE).unlink()
    with pytest.raises(IndexCorrupt, match=KEYWORDS_FILE):
        SearchService.open(Settings(index_dir=index_copy))


@pytest.mark.parametrize(
    "content", [b"", b"QAKWPOST", b"not postings at all", b"QAKWPOST" + (10**6).to_bytes(8, "little")]
)
def test_a_postings_file_that_is_not_one_is_refused_even_with_a_matching_checksum(index_copy, content):
    (index_copy / KEYWORDS_FILE).write_bytes(content)
    manifest = json.loads((index_copy / MANIFEST_FILE).read_text(encoding="utf-8"))
    manifest["checksums"][KEYWORDS_FILE] = file_checksum(index_copy / KEYWORDS_FILE)
    (index_copy / MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexCorrupt, match="keyword postings"):
        SearchService.open(Settings(index_dir=index_copy))


def test_a_truncated_postings_file_is_refused_even_with_a_matching_checksum(index_copy):
    path = index_copy / KEYWORDS_FILE
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    manifest = json.loads((index_copy / MANIFEST_FILE).read_text(encoding="utf-8"))
    manifest["checksums"][KEYWORDS_FILE] = file_checksum(path)
    (index_copy / MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexCorrupt, match="keyword postings"):
        SearchService.open(Settings(index_dir=index_copy))


def test_an_update_writes_the_postings_of_a_clean_build(index_copy, encoder, tmp_path):
    from conftest import SEEDS

    from qa.index.indexer import build_index

    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    (corpus / "extra.md").write_text("# Green tea\n\nGreen tea policy for the railway procuratorates.\n", "utf-8")
    settings = Settings()
    build = dict(chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap, embed_title=settings.embed_title)
    report = build_index(corpus, index_copy, encoder, **build)
    clean = tmp_path / "clean"
    build_index(corpus, clean, encoder, full=True, **build)
    assert report.update and report.added == 1 and report.segments == 2
    # The new document is a segment of its own; BM25 over both segments scores as the clean build's one file.
    ours, theirs = SearchService.open(Settings(index_dir=index_copy)), SearchService.open(Settings(index_dir=clean))
    try:
        for question in ("green tea policy", "railway procuratorates", "modernization of procuratorial work", "tea"):
            mine = ours.search(question, top_k=20, mode="keyword").results
            expected = theirs.search(question, top_k=20, mode="keyword").results
            assert [(h.citation.source, h.citation.start) for h in mine] == [
                (h.citation.source, h.citation.start) for h in expected
            ], question
            assert all(abs(a.score - b.score) <= 1e-9 for a, b in zip(mine, expected)), question
    finally:
        ours.close()
        theirs.close()
