"""Incremental `qa index`: an update copies unchanged documents, embeds only new passage texts, and ends up
exactly where a clean rebuild of the same corpus would."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3

import numpy as np
import pytest
from conftest import SEEDS
from test_cli import run_qa

from qa.config import Settings
from qa.index.indexer import BuildDefaults, build_index, ensure_index
from qa.index.manifest import DATABASE_FILE, KEYWORDS_FILE, MANIFEST_FILE, VECTORS_FILE
from qa.index.store import keyword_rows, text_hash
from qa.index.vectors import VectorIndex
from qa.search.service import SearchService

DEFAULTS = Settings()
BUILD = dict(chunk_size=DEFAULTS.chunk_size, chunk_overlap=DEFAULTS.chunk_overlap, embed_title=DEFAULTS.embed_title)
QUESTIONS = (
    "Who led the research group to Guizhou?",
    "railway procuratorates",
    "minor crimes governance",
    "How long does green tea steep?",
    "What did the Supreme People's Court discuss at the work exchange meeting?",
)
CHANGED = "002_7611d074bac0c8e6.txt"
DELETED = "000_d01fc28f19d529a8.txt"


class CountingEncoder:
    """The real encoder, recording every text it is asked to embed."""

    def __init__(self, real) -> None:
        self._real = real
        self.texts: list[str] = []
        self.model_id, self.dimension, self.max_tokens = real.model_id, real.dimension, real.max_tokens
        self.backend, self.precision = real.backend, real.precision

    def count_tokens(self, texts):
        return self._real.count_tokens(texts)

    def encode(self, texts, **kwargs):
        return self._real.encode(texts, **kwargs)

    def encode_with_spans(self, texts, spans, **kwargs):
        self.texts.extend(texts)
        return self._real.encode_with_spans(texts, spans, **kwargs)


def _hits(index_dir, encoder):
    """Per question and mode: (document, start, end, score) of the top 10."""
    service = SearchService.open(Settings(index_dir=index_dir), encoder=encoder)
    return {
        (question, mode): [
            (h.citation.source, h.citation.start, h.citation.end, h.score)
            for h in service.search(question, 10, mode=mode).results
        ]
        for question in QUESTIONS
        for mode in ("hybrid", "dense", "keyword")
    }


def _rows(index_dir):
    """Every chunk row with its document, and every embed-input key."""
    db = sqlite3.connect(index_dir / DATABASE_FILE)
    try:
        chunks = db.execute(
            'SELECT c.id, d.doc_id, c.ord, c.start, c."end", c.text_hash FROM chunks c'
            " JOIN documents d ON d.id = c.document_id ORDER BY c.id"
        ).fetchall()
        keys = {r[0] for r in db.execute("SELECT text_hash FROM chunks")}
        keywords = list(keyword_rows(db))
    finally:
        db.close()
    # The postings are derived from those rows: equal rows must give the very same file.
    return chunks, keys, (keywords, (index_dir / KEYWORDS_FILE).read_bytes())


def _edit_one_paragraph(path):
    paragraphs = path.read_text(encoding="utf-8").split("\n")
    middle = len(paragraphs) // 2
    paragraphs[middle] = "The procuratorate opened a new office for tea inspections. " + paragraphs[middle]
    path.write_text("\n".join(paragraphs), encoding="utf-8")


@pytest.fixture(scope="module")
def updated(seeds_index, encoder, tmp_path_factory):
    """The seeds index updated after one file is edited, one deleted and two added (one a renamed copy)."""
    root = tmp_path_factory.mktemp("incremental")
    corpus = root / "corpus"
    shutil.copytree(SEEDS, corpus)
    index_dir = root / "idx"
    shutil.copytree(seeds_index, index_dir)
    _, old_keys, _ = _rows(index_dir)

    _edit_one_paragraph(corpus / CHANGED)
    (corpus / DELETED).unlink()
    (corpus / "notes").mkdir()
    (corpus / "notes" / "tea.md").write_text(
        "# Tea notes\n\nGreen tea steeps for two minutes at eighty degrees. Black tea takes four minutes.\n",
        encoding="utf-8",
    )
    # Not byte-identical (an identical copy would be folded into its original as an alias: tests/test_duplicates.py).
    copied = (SEEDS / "004_e4f473833b61ecc8.txt").read_text(encoding="utf-8") + "\n"
    (corpus / "notes" / "meeting-copy.txt").write_text(copied, encoding="utf-8")

    counting = CountingEncoder(encoder)
    report = build_index(corpus, index_dir, counting, **BUILD)
    rebuilt = root / "rebuilt"
    clean = build_index(corpus, rebuilt, encoder, full=True, **BUILD)
    return dict(
        index_dir=index_dir,
        rebuilt=rebuilt,
        corpus=corpus,
        report=report,
        clean=clean,
        texts=counting.texts,
        old_keys=old_keys,
    )


def test_update_reports_added_changed_removed_and_unchanged_documents(updated):
    report = updated["report"]
    assert report.update and report.full_reason is None
    assert (report.added, report.changed, report.removed, report.unchanged) == (2, 1, 1, 3)
    assert (report.documents, report.chunks) == (updated["clean"].documents, updated["clean"].chunks)
    assert report.passages_embedded == len(updated["texts"]) > 0
    assert report.passages_reused > report.passages_embedded


def test_updated_index_answers_exactly_as_a_clean_rebuild(updated, encoder):
    after_update = _hits(updated["index_dir"], encoder)
    after_rebuild = _hits(updated["rebuilt"], encoder)
    assert after_update.keys() == after_rebuild.keys()
    for key, hits in after_update.items():
        expected = after_rebuild[key]
        assert [h[:3] for h in hits] == [h[:3] for h in expected], key
        assert all(abs(a[3] - b[3]) <= 1e-5 for a, b in zip(hits, expected)), key


def test_updated_store_has_the_rows_and_ids_of_a_clean_rebuild(updated):
    chunks, keys, keywords = _rows(updated["index_dir"])
    assert (chunks, keys, keywords) == _rows(updated["rebuilt"])
    manifest = json.loads((updated["index_dir"] / MANIFEST_FILE).read_text(encoding="utf-8"))
    assert manifest["counts"] == json.loads((updated["rebuilt"] / MANIFEST_FILE).read_text(encoding="utf-8"))["counts"]


def test_updated_vector_file_holds_the_ids_and_vectors_of_a_clean_rebuild(updated):
    # Reused passage vectors come from the previous index's vector file, by the id a chunk with that input had.
    after_update = VectorIndex.load(updated["index_dir"] / VECTORS_FILE)
    after_rebuild = VectorIndex.load(updated["rebuilt"] / VECTORS_FILE)
    assert np.array_equal(after_update.ids, after_rebuild.ids)
    everything = np.arange(len(after_update))
    assert np.abs(after_update.rows_at(everything) - after_rebuild.rows_at(everything)).max() <= 1e-5


def test_update_embeds_only_passage_texts_the_previous_index_never_saw(updated):
    _, new_keys, _ = _rows(updated["rebuilt"])
    embedded = [text_hash(t) for t in updated["texts"]]
    assert len(embedded) == len(set(embedded))  # each new text once
    assert set(embedded) == new_keys - updated["old_keys"]
    # The renamed copy of a document reuses its vectors; the edited paragraph's passages do not.
    assert not any("Supreme People's Court and Supreme People's Procuratorate held" in t for t in updated["texts"])
    assert any("tea inspections" in t for t in updated["texts"])


def test_update_of_an_unchanged_corpus_embeds_nothing(updated, encoder):
    counting = CountingEncoder(encoder)
    report = build_index(updated["corpus"], updated["index_dir"], counting, **BUILD)
    assert report.update and (report.added, report.changed, report.removed, report.unchanged) == (0, 0, 0, 6)
    assert counting.texts == [] and report.passages_embedded == 0
    assert _rows(updated["index_dir"]) == _rows(updated["rebuilt"])


@pytest.fixture()
def small_corpus(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SEEDS / "004_e4f473833b61ecc8.txt", corpus / "meeting.txt")
    (corpus / "tea.md").write_text("# Tea\n\nGreen tea steeps for two minutes.\n", encoding="utf-8")
    return corpus


def _damage_store(index_dir):
    path = index_dir / DATABASE_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "setup, options, reason",
    [
        (lambda index_dir: None, dict(BUILD, chunk_size=96), r"other chunking parameters \(size 128 -> 96\)"),
        (lambda index_dir: None, dict(BUILD, embed_title=False), "embed_title True -> False"),
        (_damage_store, BUILD, "cannot be reused: .*checksum"),
        (lambda index_dir: shutil.rmtree(index_dir), BUILD, "there is no previous index"),
        (lambda index_dir: None, dict(BUILD, full=True), "a full build was asked for"),
    ],
    ids=["chunk-size", "embed-title", "damaged", "missing", "asked"],
)
def test_previous_index_that_cannot_be_reused_means_a_full_build_with_a_reason(
    index_copy, small_corpus, encoder, setup, options, reason
):
    setup(index_copy)
    counting = CountingEncoder(encoder)
    report = build_index(small_corpus, index_copy, counting, **options)
    assert not report.update
    assert re.search(reason, report.full_reason), report.full_reason
    assert (report.added, report.changed, report.removed, report.unchanged) == (2, 0, 0, 0)
    assert report.passages_reused == 0 and report.passages_embedded == len(counting.texts) == report.chunks


def test_serve_freshness_check_updates_a_stale_index(small_corpus, tmp_path, encoder):
    index_dir = tmp_path / "idx"
    build_index(small_corpus, index_dir, encoder, **BUILD)
    (small_corpus / "tea.md").write_text("# Tea\n\nBlack tea steeps for four minutes.\n", encoding="utf-8")
    counting = CountingEncoder(encoder)
    report, reason = ensure_index(
        index_dir,
        corpus=None,
        default_corpus=None,
        model=None,
        chunk_size=None,
        chunk_overlap=None,
        defaults=BuildDefaults("all-MiniLM-L6-v2", 128, 24, True, "fp32"),
        load_model=lambda name, precision: counting,
    )
    assert "has changed" in reason
    assert report.update and (report.changed, report.unchanged) == (1, 1)
    assert all("meeting" not in t.lower() for t in counting.texts) and len(counting.texts) == report.passages_embedded


@pytest.mark.slow  # runs `qa index` in subprocesses
def test_cli_prints_the_update_counts(small_corpus, tmp_path):
    index_dir = tmp_path / "idx"
    first = run_qa("index", small_corpus, "--index", index_dir)
    assert first.returncode == 0, first.stderr
    assert "Full build (there is no previous index): 2 added, 0 changed, 0 removed, 0 unchanged" in first.stdout
    _edit_one_paragraph(small_corpus / "meeting.txt")
    (small_corpus / "tea.md").unlink()
    (small_corpus / "eggs.txt").write_text("Eggs\nA soft-boiled egg needs six minutes.", encoding="utf-8")
    (small_corpus / "bread.txt").write_text("Bread\nSourdough proofs overnight in the fridge.", encoding="utf-8")
    second = run_qa("index", small_corpus, "--index", index_dir)
    assert second.returncode == 0, second.stderr
    assert "Indexed 3 documents" in second.stdout
    assert "Updated: 2 added, 1 changed, 1 removed, 0 unchanged documents;" in second.stdout
    third = run_qa("index", small_corpus, "--index", index_dir, "--json")
    body = json.loads(third.stdout)
    # Nothing changed since: the index is left as it is (tests/test_unchanged_index.py).
    assert body["mode"] == "unchanged" and body["full_reason"] is None
    assert (body["added"], body["changed"], body["removed"], body["unchanged"]) == (0, 0, 0, 3)
    assert body["passages_embedded"] == 0
    full = json.loads(run_qa("index", small_corpus, "--index", index_dir, "--json", "--full").stdout)
    assert full["mode"] == "full" and full["full_reason"] == "a full build was asked for"
    assert full["passages_embedded"] == full["chunks"] and full["added"] == 3


def test_document_whose_stored_text_differs_from_what_is_read_now_is_chunked_again(small_corpus, tmp_path, encoder):
    # Same file bytes, other text: what a change to how files are decoded would leave in an older index.
    from qa.index.manifest import Manifest, file_checksum

    index_dir = tmp_path / "idx"
    build_index(small_corpus, index_dir, encoder, **BUILD)
    db = sqlite3.connect(index_dir / DATABASE_FILE)
    with db:
        (text,) = db.execute("SELECT text FROM documents WHERE doc_id = 'tea.md'").fetchone()
        text += " (decoded differently)"
        db.execute("UPDATE documents SET text = ?, text_hash = ? WHERE doc_id = 'tea.md'", (text, text_hash(text)))
    db.close()
    manifest = Manifest.read(index_dir)
    manifest.checksums[DATABASE_FILE] = file_checksum(index_dir / DATABASE_FILE)
    manifest.corpus["extractor"] = "an older version of the code that reads files"
    manifest.write(index_dir)
    report = build_index(small_corpus, index_dir, CountingEncoder(encoder), **BUILD)
    assert report.update and (report.changed, report.unchanged) == (1, 1)
    assert report.files_reused == 0  # text read by other code is never taken for what reading gives now
    service = SearchService.open(Settings(index_dir=index_dir), encoder=encoder)
    assert service.store.document("tea.md").text.endswith("two minutes.\n")
