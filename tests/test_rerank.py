"""Re-ranking with a cross-encoder on disk: a tiny one built here (PyTorch and its ONNX export), over the real index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DATA, ROOT

from qa.cli.main import main
from qa.config import Settings
from qa.embed.encoder import packaged_model_path
from qa.errors import ConfigError, ModelError
from qa.search.rerank import load_reranker, rerank
from qa.search.service import SearchService

sys.path.insert(0, str(ROOT / "benchmarks"))
import rerank_latency  # noqa: E402

QUESTIONS = [json.loads(line)["question"] for line in (DATA / "seeds_questions.jsonl").open(encoding="utf-8")][:4]
DEPTH = 12


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A 2-layer BERT cross-encoder with random weights and the packaged tokenizer, saved for CrossEncoder."""
    return rerank_latency.build_tiny_cross_encoder(tmp_path_factory.mktemp("rerank") / "tiny")


@pytest.fixture(scope="module")
def tiny_onnx(tiny_model, tmp_path_factory):
    """The same model exported to ONNX, beside its tokenizer and config."""
    return rerank_latency.export_onnx(tiny_model, tmp_path_factory.mktemp("rerank") / "tiny-onnx")


@pytest.fixture(scope="module")
def cross_encoder(tiny_model):
    """The tiny model loaded directly by sentence-transformers: the independent reference."""
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(tiny_model), device="cpu")


def reranking(service: SearchService, model, depth: int = DEPTH) -> SearchService:
    """A service over the same index and encoder that re-ranks with ``model``."""
    settings = replace(service.settings, rerank=str(model), rerank_depth=depth)
    return SearchService.open(settings, encoder=service.dense.encoder)


def where(hit) -> tuple[str, int, int]:
    return hit.citation.source, hit.citation.start, hit.citation.end


@pytest.mark.parametrize("mode", ["hybrid", "dense", "keyword"])
def test_reranked_order_is_the_cross_encoders_order_of_the_first_stage_candidates(
    service, tiny_model, cross_encoder, mode
):
    reranked_service = reranking(service, tiny_model)
    changed = 0
    for question in QUESTIONS:
        candidates = service.search(question, DEPTH, mode=mode).results
        scores = cross_encoder.predict([(question, hit.text) for hit in candidates], show_progress_bar=False)
        expected = sorted(range(len(candidates)), key=lambda i: -scores[i])[:5]  # stable: ties keep first-stage order
        results = reranked_service.search(question, 5, mode=mode).results
        assert [where(hit) for hit in results] == [where(candidates[i]) for i in expected]
        assert [hit.score for hit in results] == pytest.approx([float(scores[i]) for i in expected], abs=1e-5)
        assert [hit.rank for hit in results] == [1, 2, 3, 4, 5]
        changed += [where(hit) for hit in results] != [where(hit) for hit in candidates[:5]]
    assert changed, "the random model left every first-stage order as it was, so this test proves nothing"


def test_reranking_keeps_citations_highlights_and_the_first_stages_confidence(service, tiny_model):
    reranked_service = reranking(service, tiny_model)
    for question in QUESTIONS:
        first = service.search(question, DEPTH)
        reranked = reranked_service.search(question, 5)
        by_place = {where(hit): hit for hit in first.results}
        for hit in reranked.results:
            same = by_place[where(hit)]
            assert hit.citation == same.citation  # source, title, date, offsets, lines, pages, highlight
            assert hit.text == same.text
        plain = service.search(question, 5)
        assert (reranked.answerable, reranked.confidence) == (plain.answerable, plain.confidence)


def test_onnx_export_and_pytorch_give_the_same_order_and_scores(service, tiny_model, tiny_onnx):
    from_torch, from_onnx = reranking(service, tiny_model), reranking(service, tiny_onnx)
    assert (from_torch.reranker.backend, from_onnx.reranker.backend) == ("torch", "onnx")
    for question in QUESTIONS:
        torch_results = from_torch.search(question, DEPTH).results
        onnx_results = from_onnx.search(question, DEPTH).results
        assert [where(hit) for hit in onnx_results] == [where(hit) for hit in torch_results]
        assert [hit.score for hit in onnx_results] == pytest.approx([hit.score for hit in torch_results], abs=1e-4)


