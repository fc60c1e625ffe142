"""Issue 16, items 6, 11 and 12: no traceback reaches a user, nothing is skipped silently, no half-written file is
indexed; the previous index survives every failure."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from qa.ingest.corpus import MAX_FOLDER_DEPTH, scan_corpus

ROOT = Path(__file__).resolve().parents[1]


def _skipped(scan) -> dict[str, str]:
    return {s.doc_id: s.reason for s in scan.skipped}


@pytest.fixture()
def corpus(tmp_path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "good.txt").write_text("Lighthouses.\nThe keeper trims the wick at midnight.", encoding="utf-8")
    return root


def _run_qa(*args: str, env: dict | None = None, preexec_fn=None) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess, as a user runs it."""
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "qa", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        preexec_fn=preexec_fn,
    )


def _assert_one_error_line(result: subprocess.CompletedProcess, *phrases: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


# Item 11: silent skips.


def test_hidden_files_and_folders_are_reported_as_hidden_and_not_indexed(corpus):
    (corpus / ".draft.md").write_text("# Draft\n\nNot for the index.", encoding="utf-8")
    (corpus / ".git").mkdir()
    (corpus / ".git" / "notes.txt").write_text("not a document", encoding="utf-8")
    (corpus / ".DS_Store").write_bytes(b"\x00\x01")  # not a document kind: not ours to report
    scan = scan_corpus(corpus)
    assert [d.doc_id for d in scan.documents] == ["good.txt"]
    assert _skipped(scan) == {".draft.md": "hidden", ".git/": "hidden"}


def test_a_symlinked_folder_is_reported_and_not_followed(corpus, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "far.txt").write_text("Far away text.", encoding="utf-8")
    os.symlink(outside, corpus / "linked")
    scan = scan_corpus(corpus)
    assert [d.doc_id for d in scan.documents] == ["good.txt"]
    assert _skipped(scan) == {"linked/": "symbolic link to a folder (not followed)"}


def test_the_fingerprint_of_a_corpus_with_hidden_and_linked_entries_is_stable(corpus, tmp_path):
    (corpus / ".hidden.txt").write_text("secret", encoding="utf-8")
    os.symlink(tmp_path, corpus / "up")
    first = scan_corpus(corpus).fingerprint
    assert scan_corpus(corpus).fingerprint == first
    (corpus / ".another.txt").write_text("secret", encoding="utf-8")
    assert scan_corpus(corpus).fingerprint != first  # so `qa info`'s skipped list follows the corpus


@pytest.mark.slow  # runs `qa` in subprocesses
def test_qa_index_warns_and_qa_info_lists_hidden_and_linked_entries(corpus, tmp_path):
    (corpus / ".hidden.txt").write_text("secret", encoding="utf-8")
    os.symlink(tmp_path, corpus / "up")
    index_dir = tmp_path / "index"
    built = _run_qa("index", str(corpus), "--index", str(index_dir), "--progress", "none")
    assert built.returncode == 0, built.stderr
    assert "warning: skipped .hidden.txt: hidden" in built.stderr
    assert "warning: skipped up/: symbolic link to a folder (not followed)" in built.stderr
    info = _run_qa("info", "--index", str(index_dir), "--json")
    assert {s["source"]: s["reason"] for s in json.loads(info.stdout)["skipped"]} == {
        ".hidden.txt": "hidden",
        "up/": "symbolic link to a folder (not followed)",
    }
    again = _run_qa("index", str(corpus), "--index", str(index_dir), "--progress", "none", "--json")
    assert json.loads(again.stdout)["unchanged"] == 1 and json.loads(again.stdout)["passages_embedded"] == 0


def test_an_unchanged_corpus_with_hidden_and_linked_entries_needs_no_rebuild(corpus, tmp_path, encoder):
    from qa.index.indexer import BuildDefaults, build_index, ensure_index

    (corpus / ".hidden.txt").write_text("secret", encoding="utf-8")
    os.symlink(tmp_path, corpus / "up")
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, encoder, chunk_size=128, chunk_overlap=24)

    def load_model(name, precision):
        raise AssertionError("nothing changed, so nothing may be built")

    report, reason = ensure_index(
        index_dir,
        corpus=corpus,
        default_corpus=None,
        model=encoder.model_id,
        chunk_size=128,
        chunk_overlap=24,
        defaults=BuildDefaults("all-MiniLM-L6-v2", 128, 24, False, encoder.precision),
        load_model=load_model,
        precision=encoder.precision,
    )
    assert (report, reason) == (None, None)


# Item 6: a folder nested too deep is skipped and reported; the rest is indexed.


