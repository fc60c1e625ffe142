"""The vector file: one memory-mapped copy of each passage vector, searched exactly as the flat FAISS index it
replaced, with PQ codes beside it for the approximate kind, and checked like every other index file."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from conftest import DATA, SEEDS

import qa.index.vectors as vectors_module
from qa.config import Settings
from qa.errors import IndexCorrupt
from qa.index.indexer import build_index
from qa.index.manifest import (
    CODES_FILE,
    INDEX_FILES,
    MANIFEST_FILE,
    SENTENCES_FILE,
    VECTORS_FILE,
    Manifest,
    file_checksum,
)
from qa.index.snapshot import open_snapshot
from qa.index.vectors import APPROXIMATE, EXACT, VectorIndex
from qa.search.service import SearchService

DEFAULTS = Settings()
BUILD = dict(chunk_size=DEFAULTS.chunk_size, chunk_overlap=DEFAULTS.chunk_overlap, embed_title=DEFAULTS.embed_title)
QUESTIONS = [
    json.loads(line)["question"] for line in (DATA / "seeds_questions.jsonl").read_text(encoding="utf-8").splitlines()
]
# The seeds' answers as the code before this file recorded them (tests/data/seeds_answers_f093d5c.json): float32
# passage and sentence vectors in SQLite, a flat FAISS index.
RECORDED = json.loads((DATA / "seeds_answers_f093d5c.json").read_text(encoding="utf-8"))
# How far the best-sentence blend may move with 8-bit sentence vectors (a weighted share of a cosine that moves by
# well under 0.01); passages that trade places did so within this of each other.
BLEND_TOLERANCE = 0.003


def _queries(encoder, count: int, seed: int) -> np.ndarray:
    """Real questions' vectors and random unit vectors."""
    asked = encoder.encode(QUESTIONS[: count // 2])
    random = np.random.default_rng(seed).standard_normal((count - len(asked), 384)).astype(np.float32)
    return np.vstack([asked, random / np.linalg.norm(random, axis=1, keepdims=True)])


def _mapped_paths() -> list[str]:
    """Files this process has mapped into memory."""
    with open("/proc/self/maps", encoding="utf-8") as maps:
        return [line.split(maxsplit=5)[5].strip() for line in maps if len(line.split(maxsplit=5)) == 6]


def _open_descriptors() -> list[str]:
    """Files this process holds a descriptor on."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            found.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def approximate_index(encoder, tmp_path_factory):
    """The seeds indexed with the approximate kind forced on (the threshold lowered while it is built)."""
    index_dir = tmp_path_factory.mktemp("approximate") / "index"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vectors_module, "EXACT_MAX_VECTORS", 0)
        patch.setattr(vectors_module, "APPROXIMATE_MIN_VECTORS", 50)
        build_index(SEEDS, index_dir, encoder, **BUILD)
    return index_dir


@pytest.mark.parametrize("n_queries, k", [(1, 1), (7, 10), (33, 17), (64, 200)])
def test_exact_search_gives_the_ids_and_scores_of_the_flat_faiss_index_it_replaced(seeds_index, encoder, n_queries, k):
    import faiss

    index = VectorIndex.load(seeds_index / VECTORS_FILE)
    assert index.kind == EXACT
    vectors = index.rows_at(np.arange(len(index)))
    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(index.dimension))
    flat.add_with_ids(vectors, np.asarray(index.ids))
    queries = _queries(encoder, n_queries, n_queries)
    scores, ids = index.search(queries, k)
    expected_scores, expected_ids = flat.search(queries, min(k, len(index)))
    assert np.array_equal(ids, expected_ids)
    assert np.abs(scores - expected_scores).max() <= 1e-5


def test_dense_answers_on_the_seeds_are_those_recorded_before_the_vector_file(service):
    dense = [(q, hits) for q, mode, hits in RECORDED["answers"] if mode == "dense"]
    assert len(dense) == len(QUESTIONS)
    for number, recorded in dense:
        hits = service.search(QUESTIONS[number], RECORDED["top_k"], mode="dense").results
        assert [(h.citation.source, h.citation.start, h.citation.end) for h in hits] == [tuple(r[:3]) for r in recorded]
        assert all(abs(h.score - r[3]) <= 1e-5 for h, r in zip(hits, recorded))


@pytest.mark.parametrize("mode", ["hybrid", "keyword"])
def test_blended_answers_move_only_within_the_8_bit_tolerance_and_keep_their_top_passage(service, mode):
    for number, recorded_mode, recorded in RECORDED["answers"]:
        if recorded_mode != mode:
            continue
        hits = service.search(QUESTIONS[number], RECORDED["top_k"], mode=mode).results
        now = {(h.citation.source, h.citation.start): h.score for h in hits}
        before = {(r[0], r[1]): r[3] for r in recorded}
        assert (hits[0].citation.source, hits[0].citation.start) == tuple(recorded[0][:2])
        for place in now.keys() & before.keys():
            assert abs(now[place] - before[place]) <= BLEND_TOLERANCE
        # A passage in only one of the two lists was within the tolerance of the last place in the other.
        for place in now.keys() ^ before.keys():
            score, other = (now, before) if place in now else (before, now)
            assert score[place] <= min(other.values()) + 2 * BLEND_TOLERANCE


def test_highlights_on_the_seeds_keep_the_recorded_sentences(service):
    changed = compared = 0
    for number, mode, recorded in RECORDED["answers"]:
        hits = service.search(QUESTIONS[number], RECORDED["top_k"], mode=mode).results
        for hit in hits:
            match = [r for r in recorded if (r[0], r[1]) == (hit.citation.source, hit.citation.start)]
            if not match:
                continue
            now = {(s.start, s.end) for s in hit.citation.highlight}
            before = {tuple(span) for span in match[0][4]}
            compared += 1
            if now != before:
                # Only a runner-up sentence at the "nearly as good" threshold may come or go, never the best one.
                changed += 1
                assert now & before and len(now ^ before) == 1, (QUESTIONS[number], mode, before, now)
    assert compared > 1_500 and changed <= compared // 100


def test_the_vector_files_are_mapped_and_hold_no_descriptor(index_copy):
    snapshot = open_snapshot(index_copy)
    paths = [str(index_copy / VECTORS_FILE), str(index_copy / SENTENCES_FILE)]
    try:
        assert all(path in _mapped_paths() for path in paths)
        assert not any(path in _open_descriptors() for path in paths)
        vectors = snapshot.vectors
        assert len(vectors) == snapshot.manifest.counts["chunks"]
        assert np.allclose(np.linalg.norm(vectors.reconstruct(list(vectors.ids[:5])), axis=1), 1.0, atol=1e-5)
    finally:
        snapshot.store.close()
    del snapshot, vectors
    # Unmapped with their last arrays, without waiting for the garbage collector.
    assert not any(path in _mapped_paths() for path in paths)


def test_approximate_kind_reads_its_rows_from_the_mapped_file_and_keeps_recall(approximate_index, service, encoder):
    manifest = Manifest.read(approximate_index)
    assert manifest.vectors["kind"] == APPROXIMATE and manifest.files["codes"] == CODES_FILE
    assert set(manifest.checksums) == {*INDEX_FILES, CODES_FILE}
    approximate = SearchService.open(Settings(index_dir=approximate_index), encoder=encoder)
    vectors = approximate.dense.vectors
    assert vectors.kind == APPROXIMATE and str(approximate_index / VECTORS_FILE) in _mapped_paths()
    exact = service.dense.vectors
    queries = _queries(encoder, 40, 3)
    _, found = vectors.search(queries, 10)
    _, truth = exact.search(queries, 10)
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found.tolist(), truth.tolist())])
    assert recall >= 0.98
    ids = list(exact.ids[::9])
    assert np.array_equal(vectors.reconstruct(ids), exact.reconstruct(ids))
    allowed = np.asarray(exact.ids[::4])
    _, filtered = vectors.search(queries, 5, allowed=allowed)
    assert set(filtered.ravel().tolist()) <= set(allowed.tolist())
    for question in QUESTIONS[:10]:
        ours = [(h.citation.source, h.citation.start) for h in approximate.search(question, 5, mode="dense").results]
        theirs = [(h.citation.source, h.citation.start) for h in service.search(question, 5, mode="dense").results]
        assert ours == theirs
    approximate.close()


@pytest.mark.parametrize("damage", ["truncate", "flip"])
@pytest.mark.parametrize("name", [VECTORS_FILE, SENTENCES_FILE, CODES_FILE])
def test_a_truncated_or_modified_vector_or_codes_file_is_refused(approximate_index, tmp_path, encoder, damage, name):
    index_dir = tmp_path / "index"
    shutil.copytree(approximate_index, index_dir)
    path = index_dir / name
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt, match="does not match its manifest checksum"):
        SearchService.open(Settings(index_dir=index_dir), encoder=encoder)


def test_an_approximate_index_whose_manifest_lists_no_codes_checksum_is_refused(approximate_index, tmp_path, encoder):
    index_dir = tmp_path / "index"
    shutil.copytree(approximate_index, index_dir)
    manifest = json.loads((index_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    del manifest["checksums"][CODES_FILE]
    (index_dir / MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexCorrupt, match=f"no checksum for {CODES_FILE}"):
        SearchService.open(Settings(index_dir=index_dir), encoder=encoder)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda data: b"NOTQAVEC" + data[8:], "not a vector file"),
        (lambda data: data + b"\0" * 4, "not a vector file"),
        (lambda data: data[:8] + (0).to_bytes(4, "little") + data[12:], "not a vector file"),
        (lambda data: data[:40] + data[32:40] + data[48:], "ids out of order"),
        (lambda data: data[:10], "too short"),
    ],
    ids=["magic", "size", "dimension", "ids", "short"],
)
def test_a_vector_file_that_matches_its_checksum_but_not_its_format_is_refused(index_copy, encoder, edit, message):
    # What a build writing a wrong file would leave: the checksum vouches for it, the format check does not.
    path = index_copy / VECTORS_FILE
    path.write_bytes(edit(path.read_bytes()))
    manifest = Manifest.read(index_copy)
    manifest.checksums[VECTORS_FILE] = file_checksum(path)
    manifest.write(index_copy)
    with pytest.raises(IndexCorrupt, match=message):
        SearchService.open(Settings(index_dir=index_copy), encoder=encoder)


@pytest.mark.parametrize(
    "kind, message", [("fewer", "do not match the vector rows"), ("flat", "unexpected index type")]
)
def test_codes_that_do_not_describe_the_rows_are_refused_even_with_a_matching_checksum(
    approximate_index, tmp_path, encoder, kind, message
):
    import faiss

    index_dir = tmp_path / "index"
    shutil.copytree(approximate_index, index_dir)
    stored = VectorIndex.load(index_dir / VECTORS_FILE)
    vectors = stored.rows_at(np.arange(len(stored) - 1))
    if kind == "fewer":
        codes = faiss.IndexPQFastScan(stored.dimension, stored.dimension // 2, 4, faiss.METRIC_INNER_PRODUCT)
        codes.train(vectors)
    else:
        codes = faiss.IndexFlatIP(stored.dimension)
    codes.add(vectors)
    faiss.write_index(codes, str(index_dir / CODES_FILE))
    manifest = Manifest.read(index_dir)
    manifest.checksums[CODES_FILE] = file_checksum(index_dir / CODES_FILE)
    manifest.write(index_dir)
    with pytest.raises(IndexCorrupt, match=message):
        SearchService.open(Settings(index_dir=index_dir), encoder=encoder)


def _resident_kb(address: int) -> int:
    """Kilobytes of the mapping that starts at ``address`` that this process has resident (smaps' Rss)."""
    with open("/proc/self/smaps", encoding="utf-8") as smaps:
        lines = smaps.read().splitlines()
    start = f"{address:x}-"
    for number, line in enumerate(lines):
        if line.startswith(start):
            return next(int(row.split()[1]) for row in lines[number + 1 :] if row.startswith("Rss:"))
    raise AssertionError(f"no mapping at {address:x}")


@pytest.mark.skipif(not hasattr(os, "posix_fadvise") or not os.path.exists("/proc/self/smaps"), reason="Linux only")
@pytest.mark.parametrize("rows", [1_000, 4_000])
def test_a_served_rows_file_is_resident_whole_only_when_searches_scan_it_whole(tmp_path, monkeypatch, rows):
    # Above EXACT_MAX_VECTORS searches read a few rows each (the re-ranking), so opening the file must not map it
    # all into the server's resident memory; below it every search scans every row, so it is mapped at once.
    monkeypatch.setattr(vectors_module, "EXACT_MAX_VECTORS", 2_000)
    vectors = np.random.default_rng(rows).standard_normal((rows, 384)).astype(np.float32)
    VectorIndex(np.arange(rows, dtype=np.int64), vectors).save(tmp_path / VECTORS_FILE)
    fd = os.open(tmp_path / VECTORS_FILE, os.O_RDONLY)
    try:
        ids, mapped = vectors_module.map_rows(fd, tmp_path / VECTORS_FILE)
    finally:
        os.close(fd)
    size_kb = os.path.getsize(tmp_path / VECTORS_FILE) // 1024
    resident = _resident_kb(mapped.__array_interface__["data"][0] - 8 * rows - vectors_module.ROWS_HEADER_BYTES)
    if rows >= vectors_module.EXACT_MAX_VECTORS:
        assert resident < size_kb // 10  # the ids, checked at open, and not the rows
        assert np.array_equal(mapped[[7, rows - 1]], vectors[[7, rows - 1]])
    elif tuple(int(part) for part in os.uname().release.split(".")[:2]) >= (5, 14):
        assert resident >= size_kb * 9 // 10


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="Linux only")
@pytest.mark.parametrize("limit", [1 << 30, 1 << 20])
def test_a_served_sentences_file_is_resident_whole_only_when_it_is_read_whole(tmp_path, monkeypatch, limit):
    # Within the in-memory limit the file is read whole into memory at open; beyond it searches read their
    # candidates' rows only, so opening it must not make it resident.
    import qa.index.sentence_vectors as sentences_module
    from qa.index.sentence_vectors import SentenceFile, SentenceFileWriter, quantize

    monkeypatch.setattr(sentences_module, "MAX_MEMORY_BYTES", limit)
    writer = SentenceFileWriter(tmp_path / SENTENCES_FILE, 384)
    rng = np.random.default_rng(5)
    for chunk_id in range(2_000):
        writer.add(chunk_id, *quantize(rng.standard_normal((4, 384)).astype(np.float32)))
    writer.close()
    size_kb = os.path.getsize(tmp_path / SENTENCES_FILE) // 1024
    sentences = SentenceFile.load(tmp_path / SENTENCES_FILE)
    resident = _resident_kb(sentences._codes.__array_interface__["data"][0] - sentences_module.SENTENCES_HEADER.size)
    if size_kb * 1024 > limit:
        assert resident < size_kb // 4  # the ids and starts, checked at open, and not the codes
    elif tuple(int(part) for part in os.uname().release.split(".")[:2]) >= (5, 14):
        assert resident >= size_kb * 9 // 10
