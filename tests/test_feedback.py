"""Keyword feedback (``keyword_feedback``): in hybrid search, the best fused passage's most frequent words that
the question lacks become a second keyword query whose scores join the keyword side before fusing again, when that
passage is under a heading; with the real model, store, postings and segments of the seeds written as Markdown
with headings, and of the seeds as they are (no headings: no feedback)."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SEEDS
from test_segments import BUILD
from test_shards import FILTERS, same_answers

from qa.config import Settings
from qa.distributed.shard_router import open_sharded
from qa.distributed.shards import build_shards
from qa.errors import ConfigError
from qa.index.indexer import build_index
from qa.search.filters import SearchFilter
from qa.search.fusion import normalised_score_fusion
from qa.search.service import SearchService, feedback_words

sys.path.insert(0, str(ROOT / "benchmarks"))
import feedback_quality  # noqa: E402

QUESTIONS = [json.loads(line)["question"] for line in (SEEDS.parent / "tests/data/seeds_questions.jsonl").open()]


class RecordingKeywords:
    """A keyword index that passes every call to the real one and remembers what it was asked."""

    def __init__(self, real) -> None:
        self.real = real
        self.asked: list[tuple[str, int, np.ndarray | None]] = []

    def retrieve(self, question, k, allowed=None):
        self.asked.append((question, k, allowed))
        return self.real.retrieve(question, k, allowed)


def _service(settings: Settings, encoder, weight: float) -> SearchService:
    return SearchService.open(replace(settings, keyword_feedback=weight), encoder=encoder)


def headed_seeds(target: Path) -> Path:
    """The seeds as Markdown documentation: each article's title a ``#`` heading, its short unpunctuated lines
    (the articles' own subheadings) ``##`` headings, the metadata line and the paragraphs as they are."""
    target.mkdir(parents=True)
    for path in sorted(SEEDS.glob("*.txt")):
        metadata, title, *rest = path.read_text(encoding="utf-8").splitlines()
        lines = [metadata, "", f"# {title}"]
        for line in rest:
            heading = line.strip() and len(line) < 100 and not line.rstrip().endswith(tuple('.!?":;”'))
            lines.append(f"## {line.strip()}" if heading else line)
        (target / f"{path.stem}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def headed(tmp_path_factory, encoder):
    """The headed seeds corpus and its index."""
    root = tmp_path_factory.mktemp("headed")
    corpus = headed_seeds(root / "corpus")
    build_index(corpus, root / "index", encoder, **BUILD)
    return corpus, root / "index"


@pytest.fixture(scope="module")
def plain(headed, service, encoder):
    """The headed seeds' service with keyword feedback off."""
    return _service(replace(service.settings, index_dir=headed[1]), encoder, 0.0)


@pytest.fixture(scope="module")
def fed(headed, service, encoder):
    """The headed seeds' service with keyword feedback at weight 1 (the default)."""
    assert Settings().keyword_feedback == 1.0
    return _service(replace(service.settings, index_dir=headed[1]), encoder, 1.0)


def test_the_headed_seeds_passages_are_under_headings(plain):
    chunks = plain.store.chunks(list(plain.dense.vectors.ids))
    assert sum(bool(chunk.section) for chunk in chunks.values()) >= 0.9 * len(chunks)


def test_without_headings_feedback_changes_nothing(service, encoder):
    # The seeds as they are have no headings: an article's best passage shares the whole article's vocabulary, so
    # its words are not fed back and every ranking is the one without feedback.
    assert not any(chunk.section for chunk in service.store.chunks(list(service.dense.vectors.ids)).values())
    on, off = _service(service.settings, encoder, 1.0), _service(service.settings, encoder, 0.0)
    recording = RecordingKeywords(on.keyword)
    on.keyword = recording
    try:
        for question in QUESTIONS:
            assert on.rank(question, 20).ranked == off.rank(question, 20).ranked
    finally:
        on.keyword = recording.real
    assert [entry[0] for entry in recording.asked] == QUESTIONS
    on.close(), off.close()


def test_feedback_words_are_the_passage_s_most_frequent_new_words_by_stem():
    passage = (
        "Stashing saves changes. The stash list shows stashes; each stash entry keeps changes of the index. "
        "Entries: 12 entries, 3 ok, an index entry."
    )
    # "stash"/"stashes"/"stashing" and "change"/"changes" are the question's stems; stop words, numbers and
    # words under three letters never count; ties keep the order of first appearance.
    words = feedback_words("how do I stash my changes", passage, count=3)
    assert words == ["entry", "index", "saves"]
    assert feedback_words("how do I stash my changes", passage, count=1) == ["entry"]
    assert feedback_words("anything", "the and of 12 ok") == []


def test_the_second_keyword_query_is_made_of_the_first_fusion_s_best_passage(plain, fed):
    checked = 0
    for question in QUESTIONS[:12]:
        best = plain.store.chunks([plain.rank(question, 10, mode="hybrid").ranked[0][0]]).popitem()[1]
        words = feedback_words(question, best.text) if best.section else []  # only a passage under a heading
        recording = RecordingKeywords(fed.keyword)
        fed.keyword = recording
        try:
            fed.rank(question, 10, mode="hybrid")
        finally:
            fed.keyword = recording.real
        asked = [entry[0] for entry in recording.asked]
        assert asked == ([question, " ".join(words)] if words else [question])
        checked += bool(words)
    assert checked >= 10, "most seeds questions' best passage must add words for this test to mean anything"


def _fused_with_feedback(plain, question: str, words: list[str]) -> list[tuple[int, float]]:
    """The hybrid fusion of ``question`` with the keyword scores of ``words`` added as the weight-1 feedback adds
    them, computed here from the two retrievers."""
    settings = plain.settings
    depth = settings.candidates
    keyword = dict(plain.keyword.retrieve(question, depth))
    expanded = plain.keyword.retrieve(" ".join(words), depth)
    scale = max(keyword.values()) / expanded[0][1]
    for chunk_id, score in expanded:
        keyword[chunk_id] = keyword.get(chunk_id, 0.0) + scale * score
    query = plain.dense.embed(question)
    dense = plain.dense.retrieve(query, depth)
    cosines = dict(dense) | plain.dense.similarity(query, [i for i in keyword if i not in dict(dense)])
    best_sentence = plain.sentences.best(query, list(cosines))
    weight = settings.sentence_weight
    meaning = {i: (1 - weight) * c + weight * best_sentence.get(i, c) for i, c in cosines.items()}
    expected = normalised_score_fusion(
        meaning, keyword, dense_weight=settings.dense_weight, window=settings.fusion_window
    )
    return plain._with_section_leads(expected, settings.section_lead)  # headed passages' lead, as always


def test_the_feedback_scores_join_the_keyword_side_scaled_to_its_weight_and_fuse_again(plain, fed):
    compared = 0
    for question in QUESTIONS[:12]:
        best = plain.store.chunks([plain.rank(question, 10, mode="hybrid").ranked[0][0]]).popitem()[1]
        words = feedback_words(question, best.text)
        if not best.section or not words:
            continue
        expected = _fused_with_feedback(plain, question, words)
        got = fed.rank(question, 100, mode="hybrid").ranked
        assert [i for i, _ in got] == [i for i, _ in expected][:100]
        assert [s for _, s in got] == pytest.approx([s for _, s in expected][:100], abs=1e-6)
        compared += 1
    assert compared >= 8


def test_the_benchmark_s_rm3_variant_it_was_chosen_as_ranks_as_the_shipped_feedback(plain, fed):
    variant = feedback_quality.Variant.parse("rm3:m=1:t=5:lam=1.0:idf=0")
    first_stage = feedback_quality.variant_first_stage(variant, SearchService._first_stage)
    compared = 0
    for question in QUESTIONS[:12]:
        best = plain.rank(question, 10).ranked[0][0]
        if plain.store.chunks([best])[best].section:  # the shipped feedback reads passages under headings only
            assert first_stage(plain, question, 10, "hybrid", None).ranked[:10] == fed.rank(question, 10).ranked
            compared += 1
    assert compared >= 8


def test_feedback_changes_some_seeds_rankings(plain, fed):
    changed = sum(plain.rank(q, 10).ranked != fed.rank(q, 10).ranked for q in QUESTIONS)
    assert changed >= 5


def test_feedback_off_ranks_exactly_as_the_fusion_of_the_two_retrievers(plain):
    """What hybrid search gave before keyword feedback existed: one keyword query, fused with the dense side."""
    settings = plain.settings
    for question in QUESTIONS[:10]:
        query = plain.dense.embed(question)
        dense = plain.dense.retrieve(query, settings.candidates)
        keyword = plain.keyword.retrieve(question, settings.candidates)
        cosines = dict(dense) | plain.dense.similarity(query, [i for i, _ in keyword if i not in dict(dense)])
        best_sentence = plain.sentences.best(query, list(cosines))
        weight = settings.sentence_weight
        meaning = {i: (1 - weight) * c + weight * best_sentence.get(i, c) for i, c in cosines.items()}
        expected = normalised_score_fusion(
            meaning, dict(keyword), dense_weight=settings.dense_weight, window=settings.fusion_window
        )
        expected = plain._with_section_leads(expected, settings.section_lead)  # headed passages' lead, as always
        assert plain.rank(question, 100).ranked == expected[:100]


@pytest.mark.parametrize("mode", ["dense", "keyword"])
def test_dense_and_keyword_modes_are_unchanged_by_feedback(plain, fed, mode):
    for question in QUESTIONS[:10]:
        assert fed.rank(question, 20, mode=mode).ranked == plain.rank(question, 20, mode=mode).ranked


@pytest.mark.parametrize("search_filter", [SearchFilter(source="00[34]*"), SearchFilter(before="2025-01-01")])
def test_filters_apply_before_ranking_and_before_feedback(fed, search_filter):
    allowed = fed.store.allowed_chunks(search_filter)
    assert 0 < len(allowed) < len(fed.dense.vectors)
    allowed_set = set(allowed.tolist())
    recording = RecordingKeywords(fed.keyword)
    fed.keyword = recording
    try:
        for question in QUESTIONS[:10]:
            ranked = fed.rank(question, 20, search_filter=search_filter).ranked
            assert ranked and {chunk_id for chunk_id, _ in ranked} <= allowed_set
    finally:
        fed.keyword = recording.real
    feedback_calls = [entry for entry in recording.asked if entry[0] not in QUESTIONS]
    assert feedback_calls, "the filtered searches must have made feedback queries"
    assert all(entry[2] is not None and np.array_equal(entry[2], allowed) for entry in recording.asked)


def test_a_segmented_index_answers_with_feedback_exactly_as_a_clean_build(tmp_path, headed, encoder):
    corpus = tmp_path / "corpus"
    shutil.copytree(headed[0], corpus)
    segmented = tmp_path / "index"
    build_index(corpus, segmented, encoder, **BUILD)
    with next(corpus.glob("000_*.md")).open("a", encoding="utf-8") as handle:
        handle.write("\n## A closing visit\n\nThe meeting also toured a lighthouse and its keepers' foghorns.\n")
    (corpus / "lighthouse.md").write_text(
        "# Lighthouses\n\nLighthouse keepers kept the lamps lit and sounded foghorns in the harbour every foggy "
        "night.\n",
        encoding="utf-8",
    )
    report = build_index(corpus, segmented, encoder, **BUILD)
    assert report.segments == 2
    clean = tmp_path / "clean"
    build_index(corpus, clean, encoder, **BUILD, full=True)
    questions = QUESTIONS[:12] + ["lighthouse keepers and their foghorns"]
    answers = []
    for index in (segmented, clean):
        service = _service(Settings(index_dir=index), encoder, 1.0)
        answers.append(
            [
                [
                    (h.citation.source, h.citation.start, h.citation.end, round(h.score, 5))
                    for h in service.search(question, 10, mode="hybrid").results
                ]
                for question in questions
            ]
        )
        service.close()
    assert answers[0] == answers[1]


def test_two_shards_answer_with_feedback_as_the_unsharded_index_does(tmp_path, headed, fed, encoder):
    build_shards(headed[0], tmp_path / "sharded", encoder, shards=2, **BUILD)
    sharded = open_sharded(replace(fed.settings, index_dir=tmp_path / "sharded"), encoder)
    different = []
    for name, search_filter in FILTERS.items():
        for question in QUESTIONS[:20]:
            expected = fed.search(question, 10, search_filter=search_filter).as_dict()
            got = sharded.search(question, 10, search_filter=search_filter).as_dict()
            if not same_answers(expected, got):
                different.append((name, question))
    sharded.close()
    assert not different


def test_keyword_feedback_is_a_setting_with_bounds(monkeypatch):
    monkeypatch.setenv("QA_KEYWORD_FEEDBACK", "0.5")
    assert Settings.from_env().keyword_feedback == 0.5
    monkeypatch.setenv("QA_KEYWORD_FEEDBACK", "0")
    assert Settings.from_env().keyword_feedback == 0.0
    for bad in ("-1", "5", "nan"):
        monkeypatch.setenv("QA_KEYWORD_FEEDBACK", bad)
        with pytest.raises(ConfigError, match="QA_KEYWORD_FEEDBACK: keyword feedback must be between 0 and 4"):
            Settings.from_env()
    monkeypatch.setenv("QA_KEYWORD_FEEDBACK", "lots")
    with pytest.raises(ConfigError, match="QA_KEYWORD_FEEDBACK must be a number"):
        Settings.from_env()
