"""The encoder: the packaged model found offline, unit vectors, token counts, span vectors from one pass."""

from __future__ import annotations

import numpy as np
import pytest

from qa.embed.encoder import DEFAULT_MODEL, model_id_for, packaged_model_path, resolve_model
from qa.embed.torch_backend import SentenceTransformerEncoder
from qa.errors import ModelError


def test_default_model_resolves_to_the_packaged_copy_under_every_alias():
    packaged = packaged_model_path()
    assert packaged is not None and (packaged / "modules.json").is_file()
    for name in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "ALL-MINILM-L6-V2"):
        assert resolve_model(name) == str(packaged)
        assert model_id_for(name) == DEFAULT_MODEL
    assert model_id_for(str(packaged)) == DEFAULT_MODEL


def test_a_local_directory_loads_as_itself(tmp_path):
    assert resolve_model(str(tmp_path)) == str(tmp_path.resolve())
    assert model_id_for("some-org/other-model") == "some-org/other-model"


@pytest.mark.slow  # waits for the model hub lookup to fail
def test_model_that_is_not_available_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="cannot load embedding model 'no-such-org/no-such-model'.*HF_HUB_OFFLINE"):
        SentenceTransformerEncoder("no-such-org/no-such-model")


@pytest.mark.parametrize("dimension, max_seq_length", [(None, 256), (384, None)])
def test_model_without_a_dimension_or_token_limit_is_a_model_error(monkeypatch, dimension, max_seq_length):
    """sentence-transformers answers None for a pipeline without pooling or a tokenizer without a length limit:
    the encoder refuses it by name rather than failing on int(None)."""

    class Unsized:
        tokenizer = staticmethod(lambda text: {"input_ids": [101, 102]})

        def __init__(self, target, device):
            self.max_seq_length = max_seq_length

        def get_sentence_embedding_dimension(self):
            return dimension

    monkeypatch.setattr("sentence_transformers.SentenceTransformer", Unsized)
    with pytest.raises(ModelError, match="'some-org/unsized' does not state its embedding dimension and token limit"):
        SentenceTransformerEncoder("some-org/unsized")


def test_embeddings_are_unit_length_float32(encoder):
    vectors = encoder.encode(["a short question", "another, rather longer, sentence about procuratorial work"])
    assert vectors.dtype == np.float32 and vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)


def test_token_counts_match_the_model_tokenizer_without_special_tokens(encoder, torch_encoder):
    texts = ["Hello world.", "Supreme People's Procuratorate", "中文句子。", "x" * 3000]
    tokenizer = torch_encoder._model.tokenizer
    expected = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    assert encoder.count_tokens(texts) == torch_encoder.count_tokens(texts) == expected
    assert encoder.max_tokens == torch_encoder.max_tokens == torch_encoder._model.max_seq_length - 2


def test_span_encoding_gives_the_same_text_vectors_as_encode(encoder):
    texts = ["First sentence here. Second sentence there.", "One more text, of another length entirely."]
    plain = encoder.encode(texts)
    vectors, spans = encoder.encode_with_spans(texts, [[(0, 20), (21, 43)], [(0, 43)]])
    assert np.allclose(plain, vectors, atol=1e-5)
    assert [s.shape for s in spans] == [(2, 384), (1, 384)]
    assert np.allclose(np.linalg.norm(np.vstack(spans), axis=1), 1.0, atol=1e-5)
    # A span covering the whole text pools the same tokens as the text (specials aside): nearly the same vector.
    assert float(spans[1][0] @ vectors[1]) > 0.95


def test_span_vector_is_closest_to_a_question_about_that_span(encoder):
    text = "The cat slept on the warm windowsill. Interest rates rose by half a percent in March."
    _, (spans,) = encoder.encode_with_spans([text], [[(0, 37), (38, len(text))]])
    question = encoder.encode(["What happened to interest rates?"])[0]
    assert float(spans[1] @ question) > float(spans[0] @ question)


def test_span_encoding_is_consistent_while_other_threads_encode_queries(encoder):
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"Passage number {i} about railway procuratorates. " * (1 + i % 7) for i in range(64)]
    spans = [[(0, len(t))] for t in texts]
    expected, _ = encoder.encode_with_spans(texts, spans)
    with ThreadPoolExecutor(max_workers=4) as pool:
        queries = [pool.submit(encoder.encode, [f"short query {i}"]) for i in range(200)]
        indexing = [pool.submit(encoder.encode_with_spans, texts, spans) for _ in range(3)]
        for future in queries:
            future.result()
        for future in indexing:
            vectors, span_vectors = future.result()
            assert np.allclose(vectors, expected, atol=1e-5)
            assert all(s.shape == (1, 384) for s in span_vectors)
