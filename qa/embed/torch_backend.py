"""The embedding model through sentence-transformers and PyTorch: the reference the ONNX encoder matches."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Callable, Sequence, cast

import numpy as np

from qa.embed.encoder import (
    DEFAULT_MODEL,
    model_id_for,
    pool_spans,
    quiet_transformers,
    resolve_model,
    untruncated_counter,
)
from qa.errors import ModelError

if TYPE_CHECKING:
    import torch


class SentenceTransformerEncoder:
    """A sentence-transformers model on the CPU."""

    backend = "torch"
    precision = "fp32"

    def __init__(self, name: str = DEFAULT_MODEL, *, device: str = "cpu") -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ModelError(
                "sentence-transformers is not installed: pip install 'sentence-transformers' 'torch==2.13.0'"
            ) from exc
        target = resolve_model(name)
        quiet_transformers()
        try:
            self._model = SentenceTransformer(target, device=device)
        except Exception as exc:  # the library raises many kinds (OSError, ValueError, HF errors)
            offline = os.environ.get("HF_HUB_OFFLINE") == "1"
            hint = " (HF_HUB_OFFLINE=1: only local paths and cached models can load)" if offline else ""
            raise ModelError(f"cannot load embedding model {name!r}{hint}: {exc}") from exc
        self.model_id = model_id_for(name)
        dimension = (
            getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        )
        size, longest = dimension(), self._model.max_seq_length
        if size is None or longest is None:  # a pipeline without pooling, or a tokenizer without a length limit
            raise ModelError(f"embedding model {name!r} does not state its embedding dimension and token limit")
        self.dimension = int(size)
        special = len(self._model.tokenizer("")["input_ids"])  # [CLS] and [SEP] for BERT
        self.max_tokens = int(longest) - special
        self._counter = _token_counter(self._model.tokenizer)
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Torch modules are not safe to call from several threads at once.
        with self._lock:
            vectors = self._model.encode(
                list(texts),
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text as the model's tokenizer counts them, special tokens excluded."""
        return self._counter(texts) if texts else []

    def encode_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Text embeddings plus, per text, a unit vector for each ``(start, end)`` character span.

        A span's vector is the mean of the contextual token embeddings inside it: the same mean pooling the
        model applies to the whole text, so it lives in the same space, at no extra model cost. A span with
        no token (cut off by truncation) gets the whole text's vector.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        # Both calls under the lock: a Hugging Face tokenizer call sets truncation and padding on the shared
        # tokenizer, so a query encoded on another thread meanwhile could change what this call returns.
        with self._lock:
            # A list of texts with output_value=None gives one dict of tensors per text; the stubs' overloads take
            # the list for one input (a pair, or a chat's messages) and promise a single dict.
            outputs = cast(
                "list[dict[str, torch.Tensor]]",
                self._model.encode(list(texts), output_value=None, show_progress_bar=False),
            )
            offsets = self._model.tokenizer(
                list(texts), return_offsets_mapping=True, truncation=True, max_length=self._model.max_seq_length
            )["offset_mapping"]
        vectors = np.vstack([o["sentence_embedding"].float().numpy() for o in outputs]).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        span_vectors = []
        for output, text_offsets, text_spans, vector in zip(outputs, offsets, spans, vectors):
            # Batches are padded to their longest text; the offsets cover this text's real tokens only.
            tokens = output["token_embeddings"].float().numpy()[: len(text_offsets)]
            if len(tokens) < len(text_offsets):
                raise RuntimeError("tokenizer offsets do not match the model's tokens")  # never silently misalign
            span_vectors.append(pool_spans(tokens, text_offsets, text_spans, vector))
        return vectors, span_vectors


def _token_counter(tokenizer) -> Callable[[Sequence[str]], list[int]]:
    """A counter that never truncates: the fast tokenizer's Rust core when there is one."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return untruncated_counter(backend)
    return lambda texts: [
        len(ids) for ids in tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
    ]
