"""Shards on a real local Ray cluster: one Ray Serve deployment per shard plus the router answer every question
over HTTP exactly as the unsharded index does, with filters; a shard whose replica dies makes the router answer
503 naming it, never a silently incomplete answer."""

from __future__ import annotations

import shutil
import time

import httpx
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]' to run the distributed tests")

from conftest import SEEDS, free_port
from test_shards import BUILD, QUESTIONS, same_answers

from qa.config import Settings
from qa.distributed.shard_serving import sharded_deployment
from qa.distributed.shards import build_shards
from qa.search.filters import SearchFilter

# Slow tier (see conftest.py): starts a local Ray cluster.
pytestmark = pytest.mark.slow

FILTERS = {"no-filter": {}, "source": {"source": "00[0-2]*"}, "after": {"after": "2024-07"}}
# Every question unfiltered, and the first ones with each filter: tests/test_shards.py asks every question with
# every filter of the same code in one process; here the point is the calls through Ray Serve.
FILTERED_QUESTIONS = 12
# Each application's router and two shards take one of the cluster's two CPUs.
SMALL = {"router_cpus": 0.5, "shard_cpus": 0.25}


@pytest.fixture(scope="module")
def cluster():
    """One small local Ray cluster with Serve's proxy on a free port, for the whole module; yields the port."""
    from ray import serve

    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    port = free_port()
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        yield port
    finally:
        serve.shutdown()
        ray.shutdown()


def _deploy(index_dir, port, name, timeout=30.0):
    """The sharded index at ``index_dir`` as Serve application ``name`` at ``/name``; returns its base URL."""
    from ray import serve

    settings = Settings(index_dir=index_dir, reload_interval=0)
    serve.run(sharded_deployment(settings, app_name=name, timeout=timeout, **SMALL), name=name, route_prefix=f"/{name}")
    return f"http://127.0.0.1:{port}/{name}"


@pytest.fixture(scope="module")
def sharded_seeds(tmp_path_factory, encoder):
    """The seeds built as 2 shards."""
    index_dir = tmp_path_factory.mktemp("ray-shards") / "index"
    build_shards(SEEDS, index_dir, encoder, shards=2, **BUILD)
    return index_dir


@pytest.fixture(scope="module")
def router(cluster, sharded_seeds):
    """The 2 seed shards and their router deployed on the cluster; yields the router's base URL."""
    from ray import serve

    url = _deploy(sharded_seeds, cluster, "shards")
    try:
        yield url
    finally:
        serve.delete("shards")


@pytest.mark.parametrize("name", FILTERS)
def test_shard_deployments_behind_a_router_answer_every_question_as_the_unsharded_index(router, service, name):
    search_filter = SearchFilter.of(**FILTERS[name])
    different = []
    with httpx.Client(timeout=60) as client:
        for mode in ("hybrid", "dense", "keyword"):
            for question in QUESTIONS if not FILTERS[name] else QUESTIONS[:FILTERED_QUESTIONS]:
                got = client.post(
                    f"{router}/search", json={"question": question, "top_k": 10, "mode": mode, **FILTERS[name]}
                )
                assert got.status_code == 200, got.text
                expected = service.search(question, 10, mode=mode, search_filter=search_filter).as_dict()
                if not same_answers(expected, got.json()):
                    different.append((mode, question))
    assert not different


def test_the_router_serves_health_and_documents_from_the_shards(router, service):
    with httpx.Client(timeout=60) as client:
        health = client.get(f"{router}/health").json()
        assert health["status"] == "ok" and health["chunks"] == service.manifest.counts["chunks"]
        for doc_id, _, _ in service.store.documents():
            assert client.get(f"{router}/documents/{doc_id}").json()["text"] == service.document(doc_id).text


def test_a_shard_whose_replica_dies_makes_the_router_answer_503_naming_it(cluster, sharded_seeds, tmp_path):
    from ray import serve

    index_dir = tmp_path / "index"
    shutil.copytree(sharded_seeds, index_dir)
    url = _deploy(index_dir, cluster, "doomed", timeout=5.0)
    try:
        with httpx.Client(timeout=60) as client:
            assert client.post(f"{url}/search", json={"question": "railway procuratorates"}).status_code == 200
            # The replica dies and cannot come back: Serve's replacement finds no index to open.
            shutil.rmtree(index_dir / "shard-1")
            replica = next(
                actor
                for actor in ray.util.list_named_actors(all_namespaces=True)
                if actor["name"].startswith("SERVE_REPLICA::doomed#shard-1#")
            )
            ray.kill(ray.get_actor(replica["name"], namespace=replica["namespace"]), no_restart=True)
            started = time.monotonic()
            answer = client.post(f"{url}/search", json={"question": "railway procuratorates"})
            waited = time.monotonic() - started
    finally:
        serve.delete("doomed")
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"] == "shard_unavailable" and "shard shard-1" in answer.json()["message"]
    assert waited < 30
