"""The benchmark scripts that reach into the search service still run against it (they are not in the CLI,
so nothing else would notice when the service changes under them)."""

from __future__ import annotations

import sys
from dataclasses import replace

import pytest
from conftest import DATA, ROOT, SEEDS

from qa.eval.datasets import load_dataset
from qa.index.manifest import DATABASE_FILE
from qa.search.confidence import DEFAULT_CALIBRATION

sys.path.insert(0, str(ROOT / "benchmarks"))
import calibrate_abstention  # noqa: E402
import fusion_ceiling  # noqa: E402
import hybrid_scale  # noqa: E402
import keyword_scale  # noqa: E402


def test_abstention_features_are_what_search_scores_confidence_from(service):
    questions = [
        "Who edited Yin Jun's article?",
        "What did the court and procuratorate agree about sharing data and models?",
        "How long should I knead bread dough?",
    ]
    features = calibrate_abstention.features(service, questions)
    assert features.shape == (3, 2)
    for question, (cosine, coverage) in zip(questions, features):
        assert -1.0 <= cosine <= 1.0 and 0.0 <= coverage <= 1.0
        # The calibration fitted on these features gives the confidence a search reports.
        assert service.search(question).confidence == pytest.approx(
            DEFAULT_CALIBRATION.confidence(cosine, coverage), abs=1e-4
        )
    assert features[2, 0] < min(features[0, 0], features[1, 0])


def test_fusion_ceiling_bounds_the_default_settings_from_above(seeds_index, encoder):
    full = load_dataset(DATA / "seeds_questions.jsonl", corpus=SEEDS)
    dataset = replace(full, queries=full.queries[:12])
    default, oracle, missed = fusion_ceiling.ceiling(dataset, seeds_index, dense_steps=2, encoder=encoder)
    assert set(default) == set(oracle) == {"nDCG@10", "MRR@10", "hit@5"}
    for name in default:
        assert 0.0 <= default[name] <= oracle[name] <= 1.0
    assert oracle["hit@5"] == pytest.approx(1 - len(missed) / len(dataset.queries))
    assert set(missed) <= {q.id for q in dataset.queries}


def test_keyword_scale_grows_fts5_and_postings_that_rank_the_repeated_passages_alike(seeds_index, tmp_path):
    rows = keyword_scale.source_rows(seeds_index / DATABASE_FILE)
    n = 3 * len(rows)
    keyword_scale.grown_fts5(rows, tmp_path / "fts5.sqlite3", n, batch=100)
    keyword_scale.grown_postings(rows, tmp_path / "keywords.bin", n)
    fts5 = keyword_scale.Fts5Side(tmp_path / "fts5.sqlite3", (1.0, 1.0))
    postings = keyword_scale.PostingsSide(tmp_path / "keywords.bin", (1.0, 1.0))
    assert fts5.db.execute("SELECT count(*) FROM chunks_fts").fetchone()[0] == postings.postings.n_rows == n
    # Each passage now appears three times (ids r, r + n, r + 2n), so the best three tie.
    best = postings.retrieve("railway procuratorates reform", 3)
    assert len({round(score, 9) for _, score in best}) == 1
    assert len({(rowid - 1) % len(rows) for rowid, _ in best}) == 1
    figures = keyword_scale.side_by_side(fts5, postings, ["railway reform", "Yin Jun", "两个一百年"], 10)
    assert figures["same_scores"] == 3


def test_hybrid_scale_grows_an_index_that_opens_and_cites_every_copy_exactly(seeds_index, tmp_path, encoder):
    from qa.config import Settings
    from qa.index.manifest import Manifest
    from qa.search.service import SearchService

    n = 2 * Manifest.read(seeds_index).counts["chunks"] + 50  # two whole copies of the seeds and part of a third
    hybrid_scale.grow(seeds_index, tmp_path / "grown", n)
    service = SearchService.open(Settings(index_dir=tmp_path / "grown"), encoder=encoder)
    assert service.manifest.counts["chunks"] == len(service.dense.vectors) == n
    answer = service.search("Which railway cases does the Guizhou procuratorate handle?", 10)
    assert {hit.citation.source.split("/")[0] for hit in answer.results} <= {"copy0", "copy1", "copy2"}
    for hit in answer.results:
        text = service.document(hit.citation.source).text
        assert text[hit.citation.start : hit.citation.end] == hit.text
    assert service.keyword.retrieve("railway procuratorates", 3)
