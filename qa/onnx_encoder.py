"""The embedding model through ONNX Runtime and the `tokenizers` library: no PyTorch on the query path.

It loads an export made by ``qa.onnx_export`` and reproduces sentence-transformers' encode: the same
tokenisation (truncation at the model's max_seq_length, padding to the longest text in a batch), the same
pooling over the transformer's token embeddings, then unit length. tests/test_onnx_encoder.py holds it to
the PyTorch encoder within 1e-4 cosine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from qa.encoder import pool_spans, untruncated_counter
from qa.errors import EncoderUnavailable, ModelError
from qa.onnx_export import SETTINGS_FILE, TOKENIZER_FILE, graph_path

# Texts per model call. Batches are sorted by length first, so a batch pads to similar lengths.
BATCH = 32


class OnnxEncoder:
    """A sentence-transformers model exported to ONNX, on the CPU."""

    backend = "onnx"

    def __init__(self, export_dir: Path, *, threads: int = 1, precision: str = "fp32") -> None:
        """Load an export.

        Args:
            precision: "fp32" (the exported graph: vectors equal to PyTorch's) or "int8" (its MatMul weights
                quantised, made once and kept beside it; see ``qa.onnx_export.graph_path``).
            threads: threads ONNX Runtime uses inside one call. One suits a server answering several short
                questions at once (calls run in parallel); the core count suits bulk indexing.

        Raises:
            ModelError: the export is unreadable or onnxruntime/tokenizers are missing.
        """
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise EncoderUnavailable("the ONNX encoder needs onnxruntime and tokenizers: pip install onnxruntime tokenizers") from exc
        graph = graph_path(export_dir, precision)
        try:
            settings = json.loads((export_dir / SETTINGS_FILE).read_text(encoding="utf-8"))
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            # No spinning: idle threads would burn a core between a server's short calls, and even for bulk
            # indexing with two threads it measured no faster (66.6 vs 62.9 passages/s without it).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = onnxruntime.InferenceSession(
                str(graph), options, providers=["CPUExecutionProvider"]
            )
            tokenizer = Tokenizer.from_file(str(export_dir / TOKENIZER_FILE))
        except Exception as exc:  # json, OSError, onnxruntime's own errors
            raise ModelError(f"cannot load the ONNX export in {export_dir}: {exc} (delete it to export again)") from exc
        self.precision = precision
        self.model_id: str = settings["model_id"]
        self.dimension = int(settings["dimension"])
        self.max_tokens = int(settings["max_seq_length"]) - int(settings["special_tokens"])
        self._pooling = settings["pooling"]
        self._inputs = list(settings["inputs"])
        self._counter = untruncated_counter(tokenizer)
        # Truncated like sentence-transformers; each batch is padded (in ``_batches``) to its own longest text.
        tokenizer.enable_truncation(max_length=int(settings["max_seq_length"]))
        tokenizer.no_padding()
        self._pad_id = int(settings["pad_id"])
        # Fixed here and never changed again, so calls from several threads are safe (no lock needed);
        # ONNX Runtime sessions may run concurrently too.
        self._tokenizer = tokenizer

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text as the model's tokenizer counts them, special tokens excluded."""
        return self._counter(texts) if texts else []

    def encode(self, texts: Sequence[str], *, batch_size: int = BATCH) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text."""
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for order, _, mask, tokens in self._batches(texts, batch_size):
            vectors[order] = self._pool(tokens, mask)
        return vectors

    def encode_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], *, batch_size: int = BATCH
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Text embeddings plus, per text, a unit vector for each ``(start, end)`` character span.

        A span's vector is the mean of the token embeddings inside it (see ``qa.encoder.pool_spans``).
        """
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        span_vectors: list[np.ndarray | None] = [None] * len(texts)
        for order, encodings, mask, tokens in self._batches(texts, batch_size):
            pooled = self._pool(tokens, mask)
            vectors[order] = pooled
            for row, (i, encoding) in enumerate(zip(order, encodings)):
                real = len(encoding.ids)
                span_vectors[i] = pool_spans(tokens[row, :real], encoding.offsets, spans[i], pooled[row])
        return vectors, span_vectors  # type: ignore[return-value]

    def _batches(self, texts: Sequence[str], batch_size: int):
        """Yield (positions, encodings, attention mask, token embeddings) for batches of texts of similar length.

        Every text is tokenised once; batches are padded on the right to their own longest text, as
        sentence-transformers pads them.
        """
        if not texts:
            return
        all_encodings = self._tokenizer.encode_batch(list(texts))
        ranked = sorted(range(len(texts)), key=lambda i: len(all_encodings[i].ids))
        for first in range(0, len(ranked), batch_size):
            order = ranked[first : first + batch_size]
            encodings = [all_encodings[i] for i in order]
            width = max(len(e.ids) for e in encodings)
            feeds = {
                "input_ids": np.full((len(order), width), self._pad_id, dtype=np.int64),
                "attention_mask": np.zeros((len(order), width), dtype=np.int64),
                "token_type_ids": np.zeros((len(order), width), dtype=np.int64),
            }
            for row, encoding in enumerate(encodings):
                n = len(encoding.ids)
                feeds["input_ids"][row, :n] = encoding.ids
                feeds["attention_mask"][row, :n] = 1
                feeds["token_type_ids"][row, :n] = encoding.type_ids
            tokens = self._session.run(None, {name: feeds[name] for name in self._inputs})[0]
            yield order, encodings, feeds["attention_mask"], tokens

    def _pool(self, tokens: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Pool token embeddings into one unit vector per text, as the model's Pooling module does."""
        mask = attention_mask.astype(np.float32)[:, :, None]
        if self._pooling == "mean":
            pooled = (tokens * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        elif self._pooling == "cls":
            pooled = tokens[:, 0]
        else:  # max, over real tokens only
            pooled = np.where(mask > 0, tokens, -1e9).max(axis=1)
        pooled = pooled.astype(np.float32)
        pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return pooled
