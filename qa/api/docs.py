"""The interactive API docs, /docs (Swagger UI) and /redoc (ReDoc), served from files installed with the package.

FastAPI's own pages load their JavaScript and CSS from a CDN, so they are blank without a network. The same pages
here point at copies shipped in the ``fastapi-offline`` package (Swagger UI 5 and ReDoc 2 bundles: Apache-2.0 and
MIT), served under /docs/assets/. Like /docs itself, the assets sit behind the API key when the service has one.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

ASSETS_PATH = "/docs/assets"
# Only these files are served, each under ASSETS_PATH/<name>.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
# The bundles change only with the installed package: a browser may keep them for a day.
_ASSET_HEADERS = {"Cache-Control": "max-age=86400", "X-Content-Type-Options": "nosniff"}
# The pages load nothing from elsewhere, even what a bundle asks for on its own (ReDoc's menu shows its vendor's
# logo from the web): the browser is told not to fetch it. Inline script and styles are how both bundles start.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(include_in_schema=False)


@cache
def _read(name: str) -> bytes:
    """A file of the fastapi-offline package's ``static`` folder, read once per process."""
    return files("fastapi_offline").joinpath("static", name).read_bytes()


def _prefix(request: Request) -> str:
    """The ``root_path`` a proxy mounted the app under, so asset and schema URLs work behind it."""
    return request.scope.get("root_path", "").rstrip("/")


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI over /openapi.json, with "Try it out" for every operation."""
    prefix = _prefix(request)
    page = get_swagger_ui_html(
        openapi_url=f"{prefix}{request.app.openapi_url}",
        title=f"{request.app.title} - API docs",
        swagger_js_url=f"{prefix}{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{prefix}{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{prefix}{ASSETS_PATH}/favicon.png",
        oauth2_redirect_url=None,
        swagger_ui_parameters=request.app.swagger_ui_parameters,
    )
    page.headers.update(_PAGE_HEADERS)
    return page


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    """ReDoc over /openapi.json: the same reference as one long page, without fonts from the web."""
    prefix = _prefix(request)
    page = get_redoc_html(
        openapi_url=f"{prefix}{request.app.openapi_url}",
        title=f"{request.app.title} - API reference",
        redoc_js_url=f"{prefix}{ASSETS_PATH}/redoc.standalone.js",
        redoc_favicon_url=f"{prefix}{ASSETS_PATH}/favicon.png",
        with_google_fonts=False,
    )
    page.headers.update(_PAGE_HEADERS)
    return page


def _asset_route(name: str, media_type: str) -> None:
    def asset() -> Response:
        return Response(_read(name), media_type=media_type, headers=_ASSET_HEADERS)

    router.add_api_route(f"{ASSETS_PATH}/{name}", asset, methods=["GET"], name=f"docs-asset:{name}")


for _name, _media_type in ASSETS.items():
    _asset_route(_name, _media_type)
