"""Request and response models for the HTTP API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class SearchRequest(BaseModel):
    """A question and optional restrictions; limits are checked by the service so HTTP and CLI agree."""

    question: str = Field(description="A question in plain language.", examples=["Who presided over the March 29 study session?"])
    # strict: "5", 5.0 and true are not whole numbers; a lax int would quietly turn them into 5, 5 and 1.
    top_k: int | None = Field(
        default=None, strict=True, description="How many passages to return (default 5, at most 100).", examples=[5]
    )
    mode: Literal["hybrid", "dense", "keyword"] | None = Field(
        default=None, description="Retrieval mode (default hybrid).", examples=["hybrid"]
    )
    source: str | None = Field(default=None, description="Only documents whose id matches this glob.", examples=["00*.txt"])
    after: str | None = Field(default=None, description="Only documents dated on or after this ISO date.", examples=["2024-01-01"])
    before: str | None = Field(default=None, description="Only documents dated on or before this ISO date.", examples=["2024-12-31"])


class HighlightModel(BaseModel):
    """A supporting sentence: `text[start:end]` of the document, inside the passage."""

    start: int
    end: int


class CitationModel(BaseModel):
    """Where a passage comes from: `text[start:end]` of document `source`; lines are 1-based, inclusive."""

    source: str
    title: str | None
    date: str | None
    start: int
    end: int
    line_start: int
    line_end: int
    highlight: list[HighlightModel]


class SearchHit(BaseModel):
    """One ranked passage and its citation."""

    rank: int
    score: float
    text: str
    citation: CitationModel


class SearchResponse(BaseModel):
    """The passages for one question, best first; `answerable` is false when they probably do not answer it."""

    question: str
    mode: str
    answerable: bool
    confidence: float = Field(ge=0.0, le=1.0)
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
