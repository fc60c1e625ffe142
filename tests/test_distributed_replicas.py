"""Replicas: any number of `qa serve` processes over one index directory, or over copies of it, answer every
question, filter and document request identically, so they can stand behind any load balancer."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys

import httpx
import pytest
from conftest import SEEDS, free_port, wait_for_server

# Slow tier (see conftest.py): starts `qa serve` processes.
pytestmark = pytest.mark.slow

QUESTIONS = [json.loads(line)["question"] for line in (SEEDS.parent / "tests/data/seeds_questions.jsonl").open()][:10]
QUESTIONS += ["railway procuratorates", "How long does green tea steep?"]
FILTERS = [{}, {"source": "00[0-2]*"}, {"after": "2024-07"}, {"before": "2024-06-30"}]


@contextlib.contextmanager
def _servers(index_dirs):
    """One `qa serve --no-build` process per directory (started together); yields their base URLs."""
    processes, urls = [], []
    try:
        for index_dir in index_dirs:
            port = free_port()
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "qa",
                        "serve",
                        "--index",
                        str(index_dir),
                        "--no-build",
                        "--port",
                        str(port),
                        "--log-level",
                        "warning",
                    ],
                    env={**os.environ, "HF_HUB_OFFLINE": "1", "QA_RELOAD_INTERVAL": "0"},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url, process in zip(urls, processes, strict=True):
            wait_for_server(url, process)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def _without_timing(answer: dict) -> dict:
    return {key: value for key, value in answer.items() if key != "took_ms"}


@pytest.fixture(scope="module")
def replicas(seeds_index, tmp_path_factory):
    """Three servers: two over one copied index directory, a third over a copy of that copy elsewhere."""
    root = tmp_path_factory.mktemp("replicas")
    shared = root / "copied-index"
    shutil.copytree(seeds_index, shared)
    elsewhere = root / "elsewhere" / "index"
    shutil.copytree(shared, elsewhere)
    with _servers([shared, shared, elsewhere]) as urls:
        yield urls


@pytest.mark.parametrize("search_filter", FILTERS, ids=["no-filter", "source", "after", "before"])
def test_every_replica_answers_every_question_identically(replicas, search_filter):
    with httpx.Client(timeout=60) as client:
        for question in QUESTIONS:
            for mode in ("hybrid", "dense", "keyword"):
                body = {"question": question, "top_k": 5, "mode": mode, **search_filter}
                answers = []
                for url in replicas:
                    response = client.post(f"{url}/search", json=body)
                    assert response.status_code == 200, response.text
                    answers.append(_without_timing(response.json()))
                assert answers[0]["results"], (question, mode, search_filter)
                assert answers[1] == answers[0] and answers[2] == answers[0], (question, mode, search_filter)


def test_every_replica_serves_the_same_document_text_and_quote_checks(replicas):
    with httpx.Client(timeout=60) as client:
        sources = [
            r["citation"]["source"]
            for r in client.post(f"{replicas[0]}/search", json={"question": "procuratorate", "top_k": 5}).json()[
                "results"
            ]
        ]
        for source in sorted(set(sources)):
            documents = [client.get(f"{url}/documents/{source}").json() for url in replicas]
            assert documents[0]["text"] and documents[1] == documents[0] == documents[2]
        quote = {"text": "They went to Anshun, Guiyang and other places in Guizhou for research."}
        checks = [_without_timing(client.post(f"{url}/verify", json=quote).json()) for url in replicas]
        assert checks[1] == checks[0] == checks[2]


@pytest.mark.parametrize(
    "args, message",
    [
        (["index", SEEDS, "--ray-workers", "2"], "--ray-workers sets the embedding actors of a build on Ray"),
        (["serve", "--no-build", "--replicas", "2"], "--replicas sets the Ray Serve replicas"),
        (["serve", "--no-build", "--ray", "local", "--workers", "2"], "--workers and --ray exclude each other"),
    ],
    ids=["index-workers-without-ray", "serve-replicas-without-ray", "serve-workers-with-ray"],
)
def test_ray_options_without_their_partner_are_usage_errors(args, message, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "qa", *map(str, args), "--index", str(tmp_path / "index")],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "index").exists()