def _make_chain(root: Path, depth: int) -> Path:
    """A chain of ``depth`` folders named ``d`` under ``root``, made through descriptors (the path grows past what
    one call takes), with a document at the bottom; returns the deepest folder's path relative to ``root``."""
    top = os.open(root, os.O_RDONLY)
    current = top
    for _ in range(depth):
        os.mkdir("d", dir_fd=current)
        deeper = os.open("d", os.O_RDONLY, dir_fd=current)
        if current != top:
            os.close(current)
        current = deeper
    handle = os.open("bottom.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=current)
    os.write(handle, b"Deep down there is a note.")
    os.close(handle)
    os.close(current)
    os.close(top)
    return Path(*["d"] * depth)


def _remove_chain(root: Path) -> None:
    """Delete a chain made by :func:`_make_chain` a level at a time: ``shutil.rmtree`` recurses once per level and
    would overflow on it (and so would pytest's own clean-up of old temporary folders)."""
    while (root / "d").is_dir():
        lifted = root / "lifted"
        (root / "d").rename(lifted)
        if (lifted / "d").is_dir():
            (lifted / "d").rename(root / "d")
        shutil.rmtree(lifted)


@pytest.fixture()
def nest(corpus):
    """Make a chain of folders under the corpus (see :func:`_make_chain`); removed again after the test."""
    yield lambda depth: _make_chain(corpus, depth)
    _remove_chain(corpus)


def test_a_folder_nested_a_thousand_deep_is_skipped_and_reported_and_the_rest_indexed(corpus, nest):
    nest(1000)
    scan = scan_corpus(corpus)
    assert [d.doc_id for d in scan.documents] == ["good.txt"]
    too_deep = "d/" * (MAX_FOLDER_DEPTH + 1)
    assert _skipped(scan) == {too_deep: f"nested deeper than {MAX_FOLDER_DEPTH} folders"}


def test_a_document_at_the_deepest_allowed_folder_is_indexed(corpus, nest):
    deepest = nest(MAX_FOLDER_DEPTH)
    scan = scan_corpus(corpus)
    assert [d.doc_id for d in scan.documents] == [(deepest / "bottom.txt").as_posix(), "good.txt"]
    assert scan.skipped == []


def test_a_folder_whose_path_is_too_long_to_open_is_reported_and_the_rest_indexed(corpus):
    name = "n" * 250
    top = current = os.open(corpus, os.O_RDONLY)
    for _ in range(20):  # 20 x 251 characters: past the 4,096 a path may have
        os.mkdir(name, dir_fd=current)
        deeper = os.open(name, os.O_RDONLY, dir_fd=current)
        if current != top:
            os.close(current)
        current = deeper
    os.close(current)
    os.close(top)
    scan = scan_corpus(corpus)
    assert [d.doc_id for d in scan.documents] == ["good.txt"]
    [(folder, reason)] = _skipped(scan).items()
    assert folder.startswith(name + "/") and reason == "folder cannot be read: File name too long"


@pytest.mark.slow  # runs `qa index` in a subprocess
def test_qa_index_of_a_corpus_with_a_thousand_deep_folder_succeeds_with_a_warning(corpus, nest, tmp_path):
    nest(1000)
    result = _run_qa("index", str(corpus), "--index", str(tmp_path / "index"), "--progress", "none")
    assert result.returncode == 0, result.stderr
    assert f"nested deeper than {MAX_FOLDER_DEPTH} folders" in result.stderr
    assert "Traceback" not in result.stderr


# Item 12: a file that changes while it is being read.


def _interleave_writes(monkeypatch, target: Path, writes: list[str]) -> None:
    """Make each read of ``target`` first overwrite it with the next of ``writes``: a writer racing the reader."""
    real_read_bytes = Path.read_bytes

    def read_bytes(self):
        if self == target and writes:
            with open(self, "a", encoding="utf-8") as handle:
                handle.write(writes.pop(0))
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)


def test_a_file_that_changes_once_while_read_is_read_again_and_indexed_whole(corpus, monkeypatch):
    target = corpus / "growing.txt"
    target.write_text("First half.", encoding="utf-8")
    _interleave_writes(monkeypatch, target, [" Second half, written during the read."])
    scan = scan_corpus(corpus)
    document = next(d for d in scan.documents if d.doc_id == "growing.txt")
    assert document.text == "First half. Second half, written during the read."
    assert document.content_hash == hashlib.sha256(target.read_bytes()).hexdigest()
    assert "growing.txt" not in _skipped(scan)


def test_a_file_that_keeps_changing_while_read_is_skipped_with_a_warning(corpus, monkeypatch):
    target = corpus / "growing.txt"
    target.write_text("First half.", encoding="utf-8")
    _interleave_writes(monkeypatch, target, [" More.", " And more."])
    scan = scan_corpus(corpus)
    assert [d.doc_id for d in scan.documents] == ["good.txt"]
    assert _skipped(scan) == {"growing.txt": "changed while it was being read"}


def test_a_file_that_stands_still_is_read_once(corpus, monkeypatch):
    reads = []
    real_read_bytes = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self.name) or real_read_bytes(self))
    scan_corpus(corpus)
    assert reads == ["good.txt"]


# Item 6: every failure is one `error:` line and exit code 1, and the previous index stays intact.


def _files(index_dir: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(index_dir.iterdir())}


def _limit_file_size(limit: int):
    """For ``preexec_fn``: a process that cannot write a file past ``limit`` bytes, as on a full disk (Python
    ignores SIGXFSZ, so the write fails with EFBIG instead of killing the process)."""
    import resource

    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


