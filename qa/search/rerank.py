"""Re-ranking: a cross-encoder the user has on disk re-scores the best fused candidates, question and passage together.

Two backends, chosen by what the directory holds: an ONNX export (``model.onnx`` or ``onnx/model.onnx`` beside
the tokenizer files) runs on ONNX Runtime and the `tokenizers` library, with no PyTorch; anything else loads as a
sentence-transformers ``CrossEncoder`` on PyTorch, imported only here and only when re-ranking is asked for.
Both give what ``CrossEncoder.predict`` gives: the same pair tokenisation (truncated longest-first to the model's
max length), the model's one output, then the activation the model was saved with.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from qa.errors import ModelError

# Pairs the model scores in one call.
BATCH = 32
ONNX_GRAPHS = ("model.onnx", "onnx/model.onnx")
# Input names a sequence-classification export may take (optimum and torch.onnx both use these).
_ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# A Hugging Face repository id (``name`` or ``owner/name``); anything else that does not exist is a missing path.
_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
# Tokenizers with no real limit store a huge sentinel as their model_max_length.
_NO_LIMIT = 1_000_000
_FALLBACK_MAX_LENGTH = 512
_EXPECTED = (
    "re-ranking needs a cross-encoder: a sequence-classification model with one output (num_labels=1), "
    "such as cross-encoder/ms-marco-MiniLM-L-6-v2"
)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function in float64; a very negative logit gives 0 without an overflow warning on stderr."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


# The activations sentence-transformers saves with a cross-encoder, by the name it records.
_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "torch.nn.modules.linear.Identity": lambda x: x,
    "torch.nn.modules.activation.Sigmoid": _sigmoid,
    "torch.nn.modules.activation.Tanh": np.tanh,
}
_SIGMOID = "torch.nn.modules.activation.Sigmoid"


class Reranker(Protocol):
    """What the search service needs from a cross-encoder."""

    model_id: str
    backend: str  # "onnx" or "torch"
    max_length: int  # tokens per (question, passage) pair, special tokens included

    def score(self, question: str, passages: Sequence[str]) -> np.ndarray:
        """One float32 relevance score per passage, as ``CrossEncoder.predict`` gives it; higher is more relevant."""


def rerank(
    reranker: Reranker, question: str, ranked: list[tuple[int, float]], texts: dict[int, str], depth: int
) -> list[tuple[int, float]]:
    """The first ``depth`` of ``ranked`` re-ordered by the cross-encoder's scores, followed by the rest unchanged.

    Args:
        ranked: ``(chunk id, first-stage score)``, best first.
        texts: each candidate's passage text, by chunk id (at least the first ``depth``).

    Returns:
        ``(chunk id, score)``: the re-ranked head carries cross-encoder scores (ties keep the first-stage order);
        candidates past ``depth`` keep their first-stage order and score.
    """
    head, tail = ranked[:depth], ranked[depth:]
    if not head:
        return list(ranked)
    scores = np.asarray(reranker.score(question, [texts[chunk_id] for chunk_id, _ in head]), dtype=np.float64)
    # A stable sort keeps the first-stage order among equal scores; NaN (a broken model) sorts last.
    order = np.argsort(-scores, kind="stable")
    return [(head[i][0], float(scores[i])) for i in order] + list(tail)


_CACHE: dict[str, Reranker] = {}
_CACHE_LOCK = threading.Lock()


def load_reranker(name: str) -> Reranker:
    """Load a cross-encoder once per process and reuse it (a reloaded index keeps the loaded model).

    Args:
        name: a directory holding a sentence-transformers CrossEncoder (``config.json``, weights and tokenizer
            files) or its ONNX export (``model.onnx`` or ``onnx/model.onnx`` plus ``tokenizer.json``), or a
            model name already in the Hugging Face cache.

    Raises:
        ModelError: the path is missing, is not a cross-encoder, has more than one output label, or cannot load.
    """
    with _CACHE_LOCK:
        key = str(Path(name).expanduser().resolve()) if Path(name).expanduser().exists() else name
        if key not in _CACHE:
            _CACHE[key] = _load(name)
        return _CACHE[key]


def _load(name: str) -> Reranker:
    """The backend that fits what ``name`` is: an ONNX export, a local CrossEncoder, or a cached model name."""
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"re-ranking model {name!r} is a file; give the directory that holds the model")
        graph = next((path / g for g in ONNX_GRAPHS if (path / g).is_file()), None)
        if graph is not None:
            return OnnxReranker(path.resolve(), graph)
        config = _read_json(path / "config.json", name)
        if config is None:
            raise ModelError(f"re-ranking model {name!r} is not a cross-encoder: it has no config.json; {_EXPECTED}")
        _check_config(config, name)
        return TorchReranker(str(path.resolve()), name)
    if name.startswith((".", "/", "~")) or not _HUB_NAME.fullmatch(name):
        raise ModelError(f"re-ranking model {name!r} not found: no such directory")
    return TorchReranker(name, name)


def _read_json(path: Path, name: str) -> dict | None:
    """A model's JSON file, None when it is absent."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"re-ranking model {name!r}: cannot read {path.name}: {exc}") from exc


