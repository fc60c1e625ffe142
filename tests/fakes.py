"""Stand-ins for the fast tier: an encoder that needs no model, for tests of the logic around the model."""

from __future__ import annotations

import re
import zlib
from typing import Sequence

import numpy as np

# Word tokens as the fake counts and hashes them: runs of letters and digits, and each other visible character.
_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"\w+")


class HashingEncoder:
    """A deterministic encoder with the ``qa.embed.encoder.Encoder`` interface and no model behind it.

    Each lower-cased word is hashed (crc32, the same in every process) to one of ``dimension`` buckets with a sign;
    a text's vector is the normalised sum, so texts that share words have a high cosine and texts that share none
    are near orthogonal. Tokens are words and punctuation marks, so token counts (and chunking) look like a real
    tokenizer's. Vectors mean nothing beyond shared words: a test of ranking quality needs the real model.
    """

    def __init__(self, dimension: int = 256, max_tokens: int = 256, model_id: str = "hashing-test-encoder") -> None:
        self.model_id = model_id
        self.backend = "onnx"  # the manifest records a real backend name; nothing here runs ONNX
        self.precision = "fp32"
        self.dimension = dimension
        self.max_tokens = max_tokens

    def _vector(self, text: str) -> np.ndarray:
        """The unit vector of one text; a text without words gets the first axis (still unit length)."""
        vector = np.zeros(self.dimension, dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            bucket = zlib.crc32(word.encode("utf-8"))
            vector[bucket % self.dimension] += 1.0 if bucket & 0x80000000 else -1.0
        norm = np.linalg.norm(vector)
        if norm == 0:
            vector[0] = 1.0
            return vector
        return vector / norm

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text."""
        rows = [self._vector(text) for text in texts]
        return np.array(rows, dtype=np.float32).reshape(len(rows), self.dimension)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Words and punctuation marks per text, never truncated."""
        return [len(_TOKEN.findall(text)) for text in texts]

    def encode_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Text embeddings plus, per text, one unit vector per character span (the span's own text embedded)."""
        vectors = self.encode(texts)
        per_span = [self.encode([text[a:b] for a, b in text_spans]) for text, text_spans in zip(texts, spans)]
        return vectors, per_span
