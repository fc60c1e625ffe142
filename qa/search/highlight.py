"""Supporting sentences: which sentences of a passage best answer the question, from precomputed vectors."""

from __future__ import annotations

import numpy as np

from qa.text.chunking import Span

# A second sentence is named too when it scores nearly as well as the best one.
_SECOND_SENTENCE_RATIO = 0.9
# Sentences sharing more of the question's terms get a small lift over pure embedding similarity.
_TERM_BONUS = 0.3


def supporting_sentences(
    query: np.ndarray, spans: list[Span], vectors: np.ndarray, texts: list[str], terms: list[str]
) -> list[Span]:
    """The best sentence of a passage, and the runner-up when it is nearly as good, in document order.

    Args:
        query: the question's unit vector.
        spans: sentence spans (document offsets) inside the passage.
        vectors: each sentence's unit vector, row for row with ``spans``.
        texts: each sentence's text.
        terms: the question's content terms, lower case.
    """
    if not spans:
        return []
    scores = vectors @ query
    if terms:
        lowered = [t.lower() for t in texts]
        overlap = np.array([sum(term in text for term in terms) / len(terms) for text in lowered])
        scores = scores + _TERM_BONUS * overlap
    order = np.argsort(-scores, kind="stable")
    chosen = [int(order[0])]
    if len(order) > 1 and scores[order[1]] >= _SECOND_SENTENCE_RATIO * scores[order[0]] > 0:
        chosen.append(int(order[1]))
    return [spans[i] for i in sorted(chosen)]