@pytest.mark.slow  # makes and exports a cross-encoder
def test_onnx_backend_truncates_long_pairs_like_sentence_transformers(tiny_model, tiny_onnx, cross_encoder):
    # Past the model's 512 tokens, both must cut the same way (longest first) to give the same score.
    passages = ["procuratorate reform " * n for n in (5, 200, 400)] + ["short"]
    question = "what changed in the procuratorate? " * 30
    expected = cross_encoder.predict([(question, p) for p in passages], show_progress_bar=False)
    assert load_reranker(str(tiny_onnx)).max_length == 512
    assert load_reranker(str(tiny_onnx)).score(question, passages) == pytest.approx(expected, abs=1e-4)


def test_passages_past_the_depth_follow_in_first_stage_order_with_their_own_scores(service, tiny_model):
    reranked_service = reranking(service, tiny_model, depth=3)
    for question in QUESTIONS:
        first = service.search(question, 8).results
        results = reranked_service.search(question, 8).results
        assert sorted(where(hit) for hit in results[:3]) == sorted(where(hit) for hit in first[:3])
        assert [(where(hit), hit.score) for hit in results[3:]] == [(where(hit), hit.score) for hit in first[3:]]


class _FixedScores:
    """A stand-in cross-encoder for pure ordering logic: the score of each passage text is given."""

    backend, model_id, max_length = "fake", "fake", 512

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores

    def score(self, question, passages):
        return np.array([self.scores[p] for p in passages], dtype=np.float32)


@pytest.mark.parametrize(
    "scores, expected",
    [
        ({"a": 0.5, "b": 0.5, "c": 0.5}, ["a", "b", "c", "d"]),  # all tied: first-stage order
        ({"a": 0.1, "b": 0.7, "c": 0.7}, ["b", "c", "a", "d"]),  # b and c tie: b stays ahead of c
        ({"a": float("nan"), "b": -2.0, "c": 3.0}, ["c", "b", "a", "d"]),  # a broken score sorts last
    ],
)
def test_ties_keep_the_first_stage_order_and_the_tail_is_left_alone(scores, expected):
    ids = {"a": 1, "b": 2, "c": 3, "d": 4}
    ranked = [(1, 0.9), (2, 0.8), (3, 0.7), (4, 0.6)]
    texts = {chunk_id: name for name, chunk_id in ids.items()}
    result = rerank(_FixedScores(scores), "q", ranked, texts, depth=3)
    assert [texts[chunk_id] for chunk_id, _ in result] == expected
    assert result[-1] == (4, 0.6)


@pytest.fixture(scope="module")
def three_label_models(tmp_path_factory):
    """A cross-encoder with three output labels, saved for PyTorch and exported to ONNX."""
    root = tmp_path_factory.mktemp("three-labels")
    model = rerank_latency.build_tiny_cross_encoder(root / "torch", num_labels=3)
    onnx = rerank_latency.export_onnx(model, root / "onnx")
    (onnx / "config.json").unlink()  # judged by its graph alone
    return model, onnx


def _bad_model(kind, tmp_path, three_label_models, tiny_onnx) -> str:
    """A path of the given kind that is not a usable re-ranking model."""
    if kind == "missing":
        return str(tmp_path / "no-such-model")
    if kind == "unknown name":
        return "no-such-owner/no-such-cross-encoder"
    if kind == "file":
        (tmp_path / "model.bin").write_bytes(b"\0")
        return str(tmp_path / "model.bin")
    if kind == "empty":
        (tmp_path / "empty").mkdir()
        return str(tmp_path / "empty")
    if kind == "embedding model":
        return str(packaged_model_path())
    if kind == "embedding model's onnx export":
        from qa.embed.encoder import DEFAULT_MODEL, resolve_model
        from qa.embed.onnx_export import cached_export

        return str(cached_export(DEFAULT_MODEL, resolve_model(DEFAULT_MODEL), None))
    if kind == "onnx without tokenizer":
        target = tmp_path / "no-tokenizer"
        target.mkdir()
        (target / "model.onnx").write_bytes((tiny_onnx / "model.onnx").read_bytes())
        return str(target)
    return str(three_label_models[0] if kind == "three labels" else three_label_models[1])


