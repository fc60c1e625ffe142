"""The web page at /, driven in a real browser: Debian's Chromium under Playwright, against uvicorn serving the
real app and model over a small corpus (the seeds, a document full of markup, one with characters outside the
Basic Multilingual Plane). Screenshots go to a temporary folder and are checked to be PNG files.

Chromium comes from Debian's ``chromium`` package; when /usr/bin/chromium is missing the session installs it
with apt-get, and fails with a message saying so when that is impossible (never a silent skip).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from conftest import SEEDS, serving
from playwright.sync_api import Page, expect, sync_playwright

from qa.api.app import create_app
from qa.config import Settings

# Slow tier (see conftest.py): drives Chromium against a live server.
pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium reaches for Google's services, which a closed network refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KEY = "web-page-key-0123456789"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

ANSWERABLE = "Which railway cases does the Guizhou procuratorate handle?"
OFF_TOPIC = "How do I make sourdough bread rise faster?"
XSS_QUESTION = "What does the lighthouse keeper write in the storm log?"
ASTRAL_QUESTION = "How many hearts does an octopus have?"

XSS_DOC = """\
# Lighthouse <img src=x onerror="window.__xss = 'title'"> log

The lighthouse keeper writes in the storm log every night: <script>window.__xss = 'body'</script> wind, \
rain and the ships that passed. <img src=x onerror="window.__xss = 'img'"> A storm log entry also records \
the lamp's hours & the fuel used, "quoted" as <b>bold</b> text.

