"""Distributed indexing on a real local Ray cluster: files are read and chunked, and passages embedded, by Ray
actors; the index equals a local build's, updates send only what is new, and a build cut short resumes from the
embeddings it had finished."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]' to run the distributed tests")

from conftest import SEEDS
from test_cli import run_qa
from test_formats import BROKEN, HTML, make_docx, minimal_pdf
from test_segments import edit_seeds

from qa.config import Settings
from qa.distributed.ray_indexing import EmbeddingCache, RayEmbedder, build_on_cluster, cache_dir_for
from qa.index.indexer import build_index
from qa.index.manifest import DATABASE_FILE, Manifest, segment_files
from qa.index.segments import segments_of
from qa.index.store import keyword_rows
from qa.search.service import SearchService

# Slow tier (see conftest.py): starts a local Ray cluster.
pytestmark = pytest.mark.slow

DEFAULTS = Settings()
BUILD = {
    "chunk_size": DEFAULTS.chunk_size,
    "chunk_overlap": DEFAULTS.chunk_overlap,
    "embed_title": DEFAULTS.embed_title,
}
QUESTIONS = [json.loads(line)["question"] for line in (SEEDS.parent / "tests/data/seeds_questions.jsonl").open()][:12]
QUESTIONS += ["lighthouse keepers and their foghorns", "railway procuratorates"]


@pytest.fixture(scope="module", autouse=True)
def cluster():
    """One small local Ray cluster for the whole module (2 CPUs, no dashboard)."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    try:
        yield
    finally:
        ray.shutdown()


def _on_ray(corpus, index_dir, encoder, **options):
    return build_on_cluster(corpus, index_dir, encoder, address="local", model="all-MiniLM-L6-v2", **BUILD, **options)


def _rows(index_dir):
    """Every segment's documents and chunks (ids, spans, embed-input keys) and keyword rows."""
    manifest = Manifest.read(index_dir)
    rows = []
    for segment in segments_of(manifest):
        path = index_dir / (DATABASE_FILE if segment.dir == "." else f"{segment.dir}/{DATABASE_FILE}")
        db = sqlite3.connect(path)
        try:
            rows.append(
                db.execute(
                    'SELECT c.id, d.doc_id, c.ord, c.start, c."end", c.text_hash FROM chunks c'
                    " JOIN documents d ON d.id = c.document_id ORDER BY c.id"
                ).fetchall()
            )
            rows.append(list(keyword_rows(db)))
        finally:
            db.close()
    return rows


def _index_files(index_dir):
    """The bytes of every vector, sentence, codes and postings file, by name (stores are compared by rows)."""
    manifest = Manifest.read(index_dir)
    return {
        name: (index_dir / name).read_bytes()
        for segment in segments_of(manifest)
        for name in segment_files(segment.dir, segment.kind)
        if not name.endswith(DATABASE_FILE)
    }


def _answers(index_dir, encoder):
    service = SearchService.open(Settings(index_dir=index_dir), encoder=encoder)
    try:
        return {
            (question, mode): [
                (h.citation.source, h.citation.start, h.citation.end, h.score)
                for h in service.search(question, top_k=10, mode=mode).results
            ]
            for question in QUESTIONS
            for mode in ("hybrid", "dense", "keyword")
        }
    finally:
        service.close()


def _assert_same_index(ours, theirs, encoder):
    assert _rows(ours) == _rows(theirs)
    mine, local = _index_files(ours), _index_files(theirs)
    assert mine.keys() == local.keys()
    for name in mine:
        assert mine[name] == local[name], f"{name} differs from the local build's"
    assert _answers(ours, encoder) == _answers(theirs, encoder)


@pytest.fixture(scope="module")
def distributed(seeds_index, encoder, tmp_path_factory):
    """The seeds indexed on Ray in batches of 32 passages (so both actors work), beside the local seeds index."""
    index_dir = tmp_path_factory.mktemp("ray") / "index"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("qa.index.indexer.EMBED_BATCH", 32)
        report, stats = _on_ray(SEEDS, index_dir, encoder, workers=2)
    return {"index": index_dir, "report": report, "stats": stats}