def _one_line(exc: Exception) -> str:
    """A library's error message on one line: the CLI prints each error as one line."""
    return " ".join(str(exc).split())


def _check_config(config: dict, name: str) -> None:
    """Refuse a Hugging Face config that is not a one-label sequence classifier, saying what is expected."""
    architectures = config.get("architectures") or []
    if not any(str(a).endswith("ForSequenceClassification") for a in architectures):
        described = ", ".join(map(str, architectures)) or config.get("model_type") or "no architecture"
        raise ModelError(
            f"re-ranking model {name!r} is not a cross-encoder (its config.json says {described}); {_EXPECTED}"
        )
    labels = len(config.get("id2label") or {}) or int(config.get("num_labels", 1))
    _check_labels(labels, name)


def _check_labels(labels: int, name: str) -> None:
    """Refuse a model with other than one output: its scores would not be one relevance per pair."""
    if labels != 1:
        raise ModelError(
            f"re-ranking model {name!r} has {labels} output labels; re-ranking needs one relevance score per pair "
            "(num_labels=1), as the ms-marco cross-encoders give"
        )


class TorchReranker:
    """A sentence-transformers ``CrossEncoder`` on PyTorch, on the CPU."""

    backend = "torch"

    def __init__(self, target: str, name: str) -> None:
        """Load ``target`` (a directory or cached model name; ``name`` is how the user gave it).

        Raises:
            ModelError: sentence-transformers is missing, or the model cannot load or is not a one-label cross-encoder.
        """
        try:
            from sentence_transformers import CrossEncoder
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ModelError(
                "re-ranking with a PyTorch cross-encoder needs sentence-transformers: "
                "pip install sentence-transformers 'torch==2.13.0' (or give its ONNX export)"
            ) from exc
        from qa.embed.encoder import quiet_transformers

        quiet_transformers()
        try:
            self._model = CrossEncoder(target, device="cpu")
        except Exception as exc:  # the library raises many kinds (OSError, ValueError, HF errors)
            where = "" if Path(target).is_dir() else " (no such directory, so it was tried as a model name"
            if where and os.environ.get("HF_HUB_OFFLINE") == "1":
                where += "; HF_HUB_OFFLINE=1: only models already in the Hugging Face cache load"
            raise ModelError(f"cannot load re-ranking model {name!r}{where and where + ')'}: {_one_line(exc)}") from exc
        config = getattr(self._model, "config", None)
        if config is not None:  # a model name was not checked before loading
            _check_config(config.to_dict(), name)
        _check_labels(int(self._model.num_labels), name)
        self.model_id = name
        # max_seq_length since sentence-transformers 6; max_length before (None: the tokenizer's own limit).
        limit = getattr(self._model, "max_seq_length", None) or getattr(self._model, "max_length", None)
        self.max_length = int(limit or self._model.tokenizer.model_max_length)
        # Torch modules are not safe to call from several threads at once.
        self._lock = threading.Lock()

    def score(self, question: str, passages: Sequence[str]) -> np.ndarray:
        """One score per passage: ``CrossEncoder.predict`` on the (question, passage) pairs."""
        if not passages:
            return np.zeros(0, dtype=np.float32)
        with self._lock:
            scores = self._model.predict(
                [(question, passage) for passage in passages],
                batch_size=BATCH,
                show_progress_bar=False,
                convert_to_numpy=True,
            )
        return np.asarray(scores, dtype=np.float32).reshape(len(passages))


