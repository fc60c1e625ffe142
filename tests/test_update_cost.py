"""An update's walk takes one status per file (two for a link) and reuses what did not change, and still notices every
change: links and their targets, files replaced by links, text moved between files, with what a clean build gives."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from test_unchanged_index import _documents

from qa.config import Settings
from qa.index.indexer import build_index
from qa.ingest.corpus import ReusableFile, corpus_stamp, scan_corpus
from qa.search.service import SearchService

DEFAULTS = Settings()
BUILD = dict(chunk_size=DEFAULTS.chunk_size, chunk_overlap=DEFAULTS.chunk_overlap, embed_title=DEFAULTS.embed_title)
PHASES = {"walk", "read", "compare", "chunk", "lookup", "embed", "write", "swap"}


def _section(name: str, sentences: int) -> str:
    """A Markdown section of its own words, so that its passages belong to it alone."""
    body = " ".join(f"The {name} note says step {n} of {name} takes {n + 2} minutes." for n in range(sentences))
    return f"## {name.capitalize()}\n\n{body}\n"


@pytest.fixture()
def corpus(tmp_path):
    """Two notes sharing a title (so a section means the same passage in either), a third, and a link to the third."""
    root = notes(tmp_path / "corpus")
    os.symlink("sub/c.md", root / "link.md")
    return root


def notes(root: Path) -> Path:
    """Two headed kitchen notes sharing a title and a garden note in ``sub/``, written into ``root``."""
    (root / "sub").mkdir(parents=True)
    (root / "a.md").write_text("# Kitchen notes\n\n" + _section("eggs", 6) + "\n" + _section("bread", 6))
    (root / "b.md").write_text("# Kitchen notes\n\n" + _section("soup", 6))
    (root / "sub" / "c.md").write_text("# Garden notes\n\n" + _section("roses", 4))
    return root


def _clean(corpus, tmp_path, encoder):
    """A full build of ``corpus`` as it is now, in a folder of its own."""
    clean = tmp_path / "clean"
    build_index(corpus, clean, encoder, **BUILD, full=True)
    return clean


def _vectors_by_passage(index_dir, encoder):
    """Each shown passage's vector, by (document, start)."""
    service = SearchService.open(Settings(index_dir=index_dir), encoder=encoder)
    try:
        ids = [int(i) for i in service.dense.vectors.ids]
        chunks = service.store.chunks(ids)
        vectors = service.dense.vectors.reconstruct(ids)
        return {(chunks[i].doc_id, chunks[i].start): vectors[n] for n, i in enumerate(ids)}
    finally:
        service.close()


def _touch_other_file(corpus):
    """Edit b.md, so an update runs while the rest is taken from the index."""
    with (corpus / "b.md").open("a", encoding="utf-8") as handle:
        handle.write("\nA closing line about soup.\n")


def test_a_linked_file_is_reused_by_the_update_and_still_cites_both_paths(corpus, tmp_path, encoder):
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, encoder, **BUILD)
    _touch_other_file(corpus)
    report = build_index(corpus, index_dir, encoder, **BUILD)
    # a.md, sub/c.md and the link to it were not read again; b.md was.
    assert (report.files_reused, report.changed) == (3, 1)
    documents = {document.doc_id: document for document in _documents(index_dir)[0]}
    assert documents["link.md"].aliases == ("sub/c.md",)
    assert _documents(index_dir) == _documents(_clean(corpus, tmp_path, encoder))


def test_a_file_replaced_by_a_link_to_another_is_noticed(corpus, tmp_path, encoder):
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, encoder, **BUILD)
    (corpus / "b.md").unlink()
    os.symlink("a.md", corpus / "b.md")
    report = build_index(corpus, index_dir, encoder, **BUILD)
    assert report.update and report.rewritten
    documents = {document.doc_id: document for document in _documents(index_dir)[0]}
    assert "b.md" not in documents and documents["a.md"].aliases == ("b.md",)
    assert _documents(index_dir) == _documents(_clean(corpus, tmp_path, encoder))


def test_a_link_pointed_at_another_file_is_noticed(corpus, tmp_path, encoder):
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, encoder, **BUILD)
    (corpus / "link.md").unlink()
    os.symlink("b.md", corpus / "link.md")
    build_index(corpus, index_dir, encoder, **BUILD)
    documents = {document.doc_id: document for document in _documents(index_dir)[0]}
    assert documents["b.md"].aliases == ("link.md",) and documents["sub/c.md"].aliases == ()
    assert _documents(index_dir) == _documents(_clean(corpus, tmp_path, encoder))


def test_a_section_moved_to_another_file_reuses_its_vectors(corpus, tmp_path, encoder):
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, encoder, **BUILD)
    (corpus / "a.md").write_text("# Kitchen notes\n\n" + _section("eggs", 6))
    (corpus / "b.md").write_text("# Kitchen notes\n\n" + _section("soup", 6) + "\n" + _section("bread", 6))
    report = build_index(corpus, index_dir, encoder, **BUILD)
    assert report.changed == 2
    assert report.passages_embedded == 0  # every passage's text was in the previous index, in either file
    clean = _clean(corpus, tmp_path, encoder)
    assert _documents(index_dir) == _documents(clean)
    ours, theirs = _vectors_by_passage(index_dir, encoder), _vectors_by_passage(clean, encoder)
    assert ours.keys() == theirs.keys()
    assert max(float(np.abs(ours[key] - theirs[key]).max()) for key in ours) <= 1e-6


