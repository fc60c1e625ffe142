"""Chinese, Japanese and Korean keyword search: bigram tokenisation, the keyword index it writes, real searches."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys

import pytest
from conftest import DATA

from qa.config import Settings
from qa.index.manifest import DATABASE_FILE
from qa.index.store import document_context, keyword_rows
from qa.ingest.metadata import Metadata
from qa.search.keyword import STOPWORDS, match_expression, query_terms
from qa.text.cjk import bigrams, fts_form, has_cjk, is_stop_term

CJK_QUESTIONS = [json.loads(line) for line in (DATA / "cjk_questions.jsonl").read_text(encoding="utf-8").splitlines()]
ENGLISH_QUESTIONS = [
    json.loads(line)["question"] for line in (DATA / "seeds_questions.jsonl").read_text(encoding="utf-8").splitlines()
]


@pytest.mark.parametrize(
    ("run", "pieces"),
    [
        ("两个一百年", ["两个", "个一", "一百", "百年"]),
        ("会", ["会"]),
        ("東京", ["東京"]),
        ("コンピューター", ["コン", "ンピ", "ピュ", "ュー", "ータ", "ター"]),
        ("학교에서", ["학교", "교에", "에서"]),
    ],
)
def test_a_cjk_run_becomes_overlapping_bigrams_and_a_lone_character_stays_whole(run, pieces):
    assert bigrams(run) == pieces


@pytest.mark.parametrize(
    ("text", "indexed"),
    [
        ("東京の天気は晴れ。", " 東京 京の の天 天気 気は は晴 晴れ 。"),
        ("東京タワーへ行く", " 東京 京タ タワ ワー ーへ へ行 行く "),
        ("서울은 대한민국의 수도입니다.", " 서울 울은   대한 한민 민국 국의   수도 도입 입니 니다 ."),
        ("Python编程很有趣", "Python 编程 程很 很有 有趣 "),
        ("第3章", " 第 3 章 "),
        ("東京・大阪", " 東京 ・ 大阪 "),
    ],
)
def test_japanese_korean_and_mixed_text_is_indexed_as_bigrams_parted_from_latin_letters(text, indexed):
    assert fts_form(text) == indexed


@pytest.mark.parametrize(
    "text",
    [
        "The procuratorate's party group met on March 29, 2024.",
        "Café naïve résumé — Ärger über Öl; Москва; ﬁne ligatures; emoji 🎉; tabs\tand\nnewlines  ",
        "",
    ],
)
def test_text_without_cjk_is_written_to_the_keyword_index_unchanged(text):
    assert not has_cjk(text)
    assert fts_form(text) is text


@pytest.mark.parametrize("question", ENGLISH_QUESTIONS)
def test_english_questions_give_the_same_terms_as_plain_word_splitting(question):
    words = list(dict.fromkeys(w.lower() for w in re.findall(r"\w+", question)))
    assert query_terms(question) == ([w for w in words if w not in STOPWORDS] or words)


@pytest.mark.parametrize(
    ("question", "terms"),
    [
        ("十九届四中全会的历史意义是什么？", ["十九", "九届", "届四", "四中", "中全", "全会", "历史", "史意", "意义"]),
        ("東京の天気はどうですか", ["東京", "天気", "どう"]),
        ("학교에서 공부를", ["학교", "공부"]),
        ("What is the 里程碑意义 of the Plenary Session?", ["里程", "程碑", "碑意", "意义", "plenary", "session"]),
        ("是什么", ["是什", "什么"]),
    ],
)
def test_question_terms_are_cjk_bigrams_without_stop_characters_unless_nothing_else_is_left(question, terms):
    assert query_terms(question) == terms


def test_cjk_question_terms_are_ored_and_quoted():
    assert match_expression("两个一百年") == '"两个" OR "个一" OR "一百" OR "百年"'


@pytest.mark.parametrize(
    ("term", "stop"), [("的重", True), ("什么", True), ("在", False), ("两个", False), ("the", False)]
)
def test_stop_terms_are_cjk_bigrams_holding_a_stop_character(term, stop):
    assert is_stop_term(term) is stop


def _keyword_rows(index_dir):
    db = sqlite3.connect(index_dir / DATABASE_FILE)
    try:
        chunks = {
            row[0]: row[1:]
            for row in db.execute(
                "SELECT c.id, c.text, d.title, d.date, d.author, d.source FROM chunks c"
                " JOIN documents d ON d.id = c.document_id"
            )
        }
        return [(row.context, row.text, *chunks[row.chunk_id]) for row in keyword_rows(db)]
    finally:
        db.close()


def test_seeds_keyword_rows_without_cjk_are_the_passage_text_itself_and_the_chinese_one_holds_bigrams(seeds_index):
    rows = _keyword_rows(seeds_index)
    plain = [r for r in rows if not has_cjk(r[2])]
    chinese = [r for r in rows if has_cjk(r[2])]
    assert plain and chinese
    for context, fts_text, text, *meta in plain:
        assert fts_text == text and context == document_context(Metadata(*meta))
    for _, fts_text, text, *_ in chinese:
        assert fts_text != text and " 里程 程碑 碑意 意义 " in fts_text


CHINESE_ONLY = [q for q in CJK_QUESTIONS if not re.search(r"[A-Za-z]", q["question"])]


@pytest.mark.parametrize("case", CHINESE_ONLY, ids=lambda q: q["id"])
def test_a_chinese_question_finds_the_chinese_passage_first_in_keyword_mode(service, case):
    answer = service.search(case["question"], 5, mode="keyword")
    assert answer.results, case["question"]
    best = answer.results[0]
    assert best.citation.source == case["document"] and case["phrase"] in best.text


def test_a_mixed_chinese_english_question_ranks_the_chinese_passage_first_in_keyword_mode(service):
    answer = service.search("What is the 里程碑意义 of the Fourth Plenary Session?", 5, mode="keyword")
    assert "里程碑意义的重要会议" in answer.results[0].text


CJK_CORPUS = DATA / "cjk_corpus"
CORPUS_QUESTIONS = [
    json.loads(line) for line in (CJK_CORPUS / "questions.jsonl").read_text(encoding="utf-8").splitlines()
]


@pytest.fixture(scope="module")
def cjk_service(tmp_path_factory, encoder):
    """A real index of tests/data/cjk_corpus: short Chinese, Japanese, Korean and English documents."""
    from qa.index.indexer import build_index
    from qa.search.service import SearchService

    index_dir = tmp_path_factory.mktemp("cjk-corpus") / "embeddings"
    defaults = Settings()
    build_index(
        CJK_CORPUS / "corpus", index_dir, encoder, chunk_size=defaults.chunk_size, chunk_overlap=defaults.chunk_overlap
    )
    return SearchService.open(Settings(index_dir=index_dir), encoder=encoder)


@pytest.mark.parametrize("case", CORPUS_QUESTIONS, ids=lambda q: q["id"])
def test_chinese_japanese_and_korean_questions_find_their_passage_first_in_keyword_mode(cjk_service, case):
    best = cjk_service.search(case["question"], 3, mode="keyword").results[0]
    assert best.citation.source == case["document"] and case["phrase"] in best.text


def test_a_mixed_question_finds_passages_by_its_english_words_and_by_its_chinese_words(cjk_service):
    sources = {hit.citation.source for hit in cjk_service.search("Giant pandas 大熊猫", 10, mode="keyword").results}
    assert sources == {"pandas_en.txt", "panda.txt", "chengdu.txt"}


def test_a_passage_sharing_only_stop_characters_with_the_question_is_not_found(cjk_service):
    # chatter.txt shares 是什, 什么 and 么是 with the question, and nothing else.
    sources = [hit.citation.source for hit in cjk_service.search("什么是大熊猫的食物？", 10, mode="keyword").results]
    assert sources[0] == "panda.txt" and "chatter.txt" not in sources


def test_qa_ask_answers_a_chinese_question_with_the_chinese_passage(seeds_index):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "qa",
            "ask",
            "“两个一百年”奋斗目标的历史交汇点",
            "--index",
            str(seeds_index),
            "--mode",
            "keyword",
            "--top-k",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    best = json.loads(result.stdout)["results"][0]
    assert best["citation"]["source"] == "003_bdd7a3cd5751323a.txt"
    assert "“两个一百年”奋斗目标历史交汇点上" in best["text"]


def test_a_chinese_question_covers_its_chinese_passage_for_confidence():
    from qa.search.confidence import term_coverage
    from qa.search.keyword import query_terms

    question = "最高人民检察院的职责是什么"
    passage = "最高人民检察院领导地方各级人民检察院的工作。"
    assert term_coverage(query_terms(question), passage) > 0.5
    assert term_coverage(query_terms("railway cases"), "Railway cases are handled here.") == 1.0
