"""Hostile corpora: link loops, odd files and names, deep folders and one enormous line must not hang, crash or
poison the index; whatever cannot be indexed is skipped with a reason."""

from __future__ import annotations

import json
import os
import random
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

import qa.ingest.corpus
from qa.config import Settings
from qa.index.indexer import build_index
from qa.index.manifest import DATABASE_FILE
from qa.index.store import StoreReader
from qa.ingest.corpus import scan_corpus
from qa.text.chunking import STRETCH

BAD_NAME = b"caf\xe9.txt"  # Latin-1 bytes: not a UTF-8 file name


def _skipped(scan) -> dict[str, str]:
    return {s.doc_id: s.reason for s in scan.skipped}


@pytest.fixture()
def corpus(tmp_path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "good.txt").write_text("A good document.\nIt has two lines.", encoding="utf-8")
    return root


def test_folder_linked_to_its_parent_does_not_loop(corpus):
    (corpus / "sub").mkdir()
    (corpus / "sub" / "inner.txt").write_text("Inner text.", encoding="utf-8")
    os.symlink("..", corpus / "sub" / "up")  # sub/up -> corpus: a cycle
    os.symlink(corpus, corpus / "sub" / "root")  # absolute cycle too
    started = time.monotonic()
    scan = scan_corpus(corpus)
    assert time.monotonic() - started < 5
    assert [d.doc_id for d in scan.documents] == ["good.txt", "sub/inner.txt"]


@pytest.mark.parametrize(
    "target, why",
    [("loop.txt", "Too many levels of symbolic links"), ("missing.txt", "No such file or directory")],
    ids=["self-loop", "dangling"],
)
def test_file_link_that_cannot_be_followed_is_skipped(corpus, target, why):
    os.symlink(target, corpus / "loop.txt")
    scan = scan_corpus(corpus)
    assert [d.doc_id for d in scan.documents] == ["good.txt"]
    assert _skipped(scan) == {"loop.txt": f"symbolic link cannot be followed: {why}"}


def test_link_loop_between_two_files_is_skipped(corpus):
    os.symlink("b.txt", corpus / "a.txt")
    os.symlink("a.txt", corpus / "b.txt")
    skipped = _skipped(scan_corpus(corpus))
    assert skipped["a.txt"].startswith("symbolic link cannot be followed")
    assert skipped["b.txt"].startswith("symbolic link cannot be followed")


def test_link_to_a_file_inside_the_corpus_is_indexed(corpus):
    os.symlink("good.txt", corpus / "alias.txt")
    scan = scan_corpus(corpus)
    # Once, under the path that sorts first, naming the other (qa.ingest.corpus folds files with identical bytes).
    assert [(d.doc_id, d.aliases) for d in scan.documents] == [("alias.txt", ("good.txt",))]


def test_file_over_the_size_limit_is_skipped_with_the_limit_named(corpus, monkeypatch):
    monkeypatch.setattr(qa.ingest.corpus, "MAX_FILE_BYTES", 1024)
    (corpus / "big.txt").write_text("Too long. " * 200, encoding="utf-8")
    (corpus / "small.txt").write_text("Short enough.", encoding="utf-8")
    scan = scan_corpus(corpus)
    assert _skipped(scan) == {"big.txt": "larger than 1 KB"}
    assert [d.doc_id for d in scan.documents] == ["good.txt", "small.txt"]


def test_default_size_limit_is_stated_in_megabytes(corpus, monkeypatch):
    monkeypatch.setattr(qa.ingest.corpus, "MAX_FILE_BYTES", 10)
    (corpus / "big.txt").write_text("Eleven chars", encoding="utf-8")
    assert _skipped(scan_corpus(corpus))["big.txt"] == "larger than 10 bytes"
    assert qa.ingest.corpus._size_label(50 * 1024 * 1024) == "50 MB"


def test_unreadable_file_is_skipped(corpus):
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode; see the simulated case below")
    secret = corpus / "secret.txt"
    secret.write_text("Private.", encoding="utf-8")
    secret.chmod(0)
    try:
        assert _skipped(scan_corpus(corpus))["secret.txt"] == "cannot be read: Permission denied"
    finally:
        secret.chmod(0o644)


