"""Ingest: which files are indexed, which are skipped and why, and how documents are named."""

from __future__ import annotations

import os

import pytest
from conftest import SEEDS

from qa.errors import CorpusError
from qa.ingest.corpus import scan_corpus


@pytest.fixture()
def corpus(tmp_path):
    root = tmp_path / "corpus"
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "a.txt").write_text("Alpha headline\nAlpha body sentence.", encoding="utf-8")
    (root / "nested" / "b.md").write_text("# Beta\n\nBeta body.", encoding="utf-8")
    (root / "nested" / "deeper" / "c.TXT").write_text("Gamma.", encoding="utf-8")
    (root / "empty.txt").write_text("", encoding="utf-8")
    (root / "blank.md").write_text("  \n\t\n", encoding="utf-8")
    (root / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me".encode("latin-1"))
    (root / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (root / "image.png").write_bytes(b"\x89PNG")
    (root / ".hidden.txt").write_text("secret", encoding="utf-8")
    (root / ".git").mkdir()
    (root / ".git" / "notes.txt").write_text("not a document", encoding="utf-8")
    (root / "bom.txt").write_bytes("\ufeffBOM headline\nText.".encode("utf-8"))
    return root


def test_documents_are_found_recursively_and_named_by_relative_posix_path(corpus):
    scan = scan_corpus(corpus)
    assert [d.doc_id for d in scan.documents] == [
        "a.txt",
        "bom.txt",
        "latin1.txt",
        "nested/b.md",
        "nested/deeper/c.TXT",
    ]


@pytest.mark.parametrize(
    "doc_id, reason",
    [
        ("empty.txt", "empty"),
        ("blank.md", "empty"),
        ("binary.txt", "not a text file (binary content)"),
    ],
)
def test_unusable_files_are_skipped_with_a_reason(corpus, doc_id, reason):
    skipped = {s.doc_id: s.reason for s in scan_corpus(corpus).skipped}
    assert skipped[doc_id] == reason


def test_hidden_files_are_reported_not_indexed_and_other_extensions_are_ignored(corpus):
    scan = scan_corpus(corpus)
    skipped = {s.doc_id: s.reason for s in scan.skipped}
    seen = {d.doc_id for d in scan.documents} | set(skipped)
    assert not {"image.png", ".git/notes.txt"} & seen
    assert skipped[".hidden.txt"] == skipped[".git/"] == "hidden"


def test_byte_order_mark_is_not_part_of_the_text(corpus):
    document = next(d for d in scan_corpus(corpus).documents if d.doc_id == "bom.txt")
    assert document.text.startswith("BOM headline")


def test_symlink_out_of_the_corpus_is_skipped(corpus, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("Private notes.", encoding="utf-8")
    os.symlink(outside, corpus / "link.txt")
    skipped = {s.doc_id: s.reason for s in scan_corpus(corpus).skipped}
    assert skipped["link.txt"] == "symbolic link points outside the corpus"


def test_fingerprint_changes_when_any_file_changes(corpus):
    before = scan_corpus(corpus).fingerprint
    assert scan_corpus(corpus).fingerprint == before
    (corpus / "a.txt").write_text("Alpha headline\nChanged.", encoding="utf-8")
    assert scan_corpus(corpus).fingerprint != before


@pytest.mark.parametrize("make", ["missing", "file"])
def test_missing_or_non_folder_corpus_is_a_clear_error(tmp_path, make):
    path = tmp_path / "nope"
    if make == "file":
        path.write_text("x", encoding="utf-8")
    with pytest.raises(CorpusError, match="corpus"):
        scan_corpus(path)


def test_seeds_are_all_indexable_and_keep_their_exact_text():
    scan = scan_corpus(SEEDS)
    assert len(scan.documents) == 5 and not scan.skipped
    for document in scan.documents:
        assert document.text == (SEEDS / document.doc_id).read_bytes().decode("utf-8")
