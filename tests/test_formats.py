"""Document formats: .txt, .md, .rst, .html, .pdf and .docx are read into the text that citations index and
``GET /documents/{id}`` serves; files that cannot be parsed are skipped with a reason while the rest is indexed.

Every file is built here: a PDF by a tiny writer below, a DOCX with python-docx.
"""

from __future__ import annotations

import bisect
import io
import json
import zipfile
from pathlib import Path

import httpx
import pytest
from conftest import serving

from qa.api.app import create_app
from qa.cli.render import render_answer
from qa.config import Settings
from qa.errors import CorpusError
from qa.index.indexer import build_index
from qa.ingest.corpus import scan_corpus
from qa.ingest.formats import PAGE_SEPARATOR, Unreadable, extract
from qa.search.service import SearchService


def minimal_pdf(pages: list[list[str]], *, title: str | None = None) -> bytes:
    """A valid PDF with one page per entry, each string one line of Helvetica text."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    for i, lines in enumerate(pages):
        ops = ["BT", "/F1 11 Tf", "14 TL", "50 760 Td"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({escaped}) Tj T*")
        stream = "\n".join(ops + ["ET"]).encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >>"
            f" /Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    info = None
    if title is not None:
        objects.append(f"<< /Title ({title}) >>".encode("latin-1"))
        info = len(objects)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    trailer_info = b" /Info %d 0 R" % info if info else b""
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, trailer_info, xref)
    return bytes(out)


def encrypted_pdf(pages: list[list[str]], password: str) -> bytes:
    """``minimal_pdf(pages)`` encrypted (RC4, which pypdf handles without extra packages)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(minimal_pdf(pages))))
    writer.encrypt(user_password=password, owner_password="owner-secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_docx() -> bytes:
    """A Word document with a title, paragraphs and a table with a merged cell."""
    import docx

    document = docx.Document()
    document.add_heading("Orchard survey 2023", 0)
    document.add_paragraph(
        "The orchard survey counted every apple tree on the northern slope. Most trees were planted in 1962 "
        "and still bear fruit each autumn."
    )
    document.add_heading("Pests", 1)
    document.add_paragraph(
        "Codling moth larvae damaged about one fruit in twenty. Pheromone traps were hung in May to confuse "
        "the males, and the damage fell by half compared with the year before."
    )
    table = document.add_table(rows=3, cols=3)
    for cell, value in zip(table.rows[0].cells, ["Variety", "Trees", "Yield"]):
        cell.text = value
    for cell, value in zip(table.rows[1].cells, ["Bramley", "140", "9 tonnes"]):
        cell.text = value
    table.cell(2, 0).merge(table.cell(2, 1)).text = "Cox merged"
    table.cell(2, 2).text = "4 tonnes"
    document.add_paragraph("Irrigation of the young trees is planned for next summer, drawing water from the pond.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


HTML = """<!DOCTYPE html>
<html lang="en"><head>
<meta charset="utf-8">
<title>Lighthouse  keepers &amp; their logs</title>
<meta name="date" content="2021-09-14T08:30:00Z">
<meta name="author" content="Maren Holt">
<style>body { font-family: serif } .SECRETSTYLE { color: red }</style>
<script>var SECRETSCRIPT = "<p>not text</p>"; if (a < b) { run(); }</script>
</head>
<body>
<nav>Home &gt; History</nav>
<h1>The keepers of Skerry Light</h1>
<p>The keeper climbed the <b>spiral stair</b> at dusk to light the lamp, and wound the clockwork that turned
   the lens through the night.</p>
<p>Each entry in the log recorded the weather, passing ships and the oil burned.<br>Fog meant the horn sounded
every thirty seconds.</p>
<div hidden>SECRETHIDDEN text that no reader sees</div>
<template><p>SECRETTEMPLATE</p></template>
<noscript>SECRETNOSCRIPT</noscript>
<ul><li>Winter storms cut off the island for weeks.</li><li>Supplies arrived by boat each month.</li></ul>
<table><tr><th>Year</th><th>Keeper</th></tr><tr><td>1891</td><td>Anders Holt</td></tr></table>
<script type="application/ld+json">{"SECRETJSON": true}</script>
</body></html>
"""

PDF_PAGES = [
    [
        "Annual report of the river authority.",
        "The authority maintains forty kilometres of embankment along the lower river.",
        "Inspections in spring found three sections where the clay core had been eroded.",
        "Repairs to those sections were finished before the autumn floods arrived.",
        "The work cost less than the budget because local gravel was used for the toe.",
        "Staff walked the whole embankment twice and logged every burrow and crack.",
    ],
    [
        "Fish passage.",
        "A new fish ladder was opened at the weir beside the old mill in June.",
        "Salmon were counted climbing the ladder within a week of its opening.",
        "Volunteers counted eels at night with torches and reported over two hundred.",
        "The ladder has twelve pools, each thirty centimetres higher than the one below.",
        "Gauges in the top pool send the water level to the control room every minute.",
    ],
    [
        "Finance.",
        "The authority's income came mostly from drainage rates paid by landowners.",
        "A grant from the regional council paid for the telemetry on the gauges.",
        "Reserves at the end of the year stood at one point two million.",
        "Next year the board plans to replace the pumps at the tidal outfall.",
        "Those pumps are forty years old and fail most often during spring tides.",
    ],
]


def _pdf_text(pages: list[list[str]]) -> str:
    return PAGE_SEPARATOR.join("\n".join(lines) for lines in pages)


# ------------------------------------------------------------------------------------------- extraction only


def test_html_keeps_visible_text_and_drops_scripts_styles_and_hidden_parts():
    extracted = extract(HTML.encode("utf-8"), ".html", main_content=False)
    assert extracted.text.splitlines() == [
        "Home > History",
        "The keepers of Skerry Light",
        "The keeper climbed the spiral stair at dusk to light the lamp, and wound the clockwork that turned the lens"
        " through the night.",
        "Each entry in the log recorded the weather, passing ships and the oil burned.",
        "Fog meant the horn sounded every thirty seconds.",
        "Winter storms cut off the island for weeks.",
        "Supplies arrived by boat each month.",
        "Year Keeper",
        "1891 Anders Holt",
    ]
    assert "SECRET" not in extracted.text and "font-family" not in extracted.text
    assert extracted.title == "Lighthouse keepers & their logs"
    assert (extracted.author, extracted.pages) == ("Maren Holt", None)


def test_html_metadata_comes_from_title_and_meta_tags(tmp_path):
    (tmp_path / "page.html").write_text(HTML, encoding="utf-8")
    (document,) = scan_corpus(tmp_path).documents
    assert document.metadata.title == "Lighthouse keepers & their logs"
    assert (document.metadata.date, document.metadata.author) == ("2021-09-14", "Maren Holt")


def test_html_without_title_falls_back_to_the_first_heading_and_honours_declared_charset(tmp_path):
    page = '<html><head><meta charset="windows-1252"></head><body><h1>Caf\xe9 menu</h1><p>Soup.</p></body></html>'
    (tmp_path / "menu.htm").write_bytes(page.encode("cp1252"))
    (document,) = scan_corpus(tmp_path).documents
    assert document.text == "Café menu\nSoup."
    assert document.metadata.title == "Café menu"


def test_pdf_text_is_joined_per_page_with_each_page_start_recorded():
    extracted = extract(minimal_pdf(PDF_PAGES, title="River authority report"), ".pdf")
    assert extracted.text == _pdf_text(PDF_PAGES)
    assert extracted.title == "River authority report"
    assert len(extracted.pages) == 3 and extracted.pages[0] == 0
    for start, lines in zip(extracted.pages, PDF_PAGES):
        assert extracted.text[start:].startswith(lines[0])


def test_pdf_with_an_empty_password_is_opened():
    assert extract(encrypted_pdf(PDF_PAGES[:1], ""), ".pdf").text == _pdf_text(PDF_PAGES[:1])


def test_docx_paragraphs_and_tables_come_in_order_with_the_title_paragraph_as_title():
    extracted = extract(make_docx(), ".docx")
    lines = extracted.text.split("\n")
    assert lines[0] == "Orchard survey 2023" and lines[2] == "Pests"
    assert lines[4:7] == ["Variety\tTrees\tYield", "Bramley\t140\t9 tonnes", "Cox merged\t4 tonnes"]
    assert lines[-1].startswith("Irrigation of the young trees")
    assert (extracted.title, extracted.pages) == ("Orchard survey 2023", None)


def _zip_without_word_document() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("notes.txt", "just a zip")
    return out.getvalue()


BROKEN = {
    "truncated.pdf": (lambda: minimal_pdf(PDF_PAGES)[:300], "damaged PDF"),
    "garbage.pdf": (lambda: b"%PDF-1.7\n" + bytes(range(256)) * 8, "damaged PDF"),
    "not-really.pdf": (lambda: b"Plain words in a file named like a PDF.", "not a PDF file"),
    "locked.pdf": (lambda: encrypted_pdf(PDF_PAGES[:1], "secret"), "PDF is encrypted with a password"),
    "scan.pdf": (lambda: minimal_pdf([[], []]), "PDF has no extractable text"),
    "archive.docx": (_zip_without_word_document, "not a DOCX file (a zip archive without [Content_Types].xml)"),
    "text.docx": (lambda: b"This is plain text named like a Word file.", "not a DOCX file (not a zip archive"),
    "cut.docx": (lambda: make_docx()[:2000], "not a DOCX file"),
    "binary.html": (lambda: b"<html>\x00\x01\x02</html>", "not a text file (binary content)"),
    "scripts-only.html": (lambda: b"<script>alert(1)</script><style>p{}</style>", "no visible text"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_unparseable_files_raise_with_a_reason(name):
    make, reason = BROKEN[name]
    with pytest.raises(Unreadable) as caught:
        extract(make(), Path(name).suffix)
    assert str(caught.value).startswith(reason)


# ------------------------------------------------------------------------------- indexed and served over HTTP


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("formats-corpus")
    (root / "page.html").write_text(HTML, encoding="utf-8")
    (root / "report.pdf").write_bytes(minimal_pdf(PDF_PAGES, title="River authority report"))
    (root / "survey.docx").write_bytes(make_docx())
    notes = "# Beekeeping notes\n\nThe hives were moved to the heather in August.\n"
    (root / "notes.md").write_text(notes, encoding="utf-8")
    tides = "Tide tables\nHigh water at the harbour mouth comes forty minutes early.\n"
    (root / "plain.txt").write_text(tides, encoding="utf-8")
    for name, (make, _) in BROKEN.items():
        (root / "broken").mkdir(exist_ok=True)
        (root / "broken" / name).write_bytes(make())
    return root


@pytest.fixture(scope="module")
def formats_index(corpus, tmp_path_factory, encoder):
    index_dir = tmp_path_factory.mktemp("formats-index") / "index"
    defaults = Settings()
    report = build_index(
        corpus,
        index_dir,
        encoder,
        chunk_size=defaults.chunk_size,
        chunk_overlap=defaults.chunk_overlap,
        embed_title=defaults.embed_title,
    )
    return index_dir, report


@pytest.fixture(scope="module")
def formats_service(formats_index, encoder) -> SearchService:
    return SearchService.open(Settings(index_dir=formats_index[0]), encoder=encoder)


@pytest.fixture(scope="module")
def http(formats_service):
    app = create_app(Settings(index_dir=formats_service.settings.index_dir), service=formats_service)
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def test_broken_files_are_skipped_with_a_warning_naming_them_and_the_rest_is_indexed(formats_index):
    _, report = formats_index
    assert report.documents == 5
    skipped = {s.doc_id: s.reason for s in report.skipped}
    assert set(skipped) == {f"broken/{name}" for name in BROKEN}
    for name, (_, reason) in BROKEN.items():
        assert skipped[f"broken/{name}"].startswith(reason)


def test_served_document_text_is_the_extracted_text(http):
    assert http.get("/documents/report.pdf").json()["text"] == _pdf_text(PDF_PAGES)
    page = http.get("/documents/page.html").json()
    assert "SECRET" not in page["text"] and page["text"].startswith("The keepers of Skerry Light\n")
    assert page["title"] == "Lighthouse keepers & their logs" and page["pages"] is None
    survey = http.get("/documents/survey.docx").json()
    assert survey["title"] == "Orchard survey 2023" and "Bramley\t140\t9 tonnes" in survey["text"]


QUESTIONS = [
    ("page.html", "How often did the fog horn sound?"),
    ("page.html", "Who was the keeper in 1891?"),
    ("report.pdf", "When did salmon start climbing the new fish ladder?"),
    ("report.pdf", "Which pumps will be replaced next year?"),
    ("report.pdf", "Where were the embankment sections eroded?"),
    ("survey.docx", "How much did codling moth damage fall after the pheromone traps?"),
    ("survey.docx", "What yield did the Bramley trees give?"),
    ("notes.md", "Where were the hives moved?"),
    ("plain.txt", "When is high water at the harbour mouth?"),
]


@pytest.mark.parametrize("doc_id, question", QUESTIONS)
def test_every_citation_indexes_the_served_text_in_every_format(http, doc_id, question):
    body = http.post("/search", json={"question": question, "top_k": 5}).json()
    assert body["results"][0]["citation"]["source"] == doc_id
    documents = {}
    for result in body["results"]:
        citation = result["citation"]
        source = citation["source"]
        documents.setdefault(source, http.get(f"/documents/{source}").json())
        served = documents[source]
        assert served["text"][citation["start"] : citation["end"]] == result["text"]
        for mark in citation["highlight"]:
            assert citation["start"] <= mark["start"] < mark["end"] <= citation["end"]
        lines = served["text"].split("\n")[citation["line_start"] - 1 : citation["line_end"]]
        assert result["text"] in "\n".join(lines)
        if served["pages"] is None:
            assert citation["page"] is None and citation["page_end"] is None
        else:
            assert citation["page"] == bisect.bisect_right(served["pages"], citation["start"])
            assert citation["page_end"] == bisect.bisect_right(served["pages"], citation["end"] - 1)


@pytest.mark.parametrize(
    "question, sentence, page",
    [
        ("When did salmon start climbing the new fish ladder?", "Salmon were counted climbing", 2),
        ("Which pumps will be replaced next year?", "replace the pumps at the tidal outfall", 3),
        ("Where were the embankment sections eroded?", "the clay core had been eroded", 1),
    ],
)
def test_pdf_citations_carry_the_page_of_the_answer(http, question, sentence, page):
    body = http.post("/search", json={"question": question, "top_k": 1, "source": "report.pdf"}).json()
    citation = body["results"][0]["citation"]
    served = http.get("/documents/report.pdf").json()
    assert served["pages"] == [0, *[len(_pdf_text(PDF_PAGES[:n])) + len(PAGE_SEPARATOR) for n in (1, 2)]]
    at = served["text"].index(sentence)
    assert citation["start"] <= at < citation["end"]
    assert citation["page"] <= page <= citation["page_end"]
    assert bisect.bisect_right(served["pages"], at) == page


def test_cli_rendering_and_json_carry_the_page(formats_service):
    answer = formats_service.search("Which pumps will be replaced next year?", 1, search_filter=None)
    hit = answer.results[0]
    assert hit.citation.source == "report.pdf"
    pages = (
        f"page {hit.citation.page}"
        if hit.citation.page == hit.citation.page_end
        else (f"pages {hit.citation.page}-{hit.citation.page_end}")
    )
    assert f"| {pages}" in render_answer(answer)
    data = json.loads(json.dumps(answer.as_dict()))["results"][0]["citation"]
    assert (data["page"], data["page_end"]) == (hit.citation.page, hit.citation.page_end)
    other = formats_service.search("Where were the hives moved?", 1)
    assert other.results[0].citation.page is None and "| page" not in render_answer(other)


def test_a_corpus_of_only_broken_files_names_the_formats_it_reads(corpus, tmp_path, encoder):
    kinds = r"\.txt, \.md, \.rst, \.html, \.htm, \.pdf, \.docx"
    with pytest.raises(CorpusError, match=rf"no readable {kinds} files \({len(BROKEN)} skipped\)"):
        build_index(corpus / "broken", tmp_path / "index", encoder, chunk_size=128, chunk_overlap=24)


def test_an_update_keeps_the_pages_of_unchanged_pdfs(corpus, formats_index, tmp_path, encoder):
    """An update copies unchanged documents from the previous index: their page offsets come along."""
    import shutil

    from qa.index.store import StoreReader

    index_dir = tmp_path / "index"
    shutil.copytree(formats_index[0], index_dir)
    grown = tmp_path / "corpus"
    shutil.copytree(corpus, grown)
    (grown / "extra.txt").write_text("Lighthouse keepers log the fog signal every hour.\n", encoding="utf-8")
    defaults = Settings()
    report = build_index(
        grown,
        index_dir,
        encoder,
        chunk_size=defaults.chunk_size,
        chunk_overlap=defaults.chunk_overlap,
        embed_title=defaults.embed_title,
    )
    assert report.update and report.added == 1 and report.unchanged == 5
    before = StoreReader(formats_index[0] / "store.sqlite3").document("report.pdf")
    after = StoreReader(index_dir / "store.sqlite3").document("report.pdf")
    assert before.pages is not None and after.pages == before.pages

    def pages(index: Path) -> dict:
        chunks = StoreReader(index / "store.sqlite3").iter_chunks()
        return {(c.doc_id, c.start): (c.page, c.page_end) for c, _ in chunks if c.doc_id == "report.pdf"}

    assert len(pages(index_dir)) > 1 and pages(index_dir) == pages(formats_index[0])
    assert all(page is not None for page, _ in pages(index_dir).values())