def test_an_update_says_where_its_time_went(corpus, tmp_path, encoder):
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, encoder, **BUILD)
    _touch_other_file(corpus)
    report = build_index(corpus, index_dir, encoder, **BUILD)
    assert set(report.phases) == PHASES
    assert all(seconds >= 0 for seconds in report.phases.values())
    assert sum(report.phases.values()) <= report.seconds


@pytest.mark.parametrize("make_link", [True, False])
def test_a_stat_line_is_the_status_of_the_path_and_of_what_it_names(corpus, make_link):
    """One status for a file that is not a link, two for a link: the line says the same as both calls would."""
    from qa.ingest.corpus import _stat_line

    path = corpus / ("link.md" if make_link else "a.md")
    line = _stat_line("x.md", str(path))
    parts = line.split("\0")
    looks = [os.lstat(path), os.stat(path)]
    expected = [f"{i.st_dev}:{i.st_ino}:{i.st_mode}:{i.st_size}:{i.st_mtime_ns}:{i.st_ctime_ns}" for i in looks]
    assert parts == ["x.md", *expected]
    assert (parts[1] == parts[2]) is not make_link


def test_a_dangling_link_has_the_error_in_its_stat_line_and_is_skipped(corpus):
    os.symlink("missing.md", corpus / "dangling.md")
    from qa.ingest.corpus import _stat_line

    assert _stat_line("dangling.md", str(corpus / "dangling.md")).endswith("\0error 2")
    scan = scan_corpus(corpus)
    assert {s.doc_id: s.reason for s in scan.skipped}["dangling.md"].startswith("symbolic link cannot be followed")


def test_a_reused_scan_equals_a_fresh_one_and_keeps_the_stamp(corpus):
    fresh = scan_corpus(corpus)
    reuse = {
        path: ReusableFile(fresh.stats[path], document)
        for document in fresh.documents
        for path in (document.doc_id, *document.aliases)
    }
    again = scan_corpus(corpus, reuse=reuse)
    assert again.reused == 4
    assert (again.documents, again.skipped, again.stats) == (fresh.documents, fresh.skipped, fresh.stats)
    assert again.fingerprint == fresh.fingerprint and again.stamp == fresh.stamp == corpus_stamp(corpus)


def test_the_postings_lookup_reuses_what_one_pass_over_every_chunk_reuses(corpus, tmp_path, encoder, monkeypatch):
    """Vectors found through the previous segments' postings are the ones a pass over all their chunks finds."""
    import shutil

    import qa.index.store
    from qa.index.manifest import Manifest

    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, encoder, **BUILD)
    (corpus / "d.md").write_text("# Kitchen notes\n\n" + _section("tea", 5))
    build_index(corpus, index_dir, encoder, **BUILD)  # a second segment, so both are searched
    # Sections moved and copied between files, old and new, beside passages never seen.
    (corpus / "a.md").write_text("# Kitchen notes\n\n" + _section("eggs", 6) + "\n" + _section("tea", 5))
    (corpus / "e.md").write_text("# Kitchen notes\n\n" + _section("bread", 6) + "\n" + _section("jam", 3))
    copy = tmp_path / "copy"
    shutil.copytree(index_dir, copy)
    looked_up = []
    real = qa.index.store._lookup_candidates
    monkeypatch.setattr(qa.index.store, "_lookup_candidates", lambda *a: looked_up.append(real(*a)) or looked_up[-1])
    ours = build_index(corpus, index_dir, encoder, **BUILD)
    assert looked_up and all(ids is not None for ids in looked_up)  # no segment was read whole
    monkeypatch.setattr(qa.index.store, "POSTINGS_LOOKUP_MAX", 0)
    theirs = build_index(corpus, copy, encoder, **BUILD)
    assert ours.passages_reused == theirs.passages_reused > 0
    assert ours.passages_embedded == theirs.passages_embedded > 0
    newest = Manifest.read(index_dir).segments[-1]["dir"]
    for name in ("vectors.f32", "sentences.i8", "keywords.bin"):
        assert (index_dir / newest / name).read_bytes() == (copy / newest / name).read_bytes(), name
    assert _documents(index_dir) == _documents(copy)


def test_a_passage_without_words_is_looked_up_in_every_chunk(corpus, tmp_path, encoder):
    index_dir = tmp_path / "index"
    (corpus / "rule.txt").write_text("----\n")
    build_index(corpus, index_dir, encoder, **BUILD)
    (corpus / "rule2.txt").write_text("----\n\n")  # other bytes, the same passage text, and no word in it
    report = build_index(corpus, index_dir, encoder, **BUILD)
    assert report.added == 1 and report.passages_embedded == 0
