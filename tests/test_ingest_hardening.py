"""Issue 16, items 6, 11 and 12: no traceback reaches a user, nothing is skipped silently, no half-written file is
indexed; the previous index survives every failure."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from qa.ingest import MAX_FOLDER_DEPTH, scan_corpus

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
        [sys.executable, "-m", "qa", *args], capture_output=True, text=True, env=environment, timeout=300,
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
        ".hidden.txt": "hidden", "up/": "symbolic link to a folder (not followed)",
    }
    again = _run_qa("index", str(corpus), "--index", str(index_dir), "--progress", "none", "--json")
    assert json.loads(again.stdout)["unchanged"] == 1 and json.loads(again.stdout)["passages_embedded"] == 0


def test_an_unchanged_corpus_with_hidden_and_linked_entries_needs_no_rebuild(corpus, tmp_path, encoder):
    from qa.indexer import build_index, ensure_index

    (corpus / ".hidden.txt").write_text("secret", encoding="utf-8")
    os.symlink(tmp_path, corpus / "up")
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, encoder, chunk_size=128, chunk_overlap=24)

    def load_model(name, precision):
        raise AssertionError("nothing changed, so nothing may be built")

    report, reason = ensure_index(
        index_dir, corpus=corpus, default_corpus=None, model=encoder.model_id, chunk_size=128, chunk_overlap=24,
        defaults=("all-MiniLM-L6-v2", 128, 24, False, encoder.precision), load_model=load_model,
        precision=encoder.precision,
    )
    assert (report, reason) == (None, None)


# Item 6: a folder nested too deep is skipped and reported; the rest is indexed.

def _nest(root: Path, depth: int, name: str = "d") -> Path:
    """A chain of ``depth`` folders under ``root`` made through descriptors (the path grows past what one call
    takes); returns the relative path of the deepest."""
    top = os.open(root, os.O_RDONLY)
    current = top
    for _ in range(depth):
        os.mkdir(name, dir_fd=current)
        deeper = os.open(name, os.O_RDONLY, dir_fd=current)
        if current != top:
            os.close(current)
        current = deeper
    handle = os.open("bottom.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=current)
    os.write(handle, b"Deep down there is a note.")
    os.close(handle)
    os.close(current)
    os.close(top)
    return Path(*[name] * depth)


def test_a_folder_nested_a_thousand_deep_is_skipped_and_reported_and_the_rest_indexed(corpus):
    _nest(corpus, 1000)
    scan = scan_corpus(corpus)
    assert [d.doc_id for d in scan.documents] == ["good.txt"]
    too_deep = "d/" * (MAX_FOLDER_DEPTH + 1)
    assert _skipped(scan) == {too_deep: f"nested deeper than {MAX_FOLDER_DEPTH} folders"}


def test_a_document_at_the_deepest_allowed_folder_is_indexed(corpus):
    deepest = _nest(corpus, MAX_FOLDER_DEPTH)
    scan = scan_corpus(corpus)
    assert [d.doc_id for d in scan.documents] == [(deepest / "bottom.txt").as_posix(), "good.txt"]
    assert scan.skipped == []


def test_qa_index_of_a_corpus_with_a_thousand_deep_folder_succeeds_with_a_warning(corpus, tmp_path):
    _nest(corpus, 1000)
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
