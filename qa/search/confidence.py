"""Answerability: a calibrated probability that the top passage answers the question."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from qa.text.cjk import fts_form

_WORD = re.compile(r"\w+")


def term_coverage(terms: list[str], text: str) -> float:
    """Share of the question's content terms found in a passage (by 5-letter prefix, a cheap stemmer).

    The passage is read as the keyword index reads it (``qa.text.cjk.fts_form``): a question's CJK terms are character
    bigrams, which whole CJK runs would never match.
    """
    if not terms:
        return 0.0
    words = {w[:5] for w in _WORD.findall(fts_form(text).lower())}
    return sum(1 for t in terms if t[:5] in words) / len(terms)


@dataclass(frozen=True)
class Calibration:
    """Logistic model over two features of the best passage; fitted by benchmarks/calibrate_abstention.py."""

    cosine_weight: float
    coverage_weight: float
    bias: float
    threshold: float = 0.5

    def confidence(self, top_cosine: float, coverage: float) -> float:
        """Probability in [0, 1] that the question is answered by the documents."""
        z = self.cosine_weight * top_cosine + self.coverage_weight * coverage + self.bias
        return 1.0 / (1.0 + math.exp(-z))

    def answerable(self, confidence: float) -> bool:
        """Whether to present the passages as an answer."""
        return confidence >= self.threshold


# Fitted by benchmarks/calibrate_abstention.py for the default model and settings
# (docs/retrieval-quality.md, "Abstention"):
# on held-out halves it accepted 91% of seeds questions and 99% of SciFact claims on their own corpora, and
# flagged 87% of off-topic questions and 100% of cross-corpus questions as not answerable.
DEFAULT_CALIBRATION = Calibration(cosine_weight=9.614, coverage_weight=4.361, bias=-4.782)
