"""Request and response models for the HTTP API."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SearchRequest(BaseModel):
    """A question; limits are checked by the service so HTTP and CLI give the same messages."""

    question: str = Field(description="A question in plain language.", examples=["Who presided over the March 29 study session?"])
    top_k: int | None = Field(default=None, description="How many passages to return (default 5).", examples=[5])


class CitationModel(BaseModel):
    """Where a passage comes from: `text[start:end]` of document `source`; lines are 1-based, inclusive."""

    source: str
    title: str | None
    date: str | None
    start: int
    end: int
    line_start: int
    line_end: int


class SearchHit(BaseModel):
    """One ranked passage and its citation."""

    rank: int
    score: float
    text: str
    citation: CitationModel


class SearchResponse(BaseModel):
    """The passages for one question, best first."""

    question: str
    results: list[SearchHit]
    took_ms: float


class DocumentResponse(BaseModel):
    """A document's text and metadata: every citation's offsets index `text`."""

    id: str
    title: str | None
    date: str | None
    author: str | None
    source: str | None
    content_hash: str
    lines: int
    text: str


class HealthResponse(BaseModel):
    """Whether the service can answer, with what model and how much data."""

    status: str
    index_loaded: bool
    model: str | None = None
    documents: int | None = None
    chunks: int | None = None
    index_dir: str | None = None
    created: str | None = None
    error: str | None = None


class ErrorResponse(BaseModel):
    """Every error: a machine-readable kind and a sentence for people."""

    error: str
    message: str
