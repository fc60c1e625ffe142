"""Build the FastAPI application from settings; the index and model load once, at start-up.

Requests pass, outermost first: telemetry (request id, log line, metrics: qa/api/telemetry.py), CORS
(only when origins are configured, so a browser's preflight is answered before any key is asked for), the
API key (only when one is set), the body size limit, then the routes.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route

from qa import __version__
from qa.api.docs import router as docs_router
from qa.api.logs import REQUEST_ID_HEADER
from qa.api.mcp import MCPEndpoint
from qa.api.metrics import Metrics
from qa.api.metrics import router as metrics_router
from qa.api.openapi import document_request_ids
from qa.api.route_lookup import matching_routes, slash_redirect
from qa.api.routes import router
from qa.api.security import OPEN_ENDPOINTS, LimitRequestBody, RequireAPIKey, error_response
from qa.api.telemetry import RequestTelemetry
from qa.api.web import router as web_router
from qa.config import Settings
from qa.errors import QAError
from qa.search.reload import LiveService
from qa.search.service import SearchService

CORS_METHODS = ("GET", "POST")
CORS_HEADERS = ("Authorization", "Content-Type")


def _validation_message(exc: RequestValidationError) -> str:
    """One sentence naming each bad field, e.g. ``top_k: Input should be a valid integer``."""
    parts = []
    for error in exc.errors():
        location = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{location or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def create_app(
    settings: Settings | None = None, *, service: SearchService | None = None, shards: list | None = None
) -> FastAPI:
    """A new app serving the index named by ``settings`` (or an already opened ``service``).

    A sharded index (``qa index --shards N``) is served through its shards: ``shards`` are clients of shards
    served elsewhere (qa.distributed.shard_serving), or, when None, every shard is opened in this process
    (qa.distributed.shard_router).

    When the index cannot be opened the app still starts: /health reports why and searches answer 503
    until an index appears. While the app runs, a replaced index directory is reloaded every
    ``settings.reload_interval`` seconds.

    Raises:
        ConfigError: a setting cannot work (for example an API key under 16 characters).
    """
    settings = settings or Settings.from_env()
    settings.check()
    if shards is not None or (service is None and _is_sharded(settings)):
        from qa.distributed.shard_router import live_functions

        opener, identify = live_functions(shards, settings.index_dir)
        live = LiveService(settings, service, opener=opener, identify=identify)
    else:
        live = LiveService(settings, service)
    mcp = MCPEndpoint(live.loaded, host=settings.host, max_body_bytes=settings.max_body_bytes)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # A rebuilt index (qa index into the same directory) is picked up without a restart.
        live.start(settings.reload_interval)
        try:
            async with mcp.running():
                yield
        finally:
            live.stop()

    app = FastAPI(
        title="qa: cited question answering",
        version=__version__,
        description="Ask questions over your documents; every passage comes with a citation you can open.",
        lifespan=lifespan,
        # /docs and /redoc come from qa/api/docs.py, with their scripts shipped in the install, not from a CDN.
        docs_url=None,
        redoc_url=None,
        # Starlette's own redirect names the client's Host header; ``http_error`` redirects relatively instead.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.live = live
    app.state.metrics = Metrics(live)

    @app.exception_handler(QAError)
    async def qa_error(request: Request, exc: QAError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # Unknown routes and methods answer in the same shape as every other error.
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 404:
            target = slash_redirect(request.app, request.scope)
            if target is not None:
                return RedirectResponse(target, status_code=307)
        if exc.status_code == 405:
            # Starlette names only the first route on the path that refused the method; list every route's.
            allowed = {
                method
                for route in matching_routes(request.app, request.scope)[1]
                for method in getattr(route, "methods", None) or ()
            }
            headers["Allow"] = ", ".join(sorted(allowed))
        return JSONResponse({"error": kind, "message": str(exc.detail)}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": "invalid_request", "message": _validation_message(exc)}, status_code=422)

    app.include_router(router)
    app.include_router(web_router)  # the question page at / (not in the OpenAPI schema)
    app.include_router(metrics_router)
    app.include_router(docs_router)
    # MCP over streamable HTTP (qa/mcp/server.py), behind the same key and body limit as every other route.
    # The Route add_route would make, built here because add_route is typed for request functions, not ASGI apps.
    app.router.routes.append(Route("/mcp", mcp, include_in_schema=False))
    document_request_ids(app)

    # add_middleware wraps what is already there, so the last one added sees a request first.
    app.add_middleware(LimitRequestBody, max_bytes=settings.max_body_bytes)
    if settings.api_key is not None:
        app.add_middleware(RequireAPIKey, api_key=settings.api_key)
        _document_bearer_auth(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=list(CORS_METHODS),
            allow_headers=list(CORS_HEADERS),
            expose_headers=[REQUEST_ID_HEADER],
        )
    app.add_middleware(RequestTelemetry, metrics=app.state.metrics, fastapi_app=app)  # outermost: sees everything
    return app


def _is_sharded(settings: Settings) -> bool:
    """Whether the index directory holds a sharded index (without importing qa.distributed.shards otherwise)."""
    from pathlib import Path

    return (Path(settings.index_dir) / "shards.json").is_file()


def _document_bearer_auth(app: FastAPI) -> None:
    """Declare the bearer key in the OpenAPI schema, so /docs offers to send it; open endpoints say so."""
    build_schema = app.openapi

    def openapi() -> dict:
        schema = build_schema()  # FastAPI caches the dict; these edits are idempotent
        schema.setdefault("components", {}).setdefault("securitySchemes", {})["apiKey"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "The service's API key (QA_API_KEY).",
        }
        schema["security"] = [{"apiKey": []}]
        for method, path in OPEN_ENDPOINTS:
            operation = schema.get("paths", {}).get(path, {}).get(method.lower())
            if operation is not None:
                operation["security"] = []
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
