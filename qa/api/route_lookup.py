"""Which of an app's routes a request's path belongs to: for 405 answers and for metrics labels."""

from __future__ import annotations

from starlette.routing import Match
from starlette.types import Scope


def plain_routes(routes):
    """Routes with their included routers opened up (FastAPI >= 0.16x keeps an included router as one route)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from plain_routes(inner.routes)
        else:
            yield route


def matching_routes(app, scope: Scope) -> tuple[list, list]:
    """``(routes taking this path and method, routes taking this path with another method)``, in routing order."""
    full, partial = [], []
    for route in plain_routes(app.router.routes):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            full.append(route)
        elif match == Match.PARTIAL:
            partial.append(route)
    return full, partial


def slash_redirect(app, scope: Scope) -> str | None:
    """Where a path that matches no route should go with its trailing slash added or removed, as a relative
    URL (path and query only, so the client's ``Host`` header is never echoed); None when that matches
    nothing either.
    """
    path = scope["path"]
    if path == "/" or scope["type"] != "http":
        return None
    toggled = path.rstrip("/") if path.endswith("/") else path + "/"
    if not toggled or toggled.startswith("//"):
        return None  # "//host" would be read as another site
    if not any(matching_routes(app, {**scope, "path": toggled})):
        return None
    query = scope.get("query_string", b"").decode("latin-1")
    return toggled + (f"?{query}" if query else "")