def test_file_that_refuses_to_be_read_is_skipped(corpus, monkeypatch):
    (corpus / "secret.txt").write_text("Private.", encoding="utf-8")
    real_read_bytes = Path.read_bytes

    def read_bytes(self):
        if self.name == "secret.txt":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    scan = scan_corpus(corpus)
    assert _skipped(scan) == {"secret.txt": "cannot be read: Permission denied"}
    assert [d.doc_id for d in scan.documents] == ["good.txt"]


def test_unlistable_folder_is_reported_not_silently_dropped(corpus, monkeypatch):
    (corpus / "locked").mkdir()
    (corpus / "locked" / "inside.txt").write_text("Hidden by permissions.", encoding="utf-8")
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    scan = scan_corpus(corpus)
    assert [d.doc_id for d in scan.documents] == ["good.txt"]
    assert _skipped(scan) == {"locked/": "folder cannot be read: Permission denied"}


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_special_files_named_like_documents_are_skipped_without_blocking(corpus, kind):
    path = corpus / "pipe.txt"
    if kind == "fifo":
        os.mkfifo(path)  # reading it would block forever
        started = time.monotonic()
        skipped = _skipped(scan_corpus(corpus))
        assert time.monotonic() - started < 5
        assert skipped == {"pipe.txt": "not a regular file"}
    else:
        path.mkdir()  # a folder with a document's suffix is a folder: walked, not read
        (path / "real.md").write_text("# Real\n\nText.", encoding="utf-8")
        scan = scan_corpus(corpus)
        assert not scan.skipped and [d.doc_id for d in scan.documents] == ["good.txt", "pipe.txt/real.md"]


def test_file_name_that_is_not_utf8_is_skipped_with_a_printable_id(corpus):
    fd = os.open(os.fsencode(corpus) + b"/" + BAD_NAME, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"Cafe menu.")
    os.close(fd)
    scan = scan_corpus(corpus)
    assert [d.doc_id for d in scan.documents] == ["good.txt"]
    assert _skipped(scan) == {"caf\\xe9.txt": "file name is not valid UTF-8"}
    # Everything about the scan is plain text: it can be written to JSON, SQLite and a terminal.
    json.dumps([s.doc_id for s in scan.skipped]).encode("utf-8")
    assert len(scan.fingerprint) == 64


def test_folder_name_that_is_not_utf8_skips_its_files_with_a_reason(corpus):
    folder = os.fsencode(corpus) + b"/dossier-\xff"
    os.mkdir(folder)
    fd = os.open(folder + b"/note.txt", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"A note.")
    os.close(fd)
    assert _skipped(scan_corpus(corpus)) == {"dossier-\\xff/note.txt": "folder name is not valid UTF-8"}


def test_fifty_nested_folders_are_indexed(corpus):
    deep = corpus.joinpath(*[f"level{i:02d}" for i in range(50)])
    deep.mkdir(parents=True)
    (deep / "bottom.md").write_text("# Bottom\n\nThe deepest note.", encoding="utf-8")
    scan = scan_corpus(corpus)
    bottom = next(d for d in scan.documents if d.doc_id.endswith("/bottom.md"))
    assert bottom.doc_id == "/".join(f"level{i:02d}" for i in range(50)) + "/bottom.md"
    assert bottom.metadata.title == "Bottom" and not scan.skipped


