"""HTTP routes: each one a thin call into the search service."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic_core import to_json
from starlette.concurrency import run_in_threadpool

from qa.api.logs import note_search
from qa.api.openapi import (
    DOCUMENT_RESPONSES,
    HEALTH_RESPONSES,
    SEARCH_EXAMPLES,
    SEARCH_GET_RESPONSES,
    SEARCH_POST_RESPONSES,
    SEARCH_QUERY_EXAMPLES,
)
from qa.api.schemas import (
    ISO_DATE_SCHEMA,
    QUESTION_SCHEMA,
    TOP_K_SCHEMA,
    DocumentResponse,
    HealthResponse,
    SearchRequest,
    SearchResponse,
)
from qa.errors import IndexNotFound
from qa.filters import SearchFilter
from qa.search import Answer, SearchService

router = APIRouter()


def _service(request: Request) -> SearchService:
    """The service for this whole request: taken once, so a reload mid-request cannot mix two indexes."""
    live = request.app.state.live
    service = live.current()
    if service is None:
        raise IndexNotFound(live.last_error or "no index is loaded")
    return service


def answer_body(answer: Answer) -> bytes:
    """The JSON body of a search: byte for byte what FastAPI makes of ``answer.as_dict()`` as a
    ``SearchResponse`` (pydantic's encoder, fields in model order), without validating data the service built."""
    return to_json(answer.as_dict())


async def _search(
    request: Request, question: str, top_k: int | None, mode: str | None, **filters: str | None
) -> Response:
    """Answer one search; its request's log line gets the mode, top_k, names of the filters used and the outcome.

    The search and its JSON encoding run in the threadpool, in one hop: the event loop stays free while the
    question is embedded. ``response_model=SearchResponse`` only documents the body (``answer_body``).
    """
    settings = request.app.state.settings
    note_search(
        request, question, mode=mode or settings.mode, top_k=top_k if top_k is not None else settings.top_k,
        filters=sorted(name for name, value in filters.items() if value is not None) or None,
    )
    search_filter = SearchFilter.of(**filters)
    service = _service(request)

    def answer() -> tuple[bytes, str, int, bool]:
        found = service.search(question, top_k, mode=mode, search_filter=search_filter)
        return answer_body(found), found.mode, len(found.results), found.answerable

    body, used_mode, results, answerable = await run_in_threadpool(answer)
    note_search(request, mode=used_mode, results=results, answerable=answerable)
    return Response(body, media_type="application/json")


@router.post("/search", response_model=SearchResponse, responses=SEARCH_POST_RESPONSES)
async def search_post(
    body: Annotated[SearchRequest, Body(openapi_examples=SEARCH_EXAMPLES)], request: Request
) -> Response:
    """The passages that best answer a question, each with its citation and supporting sentences."""
    return await _search(
        request, body.question, body.top_k, body.mode, source=body.source, after=body.after, before=body.before
    )


@router.get("/search", response_model=SearchResponse, responses=SEARCH_GET_RESPONSES)
async def search_get(
    request: Request,
    q: str = Query(
        description="A question in plain language.", json_schema_extra=QUESTION_SCHEMA,
        openapi_examples=SEARCH_QUERY_EXAMPLES["q"],
    ),
    top_k: int | None = Query(
        default=None, description="How many passages to return (default 5, at most 100).",
        json_schema_extra=TOP_K_SCHEMA, openapi_examples=SEARCH_QUERY_EXAMPLES["top_k"],
    ),
    mode: Literal["hybrid", "dense", "keyword"] | None = Query(
        default=None, description="Retrieval mode (default hybrid).", openapi_examples=SEARCH_QUERY_EXAMPLES["mode"]
    ),
    source: str | None = Query(
        default=None, description="Only documents whose id matches this glob.",
        openapi_examples=SEARCH_QUERY_EXAMPLES["source"],
    ),
    after: str | None = Query(
        default=None, description="Only documents dated on or after this ISO date.", json_schema_extra=ISO_DATE_SCHEMA,
        openapi_examples=SEARCH_QUERY_EXAMPLES["after"],
    ),
    before: str | None = Query(
        default=None, description="Only documents dated on or before this ISO date.", json_schema_extra=ISO_DATE_SCHEMA,
        openapi_examples=SEARCH_QUERY_EXAMPLES["before"],
    ),
) -> Response:
    """The same as POST /search, for links and quick checks."""
    return await _search(request, q, top_k, mode, source=source, after=after, before=before)


@router.get("/documents/{doc_id:path}", response_model=DocumentResponse, responses=DOCUMENT_RESPONSES)
def document(doc_id: str, request: Request) -> dict:
    """A document's text and metadata, so any citation can be opened; ids are looked up, never read from disk."""
    found = _service(request).document(doc_id)
    meta = found.metadata
    return {
        "id": found.doc_id, "title": meta.title, "date": meta.date, "date_source": meta.date_source,
        "author": meta.author, "source": meta.source,
        "content_hash": found.content_hash, "lines": found.n_lines,
        "pages": list(found.pages) if found.pages is not None else None, "text": found.text,
        "aliases": list(found.aliases),
    }


@router.get("/health", response_model=HealthResponse, responses=HEALTH_RESPONSES)
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