# The CLI with the FAISS write failing as on a full disk.
_FULL_DISK_AT_FAISS = """
import errno, os, sys
from qa.index.vectors import VectorIndex
def save(self, path, *codes_path):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
VectorIndex.save = save
from qa.cli.main import main
sys.argv = ["qa", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("where", ["SQLite write", "FAISS write"])
def test_a_build_on_a_full_disk_is_one_error_line_and_the_previous_index_stays(index_copy, where):
    from conftest import SEEDS

    before = _files(index_copy)
    args = ["index", str(SEEDS), "--index", str(index_copy), "--full", "--progress", "none"]
    if where == "SQLite write":
        result = _run_qa(*args, preexec_fn=_limit_file_size(64 * 1024))
        phrase = f"cannot write the index at {index_copy}"
    else:
        environment = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
        result = subprocess.run(
            [sys.executable, "-c", _FULL_DISK_AT_FAISS, *args],
            capture_output=True,
            text=True,
            env=environment,
            timeout=300,
        )
        phrase = "No space left on device"
    _assert_one_error_line(result, phrase)
    assert _files(index_copy) == before
    assert not list(index_copy.parent.glob(".copy.building-*"))  # the half-written build is removed
    assert _run_qa("ask", "green tea", "--index", str(index_copy)).returncode == 0


@pytest.mark.slow  # runs `qa index` in a subprocess
def test_an_index_folder_below_a_regular_file_is_one_error_line(corpus, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("in the way", encoding="utf-8")
    result = _run_qa("index", str(corpus), "--index", str(blocker / "index"), "--progress", "none")
    _assert_one_error_line(result, "cannot write the index at", f"{blocker} is not a folder")
    assert blocker.read_text(encoding="utf-8") == "in the way"


def _rewrite_manifest(index_dir: Path, change) -> None:
    path = index_dir / "manifest.json"
    path.write_text(change(json.loads(path.read_text(encoding="utf-8"))), encoding="utf-8")


@pytest.mark.parametrize(
    "change, phrase",
    [
        (lambda manifest: "{ not json", "unreadable manifest"),
        (lambda manifest: "[1, 2]", "not a JSON object"),
        (lambda manifest: json.dumps({**manifest, "model": 5}), "model is not a string"),
        (lambda manifest: json.dumps({**manifest, "chunking": "x"}), "chunking is not an object"),
        (lambda manifest: json.dumps({**manifest, "chunking": {"size": "x"}}), "chunking.size is missing or not"),
        (lambda manifest: json.dumps({**manifest, "counts": []}), "counts is not an object"),
        (lambda manifest: json.dumps({**manifest, "corpus": {"root": 3}}), "corpus.root is not a string"),
        (lambda manifest: json.dumps({**manifest, "dimension": True}), "dimension is not an integer"),
    ],
)
def test_a_malformed_manifest_is_one_error_line_for_info_and_ask(index_copy, change, phrase):
    _rewrite_manifest(index_copy, change)
    for command in (["info"], ["ask", "green tea"]):
        _assert_one_error_line(_run_qa(*command, "--index", str(index_copy)), phrase)


def _drop_table(index_dir: Path, table: str) -> None:
    """Drop a table from the store and re-vouch for the file in the manifest, so only the missing table is wrong."""
    store = index_dir / "store.sqlite3"
    with sqlite3.connect(store) as db:
        db.execute(f"DROP TABLE {table}")
    db.close()
    checksum = hashlib.sha256(store.read_bytes()).hexdigest()
    vouched = lambda manifest: {**manifest["checksums"], "store.sqlite3": checksum}  # noqa: E731
    _rewrite_manifest(index_dir, lambda manifest: json.dumps({**manifest, "checksums": vouched(manifest)}))


@pytest.mark.parametrize("table", ["chunks", "skipped", "pages", "aliases"])
def test_a_store_missing_a_table_is_one_error_line_for_info_and_ask(index_copy, table):
    _drop_table(index_copy, table)
    for command in (["info"], ["ask", "green tea"]):
        _assert_one_error_line(_run_qa(*command, "--index", str(index_copy)), f"lacks the table {table}")


def test_a_store_missing_a_table_is_served_as_unavailable_with_503s(index_copy):
    from fastapi.testclient import TestClient

    from qa.api.app import create_app
    from qa.config import Settings

    _drop_table(index_copy, "chunks")
    with TestClient(create_app(Settings(index_dir=index_copy))) as client:
        health = client.get("/health").json()
        search = client.get("/search", params={"q": "green tea"})
    assert health["status"] == "unavailable" and "lacks the table chunks" in health["error"]
    assert search.status_code == 503 and "lacks the table chunks" in search.json()["message"]


def test_an_update_over_a_store_missing_a_table_builds_afresh_and_says_why(index_copy, encoder):
    from conftest import SEEDS

    from qa.config import Settings
    from qa.index.indexer import build_index

    _drop_table(index_copy, "chunks")
    defaults = Settings()
    report = build_index(
        SEEDS,
        index_copy,
        encoder,
        chunk_size=defaults.chunk_size,
        chunk_overlap=defaults.chunk_overlap,
        embed_title=defaults.embed_title,
    )
    assert not report.update and "lacks the table chunks" in report.full_reason
