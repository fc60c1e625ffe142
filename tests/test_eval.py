"""`qa eval`: real indexing and ranking of a small BEIR folder and of the seeds questions, scored end to end."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import DATA, SEEDS

from qa.cli.main import main


@pytest.fixture()
def tiny_beir(tmp_path):
    folder = tmp_path / "tiny"
    (folder / "qrels").mkdir(parents=True)
    corpus = [
        {
            "_id": "d1",
            "title": "Vitamin D and bones",
            "text": "Vitamin D deficiency is linked to weaker bones in older adults.",
        },
        {"_id": "d2", "title": "Coffee and sleep", "text": "Caffeine taken late in the day delays the onset of sleep."},
        {"_id": "d3", "title": "Exercise", "text": "Regular aerobic exercise lowers resting blood pressure."},
    ]
    queries = [{"_id": "q1", "text": "Does caffeine affect sleep?"}, {"_id": "q2", "text": "vitamin D bone strength"}]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(c) for c in corpus), encoding="utf-8")
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries), encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td2\t1\nq2\td1\t1\n", encoding="utf-8")
    return folder


def test_eval_scores_a_beir_folder_in_every_mode(tiny_beir, encoder):
    result = CliRunner().invoke(main, ["eval", str(tiny_beir), "--mode", "all", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["mode"] for r in rows] == ["hybrid", "dense", "keyword"]
    for row in rows:
        # Two easy queries, each with its one relevant document ranked first.
        assert row["queries"] == 2
        assert row["ndcg_at_10"] == pytest.approx(1.0) and row["mrr_at_10"] == pytest.approx(1.0)
        assert row["recall_at_100"] == pytest.approx(1.0)
        assert row["latency_median_ms"] > 0 and row["latency_p95_ms"] >= row["latency_median_ms"]
        assert row["mean_passage_chars"] > 0
        # Question-set figures are not part of BEIR output.
        assert not {"hit_at_1", "hit_at_3", "doc_hit_at_5"} & set(row)


def test_eval_table_reuses_a_kept_index(tiny_beir, tmp_path, encoder):
    index_dir = tmp_path / "kept"
    first = CliRunner().invoke(main, ["eval", str(tiny_beir), "--index", str(index_dir)])
    assert first.exit_code == 0, first.output
    assert "nDCG@10" in first.stdout and "hybrid" in first.stdout
    assert "indexing 3 documents" in first.stderr
    second = CliRunner().invoke(main, ["eval", str(tiny_beir), "--index", str(index_dir)])
    assert "reusing the index" in second.stderr
    assert "doc hit@5" not in first.stdout


def test_eval_of_seeds_questions_reports_hit_rate_and_passage_length(encoder):
    result = CliRunner().invoke(
        main, ["eval", str(DATA / "seeds_questions.jsonl"), "--corpus", str(SEEDS), "--mode", "hybrid", "--json"]
    )
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert row["queries"] >= 40 and row["hit_at_5"] >= 0.8
    assert 100 < row["mean_passage_chars"] <= 800
    assert 0 < row["hit_at_1"] <= row["hit_at_3"] <= row["hit_at_5"] <= row["doc_hit_at_5"] <= 1


def test_eval_table_of_questions_shows_passage_and_page_hit_rates(encoder):
    result = CliRunner().invoke(main, ["eval", str(DATA / "seeds_questions.jsonl"), "--corpus", str(SEEDS)])
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[1].split()
    assert header[-4:] == ["hit@1", "hit@3", "doc", "hit@5"]


def test_page_hit_counts_the_top_five_passages_not_the_top_five_documents():
    from qa.eval.evaluate import PHRASE_MATCH, _question_figures

    # The answering page "b" first appears as the 6th passage, though it is only the 2nd distinct document.
    document_runs = {"late": ["a", "a", "a", "a", "a", "b"], "early": ["c", "b"]}
    document_qrels = {"late": {"b": 1}, "early": {"b": 1}}
    runs = {"late": ["1", "2"], "early": ["1", PHRASE_MATCH]}
    qrels = {"late": {PHRASE_MATCH: 1}, "early": {PHRASE_MATCH: 1}}
    figures = _question_figures(runs, qrels, document_runs, document_qrels)
    assert figures.doc_hit_at_5 == pytest.approx(0.5)
    assert (figures.hit_at_1, figures.hit_at_3) == (0.0, pytest.approx(0.5))


def test_mean_hit_at_k_counts_missing_runs_as_misses_and_skips_unjudged_queries():
    from qa.eval.metrics import mean_hit_at_k

    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 0}}
    runs = {"q1": ["d9", "d1"], "q3": ["d3"]}
    assert mean_hit_at_k(runs, qrels, 1) == 0.0
    assert mean_hit_at_k(runs, qrels, 2) == pytest.approx(0.5)
    assert mean_hit_at_k(runs, {}, 5) == 0.0


@pytest.mark.parametrize(
    "args, message",
    [
        (["eval", "{tmp}/missing"], "dataset not found"),
        # This case loads the real model before it fails.
        pytest.param(["eval", str(DATA / "seeds_questions.jsonl")], "--corpus", marks=pytest.mark.slow),
        (["eval", "{beir}", "--split", "dev"], "no qrels for split 'dev'"),
    ],
)
def test_eval_errors_are_one_line_and_exit_1(tiny_beir, tmp_path, args, message):
    args = [a.format(tmp=tmp_path, beir=tiny_beir) for a in args]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.output


def test_a_report_keeps_the_rankings_and_judgements_its_metrics_came_from(service):
    from qa.eval.datasets import load_dataset
    from qa.eval.evaluate import run_queries
    from qa.eval.metrics import summarise

    questions = load_dataset(DATA / "seeds_questions.jsonl", corpus=SEEDS)
    report = run_queries(questions, service, "keyword")
    assert set(report.runs) == set(report.qrels) == {q.id for q in questions.queries}
    assert summarise(report.runs, report.qrels) == report.metrics
    assert "runs" not in report.as_dict() and "qrels" not in report.as_dict()


def test_a_passage_cited_at_the_labelled_document_under_another_path_counts():
    from qa.eval.datasets import Dataset
    from qa.eval.evaluate import PHRASE_MATCH, _ranking
    from qa.search.duplicates import Place
    from qa.search.service import Answer, Citation, Hit

    def hit(rank, source, text, aliases=(), duplicates=()):
        citation = Citation(source, None, None, None, None, None, 0, len(text), 1, 1, None, None, [], list(aliases))
        return Hit(rank, 1.0, text, citation, list(duplicates))

    answer = Answer(
        "q",
        "hybrid",
        True,
        0.9,
        [
            hit(1, "copy/page.html", "the answer phrase here", aliases=["page.html"]),
            hit(2, "other.html", "the answer phrase again", duplicates=[Place("page.html", 0, 5, 1, 1, None)]),
            hit(3, "other.html", "no phrase"),
            hit(4, "page.html", "not the phrase"),
        ],
        1.0,
    )
    questions = Dataset("d", "questions", [], None, None)
    assert _ranking(questions, answer, "answer phrase", "page.html") == [PHRASE_MATCH, PHRASE_MATCH, "3", "4"]
