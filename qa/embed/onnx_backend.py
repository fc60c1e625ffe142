"""The embedding model through ONNX Runtime and the `tokenizers` library: no PyTorch on the query path.

It loads an export made by ``qa.embed.onnx_export`` and reproduces sentence-transformers' encode: the same
tokenisation (truncation at the model's max_seq_length), the same pooling over the transformer's token
embeddings, then unit length. tests/test_onnx_encoder.py holds it to the PyTorch encoder within 1e-4 cosine.

Each text runs through the model alone, with no padding, and several texts run at once on a pool of
threads (one ONNX Runtime thread per call). Measured on this project's 2-core machine against padded
batches of 32 on two ONNX Runtime threads: 1.26x the passages per second at fp32 and 1.4x at int8. It also
makes a text's vector depend on that text only: int8 quantises activations per call, so in a batch a
passage's vector would shift with its neighbours (cosine down to 0.987), and an updated index would not
equal a clean build.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from qa.embed.encoder import pool_spans, untruncated_counter
from qa.embed.onnx_export import SETTINGS_FILE, TOKENIZER_FILE, graph_path
from qa.errors import EncoderUnavailable, ModelError


class OnnxEncoder:
    """A sentence-transformers model exported to ONNX, on the CPU."""

    backend = "onnx"

    def __init__(self, export_dir: Path, *, threads: int = 1, precision: str = "fp32") -> None:
        """Load an export.

        Args:
            precision: "fp32" (the exported graph: vectors equal to PyTorch's) or "int8" (its MatMul weights
                quantised, made once and kept beside it; see ``qa.embed.onnx_export.graph_path``).
            threads: texts embedded at once, each by one ONNX Runtime thread. One suits a server (its
                request threads already call in parallel); the core count suits bulk indexing.

        Raises:
            ModelError: the export is unreadable or onnxruntime/tokenizers are missing.
        """
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise EncoderUnavailable(
                "the ONNX encoder needs onnxruntime and tokenizers: pip install onnxruntime tokenizers"
            ) from exc
        graph = graph_path(export_dir, precision)
        try:
            settings = json.loads((export_dir / SETTINGS_FILE).read_text(encoding="utf-8"))
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            # No spinning: idle threads would burn a core between a server's short calls, and bulk indexing with
            # two spinning threads was measured no faster (docs/performance.md, "Figures behind the code's
            # constants").
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
            tokenizer = Tokenizer.from_file(str(export_dir / TOKENIZER_FILE))
        except Exception as exc:  # json, OSError, onnxruntime's own errors
            raise ModelError(f"cannot load the ONNX export in {export_dir}: {exc} (delete it to export again)") from exc
        self.precision = precision
        self._workers = max(1, int(threads))
        self.model_id: str = settings["model_id"]
        self.dimension = int(settings["dimension"])
        self.max_tokens = int(settings["max_seq_length"]) - int(settings["special_tokens"])
        self._pooling = settings["pooling"]
        self._inputs = list(settings["inputs"])
        self._counter = untruncated_counter(tokenizer)
        # Truncated like sentence-transformers; never padded, as each text runs alone.
        tokenizer.enable_truncation(max_length=int(settings["max_seq_length"]))
        tokenizer.no_padding()
        # Fixed here and never changed again, so calls from several threads are safe (no lock needed);
        # ONNX Runtime sessions may run concurrently too.
        self._tokenizer = tokenizer

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text as the model's tokenizer counts them, special tokens excluded."""
        return self._counter(texts) if texts else []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text."""
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, _, tokens in self._runs(texts):
            vectors[i] = self._pool(tokens)
        return vectors

    def encode_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Text embeddings plus, per text, a unit vector for each ``(start, end)`` character span.

        A span's vector is the mean of the token embeddings inside it (see ``qa.embed.encoder.pool_spans``).
        """
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        span_vectors: list[np.ndarray | None] = [None] * len(texts)
        for i, encoding, tokens in self._runs(texts):
            vectors[i] = self._pool(tokens)
            span_vectors[i] = pool_spans(tokens, encoding.offsets, spans[i], vectors[i])
        return vectors, span_vectors  # type: ignore[return-value]

    def _runs(self, texts: Sequence[str]):
        """Yield (position, encoding, token embeddings) per text, each text run alone, in the texts' order.

        Every text is tokenised once (all together: the tokenizer parallelises that itself); the model calls
        are spread over ``threads`` workers. ONNX Runtime releases the GIL inside a call.
        """
        if not texts:
            return
        encodings = self._tokenizer.encode_batch(list(texts))
        if self._workers == 1 or len(texts) == 1:
            for i, encoding in enumerate(encodings):
                yield i, encoding, self._run(encoding)
            return
        with ThreadPoolExecutor(self._workers, thread_name_prefix="qa-embed") as pool:
            for i, (encoding, tokens) in enumerate(zip(encodings, pool.map(self._run, encodings))):
                yield i, encoding, tokens

    def _run(self, encoding) -> np.ndarray:
        """The model's token embeddings for one tokenised text, shape (tokens, dimension)."""
        n = len(encoding.ids)
        feeds = {
            "input_ids": np.array([encoding.ids], dtype=np.int64),
            "attention_mask": np.ones((1, n), dtype=np.int64),
            "token_type_ids": np.array([encoding.type_ids], dtype=np.int64),
        }
        return self._session.run(None, {name: feeds[name] for name in self._inputs})[0][0]

    def _pool(self, tokens: np.ndarray) -> np.ndarray:
        """Pool one text's token embeddings (no padding) into a unit vector, as the model's Pooling module does."""
        if self._pooling == "mean":
            pooled = tokens.mean(axis=0)
        elif self._pooling == "cls":
            pooled = tokens[0]
        else:  # max
            pooled = tokens.max(axis=0)
        pooled = pooled.astype(np.float32)
        return pooled / max(float(np.linalg.norm(pooled)), 1e-12)