BAD_MODELS = [
    ("missing", "not found"),
    ("file", "is a file"),
    ("empty", "no config.json"),
    ("embedding model", "is not a cross-encoder (its config.json says BertModel)"),
    ("embedding model's onnx export", "not one score per pair"),
    ("onnx without tokenizer", "no tokenizer.json"),
    ("three labels", "has 3 output labels; re-ranking needs one relevance score"),
    ("three labels, onnx", "has 3 output labels"),
    ("unknown name", "no such directory, so it was tried as a model name; HF_HUB_OFFLINE=1"),
]


@pytest.mark.slow  # makes and exports cross-encoders
@pytest.mark.parametrize("kind, message", BAD_MODELS)
def test_a_path_that_is_not_a_one_label_cross_encoder_is_refused_with_what_is_expected(
    kind, message, tmp_path, three_label_models, tiny_onnx
):
    with pytest.raises(ModelError, match="re-ranking") as raised:
        load_reranker(_bad_model(kind, tmp_path, three_label_models, tiny_onnx))
    assert message in str(raised.value) and "\n" not in str(raised.value)


def run_qa(*args, env=None):
    """`python -m qa ...` offline in a fresh process."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "qa", *map(str, args)], capture_output=True, text=True, env=full_env, timeout=300
    )


@pytest.mark.parametrize("how", ["option", "environment"])
def test_qa_ask_rerank_gives_the_libraries_order_from_the_command_line(service, tiny_onnx, seeds_index, how):
    question = QUESTIONS[1]
    options = ["--rerank", tiny_onnx, "--rerank-depth", DEPTH] if how == "option" else []
    env = {"QA_RERANK": str(tiny_onnx), "QA_RERANK_DEPTH": str(DEPTH)} if how == "environment" else {}
    result = run_qa("ask", question, "--index", seeds_index, "-k", 5, "--json", *options, env=env)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    expected = reranking(service, tiny_onnx).search(question, 5)
    assert [(h["citation"]["source"], h["citation"]["start"]) for h in shown["results"]] == [
        (hit.citation.source, hit.citation.start) for hit in expected.results
    ]
    assert [h["score"] for h in shown["results"]] == pytest.approx([hit.score for hit in expected.results], abs=1e-5)


@pytest.mark.parametrize("command", ["ask", "serve", "eval"])
@pytest.mark.parametrize("kind, message", [BAD_MODELS[0], BAD_MODELS[3], BAD_MODELS[6]])
def test_a_bad_rerank_model_is_one_error_line_and_exit_1(
    command, kind, message, tmp_path, seeds_index, three_label_models, tiny_onnx
):
    model = _bad_model(kind, tmp_path, three_label_models, tiny_onnx)
    args = {
        "ask": ["ask", "anything", "--index", seeds_index],
        "serve": ["serve", "--no-build", "--index", seeds_index, "--port", 1],
        "eval": ["eval", DATA / "seeds_questions.jsonl", "--corpus", tmp_path],
    }[command]
    result = run_qa(*args, "--rerank", model)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: re-ranking model") and message in lines[0]


def test_qa_eval_rerank_scores_the_reranked_rankings_and_says_so(tiny_onnx, tmp_path, encoder):
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    corpus = [
        {"_id": "d1", "title": "Vitamin D and bones", "text": "Vitamin D deficiency is linked to weaker bones."},
        {"_id": "d2", "title": "Coffee and sleep", "text": "Caffeine taken late in the day delays sleep."},
        {"_id": "d3", "title": "Exercise", "text": "Regular aerobic exercise lowers resting blood pressure."},
    ]
    queries = [{"_id": "q1", "text": "Does caffeine affect sleep?"}, {"_id": "q2", "text": "vitamin D bone strength"}]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(c) for c in corpus), encoding="utf-8")
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries), encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td2\t1\nq2\td1\t1\n", encoding="utf-8")
    result = CliRunner().invoke(
        main, ["eval", str(folder), "--mode", "all", "--json", "--rerank", str(tiny_onnx), "--rerank-depth", "2"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["mode"] for r in rows] == ["hybrid+rerank@2", "dense+rerank@2", "keyword+rerank@2"]
    for row in rows:
        # Three documents: every ranking holds the relevant one, wherever the random model put it.
        assert row["queries"] == 2 and row["recall_at_100"] == pytest.approx(1.0)
        assert 0.0 < row["mrr_at_10"] <= 1.0


def test_the_http_service_reranks_when_its_settings_name_a_model(service, tiny_onnx, seeds_index):
    from fastapi.testclient import TestClient

    from qa.api.app import create_app

    settings = Settings(index_dir=seeds_index, rerank=str(tiny_onnx), rerank_depth=DEPTH, reload_interval=0)
    expected = reranking(service, tiny_onnx).search(QUESTIONS[0], 5)
    with TestClient(create_app(settings)) as client:
        body = client.post("/search", json={"question": QUESTIONS[0], "top_k": 5}).json()
    assert [h["citation"]["start"] for h in body["results"]] == [hit.citation.start for hit in expected.results]
    assert [h["score"] for h in body["results"]] == pytest.approx([hit.score for hit in expected.results], abs=1e-5)


_IMPORTS_AFTER_A_SEARCH = """
import json, sys
from pathlib import Path
from qa.config import Settings
from qa.search.service import SearchService
service = SearchService.open(Settings(index_dir=Path(sys.argv[1]), rerank=sys.argv[2] or None))
service.search("Who chaired the study session?")
print(json.dumps([m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules]))
"""


@pytest.mark.parametrize("backend, imported", [("none", []), ("onnx", []), ("torch", ["torch"])])
def test_only_the_pytorch_reranker_imports_torch_on_the_query_path(
    seeds_index, tiny_model, tiny_onnx, encoder, backend, imported
):
    model = {"none": "", "onnx": str(tiny_onnx), "torch": str(tiny_model)}[backend]
    result = subprocess.run(
        [sys.executable, "-c", _IMPORTS_AFTER_A_SEARCH, str(seeds_index), model],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert [m for m in found if m == "torch"] == imported
    if backend != "torch":
        assert found == []


def test_rerank_settings_come_from_the_environment_and_the_depth_is_bounded():
    settings = Settings.from_env({"QA_RERANK": "/models/ce", "QA_RERANK_DEPTH": "40"})
    assert (settings.rerank, settings.rerank_depth) == ("/models/ce", 40)
    assert (Settings().rerank, Settings().rerank_depth) == (None, 30)
    with pytest.raises(ConfigError, match="QA_RERANK_DEPTH: rerank depth must be between 1 and 500"):
        Settings.from_env({"QA_RERANK_DEPTH": "501"})
    with pytest.raises(ConfigError, match="QA_RERANK_DEPTH must be a whole number"):
        Settings.from_env({"QA_RERANK_DEPTH": "deep"})


def test_the_latency_benchmark_times_every_backend_and_depth(seeds_index, tiny_model, tiny_onnx):
    rows = rerank_latency.measure(seeds_index, {"torch": tiny_model, "onnx": tiny_onnx}, [2, 5], QUESTIONS[:1], 1)
    assert [(backend, depth) for backend, depth, _ in rows] == [
        ("none", 0),
        ("torch", 2),
        ("torch", 5),
        ("onnx", 2),
        ("onnx", 5),
    ]
    assert all(median > 0 for _, _, median in rows)
