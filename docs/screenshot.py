"""Save docs/web-page.png for README's tour: the web page over the seeds, a question asked, a citation opened.

    HF_HUB_OFFLINE=1 .venv/bin/python docs/screenshot.py

Needs the test extra (Playwright) and Debian's Chromium (apt-get install -y chromium). The index is built
from seeds/ into a temporary folder, so embeddings/ is left alone.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.api.app import create_app  # noqa: E402
from qa.config import Settings  # noqa: E402
from qa.embed.encoder import load_encoder  # noqa: E402
from qa.index.indexer import build_index  # noqa: E402
from qa.search.service import SearchService  # noqa: E402

QUESTION = "Which railway cases does the Guizhou procuratorate handle?"
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


def main(out: Path = ROOT / "docs" / "web-page.png") -> None:
    """Build the seeds index, serve it on a free port, and photograph the page in Chromium."""
    encoder = load_encoder()
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "embeddings"
        defaults = Settings()
        build_index(
            ROOT / "seeds",
            index_dir,
            encoder,
            chunk_size=defaults.chunk_size,
            chunk_overlap=defaults.chunk_overlap,
            embed_title=defaults.embed_title,
        )
        service = SearchService.open(Settings(index_dir=index_dir), encoder=encoder)
        config = uvicorn.Config(
            create_app(Settings(index_dir=index_dir), service=service), host="127.0.0.1", port=0, log_level="warning"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                page.goto(f"http://127.0.0.1:{port}/")
                page.locator("#question").fill(QUESTION)
                page.locator("#question").press("Enter")
                expect(page.locator("#results > li")).to_have_count(5, timeout=60_000)
                page.locator("#results > li").first.locator(".cite-open").click()
                expect(page.locator("#doc-text mark.passage")).to_be_in_viewport()
                page.evaluate("window.scrollTo(0, 0)")
                page.screenshot(path=out)
                browser.close()
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    print(f"saved {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
