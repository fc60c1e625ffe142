"""`qa index` and `qa serve` on a corpus that has not changed: known from the file system alone, the index is
neither rebuilt nor rewritten (so a server does not reload it); any real change is still found."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
from conftest import SEEDS
from test_cli import run_qa

from qa.config import Settings
from qa.index.indexer import BuildDefaults, build_index, ensure_index, unchanged_since_build
from qa.index.manifest import DATABASE_FILE, MANIFEST_FILE, VECTORS_FILE
from qa.ingest.corpus import corpus_stamp

DEFAULTS = Settings()
BUILD = dict(chunk_size=DEFAULTS.chunk_size, chunk_overlap=DEFAULTS.chunk_overlap, embed_title=DEFAULTS.embed_title)
UNDATED = "undated.txt"


@pytest.fixture()
def corpus(tmp_path):
    """Two seeds articles and a note with no date in it (its date is its file's modification time)."""
    root = tmp_path / "corpus"
    root.mkdir()
    for name in sorted(p.name for p in SEEDS.iterdir())[:2]:
        shutil.copy(SEEDS / name, root / name)
    (root / UNDATED).write_text("Soft-boiled eggs need six minutes in boiling water.\n", encoding="utf-8")
    return root


@pytest.fixture()
def built(corpus, tmp_path, encoder):
    """A fresh index of ``corpus`` built with the default settings the CLI uses."""
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, encoder, **BUILD)
    return index_dir


def _identity(index_dir):
    """What a reader watches for a new build: the directory's inode and the manifest's, and each file's inode."""
    return {name: os.stat(index_dir / name).st_ino for name in (".", MANIFEST_FILE, DATABASE_FILE, VECTORS_FILE)}


