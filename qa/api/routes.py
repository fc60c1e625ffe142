"""HTTP routes: each one a thin call into the search service."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request

from qa.api.schemas import (
    ISO_DATE_SCHEMA,
    QUESTION_SCHEMA,
    TOP_K_SCHEMA,
    DocumentResponse,
    ErrorResponse,
    HealthResponse,
    SearchRequest,
    SearchResponse,
)
from qa.errors import IndexNotFound
from qa.filters import SearchFilter
from qa.search import SearchService

router = APIRouter()
_ERRORS = {
    401: {"model": ErrorResponse, "description": "Missing or invalid API key (only when the service has one)."},
    404: {"model": ErrorResponse, "description": "Unknown document id."},
    422: {"model": ErrorResponse, "description": "Empty or over-long question, or top_k out of range."},
    503: {"model": ErrorResponse, "description": "No usable index is loaded."},
}
_BODY_ERRORS = {
    **_ERRORS,
    400: {"model": ErrorResponse, "description": "Request body is not JSON text (for example, not UTF-8)."},
    413: {"model": ErrorResponse, "description": "Request body over the size limit."},
}


def _service(request: Request) -> SearchService:
    """The service for this whole request: taken once, so a reload mid-request cannot mix two indexes."""
    live = request.app.state.live
    service = live.current()
    if service is None:
        raise IndexNotFound(live.last_error or "no index is loaded")
    return service


@router.post("/search", response_model=SearchResponse, responses=_BODY_ERRORS)
def search_post(body: SearchRequest, request: Request) -> dict:
    """The passages that best answer a question, each with its citation and supporting sentences."""
    search_filter = SearchFilter.of(source=body.source, after=body.after, before=body.before)
    return _service(request).search(body.question, body.top_k, mode=body.mode, search_filter=search_filter).as_dict()


@router.get("/search", response_model=SearchResponse, responses=_ERRORS)
def search_get(
    request: Request,
    q: str = Query(description="A question in plain language.", json_schema_extra=QUESTION_SCHEMA),
    top_k: int | None = Query(
        default=None, description="How many passages to return (default 5, at most 100).", json_schema_extra=TOP_K_SCHEMA
    ),
    mode: Literal["hybrid", "dense", "keyword"] | None = Query(default=None, description="Retrieval mode (default hybrid)."),
    source: str | None = Query(default=None, description="Only documents whose id matches this glob."),
    after: str | None = Query(
        default=None, description="Only documents dated on or after this ISO date.", json_schema_extra=ISO_DATE_SCHEMA
    ),
    before: str | None = Query(
        default=None, description="Only documents dated on or before this ISO date.", json_schema_extra=ISO_DATE_SCHEMA
    ),
) -> dict:
    """The same as POST /search, for links and quick checks."""
    search_filter = SearchFilter.of(source=source, after=after, before=before)
    return _service(request).search(q, top_k, mode=mode, search_filter=search_filter).as_dict()


@router.get("/documents/{doc_id:path}", response_model=DocumentResponse, responses=_ERRORS)
def document(doc_id: str, request: Request) -> dict:
    """A document's text and metadata, so any citation can be opened; ids are looked up, never read from disk."""
    found = _service(request).document(doc_id)
    meta = found.metadata
    return {
        "id": found.doc_id, "title": meta.title, "date": meta.date, "author": meta.author, "source": meta.source,
        "content_hash": found.content_hash, "lines": found.n_lines,
        "pages": list(found.pages) if found.pages is not None else None, "text": found.text,
    }


@router.get("/health", response_model=HealthResponse)
def health(request: Request) -> dict:
    """Whether the index is loaded, its model and counts; open even when the service requires an API key."""
    live = request.app.state.live
    service = live.current()
    if service is None:
        return {"status": "unavailable", "index_loaded": False, "error": live.last_error}
    info = service.info()
    return {
        "status": "ok", "index_loaded": True, "model": info["model"], "documents": info["counts"]["documents"],
        "chunks": info["counts"]["chunks"], "index_dir": info["index_dir"], "created": info["created"],
    }
