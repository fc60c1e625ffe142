"""`qa serve --workers N`: N processes answer on one port with the settings the command resolved, a worker that
dies is replaced, and stopping the server stops them all."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import free_port, wait_for_server

from qa.api.server import protocol_factory
from qa.config import Settings
from qa.errors import ConfigError

# Slow tier (see conftest.py): starts `qa serve --workers` processes.
pytestmark = pytest.mark.slow

API_KEY = "k" * 24
QUESTION = "Which railway cases does the Guizhou procuratorate handle?"


def _children(pid: int) -> set[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def _wait_for(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_settings_pass_to_a_worker_through_the_environment_unchanged():
    settings = Settings(
        index_dir=Path("/srv/idx"),
        model="all-MiniLM-L6-v2",
        top_k=3,
        dense_weight=0.35,
        embed_title=False,
        cors_origins=("https://a.example", "https://b.example:8443"),
        api_key=API_KEY,
        workers=3,
        log_questions=True,
        reload_interval=0.5,
        html_content="all",
    )
    assert Settings.from_env(environ=settings.environment()) == settings
    assert Settings.from_env(environ=Settings().environment()) == Settings()


def test_the_connection_protocol_reaches_a_worker_with_its_deadlines():
    settings = Settings(header_timeout=3.5, body_timeout=7.0)
    factory = pickle.loads(pickle.dumps(protocol_factory(settings)))  # what a worker process receives
    assert factory.args == (3.5, 7.0)


@pytest.mark.parametrize("workers", ["0", "65", "two"])
def test_an_impossible_worker_count_is_refused(workers):
    with pytest.raises(ConfigError, match="QA_WORKERS"):
        Settings.from_env(environ={"QA_WORKERS": workers})


def test_workers_answer_with_the_resolved_settings_and_a_dead_one_is_replaced(seeds_index):
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qa",
            "serve",
            "--index",
            str(seeds_index),
            "--no-build",
            "--port",
            str(port),
            "--workers",
            "2",
            "--api-key",
            API_KEY,
        ],
        env={**os.environ, "HF_HUB_OFFLINE": "1", "QA_TOP_K": "2"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {API_KEY}"}
    try:
        wait_for_server(url, process)
        _wait_for(lambda: len(_children(process.pid)) >= 2)
        workers = _children(process.pid)
        assert httpx.get(f"{url}/search", params={"q": QUESTION}, timeout=30).status_code == 401
        bodies = []
        for _ in range(12):  # enough requests that both workers answer some
            response = httpx.get(f"{url}/search", params={"q": QUESTION}, headers=headers, timeout=30)
            assert response.status_code == 200
            body = response.json()
            body.pop("took_ms")
            bodies.append(body)
        assert len(bodies[0]["results"]) == 2  # QA_TOP_K reached the workers
        assert all(body == bodies[0] for body in bodies)
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        _wait_for(lambda: victim not in _children(process.pid) and len(_children(process.pid)) >= 2)

        def answers() -> bool:
            try:
                return (
                    httpx.get(f"{url}/search", params={"q": QUESTION}, headers=headers, timeout=30).status_code == 200
                )
            except httpx.HTTPError:
                return False

        _wait_for(lambda: all(answers() for _ in range(6)))
    finally:
        remaining = _children(process.pid)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    _wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in remaining), timeout=30)