def _index(corpus, index_dir, *extra):
    """`qa index --json` in a subprocess, parsed."""
    result = run_qa("index", corpus, "--index", index_dir, "--json", "--progress", "none", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _fresh(index_dir, corpus, encoder):
    return unchanged_since_build(index_dir, corpus, model=encoder.model_id, precision=encoder.precision, **BUILD)


def test_qa_index_on_an_unchanged_corpus_leaves_the_index_as_it_was(corpus, built):
    before = _identity(built)
    report = _index(corpus, built)
    assert report["mode"] == "unchanged"
    assert (report["documents"], report["unchanged"], report["passages_embedded"]) == (3, 3, 0)
    assert report["chunks"] == json.loads((built / MANIFEST_FILE).read_text())["counts"]["chunks"]
    assert _identity(built) == before


def test_an_unchanged_corpus_is_recognised_from_the_file_system_without_a_scan(corpus, built, encoder, monkeypatch):
    import qa.index.indexer

    def no_scan(*args, **kwargs):
        raise AssertionError("the corpus was read")

    monkeypatch.setattr(qa.index.indexer, "scan_corpus", no_scan)
    assert _fresh(built, corpus, encoder)
    args = dict(
        corpus=corpus,
        default_corpus=None,
        model=None,
        chunk_size=None,
        chunk_overlap=None,
        defaults=BuildDefaults("all-MiniLM-L6-v2", 0, 0, False, "int8"),
        load_model=None,
    )
    assert ensure_index(built, **args) == (None, None)


def test_any_change_to_a_file_or_the_folder_defeats_the_stamp(corpus, built, encoder):
    assert _fresh(built, corpus, encoder)
    first = corpus / sorted(p.name for p in corpus.iterdir())[0]
    info = first.stat()
    # Same size, and the modification time put back: only the change time tells.
    text = first.read_bytes()
    first.write_bytes(text[:-1] + (b"X" if text[-1:] != b"X" else b"Y"))
    os.utime(first, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert first.stat().st_size == info.st_size
    assert not _fresh(built, corpus, encoder)
    stamp = corpus_stamp(corpus)
    (corpus / "new.md").write_text("# New\n\nA new note.\n", encoding="utf-8")
    assert corpus_stamp(corpus) != stamp
    (corpus / "new.md").unlink()
    assert corpus_stamp(corpus) == stamp
    (corpus / ".hidden.txt").write_text("hidden\n", encoding="utf-8")  # reported as skipped, so it counts
    assert corpus_stamp(corpus) != stamp


def test_other_settings_are_never_taken_for_an_unchanged_index(corpus, built, encoder):
    settings = dict(model=encoder.model_id, precision=encoder.precision, **BUILD)
    assert unchanged_since_build(built, corpus, **settings)
    assert not unchanged_since_build(built, corpus, **{**settings, "chunk_size": BUILD["chunk_size"] - 8})
    other = "fp32" if encoder.precision == "int8" else "int8"
    assert not unchanged_since_build(built, corpus, **{**settings, "precision": other})
    assert not unchanged_since_build(built, corpus, **settings, html_content="all")
    assert not unchanged_since_build(built, SEEDS, **settings)


def test_touched_files_are_read_once_and_the_index_keeps_its_files(corpus, built, encoder):
    before = _identity(built)
    later = time.time() + 5
    for path in corpus.iterdir():
        if path.name != UNDATED:  # its date is its modification time: touching it is a change (next test)
            os.utime(path, (later, later))
    assert not _fresh(built, corpus, encoder)
    report = _index(corpus, built)
    assert report["mode"] == "unchanged" and report["passages_embedded"] == 0
    after = _identity(built)
    # The store and vectors are the same files (hard links); a new manifest records the new stamp...
    assert (after[DATABASE_FILE], after[VECTORS_FILE]) == (before[DATABASE_FILE], before[VECTORS_FILE])
    assert after[MANIFEST_FILE] != before[MANIFEST_FILE]
    # ... so the next run needs no scan at all.
    assert _fresh(built, corpus, encoder)
    assert _index(corpus, built)["mode"] == "unchanged"
    assert _identity(built) == after


def test_text_extracted_by_other_code_is_read_again_then_the_index_is_current(corpus, built, encoder, monkeypatch):
    """A newer qa (other extraction code or libraries) does not take an index of the same files for current: it
    reads every file once, and when the text comes out the same keeps the index's files under the new digest."""
    import qa.index.indexer

    before = _identity(built)
    monkeypatch.setattr(qa.index.indexer, "extractor_version", lambda: "another extractor")
    assert not _fresh(built, corpus, encoder)
    report = build_index(corpus, built, encoder, **BUILD)
    assert (report.rewritten, report.files_reused, report.unchanged) == (False, 0, 3)
    after = _identity(built)
    assert (after[DATABASE_FILE], after[VECTORS_FILE]) == (before[DATABASE_FILE], before[VECTORS_FILE])
    assert json.loads((built / MANIFEST_FILE).read_text())["corpus"]["extractor"] == "another extractor"
    assert _fresh(built, corpus, encoder)


def test_serving_an_index_whose_text_other_code_extracted_brings_it_up_to_date(corpus, built, encoder, monkeypatch):
    """What `qa serve` and `qa eval` call: an index of unchanged files read by other extraction code is not served
    as current; the build reads them once and keeps the files under the new digest."""
    import qa.index.indexer

    before = _identity(built)
    monkeypatch.setattr(qa.index.indexer, "extractor_version", lambda: "another extractor")
    args = dict(
        corpus=corpus,
        default_corpus=None,
        model=None,
        chunk_size=None,
        chunk_overlap=None,
        defaults=BuildDefaults("all-MiniLM-L6-v2", 0, 0, False, "int8"),
        load_model=lambda name, precision: encoder,
    )
    report, reason = ensure_index(built, **args)
    assert reason == "its documents were read by another version of qa's document readers"
    assert report is not None and (report.rewritten, report.unchanged) == (False, 3)
    assert json.loads((built / MANIFEST_FILE).read_text())["corpus"]["extractor"] == "another extractor"
    assert _identity(built)[DATABASE_FILE] == before[DATABASE_FILE]
    assert ensure_index(built, **args) == (None, None)


def test_a_date_taken_from_a_touched_file_is_updated(corpus, built):
    os.utime(corpus / UNDATED, (978_307_200, 978_307_200))  # 2001-01-01
    report = _index(corpus, built)
    assert report["mode"] == "update" and report["changed_documents"] == [UNDATED]
    document = json.loads(run_qa("info", "--index", built, "--json").stdout)["documents"]
    assert {d["source"]: d["date"] for d in document}[UNDATED] == "2001-01-01"


def test_an_edited_file_is_indexed_and_a_damaged_index_rebuilt(corpus, built):
    with (corpus / UNDATED).open("a", encoding="utf-8") as handle:
        handle.write("Hard-boiled eggs need ten minutes.\n")
    report = _index(corpus, built)
    assert report["mode"] == "update" and report["changed_documents"] == [UNDATED]
    with (built / VECTORS_FILE).open("r+b") as handle:  # damage the index; the corpus stays as it is
        handle.seek(100)
        handle.write(b"\xff" * 8)
    report = _index(corpus, built)
    assert report["mode"] == "full" and "cannot be reused" in report["full_reason"]
    assert _index(corpus, built)["mode"] == "unchanged"


def _documents(index_dir):
    """Every shown document (id, text, metadata, pages, aliases), every passage's place, and every recorded path,
    through the store of all the index's segments."""
    from qa.index.manifest import Manifest
    from qa.index.segments import open_store

    store = open_store(index_dir, Manifest.read(index_dir))
    try:
        documents = [store.document(doc_id) for doc_id, _, _ in store.documents()]
        chunks = [(c.doc_id, c.start, c.end, c.text, c.section) for c, _ in store.iter_chunks()]
        files = sorted(store.file_stats())
    finally:
        store.close()
    return documents, chunks, files


def test_an_update_reads_only_the_files_that_changed_and_equals_a_clean_build(corpus, built, encoder, tmp_path):
    (corpus / "copy.txt").write_bytes((corpus / UNDATED).read_bytes())  # an alias, read once
    first = build_index(corpus, built, encoder, **BUILD)
    assert first.files_reused == 3  # the new copy was read; the three files of the first build were not
    with (corpus / UNDATED).open("a", encoding="utf-8") as handle:
        handle.write("Hard-boiled eggs need ten minutes.\n")
    report = build_index(corpus, built, encoder, **BUILD)
    # Only the edited file is read. Its copy (the document's id, as it sorts first) keeps the old bytes; the
    # edited file, an alias before, is a document of its own now (counted as changed: its path was indexed).
    assert (report.files_reused, report.changed, report.added) == (3, 1, 0)
    clean = tmp_path / "clean"
    build_index(corpus, clean, encoder, **BUILD, full=True)
    assert _documents(built) == _documents(clean)


def test_files_read_with_other_extraction_settings_are_read_again(corpus, built, encoder):
    report = build_index(corpus, built, encoder, **BUILD, html_content="all")
    assert report.files_reused == 0