class OnnxReranker:
    """A cross-encoder's ONNX export on ONNX Runtime and `tokenizers`: no PyTorch on the query path."""

    backend = "onnx"

    def __init__(self, directory: Path, graph: Path) -> None:
        """Load the export ``graph`` with the tokenizer and configuration files in ``directory``.

        Raises:
            ModelError: onnxruntime or tokenizers are missing, a file is missing or unreadable, or the graph does
                not give one score per pair.
        """
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ModelError(
                "the ONNX re-ranker needs onnxruntime and tokenizers: pip install onnxruntime tokenizers"
            ) from exc
        name = str(directory)
        if not (directory / "tokenizer.json").is_file():
            raise ModelError(f"re-ranking model {name!r} holds {graph.name} but no tokenizer.json; {_EXPECTED}")
        config = _read_json(directory / "config.json", name) or {}
        if config:  # an export without config.json is judged by its graph alone
            _check_config(config, name)
        try:
            options = onnxruntime.SessionOptions()
            # One thread per call, like the ONNX encoder: a server's request threads already run in parallel.
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
            tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        except Exception as exc:  # onnxruntime's and tokenizers' own errors
            raise ModelError(f"cannot load re-ranking model {name!r}: {_one_line(exc)}") from exc
        self._inputs = [i.name for i in self._session.get_inputs()]
        if "input_ids" not in self._inputs or not set(self._inputs) <= set(_ONNX_INPUTS):
            raise ModelError(
                f"re-ranking model {name!r} takes inputs {self._inputs}, not a BERT-style text pair; {_EXPECTED}"
            )
        output = self._session.get_outputs()[0]
        if len(output.shape) != 2:
            raise ModelError(
                f"re-ranking model {name!r} gives {output.name!r} of shape {output.shape}, not one score per pair; "
                f"{_EXPECTED}"
            )
        if isinstance(output.shape[1], int):
            _check_labels(output.shape[1], name)
        self.model_id = name
        self.max_length = _max_length(directory, config, name)
        self._activation = _activation(directory, config, name)
        tokenizer.enable_truncation(max_length=self.max_length, strategy="longest_first")
        pad_token = (tokenizer.padding or {}).get("pad_token") or _pad_token(directory, name)
        tokenizer.enable_padding(pad_id=tokenizer.token_to_id(pad_token) or 0, pad_token=pad_token)
        # Fixed here and never changed again, so calls from several threads are safe.
        self._tokenizer = tokenizer

    def score(self, question: str, passages: Sequence[str]) -> np.ndarray:
        """One score per passage: the model's output for each (question, passage) pair, after its activation."""
        scores = np.zeros(len(passages), dtype=np.float32)
        for start in range(0, len(passages), BATCH):
            batch = passages[start : start + BATCH]
            encodings = self._tokenizer.encode_batch([(question, passage) for passage in batch])
            feeds = {
                "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
            }
            logits = self._session.run(None, {name: feeds[name] for name in self._inputs})[0]
            if logits.ndim != 2 or logits.shape[1] != 1:
                _check_labels(logits.shape[-1], self.model_id)
            scores[start : start + len(batch)] = self._activation(logits[:, 0].astype(np.float32))
        return scores


def _max_length(directory: Path, config: dict, name: str) -> int:
    """Tokens per pair, as sentence-transformers decides it: the saved max_seq_length, else the tokenizer's
    model_max_length capped at the model's position embeddings."""
    saved = (_read_json(directory / "sentence_bert_config.json", name) or {}).get("max_seq_length")
    if saved:
        return int(saved)
    limit = (_read_json(directory / "tokenizer_config.json", name) or {}).get("model_max_length")
    limit = int(limit) if limit and limit < _NO_LIMIT else None
    positions = config.get("max_position_embeddings")
    if positions and positions > 0:
        limit = min(limit or positions, int(positions))
    return limit or _FALLBACK_MAX_LENGTH


def _activation(directory: Path, config: dict, name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The activation ``CrossEncoder.predict`` applies: the one saved with the model, else sigmoid (one label).

    Raises:
        ModelError: the model was saved with an activation this backend does not reproduce.
    """
    saved = (_read_json(directory / "config_sentence_transformers.json", name) or {}).get("activation_fn")
    saved = saved or (config.get("sentence_transformers") or {}).get("activation_fn")
    saved = saved or config.get("sbert_ce_default_activation_function") or _SIGMOID
    if saved not in _ACTIVATIONS:
        raise ModelError(
            f"re-ranking model {name!r} applies {saved}, which the ONNX re-ranker does not reproduce (it knows "
            f"{', '.join(_ACTIVATIONS)}): give the PyTorch model instead"
        )
    return _ACTIVATIONS[saved]


def _pad_token(directory: Path, name: str) -> str:
    """The tokenizer's padding token from its saved configuration, [PAD] when none is named."""
    token = (_read_json(directory / "tokenizer_config.json", name) or {}).get("pad_token")
    if isinstance(token, dict):  # older tokenizers save an AddedToken
        token = token.get("content")
    return token or "[PAD]"
