"""The service core: load an index once, answer questions with cited passages, serve documents."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from qa.atomic import recover
from qa.config import Settings
from qa.encoder import Encoder, load_encoder, model_id_for
from qa.errors import DocumentNotFound, IndexCorrupt, IndexIncompatible, InvalidRequest
from qa.manifest import DATABASE_FILE, VECTORS_FILE, Manifest, verify_checksums
from qa.store import StoreReader, StoredDocument
from qa.vectors import VectorIndex


@dataclass(frozen=True)
class Citation:
    """Where a passage comes from: ``document.text[start:end]`` is the passage; lines are 1-based, inclusive."""

    source: str
    title: str | None
    date: str | None
    start: int
    end: int
    line_start: int
    line_end: int


@dataclass(frozen=True)
class Hit:
    """One ranked passage."""

    rank: int
    score: float
    text: str
    citation: Citation


@dataclass(frozen=True)
class Answer:
    """The response to one question; ``as_dict`` is the JSON shape shared by HTTP and `qa ask --json`."""

    question: str
    results: list[Hit]
    took_ms: float

    def as_dict(self) -> dict:
        """Plain data for JSON."""
        return asdict(self)


class DenseRetriever:
    """Ranks chunks by cosine similarity of their embeddings to the question's."""

    def __init__(self, encoder: Encoder, vectors: VectorIndex) -> None:
        self.encoder = encoder
        self.vectors = vectors

    def retrieve(self, question: str, k: int) -> list[tuple[int, float]]:
        """Best ``k`` ``(chunk id, score)`` pairs, best first."""
        query = self.encoder.encode([question])
        scores, ids = self.vectors.search(query, k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]


class SearchService:
    """An opened index plus its model; one per process, shared by every request."""

    def __init__(self, settings: Settings, manifest: Manifest, store: StoreReader, retriever: DenseRetriever) -> None:
        self.settings = settings
        self.manifest = manifest
        self.store = store
        self.retriever = retriever

    @classmethod
    def open(cls, settings: Settings, encoder: Encoder | None = None) -> "SearchService":
        """Load the index at ``settings.index_dir`` and the model it was built with.

        Args:
            encoder: an already loaded model to use instead of loading one (it must match the index).

        Raises:
            IndexNotFound, IndexIncompatible, IndexCorrupt, ModelError: the index cannot be used as asked.
        """
        index_dir = Path(settings.index_dir)
        recover(index_dir)
        manifest = Manifest.read(index_dir)
        if settings.model is not None and model_id_for(settings.model) != manifest.model:
            raise IndexIncompatible(
                f"index at {index_dir} was built with model {manifest.model!r}, but model {settings.model!r} was "
                f"requested: query it with --model {manifest.model} (or no --model), or rebuild it"
            )
        verify_checksums(index_dir, manifest)
        encoder = encoder or load_encoder(manifest.model)
        if encoder.model_id != manifest.model:
            raise IndexIncompatible(f"index at {index_dir} needs model {manifest.model!r}, got {encoder.model_id!r}")
        if encoder.dimension != manifest.dimension:
            raise IndexIncompatible(
                f"index at {index_dir} holds {manifest.dimension}-dimensional vectors but model "
                f"{encoder.model_id!r} produces {encoder.dimension}: rebuild the index"
            )
        vectors = VectorIndex.load(index_dir / VECTORS_FILE)
        if vectors.dimension != manifest.dimension or len(vectors) != manifest.counts.get("chunks"):
            raise IndexCorrupt(
                f"vector file in {index_dir} does not match its manifest "
                f"({len(vectors)} vectors of {vectors.dimension} dims, expected {manifest.counts.get('chunks')} "
                f"of {manifest.dimension}): rebuild it with `qa index`"
            )
        store = StoreReader(index_dir / DATABASE_FILE)
        return cls(settings, manifest, store, DenseRetriever(encoder, vectors))

    def check_question(self, question: object) -> str:
        """The question with surrounding whitespace removed.

        Raises:
            InvalidRequest: not a string, empty, or longer than the limit.
        """
        if not isinstance(question, str):
            raise InvalidRequest("question must be a string")
        cleaned = question.strip()
        if not cleaned:
            raise InvalidRequest("question is empty")
        limit = self.settings.max_question_chars
        if len(cleaned) > limit:
            raise InvalidRequest(f"question is {len(cleaned)} characters long; the limit is {limit}")
        return cleaned

    def check_top_k(self, top_k: object) -> int:
        """``top_k`` if it is a whole number in range.

        Raises:
            InvalidRequest: out of range or not an integer.
        """
        limit = self.settings.max_top_k
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or not 1 <= top_k <= limit:
            raise InvalidRequest(f"top_k must be a whole number from 1 to {limit}, got {top_k!r}")
        return int(top_k)

    def search(self, question: str, top_k: int | None = None) -> Answer:
        """The ``top_k`` passages that best answer ``question``, each with its citation.

        Raises:
            InvalidRequest: the question or ``top_k`` is unusable.
        """
        started = time.perf_counter()
        question = self.check_question(question)
        top_k = self.check_top_k(self.settings.top_k if top_k is None else top_k)
        ranked = self.retriever.retrieve(question, top_k)
        chunks = self.store.chunks([chunk_id for chunk_id, _ in ranked])
        hits = []
        for chunk_id, score in ranked:
            chunk = chunks[chunk_id]
            citation = Citation(
                source=chunk.doc_id,
                title=chunk.title,
                date=chunk.date,
                start=chunk.start,
                end=chunk.end,
                line_start=chunk.line_start,
                line_end=chunk.line_end,
            )
            hits.append(Hit(rank=len(hits) + 1, score=round(score, 6), text=chunk.text, citation=citation))
        return Answer(question=question, results=hits, took_ms=round((time.perf_counter() - started) * 1000, 3))

    def document(self, doc_id: str) -> StoredDocument:
        """A document by id, exactly as indexed (citations index its text).

        Raises:
            DocumentNotFound: no such id in this index.
        """
        document = self.store.document(doc_id)
        if document is None:
            raise DocumentNotFound(f"no document with id {doc_id!r} in this index")
        return document

    def info(self) -> dict:
        """What is in the index: model, counts, build parameters."""
        manifest = self.manifest
        return {
            "index_dir": str(Path(self.settings.index_dir).absolute()),
            "format_version": manifest.format_version,
            "model": manifest.model,
            "dimension": manifest.dimension,
            "chunking": manifest.chunking,
            "corpus": manifest.corpus,
            "counts": manifest.counts,
            "created": manifest.created,
        }
