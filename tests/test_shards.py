"""Shards: a corpus indexed as N indexes of disjoint documents answers every question exactly as one index of the
whole corpus does (passages, order, scores, citations, highlights, answerable, filters, documents), through the
HTTP app too; a rebuilt shard is reloaded; a failed shard fails the question, naming it. The shards here are
served in this process; tests/test_distributed_shards.py serves them as Ray Serve deployments."""

from __future__ import annotations

import json
import shutil
from itertools import groupby
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
from conftest import SEEDS, serving
from test_cli import run_qa
from test_segments import edit_seeds

from qa.config import Settings
from qa.distributed.shard_router import ShardedVectors, ShardMap, open_sharded
from qa.distributed.shards import SHARDS_FILE, ShardServer, build_shards, partition, read_layout, shard_of
from qa.errors import ConfigError, CorpusError, ShardChanged, ShardUnavailable
from qa.index.indexer import build_index
from qa.ingest.corpus import CorpusScan, Document, Skipped
from qa.ingest.metadata import Metadata
from qa.search.filters import SearchFilter
from qa.search.service import SearchService

DEFAULTS = Settings()
BUILD = dict(chunk_size=DEFAULTS.chunk_size, chunk_overlap=DEFAULTS.chunk_overlap, embed_title=DEFAULTS.embed_title)
QUESTIONS = [json.loads(line)["question"] for line in (SEEDS.parent / "tests/data/seeds_questions.jsonl").open()]
QUESTIONS += [
    "railway procuratorates",
    "lighthouse keepers and their foghorns",
    "How long does green tea steep?",
    "检察院",
    "tea",
]
FILTERS = {
    "no-filter": None,
    "source": SearchFilter.of(source="00[0-2]*"),
    "after": SearchFilter.of(after="2024-07"),
    "before": SearchFilter.of(before="2024-06-30"),
}


def same_answers(expected: dict, got: dict) -> bool:
    """Whether two answers (``Answer.as_dict``) are the same but for timing, in the same order; results with
    exactly the same score may come in either order (FAISS does not order exact ties by id, so the unsharded
    index's own order of a tie is arbitrary)."""
    expected, got = dict(expected), dict(got)
    expected.pop("took_ms"), got.pop("took_ms")
    expected_results, got_results = expected.pop("results"), got.pop("results")
    if expected != got or len(expected_results) != len(got_results):
        return False
    for expected_hits, got_hits in zip(_ties(expected_results), _ties(got_results)):
        if sorted(map(json.dumps, expected_hits)) != sorted(map(json.dumps, got_hits)):
            return False
    return True


def _ties(results: list[dict]) -> list[list[dict]]:
    """Results in runs of equal score, without their rank (which numbers places, not passages)."""
    return [
        [{k: v for k, v in hit.items() if k != "rank"} for hit in run]
        for _, run in groupby(results, key=lambda hit: hit["score"])
    ]


@pytest.fixture(scope="module")
def sharded_seeds(tmp_path_factory, encoder):
    """The seeds built as 2 shards (treat as read-only)."""
    index_dir = tmp_path_factory.mktemp("sharded") / "index"
    build_shards(SEEDS, index_dir, encoder, shards=2, **BUILD)
    return index_dir


@pytest.fixture(scope="module")
def sharded(sharded_seeds, encoder):
    """The search service over the 2 seed shards, opened in this process."""
    return open_sharded(Settings(index_dir=sharded_seeds), encoder)


# Pure logic: the partition and the id map.


def test_shard_of_is_a_stable_hash_of_the_path():
    assert [shard_of("a/b.txt", 4) for _ in range(3)] == [shard_of("a/b.txt", 4)] * 3
    assert shard_of("a/b.txt", 1) == 0
    assert {shard_of(f"doc-{n}.txt", 3) for n in range(40)} == {0, 1, 2}


def _document(doc_id, *aliases):
    return Document(doc_id, "text", f"hash-{doc_id}", Metadata(None, None, None, None), aliases=aliases)


