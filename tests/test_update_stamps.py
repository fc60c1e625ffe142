"""An update reads the previous index's per-document stamps (text hash, date source) only for the files it read
again, trusts a file taken from the index as the row it names, and `qa index` walks the corpus once."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
from click.testing import CliRunner
from test_unchanged_index import _documents
from test_update_cost import BUILD, _section, notes

import qa.cli.main
import qa.ingest.corpus
from qa.index.indexer import build_index, reusable_files
from qa.index.store import StoreWriter
from qa.ingest.corpus import scan_corpus, walk_corpus


@pytest.fixture()
def corpus(tmp_path):
    """Three headed notes (one dated by its file's time, as it states no date) in two folders."""
    return notes(tmp_path / "corpus")


def _clean(corpus, tmp_path, encoder):
    """A full build of ``corpus`` as it is now, in a folder of its own."""
    clean = tmp_path / "clean"
    if clean.exists():
        shutil.rmtree(clean)
    build_index(corpus, clean, encoder, **BUILD, full=True)
    return clean


def _edit(corpus, name="b.md"):
    """Append a sentence to one note."""
    with (corpus / name).open("a", encoding="utf-8") as handle:
        handle.write("\nA closing line about soup.\n")


def _spy_on_stamps(monkeypatch) -> list[set[str]]:
    """Record, per call, the paths of the previous documents whose stamps an update reads."""
    asked: list[set[str]] = []
    real = StoreWriter.previous_stamps

    def recording(self, documents):
        documents = list(documents)
        asked.append({path for document in documents for path in document.paths})
        return real(self, documents)

    monkeypatch.setattr(StoreWriter, "previous_stamps", recording)
    return asked


def test_a_one_file_update_reads_no_stamp_when_the_files_bytes_changed(corpus, tmp_path, encoder, monkeypatch):
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, encoder, **BUILD)
    _edit(corpus)
    asked = _spy_on_stamps(monkeypatch)
    report = build_index(corpus, index_dir, encoder, **BUILD)
    assert (report.files_reused, report.changed) == (2, 1)
    assert asked == []  # other bytes: changed, whatever its text; the others are the rows they name
    assert _documents(index_dir) == _documents(_clean(corpus, tmp_path, encoder))


def test_files_taken_from_the_index_name_their_row_and_carry_no_text(corpus, tmp_path, encoder):
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, encoder, **BUILD)
    reuse = reusable_files(index_dir, "main")
    assert sorted(reuse) == ["a.md", "b.md", "sub/c.md"]
    for known in reuse.values():
        assert known.document.text == "" and known.document.stored is not None
        assert known.document.stored.store  # the store's checksum in the manifest
    assert len({known.document.stored.row for known in reuse.values()}) == 3


def test_touched_files_are_compared_by_their_stamps_and_nothing_is_rewritten(corpus, tmp_path, encoder, monkeypatch):
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, encoder, **BUILD)
    for path in corpus.rglob("*.md"):
        path.write_bytes(path.read_bytes())  # same bytes, new times: read again, found unchanged
    asked = _spy_on_stamps(monkeypatch)
    report = build_index(corpus, index_dir, encoder, **BUILD)
    assert not report.rewritten and report.files_reused == 0
    assert asked == [{"a.md", "b.md", "sub/c.md"}]


def test_a_file_dated_by_its_time_keeps_its_date_source_when_a_merge_copies_it(corpus, tmp_path, encoder):
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, encoder, **BUILD)
    _edit(corpus)
    build_index(corpus, index_dir, encoder, **BUILD)  # a segment: a.md and sub/c.md stay in the first
    (corpus / "sub" / "c.md").write_text("# Garden notes\n\n" + _section("tulips", 4))
    report = build_index(corpus, index_dir, encoder, **BUILD, merge=True)  # a.md is copied from its row
    assert report.segments == 1 and report.files_reused == 2
    documents = {document.doc_id: document for document in _documents(index_dir)[0]}
    assert documents["a.md"].metadata.date_source == "file"
    assert _documents(index_dir) == _documents(_clean(corpus, tmp_path, encoder))


def test_files_taken_from_an_index_another_build_replaced_are_read_again(corpus, tmp_path, encoder):
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, encoder, **BUILD)
    _edit(corpus)
    scan = scan_corpus(corpus, reuse=reusable_files(index_dir, "main"))
    assert scan.reused == 2
    # Meanwhile another build writes an index whose rows are others (a file that sorts first, gone again).
    (corpus / "0.md").write_text("# First\n\n" + _section("tea", 3))
    build_index(corpus, index_dir, encoder, **BUILD, full=True)
    (corpus / "0.md").unlink()
    report = build_index(corpus, index_dir, encoder, **BUILD, scan=scan)
    # Every file read again (the edit is in the index that build wrote; 0.md is gone from it).
    assert report.update and (report.files_reused, report.removed, report.changed) == (0, 1, 0)
    assert _documents(index_dir) == _documents(_clean(corpus, tmp_path, encoder))


def test_a_scan_given_the_walk_equals_one_that_walks(corpus, tmp_path):
    walk = walk_corpus(corpus)
    given, walked = scan_corpus(corpus, walk=walk), scan_corpus(corpus)
    assert dataclasses.replace(given, read_seconds=0.0) == dataclasses.replace(walked, read_seconds=0.0)
    other = tmp_path / "other"
    shutil.copytree(corpus, other)
    (other / "d.md").write_text("# More\n\nAnother note.\n")
    assert sorted(d.doc_id for d in scan_corpus(other, walk=walk).documents) == ["a.md", "b.md", "d.md", "sub/c.md"]


def test_qa_index_walks_the_corpus_once_for_its_stamp_check_and_its_update(corpus, tmp_path, encoder, monkeypatch):
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, encoder, **BUILD)
    _edit(corpus)
    monkeypatch.setattr(qa.cli.main, "_bulk_encoder", lambda model, settings: encoder)
    walks = []
    real = qa.ingest.corpus._candidate_files
    monkeypatch.setattr(qa.ingest.corpus, "_candidate_files", lambda root: walks.append(root) or real(root))
    args = ["index", str(corpus), "--index", str(index_dir), "--json"]
    result = CliRunner().invoke(qa.cli.main.main, args, env={"QA_PRECISION": encoder.precision})
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert (report["mode"], report["changed"], report["files_reused"]) == ("update", 1, 2)
    assert len(walks) == 1
    assert _documents(index_dir) == _documents(_clean(corpus, tmp_path, encoder))
