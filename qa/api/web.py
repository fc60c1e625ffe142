"""The web page at ``/``: one HTML page, its stylesheet and script, served from package data (no build step).

The page and its assets hold no data, so they answer without the API key (see ``PAGE_ENDPOINTS``); the
searches and documents the page fetches carry the key the user typed, like any other client. None of
these routes is in the OpenAPI schema: they are not part of the API.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import Response

# Only these files are served, each under /static/<name>; anything else under /static is an ordinary 404.
ASSETS = {
    "app.css": "text/css; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
}
PAGE_ENDPOINTS = frozenset({("GET", "/"), *(("GET", f"/static/{name}") for name in ASSETS)})

# Defence in depth: the script writes document text as text nodes only, and even if a bug let markup
# through, this policy runs no inline script or handler and loads nothing from elsewhere.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidate, so an upgraded service never runs yesterday's script
}

router = APIRouter(include_in_schema=False)


@cache
def _read(name: str) -> bytes:
    """A file from ``qa/api/static``, read once per process."""
    return files("qa.api").joinpath("static", name).read_bytes()


@router.get("/")
def page() -> Response:
    """The question page."""
    return Response(_read("index.html"), media_type="text/html; charset=utf-8", headers=_HEADERS)


def _asset_route(name: str, media_type: str) -> None:
    def asset() -> Response:
        return Response(_read(name), media_type=media_type, headers=_HEADERS)

    router.add_api_route(f"/static/{name}", asset, methods=["GET"], name=f"static:{name}")


for _name, _media_type in ASSETS.items():
    _asset_route(_name, _media_type)
