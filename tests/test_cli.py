"""The real `qa` command in real processes: output, exit codes, stdin mode, offline reuse, serve."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import httpx
import pytest
from conftest import SEEDS, free_port, wait_for_server

from qa.index.manifest import MANIFEST_FILE

# Slow tier (see conftest.py): the real `qa` command in subprocesses.
pytestmark = pytest.mark.slow


def run_qa(*args, input=None, env=None, cwd=None, timeout=300):
    """Run `python -m qa ...` offline and capture everything."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "qa", *map(str, args)],
        input=input,
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    shutil.copy(SEEDS / "004_e4f473833b61ecc8.txt", root / "meeting.txt")
    (root / "notes").mkdir()
    (root / "notes" / "guide.md").write_text(
        "# Boiling eggs\n\nDate: 2023-05-01\n\nA soft-boiled egg needs six minutes in boiling water. "
        "Cool it in cold water before peeling.\n",
        encoding="utf-8",
    )
    (root / "empty.txt").write_text("", encoding="utf-8")
    (root / "blob.md").write_bytes(b"\x00\x01\x02binary")
    return root


@pytest.fixture(scope="module")
def built(small_corpus, tmp_path_factory):
    index_dir = tmp_path_factory.mktemp("cli") / "idx"
    result = run_qa("index", small_corpus, "--index", index_dir)
    return index_dir, result


def test_index_reports_what_it_indexed_skipped_and_how_long(built):
    _, result = built
    assert result.returncode == 0, result.stderr
    assert "Indexed 2 documents" in result.stdout and "skipped 2 files" in result.stdout
    assert " s;" in result.stdout
    assert "warning: skipped empty.txt: empty" in result.stderr
    assert "warning: skipped blob.md: not a text file" in result.stderr
    assert "Traceback" not in result.stderr


def test_ask_prints_numbered_passages_with_citation_lines(built):
    index_dir, _ = built
    result = run_qa("ask", "How long should an egg boil for a soft yolk?", "--index", index_dir, "--top-k", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Q: How long should an egg boil")
    assert lines[1].startswith("1. [score ")
    assert "six minutes" in result.stdout
    # Not a terminal: the supporting sentence is marked with ** instead of bold.
    assert "**A soft-boiled egg needs six minutes in boiling water.**" in result.stdout
    citation = next(line for line in lines if line.strip().startswith("-- source: notes/guide.md"))
    assert "title: Boiling eggs" in citation and "date: 2023-05-01" in citation and "chars " in citation
    assert any(line.startswith("2. [score ") for line in lines)


def test_ask_json_is_the_http_shape_one_line_per_question(built):
    index_dir, _ = built
    result = run_qa(
        "ask", "--index", index_dir, "--json", "-k", "1", input="soft-boiled egg\n\nmeeting of the two high courts\n"
    )
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["question"] for a in answers] == ["soft-boiled egg", "meeting of the two high courts"]
    assert answers[0]["results"][0]["citation"]["source"] == "notes/guide.md"
    assert set(answers[1]) == {"question", "mode", "answerable", "confidence", "results", "took_ms", "excluded_undated"}


def test_ask_reads_stdin_and_reports_bad_lines_without_stopping(built):
    index_dir, _ = built
    result = run_qa("ask", "--index", index_dir, "-k", "1", input="egg\n" + "x" * 3000 + "\nsupreme court\n")
    assert result.returncode == 1
    assert result.stdout.count("Q: ") == 2
    assert "error: question is 3000 characters long" in result.stderr


def test_info_lists_documents_and_skipped_files(built):
    index_dir, _ = built
    result = run_qa("info", "--index", index_dir, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["model"] == "all-MiniLM-L6-v2" and info["counts"]["documents"] == 2
    assert info["encoder"] == {"backend": "onnx", "precision": "int8"} and info["vectors"] == {"kind": "exact"}
    assert [d["source"] for d in info["documents"]] == ["meeting.txt", "notes/guide.md"]
    assert {s["source"] for s in info["skipped"]} == {"empty.txt", "blob.md"}
    text = run_qa("info", "--index", index_dir)
    assert "notes/guide.md" in text.stdout and "skipped empty.txt: empty" in text.stdout
    assert "embedded with onnx int8; exact vector search" in text.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (("ask", "anything", "--index", "{missing}"), "error: no index at"),
        (("ask", "   ", "--index", "{index}"), "error: question is empty"),
        (("ask", "anything", "--index", "{index}", "--model", "paraphrase-MiniLM-L3-v2"), "was built with model"),
        (("index", "{missing}", "--index", "{missing}"), "error: corpus folder not found"),
        (("info", "--index", "{missing}"), "error: no index at"),
    ],
)
def test_expected_failures_print_one_line_and_exit_1(built, tmp_path, args, message):
    index_dir, _ = built
    args = [a.format(missing=tmp_path / "missing", index=index_dir) for a in args]
    result = run_qa(*args)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error:")
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args", [("ask", "--top-k", "many"), ("index", "--chunk-size", "3"), ("frobnicate",), ("serve", "--port", "0")]
)
def test_bad_usage_exits_2(args):
    result = run_qa(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_copied_index_answers_offline_without_re_embedding(built, tmp_path):
    index_dir, _ = built
    copy = tmp_path / "elsewhere" / "embeddings"
    shutil.copytree(index_dir, copy)
    before = {p.name: p.stat().st_mtime_ns for p in copy.iterdir()}
    # No corpus, a different working directory, hub access disabled: only the copied files can answer.
    result = run_qa(
        "ask",
        "soft boiled egg minutes",
        "--index",
        copy,
        "--json",
        cwd=tmp_path,
        env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["results"][0]["citation"]["source"] == "notes/guide.md"
    assert {p.name: p.stat().st_mtime_ns for p in copy.iterdir()} == before
    original = json.loads(run_qa("ask", "soft boiled egg minutes", "--index", index_dir, "--json").stdout)
    assert answer["results"] == original["results"]


def test_serve_builds_a_missing_index_then_answers_over_http(small_corpus, tmp_path):
    port = free_port()
    index_dir = tmp_path / "served"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qa",
            "serve",
            "--index",
            str(index_dir),
            "--corpus",
            str(small_corpus),
            "--port",
            str(port),
        ],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_server(url, process)
        assert (index_dir / MANIFEST_FILE).is_file()
        body = httpx.post(f"{url}/search", json={"question": "how long to boil an egg", "top_k": 1}, timeout=30).json()
        assert body["results"][0]["citation"]["source"] == "notes/guide.md"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serve_rebuilds_a_stale_index_and_keeps_a_fresh_one(small_corpus, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(small_corpus, corpus)
    index_dir = tmp_path / "idx"
    assert run_qa("index", corpus, "--index", index_dir).returncode == 0
    created = json.loads((index_dir / MANIFEST_FILE).read_text(encoding="utf-8"))["created"]
    from qa.embed.encoder import load_encoder
    from qa.index.indexer import BuildDefaults, ensure_index

    args = dict(
        corpus=None,
        default_corpus=None,
        model=None,
        chunk_size=None,
        chunk_overlap=None,
        defaults=BuildDefaults("all-MiniLM-L6-v2", 128, 24, False, "fp32"),
        load_model=lambda name, precision: load_encoder(name, precision=precision),
    )
    assert ensure_index(index_dir, **args) == (None, None)
    (corpus / "new.txt").write_text("A brand new document about tea.", encoding="utf-8")
    report, reason = ensure_index(index_dir, **args)
    assert "has changed" in reason and report.documents == 3
    manifest = json.loads((index_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    assert manifest["counts"]["documents"] == 3 and manifest["created"] >= created
