"""Index directory: what a build writes, atomic replacement, and refusal of indexes that do not fit."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import SEEDS

from qa.config import Settings
from qa.errors import BuildInProgress, ConfigError, CorpusError, IndexCorrupt, IndexIncompatible, IndexNotFound
from qa.index.indexer import BuildDefaults, build_index, ensure_index
from qa.index.manifest import (
    DATABASE_FILE,
    FORMAT_VERSION,
    INDEX_FILES,
    MANIFEST_FILE,
    SENTENCES_FILE,
    VECTORS_FILE,
    Manifest,
)
from qa.index.store import StoreReader
from qa.index.vectors import VectorIndex
from qa.search.service import SearchService


class FailingEncoder:
    """The real encoder for ``fail_after`` calls, then an error: a build dying half-way."""

    def __init__(self, real, fail_after: int) -> None:
        self._real = real
        self._calls = 0
        self.fail_after = fail_after
        self.model_id, self.dimension, self.max_tokens = real.model_id, real.dimension, real.max_tokens
        self.backend, self.precision = real.backend, real.precision

    def count_tokens(self, texts):
        return self._real.count_tokens(texts)

    def encode_with_spans(self, texts, spans, **kwargs):
        self._calls += 1
        if self._calls > self.fail_after:
            raise RuntimeError("simulated crash during embedding")
        return self._real.encode_with_spans(texts, spans, **kwargs)


def _answers(index_dir, encoder, questions=("Who presided over the meeting?", "railway transportation cases")):
    service = SearchService.open(Settings(index_dir=index_dir), encoder=encoder)
    return [service.search(q, 5).as_dict()["results"] for q in questions]


def test_build_writes_manifest_vectors_and_database_only(seeds_index):
    assert sorted(p.name for p in seeds_index.iterdir()) == sorted([MANIFEST_FILE, *INDEX_FILES])
    manifest = json.loads((seeds_index / MANIFEST_FILE).read_text(encoding="utf-8"))
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["model"] == "all-MiniLM-L6-v2"
    assert manifest["dimension"] == 384
    assert manifest["chunking"]["unit"] == "tokens" and manifest["chunking"]["size"] > 0
    assert manifest["counts"]["documents"] == 5 and manifest["counts"]["chunks"] > 50
    assert len(manifest["corpus"]["fingerprint"]) == 64
    assert manifest["created"].endswith("+00:00")
    assert set(manifest["checksums"]) == set(INDEX_FILES)


def _stored_vectors(index_dir):
    """The ids and vectors of an index's vector file."""
    index = VectorIndex.load(index_dir / VECTORS_FILE)
    return index.ids, index.rows_at(np.arange(len(index)))


def test_faiss_ids_are_sqlite_chunk_ids_and_vectors_are_unit_length(seeds_index):
    store = StoreReader(seeds_index / DATABASE_FILE)
    ids, vectors = _stored_vectors(seeds_index)
    assert len(ids) == Manifest.read(seeds_index).counts["chunks"]
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert set(store.chunks(ids.tolist())) == set(ids.tolist())


