"""The small interfaces the service core reads an index through: documents, keyword index, vectors, sentences.

Each store applies a search filter its own way: the document store turns a :class:`~qa.search.filters.SearchFilter`
(plain data) into the chunk ids it lets through, and the keyword and vector stores rank among those ids only,
so a filter applies before ranking whatever holds the data. ``qa.search.service.SearchService`` depends on these
protocols, not on SQLite, FAISS or the postings file; ``qa.index.snapshot`` opens the implementations
(``qa.index.store.StoreReader``, ``qa.search.keyword.KeywordRetriever``, ``qa.index.vectors.VectorIndex``,
``qa.index.sentence_vectors.SentenceVectors``) from one build's files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Protocol, Sequence

import numpy as np

from qa.index.store import StoredChunk, StoredDocument
from qa.ingest.metadata import Metadata
from qa.search.filters import SearchFilter

if TYPE_CHECKING:
    from qa.index.sentence_vectors import Quantized


class DocumentStore(Protocol):
    """Documents and their passages, with everything a citation names."""

    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        """Passages by chunk id, joined with their documents' citation fields."""

    def document(self, doc_id: str) -> StoredDocument | None:
        """One document by its id or one of its aliases, or None."""

    def documents(self) -> list[tuple[str, Metadata, int]]:
        """``(doc_id, metadata, passage count)`` for every document."""

    def aliases_of(self, document_rows: Sequence[int]) -> dict[int, tuple[str, ...]]:
        """The other paths of documents, by document row."""

    def section_leads(self, ids: Sequence[int]) -> set[int]:
        """Which of ``ids`` are the first passage under a heading."""

    def allowed_chunks(self, search_filter: SearchFilter) -> np.ndarray:
        """The chunk ids a filter lets through, sorted."""

    def count_undated(self, search_filter: SearchFilter) -> int:
        """How many documents a date filter leaves out only because they have no date."""

    def close(self) -> None:
        """Let go of the files; the store is not used afterwards."""


class KeywordPostings(Protocol):
    """A build's keyword postings ranked by BM25: one file's, every segment's, or every shard's."""

    def rank(
        self,
        phrases: Sequence[Sequence[str]],
        k: int,
        *,
        weights: tuple[float, float] = (1.0, 1.0),
        allowed: np.ndarray | None = None,
    ) -> list[tuple[int, float]]:
        """Best ``k`` ``(chunk id, score)``, best first (ties by id); only ``allowed`` ids when given."""


class ServiceStore(DocumentStore, Protocol):
    """What ``SearchService`` reads a build through: its documents, plus the keyword postings and stored sentence
    vectors that ``KeywordRetriever`` and ``SentenceVectors`` read from it (one store, a segmented one or shards)."""

    # Read-only here, so a store that drops its postings on close (``keywords = None``) still fits.
    @property
    def path(self) -> Path:
        """Where the store is (its postings file, when it carries none, is beside it)."""

    @property
    def keywords(self) -> KeywordPostings | None:
        """The build's keyword postings, or None for a store opened alone (read from beside ``path``)."""

    def sentence_vectors_of(self, ids: Sequence[int], dimension: int) -> dict[int, Quantized]:
        """Stored sentence vectors of passages, by chunk id."""

    def sentence_vector_bytes(self) -> int:
        """Total stored size of every passage's sentence vectors."""

    def all_sentence_vectors(self, dimension: int) -> dict[int, Quantized]:
        """Stored sentence vectors of every passage, by chunk id."""


class KeywordIndex(Protocol):
    """Ranks passages by the words of a question (BM25)."""

    def retrieve(self, question: str, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Best ``k`` ``(chunk id, score)``, best first; only ``allowed`` ids when given."""


class VectorStore(Protocol):
    """Passage vectors by chunk id, searched by inner product of unit vectors (cosine)."""

    @property
    def dimension(self) -> int:
        """Length of each vector."""

    def __len__(self) -> int:
        """How many vectors."""

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` ``(scores, ids)`` per query row; only ``allowed`` ids when given."""

    def reconstruct(self, ids: list[int]) -> np.ndarray:
        """The stored vectors of the given ids, one row each."""


class SentenceStore(Protocol):
    """Each passage's per-sentence vectors, for the best-sentence blend and the supporting sentences."""

    @property
    def in_memory(self) -> bool:
        """Whether every passage's sentence vectors are held in memory."""

    def of(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """Each passage's ``(sentences, dimension)`` vectors by chunk id."""

    def best(
        self, query: np.ndarray, ids: Sequence[int], loaded: Mapping[int, np.ndarray] | None = None
    ) -> dict[int, float]:
        """The highest sentence cosine of each passage that has sentence vectors."""