The keeper's cat sleeps on the log when it is not being written.
"""
# Emoji and a CJK Extension B character are one code point each in Python but two UTF-16 units in JavaScript:
# a page that sliced with the service's offsets directly would highlight the wrong characters.
ASTRAL_DOC = (
    "Notes on the octopus \U0001f419\U0001f419\U0001f419\n\n"
    + "".join(
        f"Tide table {n} \U0001f30a: low water at {n} o'clock, the harbour wall \U0001f9f1 dries and gulls \U0001f426 "
        f"gather on the mud flats. "
        for n in range(1, 13)
    )
    + "\n\n"
    "Cephalopods \U00020000 are clever animals \U0001f9e0. "
    "An octopus has three hearts \U0001f499\U0001f499\U0001f499 and blue blood. "
    "Two hearts pump blood through the gills and one through the rest of the body \U0001f30a.\n\n"
    "Octopuses can taste with their arms \U0001f419 and change colour in an instant.\n"
)


# ------------------------------------------------------------------------------------------------ fixtures


def _install_chromium() -> None:
    """apt-get install Debian's chromium, refreshing the package lists once if the first try fails."""
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        pytest.fail(
            f"{CHROMIUM} is missing and cannot be installed here (needs apt-get, run as root): "
            "install Debian's chromium package (apt-get install -y chromium) and run the tests again"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "install", "-y", "chromium"]
    result = subprocess.run(install, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        subprocess.run([apt, "update"], env=env, capture_output=True, text=True)
        result = subprocess.run(install, env=env, capture_output=True, text=True)
    if result.returncode != 0 or not CHROMIUM.exists():
        pytest.fail(
            f"could not install Debian's chromium with apt-get (exit {result.returncode}):\n{result.stderr[-2000:]}"
        )


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium under Playwright, installed first if missing (Playwright's own download is not used).

    Module-scoped: while Playwright's sync API runs it holds an event loop on the main thread, which
    would break ``asyncio.run`` in tests of other modules.
    """
    if not CHROMIUM.exists():
        _install_chromium()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def web_service(tmp_path_factory, encoder):
    """The search service over the seeds plus a document full of markup and one with astral characters."""
    from qa.index.indexer import build_index
    from qa.search.service import SearchService

    corpus = tmp_path_factory.mktemp("web-corpus")
    for path in SEEDS.iterdir():
        if path.is_file() and not path.name.startswith("."):
            shutil.copy(path, corpus / path.name)
    (corpus / "lighthouse.md").write_text(XSS_DOC, encoding="utf-8")
    (corpus / "notes" / "octopus.txt").parent.mkdir()
    (corpus / "notes" / "octopus.txt").write_text(ASTRAL_DOC, encoding="utf-8")
    index_dir = tmp_path_factory.mktemp("web-index") / "embeddings"
    defaults = Settings()
    build_index(
        corpus,
        index_dir,
        encoder,
        chunk_size=defaults.chunk_size,
        chunk_overlap=defaults.chunk_overlap,
        embed_title=defaults.embed_title,
    )
    return SearchService.open(Settings(index_dir=index_dir), encoder=encoder)


@pytest.fixture(scope="module")
def base_url(web_service):
    with serving(create_app(Settings(index_dir=web_service.settings.index_dir), service=web_service)) as url:
        yield url


@pytest.fixture(scope="module")
def keyed_url(web_service):
    settings = Settings(index_dir=web_service.settings.index_dir, api_key=KEY)
    with serving(create_app(settings, service=web_service)) as url:
        yield url


@pytest.fixture(scope="module")
def api(base_url):
    """A plain HTTP client for the same server, to compare what the page shows with what the API says."""
    with httpx.Client(base_url=base_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture()
def page(browser):
    """A fresh desktop-sized page; any JavaScript error on it fails the test."""
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(60_000)  # the first search loads the model's kernels on a busy machine
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: (errors.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    yield page
    context.close()
    assert errors == []


def ask(page: Page, question: str) -> None:
    """Type a question into the page and press Enter; wait until the search has finished."""
    page.locator("#question").fill(question)
    page.locator("#question").press("Enter")
    expect(page.locator("#results")).not_to_have_attribute("aria-busy", "true")
    expect(page.locator("#status")).not_to_have_text("Searching\u2026")


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000, path


def assert_document_open_at(page: Page, hit: dict, document: dict) -> None:
    """The open document shows exactly the cited span highlighted, its supporting sentences emphasised, in view."""
    citation = hit["citation"]
    cited = page.locator("#doc-text mark.passage")
    expect(cited).to_have_count(1)
    assert cited.text_content() == hit["text"] == document["text"][citation["start"] : citation["end"]]
    supports = cited.locator("strong.support").all_text_contents()
    assert supports == [document["text"][h["start"] : h["end"]] for h in citation["highlight"]]
    assert page.locator("#doc-text").text_content() == document["text"]  # the whole text, nothing added or lost
    expect(cited).to_be_in_viewport()
    expect(cited).to_be_focused()
    expect(page.locator("#doc-title")).to_have_text(document["title"] or document["id"])


# ------------------------------------------------------------------------------------------------ plain HTTP


class _Assets(HTMLParser):
    """The stylesheets and scripts an HTML page refers to."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.found.append(attrs["src"])
        if tag == "link" and attrs.get("rel") == "stylesheet":
            self.found.append(attrs["href"])


@pytest.mark.parametrize("key", [None, KEY], ids=["open service", "service with a key"])
def test_page_and_its_assets_are_served_with_their_content_types_and_no_key(key, web_service):
    settings = Settings(index_dir=web_service.settings.index_dir, api_key=key)
    with serving(create_app(settings, service=web_service)) as url, httpx.Client(base_url=url, timeout=30) as http:
        page = http.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert "<form" in page.text and 'id="question"' in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"
        parser = _Assets()
        parser.feed(page.text)
        assert sorted(parser.found) == ["static/app.css", "static/app.js"]
        types = {"static/app.css": "text/css; charset=utf-8", "static/app.js": "text/javascript; charset=utf-8"}
        for asset in parser.found:
            response = http.get("/" + asset)
            assert response.status_code == 200 and response.headers["content-type"] == types[asset]
            assert len(response.content) > 500
        # Only the page and its assets are open: the data still needs the key, and nothing else is served.
        assert http.get("/static/index.html").status_code == (404 if key is None else 401)
        assert http.get("/static/../qa/api/web.py").status_code == (404 if key is None else 401)
        search = http.get("/search", params={"q": "railway"})
        assert search.status_code == (200 if key is None else 401)
        if key is not None:
            headers = {"Authorization": f"Bearer {key}"}
            assert http.get("/search", params={"q": "railway"}, headers=headers).status_code == 200


def test_page_and_assets_are_not_in_the_openapi_schema(web_service):
    schema = create_app(Settings(index_dir=web_service.settings.index_dir), service=web_service).openapi()
    assert set(schema["paths"]) == {"/search", "/verify", "/documents/{doc_id}", "/health", "/metrics"}


def test_page_assets_are_package_data():
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^"qa\.api" = \["static/\*"\]$', pyproject, re.MULTILINE)


# ------------------------------------------------------------------------------------------------ in Chromium


def test_question_shows_cited_passages_and_a_citation_opens_the_document_at_the_span(page, base_url, api, shots):
    page.goto(base_url)
    expect(page.locator("#question")).to_be_focused()
    ask(page, ANSWERABLE)

    answer = api.post("/search", json={"question": ANSWERABLE}).json()
    assert answer["answerable"] is True
    hits = page.locator("#results > li")
    expect(hits).to_have_count(len(answer["results"]))
    expect(page.locator("#notice")).to_be_hidden()
    expect(page.locator("#status")).to_contain_text(f"{len(answer['results'])} passages")
    for shown, hit in zip(hits.all(), answer["results"]):
        citation = hit["citation"]
        document = api.get(f"/documents/{citation['source']}").json()
        assert shown.locator(".hit-text").text_content() == hit["text"]
        expected = [document["text"][h["start"] : h["end"]] for h in citation["highlight"]]
        assert shown.locator("strong.support").all_text_contents() == expected and expected
        expect(shown.locator(".cite-open")).to_contain_text(citation["title"])
        expect(shown.locator(".cite-date")).to_have_text(citation["date"])
        expect(shown.locator(".cite-source")).to_have_text(citation["source"])
        first, last = citation["line_start"], citation["line_end"]
        lines = f"line {first}" if first == last else f"lines {first}\u2013{last}"
        expect(shown.locator(".cite-lines")).to_have_text(lines)
    page.screenshot(path=shots / "results-desktop.png", full_page=True)

    # The last hit: its span is furthest from the top of its document's text, so scrolling has to happen.
    hit = answer["results"][-1]
    document = api.get(f"/documents/{hit['citation']['source']}").json()
    hits.last.locator(".cite-open").click()
    assert_document_open_at(page, hit, document)
    page.screenshot(path=shots / "document-desktop.png")

    # Closing the document hands focus back to the citation that opened it.
    page.locator("#doc-close").click()
    expect(page.locator("#document")).to_be_hidden()
    expect(hits.last.locator(".cite-open")).to_be_focused()

    # A new question closes an open document and leaves focus in the question box.
    hits.first.locator(".cite-open").click()
    expect(page.locator("#document")).to_be_visible()
    page.locator("#question").focus()
    ask(page, OFF_TOPIC)
    expect(page.locator("#document")).to_be_hidden()
    expect(page.locator("#question")).to_be_focused()
    for name in ("results-desktop.png", "document-desktop.png"):
        assert_png(shots / name)


def test_phone_width_page_is_readable_without_sideways_scrolling(browser, base_url, api, shots):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    context.set_default_timeout(60_000)
    page = context.new_page()
    try:
        page.goto(base_url)
        ask(page, ANSWERABLE)
        expect(page.locator("#results > li")).not_to_have_count(0)
        widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert widths[0] <= widths[1] == PHONE["width"]
        font_size = page.evaluate("parseFloat(getComputedStyle(document.querySelector('.hit-text')).fontSize)")
        assert font_size >= 16
        page.screenshot(path=shots / "results-phone.png", full_page=True)

        answer = api.post("/search", json={"question": ANSWERABLE}).json()
        hit = answer["results"][0]
        page.locator("#results > li").first.locator(".cite-open").tap()
        assert_document_open_at(page, hit, api.get(f"/documents/{hit['citation']['source']}").json())
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.screenshot(path=shots / "document-phone.png")
    finally:
        context.close()
    for name in ("results-phone.png", "document-phone.png"):
        assert_png(shots / name)


def test_off_topic_question_shows_a_clear_notice_and_still_lists_passages(page, base_url, api):
    answer = api.post("/search", json={"question": OFF_TOPIC}).json()
    assert answer["answerable"] is False
    page.goto(base_url)
    ask(page, OFF_TOPIC)
    notice = page.locator("#notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("The documents don't seem to answer this")
    expect(notice).to_contain_text(f"confidence {round(answer['confidence'] * 100)}%")
    expect(page.locator("#results > li")).to_have_count(len(answer["results"]))

    # The notice belongs to that question only.
    ask(page, ANSWERABLE)
    expect(page.locator("#notice")).to_be_hidden()


def test_markup_in_documents_shows_as_text_and_never_runs(page, base_url, api):
    page.goto(base_url)
    ask(page, XSS_QUESTION)
    answer = api.post("/search", json={"question": XSS_QUESTION, "top_k": 5}).json()
    hit = next(h for h in answer["results"] if h["citation"]["source"] == "lighthouse.md")
    assert "<script>" in hit["text"] and "<img" in hit["text"] and "<img" in hit["citation"]["title"]

    shown = page.locator("#results > li").nth(hit["rank"] - 1)
    assert shown.locator(".hit-text").text_content() == hit["text"]
    expect(shown.locator(".cite-open")).to_contain_text(hit["citation"]["title"])
    shown.locator(".cite-open").click()
    document = api.get("/documents/lighthouse.md").json()
    assert_document_open_at(page, hit, document)

    # The markup is there as characters, and no element came of it.
    assert page.locator("main img, main script, main b").count() == 0
    assert "<script>window.__xss = 'body'</script>" in page.locator("#doc-text").text_content()
    assert page.evaluate("window.__xss") is None


def test_offsets_are_counted_in_code_points_even_outside_the_basic_multilingual_plane(page, base_url, api):
    page.goto(base_url)
    ask(page, ASTRAL_QUESTION)
    answer = api.post("/search", json={"question": ASTRAL_QUESTION}).json()
    hit = next(h for h in answer["results"] if h["citation"]["source"] == "notes/octopus.txt")
    document = api.get("/documents/notes/octopus.txt").json()
    start = hit["citation"]["start"]
    first = hit["citation"]["highlight"][0]["start"]
    # Astral characters come before the span and, inside it, before the supporting sentence.
    assert start > 0 and len(document["text"][:start].encode("utf-16-le")) > 2 * start
    assert len(document["text"][start:first].encode("utf-16-le")) > 2 * (first - start)

    shown = page.locator("#results > li").nth(hit["rank"] - 1)
    expected = [document["text"][h["start"] : h["end"]] for h in hit["citation"]["highlight"]]
    assert shown.locator("strong.support").all_text_contents() == expected
    shown.locator(".cite-open").click()
    assert_document_open_at(page, hit, document)


def test_keyboard_alone_asks_opens_a_citation_and_closes_it(page, base_url):
    page.goto(base_url)
    expect(page.locator("#question")).to_be_focused()
    page.keyboard.type(ANSWERABLE)
    page.keyboard.press("Enter")
    expect(page.locator("#results > li")).not_to_have_count(0)

    # Tab order follows the page: question, Ask, mode, number of passages, filters, API key, Check a quote, then the
    # citations.
    page.locator("#question").focus()
    order = []
    for _ in range(8):
        page.keyboard.press("Tab")
        order.append(page.evaluate("(e => e.id || e.className || e.tagName)(document.activeElement)"))
    assert order == ["ask-button", "mode", "top-k", "SUMMARY", "SUMMARY", "SUMMARY", "cite-open", "cite-open"]

    # Focus is visible, and Enter on a citation opens the document with focus on the cited passage.
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", "")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    cited = page.locator("#doc-text mark.passage")
    expect(cited).to_be_focused()
    expect(cited).to_be_in_viewport()
    page.keyboard.press("Escape")
    expect(page.locator("#document")).to_be_hidden()
    expect(page.locator("#results > li").first.locator(".cite-open")).to_be_focused()


def test_results_are_announced_to_screen_readers(page, base_url):
    page.goto(base_url)
    summary = page.locator("#summary")
    expect(summary).to_have_attribute("aria-live", "polite")
    expect(page.locator("#error")).to_have_attribute("role", "alert")
    ask(page, ANSWERABLE)
    expect(page.locator("#status")).to_contain_text("passages for")


def test_service_errors_are_shown_as_messages(page, base_url, browser, tmp_path):
    page.goto(base_url)
    ask(page, "   ")
    expect(page.locator("#error")).to_have_text("The request was not accepted: question is empty")
    expect(page.locator("#results > li")).to_have_count(0)

    page.locator("#top-k").fill("0")
    ask(page, ANSWERABLE)
    expect(page.locator("#error")).to_contain_text("The request was not accepted: top_k")

    page.locator("#top-k").fill("2")
    ask(page, ANSWERABLE)
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#results > li")).to_have_count(2)

    # No index at all: searches answer 503, and the page says so.
    with serving(create_app(Settings(index_dir=tmp_path / "no-index"))) as url:
        page.goto(url)
        ask(page, ANSWERABLE)
        expect(page.locator("#error")).to_contain_text("The service cannot answer right now")


def test_mode_and_number_of_passages_are_sent(page, base_url, api):
    page.goto(base_url)
    page.locator("#mode").select_option("keyword")
    page.locator("#top-k").fill("3")
    ask(page, "railway cases")
    answer = api.post("/search", json={"question": "railway cases", "mode": "keyword", "top_k": 3}).json()
    expect(page.locator("#results > li .hit-text")).to_have_text([hit["text"] for hit in answer["results"]])


def test_with_an_api_key_the_page_asks_for_it_and_keeps_it_for_the_tab(page, keyed_url):
    page.goto(keyed_url)
    ask(page, ANSWERABLE)
    expect(page.locator("#error")).to_contain_text("This service needs an API key")
    expect(page.locator("#key-box")).to_have_attribute("open", "")
    expect(page.locator("#api-key")).to_be_focused()

    page.locator("#api-key").fill("not-the-key-at-all-0000")
    page.locator("#api-key").press("Enter")
    expect(page.locator("#error")).to_contain_text("This service needs an API key")

    page.locator("#api-key").fill(KEY)
    page.locator("#api-key").press("Enter")  # Enter in the key field asks again
    expect(page.locator("#results > li")).to_have_count(5)
    expect(page.locator("#error")).to_be_hidden()
    page.locator("#results > li").first.locator(".cite-open").click()
    expect(page.locator("#doc-text mark.passage")).to_be_in_viewport()  # documents are fetched with the key too

    # Kept for this tab only: sessionStorage, not localStorage, and back after a reload.
    assert page.evaluate("sessionStorage.getItem('qa.apiKey')") == KEY
    assert page.evaluate("localStorage.length") == 0
    page.reload()
    expect(page.locator("#api-key")).to_have_value(KEY)


def test_readme_tour_shows_a_screenshot_of_the_page():
    root = Path(__file__).resolve().parents[1]
    assert "](docs/web-page.png)" in (root / "README.md").read_text(encoding="utf-8")
    assert_png(root / "docs" / "web-page.png")


def test_passages_keep_their_line_breaks_and_citations_show_section_date_and_lines(page, base_url, api):
    page.goto(base_url)
    ask(page, "notes on the octopus")
    answer = api.post("/search", json={"question": "notes on the octopus"}).json()
    first = answer["results"][0]
    assert "\n" in first["text"]  # the title line, a blank line, then the tide tables
    shown = page.locator("#results > li .hit-text").first
    assert shown.evaluate("node => getComputedStyle(node).whiteSpace") == "pre-wrap"
    assert shown.inner_text() == first["text"]  # the lines as written, not folded into one
    meta = page.locator("#results > li .cite-meta").first
    assert first["citation"]["date_source"] == "file"  # the note states no date: its file's time stands in
    expect(meta.locator(".cite-date")).to_have_text(f"{first['citation']['date']} (file modified)")
    expect(meta.locator(".cite-lines")).to_contain_text(str(first["citation"]["line_start"]))


def test_source_and_date_filters_are_sent(page, base_url, api):
    page.goto(base_url)
    page.locator("#filter-box summary").click()
    page.locator("#source").fill("notes/*")
    page.locator("#after").fill("1990")
    ask(page, "octopus")
    answer = api.post("/search", json={"question": "octopus", "source": "notes/*", "after": "1990"}).json()
    assert {hit["citation"]["source"] for hit in answer["results"]} == {"notes/octopus.txt"}
    expect(page.locator("#results > li .hit-text")).to_have_text([hit["text"] for hit in answer["results"]])


def test_a_search_lives_in_the_url_so_it_can_be_shared_reloaded_and_revisited(page, base_url, api):
    page.goto(f"{base_url}/?q=railway+cases&mode=keyword&k=3")  # a shared link runs its search as it opens
    expect(page.locator("#question")).to_have_value("railway cases")
    expect(page.locator("#mode")).to_have_value("keyword")
    answer = api.post("/search", json={"question": "railway cases", "mode": "keyword", "top_k": 3}).json()
    expect(page.locator("#results > li .hit-text")).to_have_text([hit["text"] for hit in answer["results"]])

    ask(page, "notes on the octopus")
    assert "q=notes+on+the+octopus" in page.url and "mode=keyword" in page.url and "k=3" in page.url
    page.go_back()  # Back returns to the first question and its passages
    expect(page.locator("#question")).to_have_value("railway cases")
    expect(page.locator("#results > li .hit-text")).to_have_text([hit["text"] for hit in answer["results"]])
    page.go_forward()
    expect(page.locator("#question")).to_have_value("notes on the octopus")
    page.reload()
    expect(page.locator("#question")).to_have_value("notes on the octopus")
    expect(page.locator("#results > li")).not_to_have_count(0)


def test_the_confidence_of_an_answerable_result_is_shown(page, base_url, api):
    page.goto(base_url)
    ask(page, ANSWERABLE)
    answer = api.post("/search", json={"question": ANSWERABLE}).json()
    assert answer["answerable"]
    percent = int(answer["confidence"] * 100 + 0.5)  # JavaScript's Math.round, not Python's round-half-even
    expect(page.locator("#status")).to_contain_text(f"confidence {percent}%")


def test_the_page_names_the_index_it_searches_and_its_size(page, base_url, api):
    health = api.get("/health").json()
    page.goto(base_url)
    expect(page.locator("#index-line")).to_have_text(f"Searching embeddings: {health['documents']} documents.")
    expect(page).to_have_title("qa: embeddings")
    placeholder = page.locator("#question").get_attribute("placeholder")
    assert f"{health['documents']} documents" in placeholder and "Guizhou" not in placeholder


@pytest.fixture(scope="module")
def manual_url(tmp_path_factory, encoder):
    """A service over an HTML manual with headings and a two-page PDF: citations with sections and pages."""
    from test_formats import minimal_pdf

    from qa.index.indexer import build_index
    from qa.search.service import SearchService

    corpus = tmp_path_factory.mktemp("manual-corpus")
    (corpus / "guide.html").write_text(
        "<html><head><title>Harbour guide</title></head><body><nav><a href='/'>Home</a></nav><main>"
        "<h1>Harbour guide</h1><h2 id='lights'>Lights</h2><p>The harbour lights are switched on at dusk.</p>"
        "<h2 id='tides'>Tides</h2><p>Low water at the harbour wall comes twice a day.</p></main></body></html>",
        encoding="utf-8",
    )
    (corpus / "report.pdf").write_bytes(
        minimal_pdf(
            [
                ["Annual report", "The lighthouse keeper writes the annual report each winter."],
                ["Moorings", "Boats moor along the north quay, where the water is deepest at low tide."],
            ]
        )
    )
    index_dir = tmp_path_factory.mktemp("manual-index") / "manual"
    defaults = Settings()
    build_index(
        corpus,
        index_dir,
        encoder,
        chunk_size=defaults.chunk_size,
        chunk_overlap=defaults.chunk_overlap,
        embed_title=defaults.embed_title,
    )
    service = SearchService.open(Settings(index_dir=index_dir), encoder=encoder)
    with serving(create_app(Settings(index_dir=index_dir), service=service)) as url:
        yield url


def test_citations_show_the_section_and_the_pdf_page(page, manual_url):
    page.goto(f"{manual_url}/?q=when+are+the+harbour+lights+switched+on&k=1")
    meta = page.locator("#results > li .cite-meta").first
    expect(meta.locator(".cite-section")).to_have_text("Harbour guide \u203a Lights")
    expect(meta.locator(".cite-source")).to_have_text("guide.html#lights")
    page.goto(f"{manual_url}/?q=where+do+boats+moor&k=1")
    meta = page.locator("#results > li .cite-meta").first
    expect(meta.locator(".cite-page")).to_have_text("pages 1\u20132")  # the short report is one passage


def test_check_a_quote_marks_each_sentence_and_opens_its_source_highlighted(page, base_url, api, shots):
    found = "They went to Anshun, Guiyang and other places in Guizhou for research."
    made_up = "The delegation later visited a chocolate factory in Belgium."
    close = "They went to Anshun, Guiyang and other places in Guizhou for inspection."
    page.goto(base_url)
    page.locator("#check-box summary").click()
    page.locator("#quote").fill(f"{found} {made_up}\n{close}")
    page.locator("#check-button").click()
    expect(page.locator("#status")).to_have_text("Checked 3 pieces: 1 found, 1 close, 1 not found.")
    expect(page.locator("#results")).not_to_have_attribute("aria-busy", "true")

    expected = api.post("/verify", json={"text": f"{found} {made_up}\n{close}"}).json()
    pieces = page.locator("#results > li")
    expect(pieces).to_have_count(3)
    assert pieces.locator(".verdict").all_text_contents() == ["Found", "Not found", "Close"]
    assert [p["verdict"] for p in expected["pieces"]] == ["exact", "not_found", "approximate"]
    assert pieces.locator("q").all_text_contents() == [found, made_up, close]
    expect(pieces.nth(1).locator(".cite-open")).to_have_count(0)
    expect(pieces.nth(2).locator(".differences del")).to_have_text("inspection")
    expect(pieces.nth(2).locator(".differences ins")).to_have_text("research")
    page.screenshot(path=shots / "check-a-quote.png", full_page=True)

    match = expected["pieces"][0]["matches"][0]
    document = api.get(f"/documents/{match['citation']['source']}").json()
    pieces.first.locator(".cite-open").click()
    assert_document_open_at(page, match, document)
    assert page.locator("#doc-text mark.passage").text_content() == found
    assert_png(shots / "check-a-quote.png")