@pytest.mark.parametrize("n_queries, k", [(1, 1), (7, 5), (33, 17), (64, 200)])
def test_faiss_results_equal_brute_force_cosine(seeds_index, encoder, n_queries, k):
    ids, vectors = _stored_vectors(seeds_index)
    index = VectorIndex.load(seeds_index / VECTORS_FILE)
    rng = np.random.default_rng(n_queries)
    # Real questions' embeddings plus random unit vectors, in awkward batch sizes.
    queries = encoder.encode([f"question {i} about procuratorial work in Guizhou" for i in range(n_queries // 2)])
    random = rng.normal(size=(n_queries - len(queries), 384)).astype(np.float32)
    queries = np.vstack([queries, random / np.linalg.norm(random, axis=1, keepdims=True)])
    scores, found = index.search(queries, k)
    cosine = queries @ vectors.T
    expected_k = min(k, len(ids))
    for row in range(n_queries):
        order = np.argsort(-cosine[row], kind="stable")[:expected_k]
        assert np.allclose(scores[row], cosine[row][order], atol=1e-5)
        # Ties aside, the same ids in the same order.
        assert np.allclose(cosine[row][np.searchsorted(ids, found[row])], scores[row], atol=1e-5)


def test_build_failing_half_way_leaves_previous_index_loadable(index_copy, encoder):
    before = _answers(index_copy, encoder)
    manifest_before = (index_copy / MANIFEST_FILE).read_text(encoding="utf-8")
    with pytest.raises(RuntimeError, match="simulated crash"):
        # Documents and chunks are written by then; the vectors never come.
        build_index(SEEDS, index_copy, FailingEncoder(encoder, fail_after=0), chunk_size=64, chunk_overlap=8)
    assert (index_copy / MANIFEST_FILE).read_text(encoding="utf-8") == manifest_before
    assert _answers(index_copy, encoder) == before
    assert not list(index_copy.parent.glob(".copy.building-*"))


def test_leftover_staging_directory_from_a_killed_build_is_removed(index_copy, encoder, tmp_path):
    leftover = tmp_path / ".copy.building-99999-deadbeef"
    leftover.mkdir()
    (leftover / "store.sqlite3").write_bytes(b"half written")
    build_index(SEEDS, index_copy, encoder, chunk_size=128, chunk_overlap=16)
    assert not leftover.exists()
    assert Manifest.read(index_copy).chunking["overlap"] == 16


def test_rebuild_replaces_index_in_place(index_copy, encoder):
    report = build_index(SEEDS, index_copy, encoder, chunk_size=200, chunk_overlap=0)
    assert Manifest.read(index_copy).chunking["size"] == 200
    assert Manifest.read(index_copy).counts["chunks"] == report.chunks


def test_manifest_from_another_model_is_refused(index_copy, encoder):
    manifest = json.loads((index_copy / MANIFEST_FILE).read_text(encoding="utf-8"))
    manifest["model"] = "sentence-transformers/all-mpnet-base-v2"
    (index_copy / MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexIncompatible, match="all-mpnet-base-v2"):
        SearchService.open(Settings(index_dir=index_copy, model="all-MiniLM-L6-v2"))
    with pytest.raises(IndexIncompatible, match="needs model"):
        SearchService.open(Settings(index_dir=index_copy), encoder=encoder)


@pytest.mark.parametrize(
    "field, value, error, message",
    [
        ("format_version", 99, IndexIncompatible, "format version 99"),
        # An index from before keyword search and highlights (format 1) is refused, never misread.
        ("format_version", 1, IndexIncompatible, "format version 1; .* rebuild it"),
        ("dimension", 768, IndexIncompatible, "768-dimensional"),
        ("counts", {"documents": 5, "chunks": 3, "skipped": 0}, IndexCorrupt, "does not match its manifest"),
    ],
)
def test_manifest_that_does_not_fit_is_refused(index_copy, encoder, field, value, error, message):
    manifest = json.loads((index_copy / MANIFEST_FILE).read_text(encoding="utf-8"))
    manifest[field] = value
    (index_copy / MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(error, match=message):
        SearchService.open(Settings(index_dir=index_copy), encoder=encoder)


@pytest.mark.parametrize("name", [VECTORS_FILE, SENTENCES_FILE, DATABASE_FILE])
def test_truncated_index_file_is_refused(index_copy, encoder, name):
    path = index_copy / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(IndexCorrupt, match="checksum"):
        SearchService.open(Settings(index_dir=index_copy), encoder=encoder)


@pytest.mark.parametrize("name", [VECTORS_FILE, SENTENCES_FILE, DATABASE_FILE])
def test_tampered_index_file_of_the_same_size_is_refused(index_copy, encoder, name):
    path = index_copy / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle: same size, different content
    path.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt, match="does not match its manifest checksum"):
        SearchService.open(Settings(index_dir=index_copy), encoder=encoder)


def test_missing_index_is_a_clear_error(tmp_path):
    with pytest.raises(IndexNotFound, match="qa index"):
        SearchService.open(Settings(index_dir=tmp_path / "nothing"))


def test_a_swap_cut_short_is_named_by_readers_and_put_back_by_the_next_build_step(index_copy, encoder):
    """Killed between the two renames of a swap (where renameat2 cannot exchange): the index sits under its retired
    name. Readers rename and delete nothing; they say where it is. The build step of `qa serve` puts it back."""
    before = _answers(index_copy, encoder)
    retired = index_copy.with_name(".copy.retired-0badf00d")
    index_copy.rename(retired)
    listing = sorted(p.name for p in index_copy.parent.iterdir())
    for read in (
        lambda: SearchService.open(Settings(index_dir=index_copy), encoder=encoder),
        lambda: Manifest.read(index_copy),
    ):
        with pytest.raises(IndexNotFound, match=f"cut short.*kept at {retired}"):
            read()
    assert sorted(p.name for p in index_copy.parent.iterdir()) == listing
    report, reason = ensure_index(
        index_copy,
        corpus=SEEDS,
        default_corpus=None,
        model=None,
        chunk_size=None,
        chunk_overlap=None,
        defaults=BuildDefaults("all-MiniLM-L6-v2", 128, 24, True, "int8"),
        load_model=lambda name, precision: encoder,
    )
    assert not retired.exists() and _answers(index_copy, encoder) == before
    assert report is None or report.passages_embedded == 0, "the index came back; nothing was embedded again"


def test_unparseable_manifest_is_refused(index_copy):
    (index_copy / MANIFEST_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexCorrupt, match="unreadable manifest"):
        SearchService.open(Settings(index_dir=index_copy))


def test_chunk_size_over_the_model_limit_is_refused_before_anything_is_written(tmp_path, encoder):
    with pytest.raises(ConfigError, match="exceeds the model's limit of 254"):
        build_index(SEEDS, tmp_path / "idx", encoder, chunk_size=400, chunk_overlap=0)
    assert not (tmp_path / "idx").exists()


def test_corpus_with_nothing_indexable_is_refused_and_old_index_kept(index_copy, encoder, tmp_path):
    empty = tmp_path / "empty-corpus"
    empty.mkdir()
    (empty / "blank.txt").write_text("", encoding="utf-8")
    with pytest.raises(CorpusError, match="nothing to index"):
        build_index(empty, index_copy, encoder, chunk_size=128, chunk_overlap=0)
    Manifest.read(index_copy)


def test_folder_that_is_not_an_index_is_never_overwritten(tmp_path, encoder):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("irreplaceable", encoding="utf-8")
    with pytest.raises(IndexCorrupt, match="not a qa index"):
        build_index(SEEDS, precious, encoder, chunk_size=128, chunk_overlap=0)
    assert (precious / "thesis.txt").read_text(encoding="utf-8") == "irreplaceable"


def test_second_concurrent_build_is_refused(index_copy, encoder):
    import fcntl

    with open(index_copy.parent / f".{index_copy.name}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(BuildInProgress, match="another `qa index`"):
            build_index(SEEDS, index_copy, encoder, chunk_size=128, chunk_overlap=0)


def test_committed_default_index_is_fresh_for_the_seeds_and_loads(encoder):
    from conftest import ROOT

    from qa.index.indexer import staleness
    from qa.ingest.corpus import scan_corpus

    defaults = Settings()
    reason = staleness(
        ROOT / "embeddings",
        scan_corpus(SEEDS),
        model=encoder.model_id,
        chunk_size=defaults.chunk_size,
        chunk_overlap=defaults.chunk_overlap,
        embed_title=defaults.embed_title,
        precision=defaults.precision,
    )
    assert reason is None, f"embeddings/ is stale ({reason}): rebuild it with `qa index seeds`"
    service = SearchService.open(Settings(index_dir=ROOT / "embeddings"))
    assert service.dense.encoder.precision == defaults.precision
    assert service.search("railway procuratorates", 1).results


def test_open_service_keeps_answering_from_its_own_index_after_a_rebuild_swaps_the_directory(
    index_copy, encoder, tmp_path
):
    from concurrent.futures import ThreadPoolExecutor

    service = SearchService.open(Settings(index_dir=index_copy), encoder=encoder)
    question = "railway procuratorates in Guizhou"
    before = service.search(question, 5).as_dict()["results"]
    other = tmp_path / "other-corpus"
    other.mkdir()
    (other / "tea.txt").write_text(
        "Tea notes\nGreen tea steeps for two minutes. Railway tea is served on trains.", encoding="utf-8"
    )
    build_index(other, index_copy, encoder, chunk_size=128, chunk_overlap=0)
    # Fresh threads (as a server's pool would use) must still see one consistent, old index: never the new
    # store's rows joined to the old vectors' ids.
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: service.search(question, 5).as_dict()["results"], range(8)))
    assert all(r == before for r in results)
    assert (
        SearchService.open(Settings(index_dir=index_copy), encoder=encoder)
        .search(question, 1)
        .results[0]
        .citation.source
        == "tea.txt"
    )
