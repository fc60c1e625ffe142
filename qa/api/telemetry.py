"""The outermost middleware: a request id, one log line and the metrics of every request.

It wraps everything else the app adds (CORS, the API key, the body limit, the routes), so refused,
preflight and unknown-path requests are logged and counted too. Every response carries ``X-Request-ID``.
An exception nothing else handled becomes a JSON 500 that names the request id, and its traceback goes
into that request's log line rather than to uvicorn's.
"""

from __future__ import annotations

import logging
import time

from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.api.logs import ACCESS_LOGGER, REQUEST_ID_HEADER, fields, request_id_from
from qa.api.metrics import Metrics, route_template

log = logging.getLogger(ACCESS_LOGGER)
# Longest raw path written to a log line; the route template says the rest.
_MAX_LOGGED_PATH = 200


class RequestTelemetry:
    """Give each HTTP request an id, and after its response log one line and record its metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics, fastapi_app) -> None:
        self.app = app
        self.metrics = metrics
        # The FastAPI app whose routes name the route template (this middleware sits outside its router).
        self.fastapi_app = fastapi_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_from(scope.get("headers", ()))
        fields(scope)["request_id"] = request_id
        status = 0
        finished = False

        def finish(failure: BaseException | None = None) -> None:
            nonlocal finished
            if not finished:
                finished = True
                self._record(scope, request_id, status or 500, time.perf_counter() - started, failure)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                # Logged and counted just before the last byte goes out, so a client that has its answer can
                # already see it in /metrics and the log.
                finish()
            await send(message)

        self.metrics.in_progress.inc()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # noqa: BLE001 - answered and logged here, once
            if status == 0:
                body = {
                    "error": "internal_error",
                    "message": f"unexpected error; quote request id {request_id} when reporting it",
                    "request_id": request_id,
                }
                status = 500
                finish(exc)
                await JSONResponse(body, status_code=500)(scope, receive, send_with_id)
            # A response already begun cannot be replaced: the connection just ends, as it would anyway.
            finish(exc)
        finally:
            self.metrics.in_progress.dec()
            finish()  # a response that never finished (the client went away)

    def _record(
        self, scope: Scope, request_id: str, status: int, seconds: float, failure: BaseException | None
    ) -> None:
        """Count the request and write its one log line."""
        line = fields(scope)
        route = route_template(self.fastapi_app, scope)
        self.metrics.observe(scope["method"], route, status, seconds, line)
        client = scope.get("client")
        record = {
            "request_id": request_id,
            "method": scope["method"],
            "route": route,
            "path": scope.get("path", "")[:_MAX_LOGGED_PATH],
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "client": client[0] if client else None,
            **{k: v for k, v in line.items() if k != "request_id"},
        }
        level = logging.ERROR if status >= 500 else logging.INFO
        log.log(
            level,
            "%s %s %d",
            scope["method"],
            route,
            status,
            extra={"qa_fields": record},
            exc_info=(type(failure), failure, failure.__traceback__) if failure is not None else None,
        )
