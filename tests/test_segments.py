"""Segments: an update adds a segment of what changed and hides what it replaces, and answers exactly as a clean
build of the same corpus does (passages, citations, scores, filters, documents), while the old files stay as they
were; too many segments, or too much hidden, are merged into one."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import SEEDS
from test_cli import run_qa

import qa.index.indexer
import qa.index.snapshot
from qa.config import Settings
from qa.errors import IndexCorrupt
from qa.index.indexer import build_index
from qa.index.manifest import DATABASE_FILE, MANIFEST_FILE, VECTORS_FILE, Manifest
from qa.index.segments import segments_of
from qa.search.filters import SearchFilter
from qa.search.service import SearchService

DEFAULTS = Settings()
BUILD = dict(chunk_size=DEFAULTS.chunk_size, chunk_overlap=DEFAULTS.chunk_overlap, embed_title=DEFAULTS.embed_title)
QUESTIONS = [json.loads(line)["question"] for line in (SEEDS.parent / "tests/data/seeds_questions.jsonl").open()][:24]
QUESTIONS += ["lighthouse keepers and their foghorns", "procuratorial modernization", "tea"]
# The shortest seed document: editing it stays below the hidden-share limit.
SMALL = "004_e4f473833b61ecc8.txt"


def _answers(index_dir, encoder, search_filter=None):
    """Per question and mode: (source, start, end, lines, score) of the top 10."""
    service = SearchService.open(Settings(index_dir=index_dir), encoder=encoder)
    try:
        return {
            (question, mode): [
                (h.citation.source, h.citation.start, h.citation.end, h.citation.line_start, round(h.score, 5))
                for h in service.search(question, top_k=10, mode=mode, search_filter=search_filter).results
            ]
            for question in QUESTIONS
            for mode in ("hybrid", "dense", "keyword")
        }
    finally:
        service.close()


def edit_seeds(corpus):
    """Append a paragraph to one seed document and add a new document (an update that adds a segment)."""
    with (corpus / SMALL).open("a", encoding="utf-8") as handle:
        handle.write("\nA closing paragraph: the meeting also toured a lighthouse and its keepers' foghorns.\n")
    (corpus / "lighthouse.txt").write_text(
        "Lighthouse keepers kept the lamps lit and sounded foghorns in the harbour every foggy night.\n",
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def segmented(tmp_path_factory, encoder):
    """A seeds index updated once into two segments, and a clean build of the updated corpus."""
    root = tmp_path_factory.mktemp("segments")
    corpus = root / "corpus"
    shutil.copytree(SEEDS, corpus)
    index_dir = root / "index"
    build_index(corpus, index_dir, encoder, **BUILD)
    base_inode = os.stat(index_dir / DATABASE_FILE).st_ino
    edit_seeds(corpus)
    report = build_index(corpus, index_dir, encoder, **BUILD)
    clean = root / "clean"
    build_index(corpus, clean, encoder, **BUILD, full=True)
    return {"corpus": corpus, "index": index_dir, "clean": clean, "report": report, "base_inode": base_inode}


def test_an_update_adds_a_segment_and_hides_the_old_version(segmented):
    report, manifest = segmented["report"], Manifest.read(segmented["index"])
    segments = segments_of(manifest)
    assert report.update and report.segments == 2 == len(segments)
    assert (report.added, report.changed, report.removed) == (1, 1, 0)
    assert segments[0].hidden and segments[0].hidden_chunks > 0 and not segments[1].hidden
    assert segments[1].first_chunk == segments[0].end_chunk  # ids never reused
    assert manifest.counts == Manifest.read(segmented["clean"]).counts


def test_an_update_leaves_the_old_segment_files_as_they_were(segmented):
    # Hard links of the same files: nothing of the old segment was rewritten.
    assert os.stat(segmented["index"] / DATABASE_FILE).st_ino == segmented["base_inode"]


def test_a_segmented_index_answers_exactly_as_a_clean_build(segmented, encoder):
    assert _answers(segmented["index"], encoder) == _answers(segmented["clean"], encoder)


@pytest.mark.parametrize(
    "search_filter",
    [SearchFilter(source="00[34]*"), SearchFilter(after="2024-01-01"), SearchFilter(source="lighthouse*")],
)
def test_filters_on_a_segmented_index_equal_a_clean_build(segmented, encoder, search_filter):
    assert _answers(segmented["index"], encoder, search_filter) == _answers(segmented["clean"], encoder, search_filter)


def test_documents_of_a_segmented_index_are_the_current_ones(segmented, encoder):
    ours = SearchService.open(Settings(index_dir=segmented["index"]), encoder=encoder)
    clean = SearchService.open(Settings(index_dir=segmented["clean"]), encoder=encoder)
    try:
        assert ours.store.documents() == clean.store.documents()
        for doc_id, _, _ in clean.store.documents():
            assert ours.store.document(doc_id) == clean.store.document(doc_id)
        assert ours.store.document(SMALL).text.endswith("keepers' foghorns.\n")
        assert len(ours.dense.vectors) == len(clean.dense.vectors)
        undated = SearchFilter(after="2020-01-01")
        assert ours.store.count_undated(undated) == clean.store.count_undated(undated)
    finally:
        ours.close()
        clean.close()


def test_a_segmented_index_is_described_and_searched_from_the_cli(segmented):
    info = run_qa("info", "--index", str(segmented["index"]), "--json")
    assert info.returncode == 0, info.stderr
    body = json.loads(info.stdout)
    assert body["segments"] == 2 and len(body["documents"]) == 6
    text = run_qa("info", "--index", str(segmented["index"]))
    assert "segments:  2 (" in text.stdout
    ask = run_qa("ask", "lighthouse keepers foghorns", "--index", str(segmented["index"]), "--json")
    assert ask.returncode == 0, ask.stderr
    assert json.loads(ask.stdout)["results"][0]["citation"]["source"] == "lighthouse.txt"


def test_updates_past_the_segment_limit_merge_the_later_segments(tmp_path, encoder, monkeypatch):
    monkeypatch.setattr(qa.index.indexer, "MAX_SEGMENTS", 3)
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, encoder, **BUILD)
    base = os.stat(index_dir / DATABASE_FILE).st_ino
    counts = []
    for number in range(4):
        note = f"Note {number}: the archive keeps {number} boxes.\n"
        (corpus / f"note{number}.txt").write_text(note, encoding="utf-8")
        counts.append(build_index(corpus, index_dir, encoder, **BUILD).segments)
    # The third update merges the two later segments into its own; the first segment's files are untouched.
    assert counts == [2, 3, 2, 3]
    assert os.stat(index_dir / DATABASE_FILE).st_ino == base
    clean = tmp_path / "clean"
    build_index(corpus, clean, encoder, **BUILD, full=True)
    assert _answers(index_dir, encoder) == _answers(clean, encoder)


def test_later_segments_outweighing_the_first_merge_everything(tmp_path, encoder, monkeypatch):
    monkeypatch.setattr(qa.index.indexer, "MAX_SEGMENTS", 3)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "first.txt").write_text("The first note: a lighthouse stands on the cape.\n", encoding="utf-8")
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, encoder, **BUILD)
    counts = []
    for path in sorted(SEEDS.glob("*.txt"))[:3]:
        shutil.copy(path, corpus / path.name)
        counts.append(build_index(corpus, index_dir, encoder, **BUILD).segments)
    assert counts == [2, 3, 1]
    assert sorted(os.listdir(index_dir)) == sorted([*Manifest.read(index_dir).files.values(), MANIFEST_FILE])
    clean = tmp_path / "clean"
    build_index(corpus, clean, encoder, **BUILD, full=True)
    assert _answers(index_dir, encoder) == _answers(clean, encoder)


def test_an_update_that_hides_much_of_the_index_merges_it(tmp_path, encoder):
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, encoder, **BUILD)
    for path in sorted(corpus.iterdir())[:3]:
        path.write_text(path.read_text(encoding="utf-8") + "\nRevised.\n", encoding="utf-8")
    report = build_index(corpus, index_dir, encoder, **BUILD)
    assert report.update and report.segments == 1 and report.passages_reused > 0


def test_a_damaged_segment_file_is_refused(segmented, tmp_path, encoder):
    copy = tmp_path / "index"
    shutil.copytree(segmented["index"], copy)
    target = copy / "seg-000002" / VECTORS_FILE
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt, match="seg-000002"):
        SearchService.open(Settings(index_dir=copy), encoder=encoder)


def test_a_manifest_naming_a_segment_outside_the_index_is_refused(segmented, tmp_path, encoder):
    copy = tmp_path / "index"
    shutil.copytree(segmented["index"], copy)
    manifest = json.loads((copy / MANIFEST_FILE).read_text(encoding="utf-8"))
    manifest["segments"][1]["dir"] = "../elsewhere"
    (copy / MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexCorrupt, match="elsewhere"):
        SearchService.open(Settings(index_dir=copy), encoder=encoder)


def test_vectors_of_a_segmented_index_equal_a_clean_builds_by_passage(segmented, encoder):
    ours = SearchService.open(Settings(index_dir=segmented["index"]), encoder=encoder)
    clean = SearchService.open(Settings(index_dir=segmented["clean"]), encoder=encoder)
    try:

        def by_passage(service):
            ids = [int(i) for i in service.dense.vectors.ids]
            chunks = service.store.chunks(ids)
            vectors = service.dense.vectors.reconstruct(ids)
            return {(chunks[i].doc_id, chunks[i].start): vectors[n] for n, i in enumerate(ids)}

        mine, theirs = by_passage(ours), by_passage(clean)
        assert mine.keys() == theirs.keys()
        assert max(float(np.abs(mine[key] - theirs[key]).max()) for key in mine) <= 1e-6
    finally:
        ours.close()
        clean.close()


def test_reopening_after_an_update_hashes_only_the_new_segments_files(tmp_path, encoder, monkeypatch):
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, encoder, **BUILD)
    SearchService.open(Settings(index_dir=index_dir), encoder=encoder).close()
    (corpus / "lighthouse.txt").write_text("Lighthouse keepers sounded the foghorns.\n", encoding="utf-8")
    assert build_index(corpus, index_dir, encoder, **BUILD).segments == 2
    hashed = []
    real = hashlib.sha256
    monkeypatch.setattr(qa.index.snapshot, "hashlib", SimpleNamespace(sha256=lambda: hashed.append(1) or real()))
    SearchService.open(Settings(index_dir=index_dir), encoder=encoder).close()
    new_files = [name for name in Manifest.read(index_dir).checksums if name.startswith("seg-000002/")]
    assert len(hashed) == len(new_files) == 4


def test_a_file_damaged_after_it_was_verified_is_refused(tmp_path, encoder):
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, encoder, **BUILD)
    SearchService.open(Settings(index_dir=index_dir), encoder=encoder).close()
    with (index_dir / VECTORS_FILE).open("r+b") as handle:  # in place: same inode, a later modification time
        handle.seek(-1, os.SEEK_END)
        last = handle.read(1)
        handle.seek(-1, os.SEEK_END)
        handle.write(bytes([last[0] ^ 0xFF]))
    with pytest.raises(IndexCorrupt, match="does not match its manifest checksum"):
        SearchService.open(Settings(index_dir=index_dir), encoder=encoder)


def test_an_update_that_only_removes_documents_answers_as_a_clean_build(tmp_path, encoder):
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    (corpus / "lighthouse.txt").write_text("Lighthouse keepers sounded the foghorns.\n", encoding="utf-8")
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, encoder, **BUILD)
    (corpus / "lighthouse.txt").unlink()
    report = build_index(corpus, index_dir, encoder, **BUILD)
    assert (report.removed, report.segments, report.passages_embedded) == (1, 2, 0)
    clean = tmp_path / "clean"
    build_index(corpus, clean, encoder, **BUILD, full=True)
    assert _answers(index_dir, encoder) == _answers(clean, encoder)
    assert run_qa("info", "--index", str(index_dir)).returncode == 0


def test_qa_index_merge_writes_one_segment_without_embedding(segmented, tmp_path, encoder):
    copy = tmp_path / "index"
    shutil.copytree(segmented["index"], copy)
    merged = run_qa("index", str(segmented["corpus"]), "--index", str(copy), "--merge", "--json")
    assert merged.returncode == 0, merged.stderr
    body = json.loads(merged.stdout)
    assert (body["segments"], body["passages_embedded"], body["mode"]) == (1, 0, "update")
    assert _answers(copy, encoder) == _answers(segmented["clean"], encoder)


def test_quotes_are_checked_in_every_segment(segmented, encoder):
    from qa.search.verify import GivenCitation, Verifier

    service = SearchService.open(Settings(index_dir=segmented["index"]), encoder=encoder)
    try:
        verifier = Verifier(service)
        added = verifier.verify("Lighthouse keepers kept the lamps lit and sounded foghorns in the harbour")
        assert added.pieces[0].verdict == "exact"
        assert added.pieces[0].matches[0].citation.source == "lighthouse.txt"
        edited = verifier.verify(
            "the meeting also toured a lighthouse and its keepers' foghorns",
            GivenCitation.of(SMALL),
        )
        assert edited.pieces[0].verdict == "exact" and edited.pieces[0].citation_check.correct
    finally:
        service.close()


def test_an_open_service_keeps_its_own_index_while_an_update_adds_a_segment(tmp_path, encoder):
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, encoder, **BUILD)
    before = _answers(index_dir, encoder)
    service = SearchService.open(Settings(index_dir=index_dir), encoder=encoder)
    try:
        old_text = service.store.document(SMALL).text
        edit_seeds(corpus)
        assert build_index(corpus, index_dir, encoder, **BUILD).segments == 2
        # The open service still reads the files it opened: the old version, not the new segment.
        assert service.store.document(SMALL).text == old_text
        assert service.store.document("lighthouse.txt") is None
        hits = service.search("lighthouse keepers and their foghorns", top_k=10).results
        assert [(h.citation.source, h.citation.start) for h in hits] == [
            (source, start) for source, start, *_ in before["lighthouse keepers and their foghorns", "hybrid"]
        ]
    finally:
        service.close()
    assert SearchService.open(Settings(index_dir=index_dir), encoder=encoder).store.document("lighthouse.txt")


def test_a_segmented_index_read_from_its_mapped_sentence_files_answers_as_a_clean_build(
    segmented, encoder, monkeypatch
):
    import qa.index.sentence_vectors

    monkeypatch.setattr(
        qa.index.sentence_vectors, "MAX_MEMORY_BYTES", 0
    )  # every passage's sentences read from the files
    assert _answers(segmented["index"], encoder) == _answers(segmented["clean"], encoder)
