"""The search core end to end without the model: a real index (real indexer, FAISS, SQLite) of a small corpus
embedded by the hashing encoder of tests/fakes.py. What ranks well here says nothing about the model's quality
(the slow tier checks that with the real one); these tests hold the logic around it: citations, filters,
fusion, duplicates, the answer's shape."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from fakes import HashingEncoder

from qa.config import MODES, Settings
from qa.errors import DocumentNotFound, InvalidRequest
from qa.index.indexer import build_index
from qa.index.manifest import Manifest
from qa.library import Index
from qa.search.fusion import normalised_score_fusion, reciprocal_rank_fusion
from qa.search.service import SearchService

CHUNK_SIZE, CHUNK_OVERLAP = 48, 8

LIGHTHOUSE = """# The lighthouse keeper

Date: 2023-05-01

The keeper climbs the tower every evening. He trims the lamp wick at midnight and polishes the lens at dawn.

## Storms

During a storm the keeper sounds the fog horn every thirty seconds. Ships steer by the horn when the beam is hidden
by rain. The log book records each storm, its start and its end.

## Supplies

Oil for the lamp arrives by boat once a month. The keeper stores the barrels in the cellar under the tower,
away from the damp walls.
"""

TEA = """Brewing green tea

Date: 2024-02-10

Green tea steeps for two minutes in water just below boiling. Water that is too hot makes the leaves bitter.
Black tea wants boiling water and four minutes.
"""

RAILWAY = """Railway courts

The railway procuratorate handles crimes committed on trains and in stations. Its prosecutors travel along the line
and hear complaints from passengers at the larger stations.
"""

ROTATION = """Rotating the logs

