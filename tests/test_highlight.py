"""Supporting sentences: inside their passage, equal to the document slice, and the sentence that answers."""

from __future__ import annotations

import numpy as np
import pytest

from qa.search.highlight import supporting_sentences
from qa.text.chunking import Span, split_sentences


@pytest.mark.parametrize("mode", ["hybrid", "dense", "keyword"])
def test_highlights_lie_inside_the_passage_and_are_whole_sentences(service, mode):
    for question in (
        "Who led the research group in Guizhou?",
        "What did Yin Jun say about the Fourth Plenary Session?",
    ):
        for hit in service.search(question, 10, mode=mode).results:
            document = service.document(hit.citation.source).text
            sentences = {(s.start, s.end) for s in split_sentences(document)}
            assert 1 <= len(hit.citation.highlight) <= 2
            for mark in hit.citation.highlight:
                assert hit.citation.start <= mark.start < mark.end <= hit.citation.end
                piece = document[mark.start : mark.end]
                assert piece == hit.text[mark.start - hit.citation.start : mark.end - hit.citation.start]
                assert piece == piece.strip()
                # A whole sentence, unless the passage boundary cut it (over-long sentences are split).
                assert (
                    (mark.start, mark.end) in sentences
                    or mark.start == hit.citation.start
                    or mark.end == hit.citation.end
                )


def test_highlight_names_the_sentence_that_answers(service):
    answer = service.search(
        "Who presided over the collective study meeting of the theoretical learning center group?", 5
    )
    hit = next(h for h in answer.results if "presided over the meeting" in h.text)
    document = service.document(hit.citation.source).text
    emphasised = " ".join(document[m.start : m.end] for m in hit.citation.highlight)
    assert "presided over the meeting" in emphasised


def test_supporting_sentences_prefers_similarity_and_names_a_close_runner_up():
    spans = [Span(0, 10), Span(11, 20), Span(21, 30)]
    query = np.array([1.0, 0.0])
    vectors = np.array([[0.1, 0.99], [0.98, 0.2], [0.95, 0.31]])
    texts = ["one", "two", "three"]
    assert supporting_sentences(query, spans, vectors, texts, []) == [spans[1], spans[2]]
    vectors[2] = [0.3, 0.95]
    assert supporting_sentences(query, spans, vectors, texts, []) == [spans[1]]
    assert supporting_sentences(query, [], np.zeros((0, 2)), [], []) == []