def test_partition_puts_each_document_with_its_aliases_in_the_shard_its_path_hashes_to():
    documents = [_document(f"d{n}.txt", f"copy/d{n}.txt") for n in range(20)]
    scan = CorpusScan(
        root=SEEDS,
        documents=documents,
        skipped=[Skipped("bad.bin", "unsupported")],
        stats={path: "stat" for d in documents for path in (d.doc_id, *d.aliases)},
    )
    parts = partition(scan, 3)
    assert sorted(d.doc_id for part in parts for d in part.documents) == sorted(d.doc_id for d in documents)
    for number, part in enumerate(parts):
        assert all(shard_of(d.doc_id, 3) == number for d in part.documents)
        assert set(part.stats) == {path for d in part.documents for path in (d.doc_id, *d.aliases)}
    assert [s.doc_id for part in parts for s in part.skipped] == ["bad.bin"]
    assert len({part.fingerprint for part in parts}) == 3
    assert [p.fingerprint for p in partition(scan, 3)] == [p.fingerprint for p in parts]


def test_partition_refuses_a_shard_without_documents():
    scan = CorpusScan(root=SEEDS, documents=[_document("only.txt")])
    with pytest.raises(CorpusError, match="shard . of 2 would hold no document .*use fewer shards"):
        partition(scan, 2)


def test_the_id_map_numbers_documents_in_corpus_order_whatever_each_shard_numbered_them():
    # Shard 0 was updated: its documents' own ids are not in corpus order. "a/z" comes before "a-b" in a walk.
    shard0 = [(1, "b.txt", 1, 3), (7, "a/z.txt", 10, 2)]
    shard1 = [(1, "a-b.txt", 1, 4), (2, "c.txt", 5, 1)]
    ids = ShardMap([shard0, shard1])
    # Corpus order: a/z.txt (global 1-2), a-b.txt (3-6), b.txt (7-9), c.txt (10).
    assert ids.to_global(0, [10, 11, 1, 2, 3]).tolist() == [1, 2, 7, 8, 9]
    assert ids.to_global(1, [1, 4, 5]).tolist() == [3, 6, 10]
    assert ids.rows_to_global(0, [7, 1]).tolist() == [1, 3]
    grouped = ids.to_local([10, 1, 9, 3])
    assert {s: (p.tolist(), local.tolist()) for s, (p, local) in grouped.items()} == {
        0: ([1, 2], [10, 3]),
        1: ([0, 3], [5, 1]),
    }
    rows = ids.rows_to_local([4, 2])
    assert {s: local.tolist() for s, (_, local) in rows.items()} == {1: [2, 1]}


def test_sharded_vectors_merge_by_score_and_break_ties_by_global_id():
    class FakeView:  # pure merge logic: two shards answering fixed lists
        map = ShardMap([[(1, "b.txt", 1, 3)], [(1, "a.txt", 1, 3)]])  # shard 1 holds global 1-3, shard 0 4-6
        kind, manifest = "exact", SimpleNamespace(dimension=2)

        def ask(self, requests):
            answers = {
                0: (np.array([[0.9, 0.5, 0.1]], np.float32), np.array([[2, 1, 3]])),
                1: (np.array([[0.5, 0.4]], np.float32), np.array([[3, -1]])),
            }
            return {shard: answers[shard] for shard in requests}

    view = FakeView()
    view.clients = [None, None]
    scores, ids = ShardedVectors(view).search(np.zeros((1, 2), np.float32), 3)
    assert ids.tolist() == [[5, 3, 4]] and scores.tolist()[0][:2] == pytest.approx([0.9, 0.5])


# The equality that matters, on the real model, FAISS, SQLite and postings.


@pytest.mark.parametrize("name", FILTERS)
def test_two_shards_answer_every_question_as_the_unsharded_index_does(service, sharded, name):
    search_filter = FILTERS[name]
    different = []
    for mode in ("hybrid", "dense", "keyword"):
        for question in QUESTIONS:
            expected = service.search(question, 10, mode=mode, search_filter=search_filter).as_dict()
            got = sharded.search(question, 10, mode=mode, search_filter=search_filter).as_dict()
            if not same_answers(expected, got):
                different.append((mode, question))
    assert not different