def test_a_distributed_build_writes_the_very_index_a_local_build_writes(distributed, seeds_index, encoder):
    _assert_same_index(distributed["index"], seeds_index, encoder)


def test_a_distributed_build_sends_every_passage_to_the_cluster_in_the_builds_batches(distributed):
    stats, report = distributed["stats"], distributed["report"]
    assert stats.passages_sent == report.passages_embedded == report.chunks == 107
    assert stats.batches_sent == 4  # 107 passages in batches of 32
    assert stats.workers == 2 and stats.passages_cached == 0


def test_a_distributed_build_reads_and_chunks_every_document_in_ray_actors_not_the_driver(distributed):
    stats, report = distributed["stats"], distributed["report"]
    assert stats.documents_sent == report.documents == report.added == 5
    assert stats.documents_chunked_here == 0
    assert stats.chunk_workers == 2
    # Marks the actors leave on their rows: processes of the cluster's workers, never this one.
    assert stats.chunk_processes and os.getpid() not in stats.chunk_processes


def test_the_embedding_cache_is_removed_once_the_index_is_swapped_in(distributed):
    assert not cache_dir_for(distributed["index"]).exists()


def test_a_distributed_update_sends_only_new_passages_and_equals_a_local_update(seeds_index, encoder, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    edit_seeds(corpus)
    local, remote = tmp_path / "local", tmp_path / "remote"
    shutil.copytree(seeds_index, local)
    shutil.copytree(seeds_index, remote)
    expected = build_index(corpus, local, encoder, **BUILD)
    report, stats = _on_ray(corpus, remote, encoder)
    assert report.update and report.segments == expected.segments == 2
    assert 0 < stats.passages_sent == report.passages_embedded == expected.passages_embedded < report.chunks
    # A copied corpus has new inodes, so every file is read again (as locally); the unchanged ones are not chunked.
    assert stats.documents_sent == 6 and report.added == report.changed == 1
    _assert_same_index(remote, local, encoder)

    (corpus / "lighthouse.txt").write_text("Foghorns sound every foggy night at the harbour.\n", encoding="utf-8")
    expected = build_index(corpus, local, encoder, **BUILD)
    report, stats = _on_ray(corpus, remote, encoder)
    assert report.changed == expected.changed == 1 and report.files_reused == 5
    assert stats.documents_sent == 1 and stats.documents_chunked_here == 0  # only the changed file went
    _assert_same_index(remote, local, encoder)


def test_a_distributed_build_of_every_format_with_copies_and_broken_files_equals_a_local_build(encoder, tmp_path):
    corpus = tmp_path / "corpus"
    (corpus / "broken").mkdir(parents=True)
    (corpus / "page.html").write_text(HTML, encoding="utf-8")
    (corpus / "page-copy.html").write_text(HTML, encoding="utf-8")
    (corpus / "report.pdf").write_bytes(minimal_pdf([["The river authority met in March."]], title="River report"))
    (corpus / "survey.docx").write_bytes(make_docx())
    (corpus / "notes.md").write_text("# Beekeeping\n\nThe hives were moved to the heather.\n", encoding="utf-8")
    (corpus / "empty.txt").write_text("  \n", encoding="utf-8")
    for name, (make, _) in BROKEN.items():
        broken = make()
        (corpus / "broken" / name).write_bytes(broken)
        (corpus / "broken" / f"copy-{name}").write_bytes(broken)  # a copy of a refused file is refused too
    titled = {**BUILD, "embed_title": True}  # passages embedded after their document's title line
    expected = build_index(corpus, tmp_path / "local", encoder, **titled)
    report, stats = build_on_cluster(
        corpus, tmp_path / "remote", encoder, address="local", model="all-MiniLM-L6-v2", workers=2, **titled
    )
    assert stats.documents_sent == 4 + len(BROKEN) and stats.documents_chunked_here == 0
    assert report.documents == expected.documents == 4 and report.duplicates == expected.duplicates == 1
    assert report.skipped == expected.skipped and len(report.skipped) == 1 + 2 * len(BROKEN)
    _assert_same_index(tmp_path / "remote", tmp_path / "local", encoder)


class Interrupted(Exception):
    """Stands for the build being stopped part-way (Ctrl-C, a lost driver)."""


def test_a_build_cut_short_resumes_from_the_batches_it_had_finished(seeds_index, encoder, tmp_path, monkeypatch):
    monkeypatch.setattr("qa.index.indexer.EMBED_BATCH", 16)  # 107 passages: 7 batches
    index_dir = tmp_path / "index"
    identity = {
        "model": encoder.model_id,
        "backend": encoder.backend,
        "precision": encoder.precision,
        "dimension": encoder.dimension,
    }
    cache = EmbeddingCache(cache_dir_for(index_dir), identity)
    embedder = RayEmbedder(
        model="all-MiniLM-L6-v2",
        backend=encoder.backend,
        precision=encoder.precision,
        dimension=encoder.dimension,
        cache=cache,
        workers=1,
    )

    def stopped_after_three(batches):
        for number, batch in enumerate(embedder(batches)):
            if number == 3:
                raise Interrupted
            yield batch

    with pytest.raises(Interrupted):
        build_index(SEEDS, index_dir, encoder, embed_batches=stopped_after_three, **BUILD)
    assert not index_dir.exists()
    finished = sorted(cache.directory.glob("*.npz"))
    assert len(finished) >= 4  # the fourth was kept before it was handed over
    # A batch file cut short by a crash, and a stray temporary one: both are dropped, not trusted.
    (cache.directory / "tmp123.partial").write_bytes(b"half a batch")
    torn = finished[-1].read_bytes()
    finished[-1].write_bytes(torn[: len(torn) // 2])
    kept = sum(len(np.load(path)["hashes"]) for path in finished[:-1])

    report, stats = _on_ray(SEEDS, index_dir, encoder, workers=1)
    assert stats.passages_cached == kept >= 48
    assert stats.passages_sent == 107 - kept
    assert report.passages_embedded == 107
    _assert_same_index(index_dir, seeds_index, encoder)
    assert not cache.root.exists()


def test_qa_index_with_ray_joins_a_running_cluster_and_reports_what_it_sent(tmp_path):
    index_dir = tmp_path / "index"
    address = ray.get_runtime_context().gcs_address
    result = run_qa(
        "index",
        SEEDS,
        "--index",
        index_dir,
        "--ray",
        "auto",
        "--precision",
        "fp32",
        "--json",
        env={"RAY_ADDRESS": address},
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ray"]["passages_sent"] == report["passages_embedded"] == report["chunks"] == 107
    assert report["ray"]["passages_cached"] == 0


def test_qa_index_shards_on_ray_embeds_every_shard_on_the_cluster_and_writes_the_local_shards(tmp_path):
    address = ray.get_runtime_context().gcs_address
    common = ("index", SEEDS, "--shards", "2", "--precision", "fp32", "--json")
    on_ray = run_qa(*common, "--index", tmp_path / "ray", "--ray", "auto", env={"RAY_ADDRESS": address})
    assert on_ray.returncode == 0, on_ray.stderr
    here = run_qa(*common, "--index", tmp_path / "here")
    assert here.returncode == 0, here.stderr
    reports = [json.loads(line) for line in on_ray.stdout.splitlines()]
    assert [report["shard"] for report in reports] == [0, 1]
    assert sum(report["passages_embedded"] for report in reports) == 107
    assert [report["ray"]["passages_sent"] for report in reports] == [r["passages_embedded"] for r in reports]
    for shard in ("shard-0", "shard-1"):
        assert _rows(tmp_path / "ray" / shard) == _rows(tmp_path / "here" / shard)
        assert _index_files(tmp_path / "ray" / shard) == _index_files(tmp_path / "here" / shard)
    assert not list(tmp_path.glob(".*.embed-cache"))


def test_qa_index_with_an_address_ray_does_not_take_is_one_error_line(tmp_path):
    result = run_qa("index", SEEDS, "--index", tmp_path / "index", env={"QA_RAY": "somewhere:6379"})
    assert result.returncode == 1
    assert result.stderr.strip() == "error: a Ray address is local, auto or ray://host:port, got 'somewhere:6379'"
    assert not (tmp_path / "index").exists()


def test_qa_index_with_ray_says_how_to_install_it_when_ray_is_missing(tmp_path):
    code = (
        "import sys; sys.modules['ray'] = None; from qa.cli.main import main; "
        f"main(['index', {str(SEEDS)!r}, '--index', {str(tmp_path / 'index')!r}, '--ray', 'local'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 1
    assert "error: --ray needs Ray, which is not installed: pip install 'qa[ray]'" in result.stderr
    assert not (tmp_path / "index").exists()


def test_a_ray_serve_deployment_of_two_replicas_answers_as_qa_serve_does(seeds_index, service):
    from conftest import free_port
    from ray import serve

    from qa.distributed.replicas import APP_NAME, deployment

    port = free_port()
    settings = Settings(index_dir=seeds_index, port=port, reload_interval=0)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        serve.run(deployment(settings, 2, cpus_per_replica=0.5), name=APP_NAME, route_prefix="/")
        assert serve.status().applications[APP_NAME].deployments[APP_NAME].replica_states.get("RUNNING") == 2
        with httpx.Client(timeout=60) as client:
            assert client.get(f"http://127.0.0.1:{port}/health").json()["status"] == "ok"
            for question in QUESTIONS[:6]:
                answer = client.post(f"http://127.0.0.1:{port}/search", json={"question": question, "top_k": 5})
                assert answer.status_code == 200, answer.text
                expected = service.search(question, 5).as_dict()
                got = answer.json()
                assert [r["citation"] for r in got["results"]] == [r["citation"] for r in expected["results"]]
                assert [r["score"] for r in got["results"]] == [r["score"] for r in expected["results"]]
    finally:
        serve.shutdown()


def test_qa_index_killed_mid_build_is_rerun_and_reuses_every_batch_it_had_finished(encoder, tmp_path):
    index_dir = tmp_path / "index"
    # Short passages (about 800 of them, 4 batches) embedded one batch at a time, so the build is still embedding
    # when its first batch reaches the cache.
    args = [
        "index",
        SEEDS,
        "--index",
        index_dir,
        "--ray",
        "auto",
        "--ray-workers",
        "1",
        "--chunk-size",
        "16",
        "--overlap",
        "0",
        "--precision",
        "fp32",
        "--json",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    process = subprocess.Popen(
        [sys.executable, "-m", "qa", *map(str, args)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    cache = cache_dir_for(index_dir)
    deadline = time.monotonic() + 240
    while not list(cache.glob("*/*.npz")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.kill()
    assert process.wait(timeout=30) == -signal.SIGKILL, "the build ended before its first batch was cached"
    assert not index_dir.exists()
    finished = sum(len(np.load(path)["hashes"]) for path in cache.glob("*/*.npz"))
    assert finished >= 256

    result = run_qa(*args, env={"RAY_ADDRESS": env["RAY_ADDRESS"]})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ray"]["passages_cached"] >= finished
    assert report["ray"]["passages_sent"] == report["chunks"] - report["ray"]["passages_cached"] > 0
    assert not cache.exists()
    # The vectors taken from the cache are the ones a fresh embedding gives (a build equal to a local one, byte for
    # byte, after a resume: test_a_build_cut_short_resumes_from_the_batches_it_had_finished); here, the index opens
    # and answers.
    service = SearchService.open(Settings(index_dir=index_dir), encoder=encoder)
    try:
        assert service.search("railway procuratorates", top_k=3).results
    finally:
        service.close()