The service rotates its log files every night at two o'clock, keeps fourteen compressed archives, and deletes
the oldest archive when a new one is written. Set the retention with the keep option in the config file.
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A few small documents: two dated in their text, the rest by their files' times; one near-duplicate pair, and
    one identical pair."""
    root = tmp_path_factory.mktemp("fake-corpus")
    (root / "ops").mkdir()
    (root / "archive").mkdir()
    (root / "lighthouse.md").write_text(LIGHTHOUSE, encoding="utf-8")
    (root / "tea.txt").write_text(TEA, encoding="utf-8")
    (root / "archive" / "tea.txt").write_text(TEA, encoding="utf-8")  # the same bytes: one document, two paths
    (root / "railway.txt").write_text(RAILWAY, encoding="utf-8")
    (root / "ops" / "rotation.txt").write_text(ROTATION, encoding="utf-8")
    # The same paragraph with one word changed: a near-identical passage in another document.
    (root / "ops" / "rotation-old.txt").write_text(ROTATION.replace("fourteen", "seven"), encoding="utf-8")
    for name, year in (("railway.txt", 2020), ("ops/rotation.txt", 2021), ("ops/rotation-old.txt", 2021)):
        stamp = datetime(year, 6, 1, 12, tzinfo=timezone.utc).timestamp()
        os.utime(root / name, (stamp, stamp))
    return root


@pytest.fixture(scope="module")
def fake() -> HashingEncoder:
    """The encoder every index of this module is built and searched with."""
    return HashingEncoder()


@pytest.fixture(scope="module")
def fake_index(corpus, fake, tmp_path_factory) -> Path:
    """The corpus indexed with the hashing encoder. Treat as read-only."""
    index_dir = tmp_path_factory.mktemp("fake-index") / "embeddings"
    build_index(corpus, index_dir, fake, chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP, embed_title=True)
    return index_dir


def _service(index_dir: Path, encoder: HashingEncoder, **settings) -> SearchService:
    """A service over ``index_dir`` with these settings, embedding questions with ``encoder``."""
    return SearchService.open(Settings(index_dir=index_dir, **settings), encoder=encoder)


@pytest.fixture(scope="module")
def service(fake_index, fake) -> Iterator[SearchService]:
    """The service over the fake index with the default settings."""
    service = _service(fake_index, fake)
    yield service
    service.close()


def test_hashing_encoder_is_deterministic_unit_length_and_closer_for_shared_words(fake):
    texts = ["the keeper trims the lamp wick", "when does the keeper trim the lamp wick", "green tea steeps briefly"]
    vectors = fake.encode(texts)
    assert vectors.dtype == np.float32 and vectors.shape == (3, fake.dimension)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert np.array_equal(vectors, HashingEncoder().encode(texts))
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3
    assert np.allclose(np.linalg.norm(fake.encode([""]), axis=1), 1.0)


def test_hashing_encoder_span_vectors_embed_each_span(fake):
    text = "The keeper trims the wick. Green tea steeps."
    spans = [(0, 26), (27, len(text))]
    vectors, per_span = fake.encode_with_spans([text], [spans])
    assert vectors.shape == (1, fake.dimension) and per_span[0].shape == (2, fake.dimension)
    assert np.allclose(per_span[0], fake.encode([text[a:b] for a, b in spans]))
    assert fake.count_tokens(["Green tea, hot."]) == [5]


def test_manifest_records_the_fake_encoder_and_the_corpus_counts(fake_index, fake, service):
    manifest = Manifest.read(fake_index)
    assert (manifest.model, manifest.dimension, manifest.max_tokens) == (fake.model_id, fake.dimension, 256)
    assert (manifest.chunking["size"], manifest.chunking["overlap"]) == (CHUNK_SIZE, CHUNK_OVERLAP)
    # Six files, one of them a byte-identical copy: five documents.
    assert service.info()["counts"]["documents"] == 5
    assert manifest.counts["chunks"] > 5  # the lighthouse page is cut into several passages


@pytest.mark.parametrize(
    ("question", "source"),
    [
        ("When does the keeper trim the lamp wick?", "lighthouse.md"),
        ("How long does green tea steep in water?", "archive/tea.txt"),  # tea.txt's bytes again: one document
        ("railway procuratorate prosecutors on trains", "railway.txt"),
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_every_mode_puts_the_passage_sharing_the_question_words_first(service, mode, question, source):
    answer = service.search(question, 3, mode=mode)
    assert answer.mode == mode
    assert answer.results[0].citation.source == source
    assert [hit.rank for hit in answer.results] == list(range(1, len(answer.results) + 1))


@pytest.mark.parametrize("mode", MODES)
def test_citation_offsets_match_source(service, mode):
    answer = service.search("keeper storm horn lamp oil tea railway logs", 10, mode=mode)
    assert len(answer.results) >= 5
    for hit in answer.results:
        citation = hit.citation
        text = service.document(citation.source).text
        assert text[citation.start : citation.end] == hit.text
        assert citation.line_start == text.count("\n", 0, citation.start) + 1
        assert citation.line_end == text.count("\n", 0, citation.end - 1) + 1
        for highlight in citation.highlight:
            assert citation.start <= highlight.start < highlight.end <= citation.end
        for place in hit.duplicates:
            assert service.document(place.source).text[place.start : place.end].strip()


def test_passages_under_a_heading_are_cited_with_their_section(service):
    hit = service.search("fog horn during a storm", 1, mode="keyword").results[0]
    assert hit.citation.source == "lighthouse.md"
    assert "Storms" in hit.citation.section
    assert "fog horn" in hit.text


def test_highlights_point_at_the_sentence_sharing_the_question_words(service):
    hit = service.search("When does the keeper polish the lens?", 1).results[0]
    document = service.document(hit.citation.source).text
    highlighted = [document[h.start : h.end] for h in hit.citation.highlight]
    assert any("polishes the lens" in sentence for sentence in highlighted)


@pytest.mark.parametrize("mode", MODES)
def test_source_filter_leaves_only_matching_documents(fake_index, fake, mode):
    index = Index(_service(fake_index, fake))
    answer = index.search("keeper tea railway logs rotate", 10, mode=mode, source="ops/*")
    assert answer.results
    assert {hit.citation.source for hit in answer.results} <= {"ops/rotation.txt", "ops/rotation-old.txt"}


def test_date_filter_keeps_documents_dated_in_range(fake_index, fake):
    index = Index(_service(fake_index, fake))
    answer = index.search("keeper tea railway logs", 10, after="2024")
    assert {hit.citation.source for hit in answer.results} == {"archive/tea.txt"}
    assert (answer.results[0].citation.date, answer.results[0].citation.date_source) == ("2024-02-10", "text")
    assert answer.excluded_undated == 0  # every document here has a date, from its text or its file
    before = index.search("keeper tea railway logs", 10, before="2021-12-31")
    places = {hit.citation.source for hit in before.results}
    places |= {place.source for hit in before.results for place in hit.duplicates}
    assert places == {"railway.txt", "ops/rotation.txt", "ops/rotation-old.txt"}
    assert {hit.citation.date_source for hit in before.results} == {"file"}
    between = index.search("keeper tea railway logs", 10, after="2023-01", before="2023-12")
    assert {hit.citation.source for hit in between.results} == {"lighthouse.md"}


def test_rrf_hybrid_ranking_is_the_fusion_of_the_dense_and_keyword_rankings(fake_index, fake):
    service = _service(fake_index, fake, fusion="rrf", keyword_feedback=0.0)
    question = "the keeper and the tea water"
    depth = service.settings.candidates
    dense = service.rank(question, depth, mode="dense").ranked
    keyword = service.rank(question, depth, mode="keyword").ranked
    hybrid = service.rank(question, depth, mode="hybrid").ranked
    assert dense and keyword
    assert hybrid == reciprocal_rank_fusion([dense, keyword], k=service.settings.rrf_k)


def test_score_fusion_hybrid_ranking_blends_the_scaled_cosines_and_bm25_scores(fake_index, fake):
    # Sentence blending, section leads and keyword feedback off: the plain fusion of the two first stages.
    service = _service(fake_index, fake, sentence_weight=0.0, section_lead=0.0, keyword_feedback=0.0)
    question = "the keeper and the tea water"
    depth = service.settings.candidates
    dense = service.rank(question, depth, mode="dense")
    keyword = service.rank(question, depth, mode="keyword").ranked
    cosines = dict(dense.ranked)
    # Keyword-only candidates are scored by their exact cosine too.
    cosines.update(service.dense.similarity(dense.query, [i for i, _ in keyword if i not in cosines]))
    expected = normalised_score_fusion(
        cosines, dict(keyword), dense_weight=service.settings.dense_weight, window=service.settings.fusion_window
    )
    hybrid = service.rank(question, depth, mode="hybrid").ranked
    assert [i for i, _ in hybrid] == [i for i, _ in expected]
    assert [s for _, s in hybrid] == pytest.approx([s for _, s in expected])


@pytest.mark.parametrize("mode", MODES)
def test_near_identical_passages_collapse_into_one_result_naming_the_other(service, mode):
    answer = service.search("How many compressed log archives does the service keep?", 5, mode=mode)
    rotation = [hit for hit in answer.results if hit.citation.source.startswith("ops/")]
    assert len(rotation) == 1
    (hit,) = rotation
    others = {place.source for place in hit.duplicates}
    assert others == {"ops/rotation.txt", "ops/rotation-old.txt"} - {hit.citation.source}


def test_identical_files_are_one_document_cited_with_its_other_path(service):
    hit = service.search("green tea steeps two minutes", 1, mode="keyword").results[0]
    assert hit.citation.source == "archive/tea.txt"
    assert hit.citation.aliases == ["tea.txt"]


@pytest.mark.parametrize("mode", MODES)
def test_answer_carries_the_abstention_fields(service, mode):
    answer = service.search("When does the keeper trim the lamp wick?", 2, mode=mode)
    assert isinstance(answer.answerable, bool)
    assert 0.0 <= answer.confidence <= 1.0
    shape = answer.as_dict()
    assert list(shape) == ["question", "mode", "answerable", "confidence", "results", "took_ms", "excluded_undated"]
    assert shape["results"][0]["citation"]["source"] == "lighthouse.md"


def test_confidence_is_lower_for_a_question_sharing_no_word_with_the_corpus(service):
    related = service.search("When does the keeper trim the lamp wick?", 1)
    unrelated = service.search("quantum chromodynamics gluon lattice", 1)
    assert unrelated.confidence < related.confidence
    assert not unrelated.answerable


def test_keyword_mode_finds_nothing_for_words_no_document_has(service):
    assert service.search("quantum chromodynamics gluon lattice", 5, mode="keyword").results == []


@pytest.mark.parametrize(
    ("question", "top_k", "mode"),
    [("", 5, "hybrid"), ("\x00\x01", 5, "hybrid"), ("lamp", 0, "hybrid"), ("lamp", True, "dense"), ("lamp", 5, "x")],
)
def test_unusable_requests_are_refused(service, question, top_k, mode):
    with pytest.raises(InvalidRequest):
        service.search(question, top_k, mode=mode)


def test_unknown_document_is_refused(service):
    with pytest.raises(DocumentNotFound):
        service.document("no/such.txt")