def test_section_leads_rank_through_the_shards_as_in_one_index(tmp_path, encoder):
    from test_section_lead import MANUAL, PROSE
    from test_section_lead import QUESTIONS as MANUAL_QUESTIONS

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for number in range(4):  # several headed documents, so both shards hold section leads
        (corpus / f"manual-{number}.md").write_text(MANUAL.replace("# ", f"# Part {number}: "), encoding="utf-8")
    (corpus / "notes.txt").write_text(PROSE, encoding="utf-8")
    build_index(corpus, tmp_path / "one", encoder, **BUILD)
    build_shards(corpus, tmp_path / "two", encoder, shards=2, **BUILD)
    one = SearchService.open(Settings(index_dir=tmp_path / "one"), encoder=encoder)
    two = open_sharded(Settings(index_dir=tmp_path / "two"), encoder)
    assert len({shard_of(f"manual-{number}.md", 2) for number in range(4)}) == 2
    everything = [chunk.id for chunk, _tokens in one.store.iter_chunks()]
    assert two.store.section_leads(everything) == one.store.section_leads(everything) != set()
    for question in MANUAL_QUESTIONS:
        assert same_answers(one.search(question, 10).as_dict(), two.search(question, 10).as_dict())


def test_the_sharded_service_serves_documents_and_counts_as_one_index(service, sharded):
    assert sharded.store.documents() == service.store.documents()
    for doc_id, _, _ in service.store.documents():
        assert sharded.document(doc_id) == service.document(doc_id)
    assert sharded.manifest.counts["chunks"] == service.manifest.counts["chunks"]
    assert len(sharded.dense.vectors) == len(service.dense.vectors)
    assert [s["name"] for s in sharded.info()["shards"]] == ["shard-0", "shard-1"]
    assert sum(s["chunks"] for s in sharded.info()["shards"]) == service.manifest.counts["chunks"]


def test_the_http_app_over_a_sharded_directory_answers_as_over_the_unsharded_index(sharded_seeds, service):
    from qa.api.app import create_app

    with serving(create_app(Settings(index_dir=sharded_seeds, reload_interval=0))) as url, httpx.Client() as client:
        health = client.get(f"{url}/health").json()
        assert health["status"] == "ok" and health["chunks"] == service.manifest.counts["chunks"]
        for question in QUESTIONS[:8]:
            got = client.post(f"{url}/search", json={"question": question, "top_k": 5, "source": "00[1-4]*"})
            expected = service.search(question, 5, search_filter=SearchFilter.of(source="00[1-4]*"))
            assert got.status_code == 200 and same_answers(expected.as_dict(), got.json())
        doc_id = service.store.documents()[0][0]
        assert client.get(f"{url}/documents/{doc_id}").json()["text"] == service.document(doc_id).text
        assert client.get(f"{url}/documents/nothing.txt").status_code == 404
        metrics = client.get(f"{url}/metrics").text
        assert f"qa_index_vectors {float(len(service.dense.vectors))}" in metrics


# Building, reloading and failing.


