"""Documentation compressed with gzip (``README.md.gz``, ``changelog.gz``, ``page.html.gz``, as Debian ships it under
/usr/share/doc) is read as the file it holds, cited at the ``.gz`` path, with offsets into the decompressed text."""

from __future__ import annotations

import gzip

import pytest
from fastapi.testclient import TestClient

from qa.api.app import create_app
from qa.config import Settings
from qa.index.indexer import build_index
from qa.ingest.corpus import MAX_DECOMPRESSED_BYTES, format_suffix, is_supported_name, scan_corpus
from qa.search.service import SearchService

README = """\
# Kettle tools

Small tools for people who boil water.

## Descaling

Descale the kettle every month with a cup of white vinegar and a litre of water, then rinse it twice.
"""
CHANGELOG = "2023-01-08  Ada Lovelace  <ada@example.org>\n\n\t* kettle.c: Stop boiling when the lid is open.\n"
PAGE = (
    "<html><head><title>Teapots</title></head><body><div class='related' role='navigation'><a href='index.html'>"
    "Home</a> | <a href='next.html'>Next</a></div><div role='main'><h1 id='teapots'>Teapots</h1><p>Warm the "
    "teapot with hot water before the leaves go in.</p></div></body></html>"
)


def _gzip(path, text: str) -> None:
    path.write_bytes(gzip.compress(text.encode("utf-8")))


@pytest.fixture()
def compressed_corpus(tmp_path):
    """Compressed Markdown, plain text known by its name, and HTML, beside files gzip cannot be read as documents."""
    root = tmp_path / "doc" / "kettle"
    root.mkdir(parents=True)
    _gzip(root / "README.md.gz", README)
    _gzip(root / "changelog.gz", CHANGELOG)
    _gzip(root / "teapots.html.gz", PAGE)
    _gzip(root / "changelog.Debian.gz", "kettle (1.0-1) unstable; urgency=medium\n")  # no reader for ".Debian"
    _gzip(root / "data.json.gz", '{"kettle": 1}')
    return root


def test_compressed_files_are_read_as_what_they_hold_and_named_by_their_gz_path(compressed_corpus):
    scan = scan_corpus(compressed_corpus)
    documents = {document.doc_id: document for document in scan.documents}
    assert sorted(documents) == ["README.md.gz", "changelog.gz", "teapots.html.gz"]
    assert documents["README.md.gz"].text == README
    assert [heading.title for heading in documents["README.md.gz"].headings] == ["Kettle tools", "Descaling"]
    assert documents["changelog.gz"].text.startswith("2023-01-08  Ada Lovelace")
    assert documents["teapots.html.gz"].text == "Teapots\nWarm the teapot with hot water before the leaves go in."
    assert documents["teapots.html.gz"].metadata.title == "Teapots"
    assert scan.skipped == []


@pytest.mark.parametrize(
    ("name", "suffix", "supported"),
    [
        ("README.md.gz", ".md", True),
        ("NEWS.GZ", ".txt", True),
        ("page.HTML.gz", ".html", True),
        ("guide.rst.txt.gz", ".rst", True),
        ("changelog.Debian.gz", ".debian", False),
        ("a.tar.gz", ".tar", False),
        (".gz", "", False),
        ("notes.txt", ".txt", True),
    ],
)
def test_a_compressed_name_is_judged_and_read_by_the_name_inside_it(name, suffix, supported):
    assert (format_suffix(f"doc/{name}"), is_supported_name(name)) == (suffix, supported)


def test_a_file_that_inflates_beyond_the_limit_is_skipped_with_the_limit_as_its_reason(tmp_path):
    # A real decompression bomb's shape: a few tens of kilobytes that would inflate past 50 MB.
    (tmp_path / "bomb.txt.gz").write_bytes(gzip.compress(b" x" * (MAX_DECOMPRESSED_BYTES // 2 + 1), compresslevel=9))
    (tmp_path / "notes.txt").write_text("Kettles boil water.\n", encoding="utf-8")
    assert (tmp_path / "bomb.txt.gz").stat().st_size < 1024 * 1024
    scan = scan_corpus(tmp_path)
    assert [document.doc_id for document in scan.documents] == ["notes.txt"]
    assert [(s.doc_id, s.reason) for s in scan.skipped] == [("bomb.txt.gz", "larger than 50 MB once decompressed")]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"# Not compressed at all\n", "not a readable gzip file: Not a gzipped file (b'# ')"),
        (
            gzip.compress(README.encode())[:40],
            "not a readable gzip file: Compressed file ended before the end-of-stream marker was reached",
        ),
    ],
)
def test_a_damaged_or_mislabelled_gz_file_is_skipped_with_a_reason(tmp_path, content, reason):
    (tmp_path / "README.md.gz").write_bytes(content)
    (tmp_path / "notes.txt").write_text("Kettles boil water.\n", encoding="utf-8")
    scan = scan_corpus(tmp_path)
    assert [(s.doc_id, s.reason) for s in scan.skipped] == [("README.md.gz", reason)]


def test_an_empty_compressed_file_is_skipped_as_empty(tmp_path):
    _gzip(tmp_path / "NEWS.gz", "  \n")
    (tmp_path / "notes.txt").write_text("Kettles boil water.\n", encoding="utf-8")
    assert [(s.doc_id, s.reason) for s in scan_corpus(tmp_path).skipped] == [("NEWS.gz", "empty")]


def test_citations_of_a_compressed_file_index_the_text_the_http_api_serves(compressed_corpus, tmp_path, encoder):
    index_dir = tmp_path / "index"
    build_index(compressed_corpus, index_dir, encoder, chunk_size=128, chunk_overlap=24)
    service = SearchService.open(Settings(index_dir=index_dir), encoder=encoder)
    app = create_app(Settings(index_dir=index_dir), service=service)
    with TestClient(app) as client:
        hit = client.post("/search", json={"question": "how do I descale my kettle", "top_k": 3}).json()["results"][0]
        citation = hit["citation"]
        assert (citation["source"], citation["section"]) == ("README.md.gz", "Kettle tools › Descaling")
        served = client.get("/documents/README.md.gz").json()
        assert served["text"] == gzip.decompress((compressed_corpus / "README.md.gz").read_bytes()).decode()
        assert served["text"][citation["start"] : citation["end"]] == hit["text"]
        assert "white vinegar" in hit["text"]