def test_hostile_corpus_builds_a_searchable_index_end_to_end(tmp_path, encoder):
    """The real model over a corpus holding all of the above at once: the good documents are indexed and
    searchable with exact citations, the rest are listed as skipped in the index, in valid UTF-8."""
    from qa.search.service import SearchService

    root = tmp_path / "corpus"
    deep = root.joinpath(*[f"d{i}" for i in range(50)])
    deep.mkdir(parents=True)
    (deep / "deep.txt").write_text(
        "Lighthouse keeping.\nThe keeper lights the lamp at dusk and trims the wick at midnight.", encoding="utf-8"
    )
    (root / "plain.txt").write_text("Bread.\nSourdough needs a starter, flour, water and salt.", encoding="utf-8")
    os.symlink("..", deep / "up")
    os.symlink("loop.txt", root / "loop.txt")
    os.mkfifo(root / "pipe.txt")
    fd = os.open(os.fsencode(root) + b"/" + BAD_NAME, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"Cafe menu.")
    os.close(fd)

    index_dir = tmp_path / "index"
    report = build_index(root, index_dir, encoder, chunk_size=128, chunk_overlap=24)
    assert report.documents == 2
    link_up = deep.relative_to(root).as_posix() + "/up/"  # a link to a folder is reported, never followed
    assert {s.doc_id for s in report.skipped} == {"caf\\xe9.txt", "loop.txt", "pipe.txt", link_up}
    stored = StoreReader(index_dir / DATABASE_FILE).skipped()
    assert {s.doc_id for s in stored} == {"caf\\xe9.txt", "loop.txt", "pipe.txt", link_up}

    service = SearchService.open(Settings(index_dir=index_dir), encoder=encoder)
    answer = service.search("When does the keeper trim the wick?", 1)
    hit = answer.results[0]
    assert hit.citation.source.endswith("d49/deep.txt")
    document = service.document(hit.citation.source)
    assert document.text[hit.citation.start : hit.citation.end] == hit.text
    assert "midnight" in hit.text


class TokenizerOnlyEncoder:
    """The real model's tokenizer and limits, with cheap stand-in vectors instead of its forward pass: what is
    tested here is reading, chunking and storing a huge file; embedding 18,000 passages would take half an hour."""

    def __init__(self, real) -> None:
        self.model_id = real.model_id
        self.dimension = real.dimension
        self.max_tokens = real.max_tokens
        self.backend, self.precision = real.backend, real.precision
        self.count_tokens = real.count_tokens

    def _vector(self, text: str) -> np.ndarray:
        vector = np.random.default_rng(zlib.crc32(text.encode("utf-8"))).standard_normal(self.dimension)
        return (vector / np.linalg.norm(vector)).astype(np.float32)

    def encode(self, texts) -> np.ndarray:
        return np.array([self._vector(t) for t in texts], dtype=np.float32).reshape(len(texts), self.dimension)

    def encode_with_spans(self, texts, spans):
        vectors = self.encode(texts)
        return vectors, [np.repeat(v[None, :], len(s), axis=0) for v, s in zip(vectors, spans)]


def _one_long_line(n_chars: int) -> str:
    rng = random.Random(7)
    words = "the court railway case public interest litigation reform province duty law keeper lamp".split()
    parts, size = [], 0
    while size < n_chars:
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(4, 40))).capitalize() + ". "
        parts.append(sentence)
        size += len(sentence)
    return "".join(parts).rstrip()


BIG_FILE_CHARS = 10_000_000


def test_ten_megabyte_single_line_is_indexed_with_exact_offsets(tmp_path, encoder):
    root = tmp_path / "corpus"
    root.mkdir()
    text = _one_long_line(BIG_FILE_CHARS)
    assert "\n" not in text
    (root / "huge.txt").write_text(text, encoding="utf-8")
    started = time.perf_counter()
    report = build_index(root, tmp_path / "index", TokenizerOnlyEncoder(encoder), chunk_size=128, chunk_overlap=24)
    elapsed = time.perf_counter() - started
    assert report.documents == 1 and report.chunks > 10_000
    assert elapsed < 120, f"indexing took {elapsed:.0f} s"

    store = StoreReader(tmp_path / "index" / DATABASE_FILE)
    stored = store.document("huge.txt")
    assert stored.text == text and stored.n_lines == 1
    previous_start, covered_to = -1, 0
    for chunk, n_tokens in store.iter_chunks():
        assert stored.text[chunk.start : chunk.end] == chunk.text
        assert (chunk.line_start, chunk.line_end) == (1, 1)
        # 128 tokens, or up to 1.25 times that where a short sentence joined the passage before.
        assert n_tokens <= int(STRETCH * 128) and chunk.start > previous_start
        assert chunk.start <= covered_to + 1  # no gap: the next passage starts within one space of the last
        previous_start, covered_to = chunk.start, max(covered_to, chunk.end)
    assert covered_to == len(text)
    sample = random.Random(1).sample(range(report.chunks), 3)
    counted = encoder.count_tokens([c.text for i, (c, _) in enumerate(store.iter_chunks()) if i in sample])
    assert max(counted) <= int(STRETCH * 128)