@pytest.mark.slow  # runs `qa index` in a subprocess
def test_qa_index_shards_builds_n_shards_and_refuses_another_count(tmp_path):
    index_dir = tmp_path / "index"
    result = run_qa("index", str(SEEDS), "--index", str(index_dir), "--shards", "2", "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["shard"] for line in lines] == [0, 1] and sum(line["documents"] for line in lines) == 5
    assert read_layout(index_dir).names == ("shard-0", "shard-1")
    again = run_qa("index", str(SEEDS), "--index", str(index_dir), "--shards", "3")
    assert again.returncode == 1 and "holds 2 shards, not 3: build into a new directory" in again.stderr
    with pytest.raises(ConfigError, match="holds an unsharded index"):
        build_shards(SEEDS, index_dir / "shard-0", None, shards=2, **BUILD)


def test_a_rebuilt_shard_is_reloaded_and_answers_as_an_unsharded_index_of_the_edited_corpus(tmp_path, encoder):
    from qa.api.app import create_app

    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    build_shards(corpus, tmp_path / "sharded", encoder, shards=2, **BUILD)
    app = create_app(Settings(index_dir=tmp_path / "sharded", reload_interval=0))
    live = app.state.live
    before = live.current().identity
    edit_seeds(corpus)
    reports = build_shards(corpus, tmp_path / "sharded", encoder, shards=2, **BUILD)
    assert any(report.rewritten for report in reports)
    assert live.check() and live.current().identity != before
    build_index(corpus, tmp_path / "one", encoder, **BUILD)
    one = SearchService.open(Settings(index_dir=tmp_path / "one"), encoder=encoder)
    for question in ["lighthouse keepers and their foghorns", *QUESTIONS[:6]]:
        for mode in ("hybrid", "keyword"):
            with live.lease() as sharded:
                got = sharded.search(question, 10, mode=mode).as_dict()
            assert same_answers(one.search(question, 10, mode=mode).as_dict(), got)


def test_a_shard_keeps_its_previous_build_for_questions_started_on_it(tmp_path, encoder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    # Small pages, named so that each shard gets some and the later pages all go to shard 0.
    names = [f"page-{n}.txt" for n in range(40)]
    first_zero = [name for name in names if shard_of(name, 2) == 0]
    for name in [*first_zero[:2], *[name for name in names if shard_of(name, 2) == 1][:2]]:
        (corpus / name).write_text(f"{name} is a page about harbour pilots.\n", encoding="utf-8")
    build_shards(corpus, tmp_path / "sharded", encoder, shards=2, **BUILD)
    server = ShardServer(tmp_path / "sharded" / "shard-0", "shard-0")
    first = server.generation()
    (corpus / first_zero[2]).write_text("A new page about lighthouses.\n", encoding="utf-8")
    build_shards(corpus, tmp_path / "sharded", encoder, shards=2, **BUILD)
    second = server.generation()
    assert second != first and server.call(first, "count_undated", (SearchFilter(),))[0] == "ok"
    (corpus / first_zero[3]).write_text("Another new page, about foghorns.\n", encoding="utf-8")
    build_shards(corpus, tmp_path / "sharded", encoder, shards=2, **BUILD)
    assert server.generation() not in (first, second)
    kind, name, message = server.call(first, "count_undated", (SearchFilter(),))
    assert (kind, name) == ("error", ShardChanged.__name__) and "shard-0 was rebuilt" in message


def test_a_failed_shard_fails_the_question_naming_it_instead_of_answering_without_it(sharded_seeds, encoder):
    from qa.api.app import create_app

    broken = open_sharded(Settings(index_dir=sharded_seeds), encoder)
    broken.view.clients[1].server.close()
    with pytest.raises(ShardUnavailable, match="shard shard-1 failed"):
        broken.search("railway procuratorates")
    with serving(create_app(Settings(index_dir=sharded_seeds, reload_interval=0), service=broken)) as url:
        answer = httpx.post(f"{url}/search", json={"question": "railway procuratorates"})
    assert answer.status_code == 503 and "shard shard-1" in answer.json()["message"]
    assert (sharded_seeds / SHARDS_FILE).is_file()


def test_qa_ask_over_a_sharded_index_answers_as_over_the_unsharded_one(sharded_seeds, service):
    question = "What did Ying Yong ask about how long it takes to process minor crime cases?"
    result = run_qa("ask", question, "--index", str(sharded_seeds), "--json", "--top-k", "5", "--after", "2024-01")
    assert result.returncode == 0, result.stderr
    expected = service.search(question, 5, search_filter=SearchFilter.of(after="2024-01")).as_dict()
    assert same_answers(expected, json.loads(result.stdout))


def test_quote_checks_through_the_shards_find_what_they_find_in_the_unsharded_index(service, sharded):
    from qa.search.verify import Verifier

    passage = service.search("railway procuratorates", 1).results[0]
    quotes = [passage.text[:160], "The moon is made of green cheese and owned by the railway.", "railway"]
    for quote in quotes:
        expected = Verifier(service).verify(quote, None).as_dict()
        got = Verifier(sharded).verify(quote, None).as_dict()
        assert {**got, "took_ms": None} == {**expected, "took_ms": None}
