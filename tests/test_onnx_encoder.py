"""The ONNX encoder: the same vectors and rankings as sentence-transformers on PyTorch, exported once, cached,
and a query path that never imports PyTorch, sentence-transformers or FastAPI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, SEEDS

from qa.config import Settings
from qa.embed import onnx_export
from qa.embed.encoder import load_encoder, packaged_model_path
from qa.errors import EncoderUnavailable, IndexIncompatible, ModelError
from qa.index.indexer import build_index
from qa.index.manifest import Manifest
from qa.search.service import SearchService
from qa.text.chunking import split_sentences


def _questions() -> list[str]:
    return [json.loads(line)["question"] for line in (DATA / "seeds_questions.jsonl").read_text().splitlines() if line]


def _passages() -> list[str]:
    docs = [p.read_text(encoding="utf-8") for p in sorted(SEEDS.iterdir())]
    pieces = [d[i : i + 700] for d in docs for i in range(0, len(d), 900)]
    # Empty, one character, Chinese, and a text far over the model's 256-token window (truncated alike).
    return pieces + ["", "x", "最高人民检察院召开党组会议。", "procuratorate " * 600]


def test_onnx_is_the_default_encoder(encoder):
    assert encoder.backend == "onnx" and encoder.precision == "fp32"


def test_onnx_and_pytorch_give_the_same_embeddings(encoder, torch_encoder):
    for texts in (_questions(), _passages()):
        onnx_vectors, torch_vectors = encoder.encode(texts), torch_encoder.encode(texts)
        assert onnx_vectors.shape == torch_vectors.shape
        cosines = (onnx_vectors * torch_vectors).sum(axis=1)
        assert cosines.min() > 1 - 1e-4
    assert encoder.count_tokens(_passages()) == torch_encoder.count_tokens(_passages())
    assert (encoder.dimension, encoder.max_tokens) == (torch_encoder.dimension, torch_encoder.max_tokens)


def test_onnx_and_pytorch_give_the_same_sentence_vectors(encoder, torch_encoder):
    texts = _passages()
    spans = [[(s.start, s.end) for s in split_sentences(t)] for t in texts]
    onnx_vectors, onnx_spans = encoder.encode_with_spans(texts, spans)
    torch_vectors, torch_spans = torch_encoder.encode_with_spans(texts, spans)
    assert (onnx_vectors * torch_vectors).sum(axis=1).min() > 1 - 1e-4
    for mine, reference, text_spans in zip(onnx_spans, torch_spans, spans):
        assert mine.shape == reference.shape == (len(text_spans), encoder.dimension)
        if len(text_spans):
            assert (mine * reference).sum(axis=1).min() > 1 - 1e-4
    # Encoding texts together or one at a time changes nothing: each text is pooled over its own tokens only.
    single = np.vstack([encoder.encode([t]) for t in texts[:6]])
    assert np.allclose(single, encoder.encode(texts[:6]), atol=1e-5)


def test_indexes_built_with_either_backend_rank_alike(tmp_path, encoder, torch_encoder):
    defaults = Settings()
    rankings = []
    for name, backend in (("onnx", encoder), ("torch", torch_encoder)):
        index_dir = tmp_path / name
        build_index(
            SEEDS,
            index_dir,
            backend,
            chunk_size=defaults.chunk_size,
            chunk_overlap=defaults.chunk_overlap,
            embed_title=defaults.embed_title,
        )
        assert Manifest.read(index_dir).encoder == {"backend": name, "precision": "fp32"}
        service = SearchService.open(Settings(index_dir=index_dir), encoder=backend)
        rankings.append(
            [
                [(h.citation.source, h.citation.start, h.score) for h in service.search(q, 5).results]
                for q in _questions()
            ]
        )
    assert [[hit[:2] for hit in hits] for hits in rankings[0]] == [[hit[:2] for hit in hits] for hits in rankings[1]]
    # Scores agree to the 8-bit sentence vectors' resolution: a millionth between the backends' float vectors can
    # round a code the other way (a step is about 0.0015 of a component), moving a blended score by about 1e-4.
    for onnx_hits, torch_hits in zip(*rankings):
        assert all(abs(a[2] - b[2]) <= 5e-4 for a, b in zip(onnx_hits, torch_hits))


def test_an_index_of_another_precision_is_refused(tmp_path, seeds_index, encoder):
    copy = tmp_path / "copy"
    shutil.copytree(seeds_index, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["encoder"] = {"backend": "onnx", "precision": "int8"}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexIncompatible, match="int8 precision.*rebuild"):
        SearchService.open(Settings(index_dir=copy), encoder=encoder)


@pytest.mark.slow  # exports the real model to ONNX
def test_the_export_is_made_once_and_reused(tmp_path, monkeypatch):
    first = onnx_export.cached_export("all-MiniLM-L6-v2", str(packaged_model_path()), tmp_path)
    assert {p.name for p in first.iterdir()} == {"model.onnx", "tokenizer.json", "encoder.json"}
    monkeypatch.setattr(onnx_export, "_export", lambda *args: pytest.fail("exported twice"))
    assert onnx_export.cached_export("all-MiniLM-L6-v2", str(packaged_model_path()), tmp_path) == first
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no scratch directory left behind


def test_a_changed_model_directory_gets_a_new_export_key(tmp_path):
    model = tmp_path / "model"
    shutil.copytree(packaged_model_path(), model)
    before = onnx_export.export_key("m", str(model))
    config = model / "config.json"
    config.write_text(config.read_text() + " ")
    assert onnx_export.export_key("m", str(model)) != before
    assert onnx_export.export_key("other", str(model)) != onnx_export.export_key("m", str(model))


@pytest.mark.slow  # loads the real model on PyTorch
def test_a_pipeline_the_onnx_encoder_cannot_reproduce_falls_back_or_fails_clearly(tmp_path, monkeypatch):
    def unsupported(*args):
        raise EncoderUnavailable("model 'x' is a Transformer → Pooling → Dense pipeline: use --encoder torch")

    monkeypatch.setattr(onnx_export, "cached_export", unsupported)
    with pytest.raises(EncoderUnavailable, match="use --encoder torch"):
        load_encoder(str(packaged_model_path()), "onnx", cache_dir=tmp_path)
    fallback = load_encoder(str(packaged_model_path()), "auto", cache_dir=tmp_path)
    assert fallback.backend == "torch"


def test_an_unwritable_cache_is_a_clear_model_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ModelError, match="cannot write the ONNX export cache"):
        onnx_export.cached_export("all-MiniLM-L6-v2", str(packaged_model_path()), blocker)


def test_a_one_shot_query_imports_no_pytorch_fastapi_or_sentence_transformers(seeds_index, encoder):
    probe = (
        "import sys\n"
        "from qa.cli.main import main\n"
        "try:\n"
        f"    main(['ask', 'Who presided over the meeting?', '--index', {str(seeds_index)!r}, '--json'])\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "heavy = sorted(m for m in ('torch', 'sentence_transformers', 'transformers', 'fastapi', 'pydantic', "
        "'uvicorn', 'sklearn', 'scipy') if m in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["results"] and answer["results"][0]["citation"]
    assert "HEAVY []" in result.stderr
