"""HTTP routes: each one a thin call into the search service."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated

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
    VERIFY_RESPONSES,
)
from qa.api.schemas import (
    ISO_DATE_SCHEMA,
    QUESTION_SCHEMA,
    TOP_K_SCHEMA,
    DocumentResponse,
    HealthResponse,
    SearchRequest,
    SearchResponse,
    VerifyRequest,
    VerifyResponse,
)
from qa.api.security import is_authenticated
from qa.config import Mode, Settings
from qa.search.filters import SearchFilter
from qa.search.service import Answer, SearchService
from qa.search.verify import GivenCitation, Verifier

router = APIRouter()


def _lease(request: Request) -> AbstractContextManager[SearchService]:
    """The service for this whole request: taken once, so a reload mid-request cannot mix two indexes, and
    held open until the request is done (a replaced index's files are closed after its last request)."""
    return request.app.state.live.lease()


def answer_body(answer: Answer) -> bytes:
    """The JSON body of a search: byte for byte what FastAPI makes of ``answer.as_dict()`` as a
    ``SearchResponse`` (pydantic's encoder, fields in model order), without validating data the service built."""
    return to_json(answer.as_dict())


async def _search(
    request: Request, question: str, top_k: int | None, mode: Mode | None, **filters: str | None
) -> Response:
    """Answer one search; its request's log line gets the mode, top_k, names of the filters used and the outcome.

    The search and its JSON encoding run in the threadpool, in one hop: the event loop stays free while the
    question is embedded. ``response_model=SearchResponse`` only documents the body (``answer_body``).
    """
    settings = request.app.state.settings
    note_search(
        request,
        question,
        mode=mode or settings.mode,
        top_k=top_k if top_k is not None else settings.top_k,
        filters=sorted(name for name, value in filters.items() if value is not None) or None,
    )
    search_filter = SearchFilter.of(**filters)
    with _lease(request) as service:

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
        description="A question in plain language.",
        json_schema_extra=QUESTION_SCHEMA,
        openapi_examples=SEARCH_QUERY_EXAMPLES["q"],
    ),
    top_k: int | None = Query(
        default=None,
        description="How many passages to return (default 5, at most 100).",
        json_schema_extra=TOP_K_SCHEMA,
        openapi_examples=SEARCH_QUERY_EXAMPLES["top_k"],
    ),
    mode: Annotated[
        Mode | None,
        Query(description="Retrieval mode (default hybrid).", openapi_examples=SEARCH_QUERY_EXAMPLES["mode"]),
    ] = None,
    source: str | None = Query(
        default=None,
        description="Only documents whose id matches this glob.",
        openapi_examples=SEARCH_QUERY_EXAMPLES["source"],
    ),
    after: str | None = Query(
        default=None,
        description="Only documents dated on or after this ISO date.",
        json_schema_extra=ISO_DATE_SCHEMA,
        openapi_examples=SEARCH_QUERY_EXAMPLES["after"],
    ),
    before: str | None = Query(
        default=None,
        description="Only documents dated on or before this ISO date.",
        json_schema_extra=ISO_DATE_SCHEMA,
        openapi_examples=SEARCH_QUERY_EXAMPLES["before"],
    ),
) -> Response:
    """The same as POST /search, for links and quick checks."""
    return await _search(request, q, top_k, mode, source=source, after=after, before=before)


@router.post("/verify", response_model=VerifyResponse, responses=VERIFY_RESPONSES)
async def verify(body: VerifyRequest, request: Request) -> Response:
    """Whether a quote (or each sentence of a paragraph) is in the documents, where, and whether its citation
    points there."""
    given = body.citation
    citation = GivenCitation.of(given.source, given.start, given.end, given.page) if given else None
    with _lease(request) as service:

        def check() -> bytes:
            return to_json(Verifier(service).verify(body.text, citation).as_dict())

        found = await run_in_threadpool(check)
    return Response(found, media_type="application/json")


@router.get("/documents/{doc_id:path}", response_model=DocumentResponse, responses=DOCUMENT_RESPONSES)
def document(doc_id: str, request: Request) -> dict:
    """A document's text and metadata, so any citation can be opened; ids are looked up, never read from disk."""
    with _lease(request) as service:
        found = service.document(doc_id)
    meta = found.metadata
    return {
        "id": found.doc_id,
        "title": meta.title,
        "date": meta.date,
        "date_source": meta.date_source,
        "author": meta.author,
        "source": meta.source,
        "content_hash": found.content_hash,
        "lines": found.n_lines,
        "pages": list(found.pages) if found.pages is not None else None,
        "text": found.text,
        "aliases": list(found.aliases),
    }


@router.get("/health", response_model=HealthResponse, responses=HEALTH_RESPONSES)
def health(request: Request) -> dict:
    """Whether the index is loaded, its model and counts; open even when the service requires an API key.

    Where the index lies on disk is shown only to callers the service trusts: anyone when it has no key,
    else only requests that carry it.
    """
    live = request.app.state.live
    trusted = is_authenticated(request.scope)
    service = live.current()
    if service is None:
        error = live.last_error if trusted else _without_paths(live.last_error, request.app.state.settings)
        return {"status": "unavailable", "index_loaded": False, "error": error}
    info = service.info()
    return {
        "status": "ok",
        "index_loaded": True,
        "model": info["model"],
        "documents": info["counts"]["documents"],
        "chunks": info["counts"]["chunks"],
        "index_dir": info["index_dir"] if trusted else None,
        "index_name": Path(info["index_dir"]).name if trusted else None,
        "created": info["created"],
    }


@router.head("/health", include_in_schema=False)
def health_head() -> Response:
    """The probe without a body: 200 while the service runs (GET /health says whether an index is loaded)."""
    return Response(status_code=200)


def _without_paths(message: str | None, settings: Settings) -> str | None:
    """An error message with the index directory's location replaced by ``<index>``, for callers without the key."""
    if message is None:
        return None
    index_dir = Path(settings.index_dir)
    spellings = {str(index_dir.absolute().resolve()), str(index_dir.absolute()), str(index_dir)}
    for spelling in sorted(spellings, key=len, reverse=True):  # the longest first: the others are inside it
        if len(spelling) > 1:
            message = message.replace(spelling, "<index>")
    return message
