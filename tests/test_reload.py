"""Live reload: a running server picks up a rebuilt index with no failed or torn request."""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time

import httpx
import pytest
from conftest import ROOT, SEEDS, serving

from qa.api.app import create_app
from qa.config import Settings
from qa.errors import IndexNotFound
from qa.index.indexer import build_index
from qa.search.reload import LiveService

sys.path.insert(0, str(ROOT / "benchmarks"))
from soak import answering_corpus  # noqa: E402  (the soak benchmark checks responses by the same rule)

QUESTIONS = [
    "railway procuratorates",
    "green tea steeping",
    "Who led the research group?",
    "public interest litigation",
]


@pytest.fixture()
def other_corpus(tmp_path):
    root = tmp_path / "other"
    root.mkdir()
    (root / "tea.md").write_text(
        "# Tea notes\n\nGreen tea steeps for two minutes in water below boiling. Black tea takes four minutes.\n",
        encoding="utf-8",
    )
    (root / "trains.md").write_text(
        "# Rail notes\n\nThe railway timetable changes in May. Night trains need a reservation.\n", encoding="utf-8"
    )
    return root


def _texts(root):
    return {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8") for p in root.rglob("*") if p.is_file()}


def _build(corpus, index_dir, encoder):
    defaults = Settings()
    build_index(
        corpus,
        index_dir,
        encoder,
        chunk_size=defaults.chunk_size,
        chunk_overlap=defaults.chunk_overlap,
        embed_title=defaults.embed_title,
    )


def test_server_reloads_rebuilt_index_under_load_without_errors_or_torn_responses(index_copy, other_corpus, encoder):
    corpora = {"seeds": _texts(SEEDS), "other": _texts(other_corpus)}
    settings = Settings(index_dir=index_copy, reload_interval=0.2)
    app = create_app(settings)
    stop = threading.Event()
    problems: list[str] = []
    seen: set[str] = set()
    counts = {"requests": 0}
    lock = threading.Lock()

    def client(url: str, number: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stop.is_set():
                question = QUESTIONS[number % len(QUESTIONS)]
                response = http.post("/search", json={"question": question, "top_k": 3})
                with lock:
                    counts["requests"] += 1
                if response.status_code != 200:
                    problems.append(f"{response.status_code}: {response.text[:200]}")
                    continue
                # One response, one index: every passage from the same corpus, at its exact offsets there.
                owner, problem = answering_corpus(response.json()["results"], corpora)
                if problem:
                    problems.append(problem)
                    continue
                with lock:
                    seen.add(owner)

    def wait_for(name: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if seen_now(name):
                return
            time.sleep(0.05)
        raise AssertionError(f"server never answered from {name}")

    def seen_now(name: str) -> bool:
        with lock:
            return name in seen and app.state.live.current().manifest.corpus["root"].endswith(
                "other" if name == "other" else "seeds"
            )

    with serving(app) as url:
        workers = [threading.Thread(target=client, args=(url, i)) for i in range(6)]
        for worker in workers:
            worker.start()
        try:
            time.sleep(0.5)
            _build(other_corpus, index_copy, encoder)  # rebuilt and swapped under the running server
            wait_for("other")
            with lock:
                seen.clear()
            _build(SEEDS, index_copy, encoder)  # and back again
            wait_for("seeds")
            time.sleep(0.3)
        finally:
            stop.set()
            for worker in workers:
                worker.join(timeout=30)
    print(f"\nlive reload: {counts['requests']} requests across two rebuilds, {len(problems)} problems")
    assert problems == []
    assert app.state.live.reloads == 2
    assert counts["requests"] > 20


def test_index_appearing_after_start_is_picked_up(tmp_path, encoder):
    index_dir = tmp_path / "later"
    live = LiveService(Settings(index_dir=index_dir))
    assert live.current() is None and "no index" in live.last_error
    with pytest.raises(IndexNotFound, match="no index"):
        live.loaded()
    _build(SEEDS, index_dir, encoder)
    assert live.check() is True
    assert live.loaded() is live.current()
    assert live.current().search("railway", 1).results


def test_broken_replacement_keeps_the_old_index_serving(index_copy, encoder):
    live = LiveService(Settings(index_dir=index_copy))
    before = live.current()
    staged = index_copy.parent / "staged"
    shutil.copytree(index_copy, staged)
    (staged / "vectors.f32").write_bytes(b"garbage")
    shutil.rmtree(index_copy)
    staged.rename(index_copy)
    assert live.check() is False
    assert live.current() is before and "checksum" in live.last_error
    assert live.current().search("railway", 1).results


def test_each_reload_is_logged_with_the_old_and_new_build_and_how_long_it_took(
    index_copy, other_corpus, encoder, caplog
):
    from qa.api.logs import JSONFormatter
    from qa.search.service import SearchService

    live = LiveService(Settings(index_dir=index_copy), SearchService.open(Settings(index_dir=index_copy), encoder))
    before = live.current().manifest
    _build(other_corpus, index_copy, encoder)
    with caplog.at_level("INFO", logger="qa.reload"):
        assert live.check() is True
    record = next(r for r in caplog.records if r.name == "qa.reload")
    line = json.loads(JSONFormatter().format(record))
    assert line["message"] == "index reloaded" and line["seconds"] >= 0
    assert line["old"] == {
        "created": before.created,
        "documents": before.counts["documents"],
        "chunks": before.counts["chunks"],
    }
    assert line["new"]["documents"] == 2 and line["new"]["created"] == live.current().manifest.created
