"""Build the FastAPI application from settings; the index and model load once, at start-up."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from qa import __version__
from qa.api.routes import router
from qa.config import Settings
from qa.errors import QAError
from qa.search import SearchService


def _error_kind(exc: QAError) -> str:
    """snake_case of the error class: ``IndexNotFound`` -> ``index_not_found``."""
    name = type(exc).__name__
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _validation_message(exc: RequestValidationError) -> str:
    """One sentence naming each bad field, e.g. ``top_k: Input should be a valid integer``."""
    parts = []
    for error in exc.errors():
        location = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{location or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def create_app(settings: Settings | None = None, *, service: SearchService | None = None) -> FastAPI:
    """A new app serving the index named by ``settings`` (or an already opened ``service``).

    When the index cannot be opened the app still starts: /health reports why and searches answer 503.
    """
    settings = settings or Settings.from_env()
    app = FastAPI(
        title="qa: cited question answering",
        version=__version__,
        description="Ask questions over your documents; every passage comes with a citation you can open.",
    )
    app.state.settings = settings
    app.state.service = service
    app.state.load_error = None
    if service is None:
        try:
            app.state.service = SearchService.open(settings)
        except QAError as exc:
            app.state.load_error = str(exc)

    @app.exception_handler(QAError)
    async def qa_error(request: Request, exc: QAError) -> JSONResponse:
        return JSONResponse({"error": _error_kind(exc), "message": str(exc)}, status_code=exc.status_code)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Unknown routes and methods answer in the same shape as every other error.
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse({"error": kind, "message": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": "invalid_request", "message": _validation_message(exc)}, status_code=422)

    app.include_router(router)
    return app
