"""The interactive API docs work with no network: /docs (Swagger UI) and /redoc (ReDoc) load only files the
service itself serves. Checked in Debian's Chromium with every request to anything but loopback blocked and
recorded: the pages must render, "Try it out" must run a real search, and nothing may even try to leave."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import serving
from playwright.sync_api import expect, sync_playwright
from test_web import CHROMIUM, CHROMIUM_ARGS, _install_chromium

from qa.api.app import create_app
from qa.config import Settings

# Slow tier (see conftest.py): drives Chromium against a live server.
pytestmark = pytest.mark.slow

LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}


@pytest.fixture(scope="module")
def docs_url(service):
    with serving(create_app(Settings(index_dir=service.settings.index_dir), service=service)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium under Playwright (installed with apt-get first if missing)."""
    if not CHROMIUM.exists():
        _install_chromium()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture()
def offline_page(browser):
    """A page on which every request to a host other than loopback is aborted and recorded in ``page.left``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(60_000)
    left: list[str] = []

    def only_loopback(route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("data", "blob") or urlsplit(url).hostname in LOOPBACK:
            route.continue_()
        else:
            left.append(url)
            route.abort()

    context.route("**/*", only_loopback)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.left = left
    yield page
    context.close()
    assert errors == []


class _References(HTMLParser):
    """Every src and href an HTML page refers to."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_refer_only_to_files_the_service_serves(docs_url, path):
    page = httpx.get(docs_url + path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    references = _References()
    references.feed(page.text)
    assert references.urls, "the page loads its script and styles from somewhere"
    for url in references.urls:
        assert url.startswith("/docs/assets/"), url
        asset = httpx.get(docs_url + url)
        assert asset.status_code == 200 and len(asset.content) > 1000, url
    assert "googleapis" not in page.text and "cdn." not in page.text


def test_swagger_ui_renders_offline_and_try_it_out_runs_a_search(docs_url, offline_page):
    page = offline_page
    page.goto(f"{docs_url}/docs")
    expect(page.locator(".information-container .title")).to_contain_text("qa: cited question answering")
    for method, path in [("get", "/search"), ("post", "/search"), ("get", "/documents/{doc_id}"), ("get", "/health")]:
        expect(page.locator(f".opblock-{method} [data-path='{path}']")).to_have_count(1)

    operation = page.locator(".opblock-post").filter(has=page.locator("[data-path='/search']"))
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    with page.expect_response(lambda r: r.url.endswith("/search") and r.request.method == "POST") as response:
        operation.get_by_role("button", name="Execute").click()
    assert response.value.status == 200
    answer = response.value.json()
    assert answer["results"] and answer["results"][0]["citation"]["source"]
    expect(operation.locator(".live-responses-table tr.response .response-col_status")).to_have_text("200")
    assert page.left == []


def test_redoc_renders_offline(docs_url, offline_page):
    page = offline_page
    page.goto(f"{docs_url}/redoc")
    expect(page.locator("h1").first).to_contain_text("qa: cited question answering")
    expect(page.get_by_text("/search", exact=False).first).to_be_attached()
    # The operations' own descriptions are rendered, not only the page's frame.
    expect(page.get_by_text("The passages that best answer a question").first).to_be_attached()
    assert page.left == []
