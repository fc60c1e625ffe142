"""Who may call the HTTP service and how much they may send: an optional API key and a body size limit.

Both are pure ASGI middleware, so they see every request before routing (unknown paths, /openapi.json
and /docs included) and neither buffers a body. Their refusals are ordinary ``QAError``s rendered by
``error_response``, the same function the app's QAError handler uses, so every error has one shape.
"""

from __future__ import annotations

import hmac

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.api.web import PAGE_ENDPOINTS
from qa.errors import PayloadTooLarge, QAError, Unauthorized

# (method, path) pairs answered without a key: a load balancer's health probe carries no secret, and the
# web page and its assets hold no data (the searches it makes carry the key the user enters).
OPEN_ENDPOINTS = frozenset({("GET", "/health"), ("HEAD", "/health")}) | PAGE_ENDPOINTS
# Set on each request's scope by ``RequireAPIKey``: whether it carried the key (absent when there is no key).
_AUTHENTICATED = "qa.authenticated"


def is_authenticated(scope: Scope) -> bool:
    """Whether a request may see what only the key's holders see: True when the service has no key."""
    return scope.get(_AUTHENTICATED, True)


def error_kind(exc: QAError) -> str:
    """snake_case of the error class: ``IndexNotFound`` -> ``index_not_found``."""
    name = type(exc).__name__
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def error_response(exc: QAError) -> JSONResponse:
    """The one HTTP rendering of an expected failure: ``{"error", "message"}``, its status and headers."""
    return JSONResponse(
        {"error": error_kind(exc), "message": str(exc)}, status_code=exc.status_code, headers=exc.headers
    )


def _route_path(scope: Scope) -> str:
    """The path the router matches: ``path`` without the ``root_path`` prefix a proxy may have set."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root + "/"):
        return path[len(root) :]
    return path


class RequireAPIKey:
    """Refuse every request but ``GET /health`` unless it carries ``Authorization: Bearer <key>``.

    The key is compared with ``hmac.compare_digest`` on bytes, and the comparison runs for every
    request, with an empty token when the header is missing or not a single Bearer credential. Every
    refusal is the same 401 with ``WWW-Authenticate: Bearer``, whatever was wrong and whether or not
    the path exists.
    """

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self._key = api_key.encode("ascii")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        authorized = self._authorized(scope)
        scope[_AUTHENTICATED] = authorized
        if authorized or self._is_open(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # policy violation
            return
        await error_response(Unauthorized())(scope, receive, send)

    @staticmethod
    def _is_open(scope: Scope) -> bool:
        return scope["type"] == "http" and (scope["method"], _route_path(scope)) in OPEN_ENDPOINTS

    def _authorized(self, scope: Scope) -> bool:
        values = [value for name, value in scope.get("headers", ()) if name.lower() == b"authorization"]
        token = b""
        if len(values) == 1:  # two Authorization headers are ambiguous: refuse rather than pick one
            scheme, _, credentials = values[0].strip().partition(b" ")
            if scheme.lower() == b"bearer":
                token = credentials.strip()
        # Looked up at call time (not imported by name) so tests can confirm it is what decides.
        return hmac.compare_digest(token, self._key)


class _BodyTooLarge(Exception):
    """Raised into the app from ``receive`` once the streamed body passes the limit."""


class LimitRequestBody:
    """Answer 413 to a request body over ``max_bytes``, declared or streamed.

    A ``Content-Length`` over the limit is refused before any of the body is read. A body without one
    (chunked) is counted as the app reads it; the first chunk that takes the total over the limit stops
    the reading, and whatever the app made of the interruption is replaced by the 413.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await error_response(PayloadTooLarge(declared, self.max_bytes))(scope, receive, send)
            return

        received = 0
        too_large: PayloadTooLarge | None = None
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            if too_large is not None:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = PayloadTooLarge(received, self.max_bytes, at_least=message.get("more_body", False))
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if too_large is not None and not response_started:
                return  # the app's answer to a cut-off body is replaced by the 413 below
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if too_large is None or response_started:
                raise
        if too_large is not None and not response_started:
            await error_response(too_large)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    """The declared body size, or None when absent (the server has already refused a malformed one)."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
