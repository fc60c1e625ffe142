"""What /docs shows beyond the models: request and response examples, every error an operation can answer
with (and an example of each), and the X-Request-ID header on every response.

Examples are real: requests that the seeds index answers, responses abridged from its answers. The schema
fuzz test (tests/test_schema_fuzz.py) sends the request examples too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from qa.api.schemas import ErrorResponse

if TYPE_CHECKING:
    from fastapi.openapi.models import Example

# What FastAPI's ``responses=`` takes: status code to its OpenAPI response object.
Responses = dict[int | str, dict[str, Any]]

SEARCH_EXAMPLES = {
    "question": {
        "summary": "A question",
        "value": {"question": "Which cases does the First Region Procuratorate of Guizhou handle?", "top_k": 3},
    },
    "keyword mode": {
        "summary": "Exact wording: keyword (BM25) ranking only",
        "value": {"question": "railway transportation cases", "mode": "keyword", "top_k": 5},
    },
    "filters": {
        "summary": "Only some documents: an id glob and a date range",
        "value": {
            "question": "public interest litigation",
            "source": "00*.txt",
            "after": "2024-01",
            "before": "2024-12-31",
        },
    },
}

SEARCH_QUERY_EXAMPLES: dict[str, dict[str, Example]] = {
    "q": {"railway": {"summary": "A question", "value": "Which railway cases does the Guizhou procuratorate handle?"}},
    "top_k": {"three": {"summary": "Three passages", "value": 3}},
    "mode": {"hybrid": {"summary": "Meaning and wording (default)", "value": "hybrid"}},
    "source": {"glob": {"summary": "Ids starting with 00", "value": "00*.txt"}},
    "after": {"year": {"summary": "From 2024 on", "value": "2024"}},
    "before": {"day": {"summary": "Up to the end of 2024", "value": "2024-12-31"}},
}

_ANSWER = {
    "question": "Which cases does the First Region Procuratorate of Guizhou handle?",
    "mode": "hybrid",
    "answerable": True,
    "confidence": 0.9944,
    "results": [
        {
            "rank": 1,
            "score": 1.0,
            "text": "and maintaining stability. The First Region Procuratorate of Guizhou Province is a dispatched "
            "office "
            "of the Provincial Procuratorate, responsible for handling cases related to railway transportation and "
            "administrative public interest litigation across cities and prefectures within the province. ...",
            "citation": {
                "source": "002_7611d074bac0c8e6.txt",
                "title": 'Continuously implementing the practice of "handling every case with high quality and '
                'efficiency" ...',
                "date": "2024-07-04",
                "start": 11161,
                "end": 11769,
                "line_start": 3,
                "line_end": 3,
                "page": None,
                "page_end": None,  # page numbers for PDFs only
                "highlight": [{"start": 11188, "end": 11456}],
            },
        }
    ],
    "took_ms": 17.9,
}
_UNANSWERED = {
    "question": "How do I bake sourdough bread?",
    "mode": "hybrid",
    "answerable": False,
    "confidence": 0.0096,
    "results": [],
    "took_ms": 15.2,
}
SEARCH_RESPONSE_EXAMPLES = {
    "answered": {"summary": "Passages that answer the question", "value": _ANSWER},
    "not answered": {
        "summary": "The documents do not seem to answer it (closest passages still come back; abridged here)",
        "value": _UNANSWERED,
    },
}
DOCUMENT_EXAMPLE = {
    "id": "004_e4f473833b61ecc8.txt",
    "title": "The Supreme People's Court and Supreme People's Procuratorate held the second work exchange meeting ...",
    "date": "2024-06-28",
    "author": None,
    "source": "http://www.legaldaily.com.cn",
    "content_hash": "825e5788...",
    "lines": 5,
    "pages": None,
    "text": "The Supreme People's Court and ...",
}
HEALTH_EXAMPLES = {
    "ok": {
        "summary": "Serving",
        "value": {
            "status": "ok",
            "index_loaded": True,
            "model": "all-MiniLM-L6-v2",
            "documents": 5,
            "chunks": 110,
            "index_dir": "/srv/qa/embeddings",
            "created": "2026-11-21T12:08:59+00:00",
            "error": None,
        },
    },
    "no index": {
        "summary": "Started, but no usable index yet",
        "value": {
            "status": "unavailable",
            "index_loaded": False,
            "error": "no index at embeddings: run `qa index CORPUS` first",
        },
    },
}


def _error(status: int, description: str, **examples: tuple[str, str]) -> dict[str, Any]:
    """A documented error status: the ErrorResponse model and one example per way of getting it."""
    return {
        "model": ErrorResponse,
        "description": description,
        "content": {
            "application/json": {
                "examples": {
                    name: {"summary": kind, "value": {"error": kind, "message": message}}
                    for name, (kind, message) in examples.items()
                }
            }
        },
    }


UNAUTHORIZED = _error(
    401,
    "Missing or invalid API key (only when the service has one: QA_API_KEY); the same answer whatever was wrong.",
    unauthorized=("unauthorized", "missing or invalid API key"),
)
NOT_FOUND = _error(
    404, "Unknown document id.", not_found=("document_not_found", "no document with id 'x.txt' in this index")
)
INVALID = _error(
    422,
    "Empty, over-long or control-character question, top_k out of range, unknown mode, malformed date.",
    empty=("invalid_request", "question is empty"),
    top_k=("invalid_request", "top_k must be a whole number from 1 to 100, got 0"),
    dates=("invalid_request", "after (2024-06) is later than before (2024-01)"),
)
UNAVAILABLE = _error(
    503,
    "No usable index is loaded (/health says why).",
    no_index=("index_not_found", "no index at embeddings: run `qa index CORPUS --index embeddings` first"),
)
NOT_JSON = _error(
    400,
    "Request body is not JSON text (for example, not UTF-8).",
    not_json=("http_error", "There was an error parsing the body"),
)
TOO_LARGE = _error(
    413,
    "Request body over the size limit (QA_MAX_BODY_BYTES), declared or streamed.",
    too_large=("payload_too_large", "request body is 70000 bytes; the limit is 65536"),
)

SEARCH_GET_RESPONSES: Responses = {
    200: {"content": {"application/json": {"examples": SEARCH_RESPONSE_EXAMPLES}}},
    401: UNAUTHORIZED,
    422: INVALID,
    503: UNAVAILABLE,
}
SEARCH_POST_RESPONSES: Responses = {**SEARCH_GET_RESPONSES, 400: NOT_JSON, 413: TOO_LARGE}
VERIFY_INVALID = _error(
    422,
    "Empty or over-long text, more than 50 sentences, a malformed citation (an empty source, a start without an "
    "end, a start after the end, page 0).",
    empty=("invalid_request", "text to check is empty"),
    span=("invalid_request", "citation start and end go together: give both or neither"),
)
VERIFY_RESPONSES: Responses = {401: UNAUTHORIZED, 422: VERIFY_INVALID, 503: UNAVAILABLE, 400: NOT_JSON, 413: TOO_LARGE}
DOCUMENT_RESPONSES: Responses = {
    200: {"content": {"application/json": {"example": DOCUMENT_EXAMPLE}}},
    401: UNAUTHORIZED,
    404: NOT_FOUND,
    503: UNAVAILABLE,
}
HEALTH_RESPONSES: Responses = {200: {"content": {"application/json": {"examples": HEALTH_EXAMPLES}}}}
METRICS_RESPONSES: Responses = {
    200: {
        "description": "Prometheus text exposition format.",
        "content": {
            "text/plain": {
                "schema": {"type": "string"},
                "example": (
                    "# HELP qa_http_requests_total HTTP requests answered, by method, route template and status.\n"
                    "# TYPE qa_http_requests_total counter\n"
                    'qa_http_requests_total{method="POST",route="/search",status="200"} 42.0\n'
                    "# TYPE qa_index_chunks gauge\nqa_index_chunks 110.0\n"
                ),
            }
        },
    },
    401: UNAUTHORIZED,
}

REQUEST_ID_HEADER_DOC = {
    "description": "This request's id: the client's X-Request-ID when it is 1-128 characters of letters, digits "
    "and ._:+/=-, otherwise a new one. Every log line of the request carries it.",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:+/=-]{1,128}$"},
}


def document_request_ids(app: FastAPI) -> None:
    """Declare the X-Request-ID response header on every operation's every response."""
    build_schema = app.openapi

    def openapi() -> dict:
        schema = build_schema()  # cached by FastAPI; these edits are idempotent
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for response in operation.get("responses", {}).values():
                    response.setdefault("headers", {})["X-Request-ID"] = REQUEST_ID_HEADER_DOC
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
