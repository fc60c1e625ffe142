"""Dense retrieval: cosine similarity between the question's embedding and each passage's."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from qa.embed.encoder import Encoder

if TYPE_CHECKING:
    from qa.index.interfaces import VectorStore


class DenseRetriever:
    """Ranks chunks by cosine similarity of their embeddings to the question's."""

    def __init__(self, encoder: Encoder, vectors: VectorStore) -> None:
        self.encoder = encoder
        self.vectors = vectors

    def embed(self, question: str) -> np.ndarray:
        """The question's unit vector, shape (dimension,)."""
        return self.encoder.encode([question])[0]

    def retrieve(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Best ``k`` ``(chunk id, cosine)`` pairs for a query vector, best first; only ``allowed`` ids if given."""
        scores, ids = self.vectors.search(query[None, :], k, allowed=allowed)
        # Python numbers first: a loop over numpy scalars costs several times as much.
        return [(i, s) for i, s in zip(ids[0].tolist(), scores[0].tolist()) if i != -1]

    def similarity(self, query: np.ndarray, ids: list[int]) -> dict[int, float]:
        """Exact cosine of the query with the given chunks (for candidates found only by keywords)."""
        if not ids:
            return {}
        return dict(zip(ids, (self.vectors.reconstruct(ids) @ query).tolist()))
