"""benchmarks/verify_support.py measures what qa.search.verify scores: its current-model row reads the same candidates
and features as the verifier, on the real seeds index and model, and its pure pieces (AUC, the fit over named features)
do what the tables say."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import ROOT

from qa.search.verify import SUPPORT_FEATURES, Verifier

sys.path.insert(0, str(ROOT / "benchmarks"))
import verify_quotes  # noqa: E402
import verify_support  # noqa: E402

TEXTS = [
    # A paraphrase of a seed sentence, a fabricated claim about a seed person, and one about nothing in the seeds.
    "The researchers travelled to several places in Guizhou, Anshun and Guiyang among them.",
    "Zhang Jun led a research team of the Supreme People's Procuratorate to Guizhou in early July.",
    "Mount Everest was first climbed by a team of Roman engineers.",
]


@pytest.mark.parametrize("text", TEXTS)
def test_the_current_model_row_scores_the_sentence_and_features_the_verifier_scores(service, text):
    item = verify_quotes.Item("paraphrases", text, "supported")
    scored = verify_support.candidates(service, "seeds", item, set())
    features = verify_support.Features({"seeds": {}}, service.dense.encoder)
    mine = features.of(scored, scored.sentences[0], "")
    theirs = Verifier(service).features(text)
    for name in SUPPORT_FEATURES:
        assert mine[name] == pytest.approx(theirs[name], abs=1e-5), name
    assert [s.cosine for s in scored.sentences] == sorted((s.cosine for s in scored.sentences), reverse=True)


def test_a_word_the_sentence_does_not_hold_is_its_lowest_alignment(service):
    features = verify_support.Features({}, service.dense.encoder)
    sentence = "They went to Anshun, Guiyang and other places in Guizhou for research."
    stated = features.alignment("They travelled to Anshun and Guiyang in Guizhou for research.", sentence)
    invented = features.alignment("They travelled to Anshun and Guiyang in Guizhou for submarines.", sentence)
    assert 0 < invented["aligned_lowest"] < stated["aligned_lowest"] <= stated["aligned_mean"] <= 1.0001
    assert invented["aligned_lowest"] <= invented["aligned_mean"]


def test_idf_coverage_weighs_a_rare_word_above_a_common_one():
    features = verify_support.Features({"seeds": {"procuratorate": 4.0, "work": 0.5}}, None)
    terms = ["procuratorate", "work"]
    assert features.idf_coverage("seeds", terms, "The procuratorate met.") == pytest.approx(4.0 / 4.5)
    assert features.idf_coverage("seeds", terms, "The work went on.") == pytest.approx(0.5 / 4.5)
    assert features.idf_coverage("seeds", ["unseen"], "anything") == 0.0


def _scored(group: str, supported: bool) -> verify_support.Scored:
    return verify_support.Scored("seeds", group, "", supported, [], [], [], set())


@pytest.mark.parametrize(
    ("paraphrase_scores", "fabricated_scores", "auc"),
    [([2.0, 3.0], [0.0, 1.0], 1.0), ([0.0, 1.0], [2.0, 3.0], 0.0), ([1.0, 1.0], [1.0, 1.0], 0.5)],
)
def test_auc_is_the_chance_a_paraphrase_outscores_a_fabrication(paraphrase_scores, fabricated_scores, auc):
    scored = [_scored("seeds: paraphrases", True)] * 2 + [_scored("seeds: fabricated (on topic)", False)] * 2
    scores = np.array(paraphrase_scores + fabricated_scores)
    found = verify_support._auc(scores, scored, "seeds: paraphrases", lambda g: g == "seeds: fabricated (on topic)")
    assert found == pytest.approx(auc)


def test_the_fit_over_named_features_separates_what_it_is_given():
    items = [verify_quotes.Item("a", "", "supported", features={"x": 1.0 + i / 10, "y": 0.0}) for i in range(10)] + [
        verify_quotes.Item("b", "", "not_found", features={"x": -1.0 - i / 10, "y": 0.0}) for i in range(10)
    ]
    model = verify_quotes.fit_support(items, steps=2000, names=("x", "y"))
    assert len(model.weights) == 2 and model.weights[0] > 0
    for item in items:
        z = model.bias + model.weights[0] * item.features["x"]
        assert (z >= 0) == (item.expected == "supported")
