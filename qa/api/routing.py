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
