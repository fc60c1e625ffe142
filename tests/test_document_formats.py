"""Extraction quality per format: PDF spacing, outline and dates; DOCX headings, dates and entities; Markdown
headings and code blocks; legacy text encodings. Every file is built here (PDFs by the writer in test_formats,
outlines and info dictionaries added with pypdf; DOCX with python-docx), plus real PDFs installed on the machine.
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest
from test_formats import minimal_pdf

from qa.ingest.corpus import format_suffix, scan_corpus
from qa.ingest.formats import PAGE_SEPARATOR, Heading, Unreadable, extract
from qa.ingest.formats.pdf import is_junk_title, pdf_date
from qa.ingest.formats.text import markdown_structure

# ----------------------------------------------------------------------------------------------------- PDF


def with_outline_and_info(raw: bytes, outline: list[tuple[str, int, int]] = (), info: dict[str, str] | None = None):
    """``raw`` with outline entries (title, page index, depth; each entry's parent is the last one a level up)
    and info-dictionary entries added by pypdf."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(raw)))
    parents: dict[int, object] = {}
    for title, page, depth in outline:
        parents[depth] = writer.add_outline_item(title=title, page_number=page, parent=parents.get(depth - 1))
    if info:
        writer.add_metadata(info)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


REPORT_PAGES = [
    [
        "Annual report of the river authority",
        "1 Embankments",
        "The authority maintains forty kilometres of embankment along the lower river.",
        "1.1 Spring inspection",
        "Inspections in spring found three sections where the clay core had been eroded.",
    ],
    [
        "News in brief: the fish passage reopened in June.",
        "2 Fish passage",
        "A new fish ladder was opened at the weir beside the old mill.",
    ],
    [
        "Reserves at the end of the year stood at one point two million.",
    ],
]


def _starts_of_lines(text: str) -> dict[str, int]:
    return {line: match.start() for match in re.finditer(r"[^\n]+", text) for line in [match.group()]}


def test_pdf_outline_entries_become_headings_at_their_text_on_their_page():
    raw = with_outline_and_info(
        minimal_pdf(REPORT_PAGES),
        outline=[
            ("Embankments", 0, 0),
            ("Spring   inspection", 0, 1),  # the outline spaces it its own way
            ("Fish passage", 1, 0),  # also inside a sentence above its heading line
            ("Appendix: gauges", 2, 0),  # not in the page text
            ("Finance", 0, 0),  # points back to page 1: would go backwards
        ],
    )
    extracted = extract(raw, ".pdf")
    lines = _starts_of_lines(extracted.text)
    assert extracted.headings == (
        Heading(lines["1 Embankments"], 1, "Embankments"),
        Heading(lines["1.1 Spring inspection"], 2, "Spring inspection"),
        Heading(lines["2 Fish passage"], 1, "Fish passage"),
        Heading(extracted.pages[2], 1, "Appendix: gauges"),
    )


def test_pdf_without_an_outline_has_no_headings():
    assert extract(minimal_pdf(REPORT_PAGES), ".pdf").headings == ()


def test_pdf_page_starts_index_the_text_of_each_page():
    extracted = extract(minimal_pdf(REPORT_PAGES), ".pdf")
    assert extracted.text == PAGE_SEPARATOR.join("\n".join(lines) for lines in REPORT_PAGES)
    for start, lines in zip(extracted.pages, REPORT_PAGES):
        assert extracted.text[start:].startswith(lines[0])


def test_pdf_word_hyphenated_at_a_line_end_is_joined():
    raw = minimal_pdf([["Suggestions for improve-", "ments are wanted and welcome."]])
    assert extract(raw, ".pdf").text == "Suggestions for improvements are wanted and welcome."


@pytest.mark.parametrize(
    ("declared", "iso"),
    [
        ("D:20230115093000+01'00'", "2023-01-15T09:30:00+01:00"),
        ("D:20230115093000-08'00'", "2023-01-15T09:30:00-08:00"),
        ("D:20230115093000Z", "2023-01-15T09:30:00Z"),
        ("D:20230115093000Z00'00'", "2023-01-15T09:30:00Z"),
        ("D:20230115", "2023-01-15"),
        ("D:202301", "2023-01"),
        ("D:2023", "2023"),
        ("D:20231315", None),
        ("D:20230231", None),
        ("15 January 2023", None),
        ("", None),
    ],
)
def test_pdf_dates_are_read_as_iso_8601(declared, iso):
    assert pdf_date(declared) == iso


def test_pdf_date_is_the_modification_date_else_the_creation_date(tmp_path):
    both = {"/CreationDate": "D:20190301120000Z", "/ModDate": "D:20230115093000+01'00'"}
    assert extract(with_outline_and_info(minimal_pdf(REPORT_PAGES), info=both), ".pdf").date == (
        "2023-01-15T09:30:00+01:00"
    )
    created = {"/CreationDate": "D:20190301120000Z"}
    (tmp_path / "report.pdf").write_bytes(with_outline_and_info(minimal_pdf(REPORT_PAGES), info=created))
    (document,) = scan_corpus(tmp_path).documents
    assert document.metadata.date == "2019-03-01"


@pytest.mark.parametrize(
    "junk", ["1", "2023", "untitled", "Untitled-3", "Microsoft Word - report.doc", "report.pdf", "C:\\x\\a.dvi", "ab"]
)
def test_pdf_junk_title_falls_back_to_the_first_line_of_page_one(junk):
    assert is_junk_title(junk)
    raw = with_outline_and_info(minimal_pdf(REPORT_PAGES), outline=[("Embankments", 0, 0)], info={"/Title": junk})
    assert extract(raw, ".pdf").title == "Annual report of the river authority"


def test_pdf_title_written_by_a_person_is_kept():
    assert not is_junk_title("River authority report 2023")
    raw = with_outline_and_info(minimal_pdf(REPORT_PAGES), info={"/Title": "River authority report 2023"})
    assert extract(raw, ".pdf").title == "River authority report 2023"


def test_pdf_without_a_title_property_gets_its_title_from_the_text(tmp_path):
    assert extract(minimal_pdf(REPORT_PAGES), ".pdf").title is None
    (tmp_path / "report.pdf").write_bytes(minimal_pdf(REPORT_PAGES))
    (document,) = scan_corpus(tmp_path).documents
    assert document.metadata.title == "Annual report of the river authority"


def test_pdf_junk_title_falls_back_to_the_outline_when_page_one_has_no_words():
    pages = [["12", "--"], *REPORT_PAGES[1:]]
    raw = with_outline_and_info(minimal_pdf(pages), outline=[("Fish passage", 1, 0)], info={"/Title": "1"})
    assert extract(raw, ".pdf").title == "Fish passage"


def test_pdf_errors_keep_their_reasons():
    with pytest.raises(Unreadable, match="^damaged PDF"):
        extract(minimal_pdf(REPORT_PAGES)[:400], ".pdf")
    with pytest.raises(Unreadable, match="^PDF has no extractable text"):
        extract(minimal_pdf([[], []]), ".pdf")


INSTALLED_PDFS = [
    Path("/usr/share/doc/libtasn1-doc/libtasn1.pdf"),
    Path("/usr/share/doc/asymptote/asymptote.pdf"),
    Path("/usr/share/doc/texlive-doc/support/make4ht/make4ht-doc.pdf"),
]


@pytest.mark.parametrize("path", INSTALLED_PDFS, ids=lambda path: path.name)
def test_installed_pdf_manual_has_headings_where_their_titles_stand(path):
    if not path.exists():
        pytest.skip(f"{path} is not installed (comes with the Debian documentation packages)")
    extracted = extract(path.read_bytes(), ".pdf")
    starts = [heading.start for heading in extracted.headings]
    assert len(starts) >= 10 and starts == sorted(starts)
    assert all(heading.level >= 1 for heading in extracted.headings)
    for page_start in extracted.pages[1:]:
        assert extracted.text[page_start - len(PAGE_SEPARATOR) : page_start] == PAGE_SEPARATOR
    at_title = [h for h in extracted.headings if h.title.split()[-1].lower() in extracted.text[h.start :][:200].lower()]
    assert len(at_title) >= 0.9 * len(extracted.headings)
    assert extracted.date and re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})", extracted.date)
    assert extracted.title is None or not is_junk_title(extracted.title)


def test_table_of_contents_and_index_entries_are_left_out_of_pdf_text():
    from qa.ingest.formats.pdf import without_leader_lines

    page = (
        "Contents\n1 Introduction . . . . . . . . . . . 1\n1.1 History. . . . . . . . . 12\nPreface . . . . . . iv\n"
        "The manual starts here. See section 1.1. . . for more.\nThe end."
    )
    assert without_leader_lines(page) == "Contents\nThe manual starts here. See section 1.1. . . for more.\nThe end."
    assert without_leader_lines("No leaders at all.\nNone.") == "No leaders at all.\nNone."


def test_installed_pdf_manual_text_has_no_table_of_contents_lines_and_headings_stand_at_the_content():
    path = Path("/usr/share/doc/asymptote/asymptote.pdf")
    if not path.exists():
        pytest.skip(f"{path} is not installed (asymptote-doc)")
    extracted = extract(path.read_bytes(), ".pdf")
    assert not re.search(r"(?:\. ?){4,}\s*\d+\s*$", extracted.text, flags=re.MULTILINE)
    first = extracted.headings[0]
    assert extracted.text[first.start :].startswith("1 Description\n")  # the chapter, not its contents entry


def test_installed_pdf_set_with_kerned_glyphs_keeps_its_spaces():
    path = Path("/usr/share/doc/texlive-doc/luatex/base/luatex.pdf")
    if not path.exists():
        pytest.skip(f"{path} is not installed (texlive-doc)")
    text = extract(path.read_bytes(), ".pdf").text
    assert "PDF related callbacks" in text and "Version information" in text
    assert "PDFrelatedcallbacks" not in text and "Versioninformation" not in text


# ---------------------------------------------------------------------------------------------------- DOCX


def _docx_bytes(document) -> bytes:
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _edit_part(raw: bytes, name: str, edit) -> bytes:
    """The package ``raw`` with part ``name`` replaced by ``edit(bytes)``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = source.read(info.filename)
            target.writestr(info, edit(data) if info.filename == name else data)
    return out.getvalue()


def _set_outline_level(element, level: int) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    outline = OxmlElement("w:outlineLvl")
    outline.set(qn("w:val"), str(level))
    element.get_or_add_pPr().append(outline)


def headed_docx(*, with_title: bool = True) -> bytes:
    """A Word document with a Title, Heading 1 and 2, a custom style with an outline level, and a paragraph
    given an outline level of its own."""
    import docx
    from docx.enum.style import WD_STYLE_TYPE

    document = docx.Document()
    if with_title:
        document.add_heading("Orchard survey 2023", 0)
    document.add_paragraph("The survey counted every apple tree on the northern slope.")
    document.add_heading("Pests", 1)
    document.add_heading("Codling moth", 2)
    document.add_paragraph("Codling moth larvae damaged about one fruit in twenty.")
    chapter = document.styles.add_style("Chapter", WD_STYLE_TYPE.PARAGRAPH)
    _set_outline_level(chapter.element, 0)
    document.add_paragraph("Harvest", style="Chapter")
    outlined = document.add_paragraph("Storage   in the barn")
    _set_outline_level(outlined._p, 1)
    document.add_paragraph("Apples were kept in crates at four degrees.")
    return _docx_bytes(document)


def test_docx_headings_come_from_styles_and_outline_levels_at_their_lines():
    extracted = extract(headed_docx(), ".docx")
    lines = _starts_of_lines(extracted.text)
    assert extracted.headings == (
        Heading(lines["Orchard survey 2023"], 1, "Orchard survey 2023"),
        Heading(lines["Pests"], 2, "Pests"),
        Heading(lines["Codling moth"], 3, "Codling moth"),
        Heading(lines["Harvest"], 2, "Harvest"),
        Heading(lines["Storage   in the barn"], 3, "Storage in the barn"),
    )


def test_docx_headings_start_at_level_one_without_a_title():
    levels = [(h.title, h.level) for h in extract(headed_docx(with_title=False), ".docx").headings]
    assert levels == [("Pests", 1), ("Codling moth", 2), ("Harvest", 1), ("Storage in the barn", 2)]


def test_docx_date_is_the_modified_date_else_the_created_date():
    import docx

    document = docx.Document()
    document.add_paragraph("Irrigation is planned for next summer.")
    document.core_properties.created = datetime(2021, 5, 4, 8, 0, tzinfo=timezone.utc)
    document.core_properties.modified = datetime(2023, 1, 15, 9, 30, tzinfo=timezone.utc)
    raw = _docx_bytes(document)
    assert extract(raw, ".docx").date == "2023-01-15T09:30:00Z"

    def drop_modified(xml: bytes) -> bytes:
        return re.sub(rb"<dcterms:modified.*?</dcterms:modified>", b"", xml)

    without_modified = _edit_part(raw, "docProps/core.xml", drop_modified)
    assert extract(without_modified, ".docx").date == "2021-05-04T08:00:00Z"


def test_docx_with_python_docx_template_dates_has_no_date():
    import docx

    document = docx.Document()
    document.add_paragraph("Nobody set the dates of this document.")
    assert extract(_docx_bytes(document), ".docx").date is None


def test_docx_entity_declared_in_the_document_keeps_the_rest_of_its_paragraph(tmp_path):
    import docx

    secret = tmp_path / "secret.txt"
    secret.write_text("SECRETFILE", encoding="utf-8")
    document = docx.Document()
    document.add_paragraph("MARKER")
    document.add_paragraph("The next paragraph.")
    doctype = (
        f'<!DOCTYPE w:document [<!ENTITY maker "Acme &amp; Sons"><!ENTITY local SYSTEM "{secret.as_uri()}">]>'
    ).encode()

    def add_entities(xml: bytes) -> bytes:
        xml = xml.replace(b"?>", b"?>" + doctype, 1)
        return xml.replace(b"<w:t>MARKER</w:t>", b"<w:t>Made by &maker; in 1990 &local;&amp; sold &lt;here&gt;.</w:t>")

    raw = _edit_part(_docx_bytes(document), "word/document.xml", add_entities)
    assert extract(raw, ".docx").text == "Made by Acme & Sons in 1990 & sold <here>.\nThe next paragraph."


def test_docx_table_cells_stay_tab_separated_beside_headings():
    import docx

    document = docx.Document()
    document.add_heading("Yields", 1)
    table = document.add_table(rows=2, cols=2)
    for cell, value in zip(table.rows[0].cells + table.rows[1].cells, ["Variety", "Yield", "Bramley", "9 tonnes"]):
        cell.text = value
    extracted = extract(_docx_bytes(document), ".docx")
    assert extracted.text == "Yields\nVariety\tYield\nBramley\t9 tonnes"
    assert extracted.headings == (Heading(0, 1, "Yields"),)


# ------------------------------------------------------------------------------------------------ Markdown

MARKDOWN = """---
title: Not a heading
---
# Beekeeping notes #

The hives were moved
to the heather in August
========================

```sh
# a comment, not a heading
smoke --gently
```

    indented code
    # still code

    more of the same block

- a list item

      its continuation, not code

Swarms
------

Text after a thematic break.

---

~~~~
Unclosed fence: # not a heading
"""


def _at(text: str, needle: str) -> int:
    return text.index(needle)


def test_markdown_headings_and_code_blocks_are_found_in_the_unchanged_text():
    extracted = extract(MARKDOWN.encode("utf-8"), ".md")
    text = extracted.text
    assert text == MARKDOWN
    assert extracted.headings == (
        Heading(_at(text, "# Beekeeping"), 1, "Beekeeping notes"),
        Heading(_at(text, "The hives"), 1, "The hives were moved to the heather in August"),
        Heading(_at(text, "Swarms"), 2, "Swarms"),
    )
    assert [text[start:end] for start, end in extracted.code] == [
        "```sh\n# a comment, not a heading\nsmoke --gently\n```",
        "    indented code\n    # still code\n\n    more of the same block",
        "~~~~\nUnclosed fence: # not a heading",
    ]


@pytest.mark.parametrize(
    ("markdown", "headings"),
    [
        ("#hashtag is not a heading\n", []),
        ("# C#\n", [(0, 1, "C#")]),
        ("   ### Deep ###   \n", [(0, 3, "Deep")]),
        ("####### seven is too many\n", []),
        ("#\n", []),
        ("> # quoted\n", []),
        ("Para\n\n---\n", []),
        ("`````\n```\n# inside\n`````\n# after\n", [(25, 1, "after")]),
        ("``` not `a fence`\n# real\n", [(18, 1, "real")]),
    ],
)
def test_markdown_heading_rules(markdown, headings):
    found, _code = markdown_structure(markdown)
    assert [(h.start, h.level, h.title) for h in found] == headings


def test_markdown_with_crlf_line_ends_is_served_as_written():
    raw = "Title\r\n=====\r\n\r\n```\r\ncode\r\n```\r\n".encode("utf-8")
    extracted = extract(raw, ".md")
    assert extracted.text.encode("utf-8") == raw
    assert extracted.headings == (Heading(0, 1, "Title"),)
    assert [extracted.text[s:e] for s, e in extracted.code] == ["```\r\ncode\r\n```"]


def test_plain_text_has_no_markdown_headings():
    assert extract(b"# not markdown\nplain text\n", ".txt").headings == ()


# ---------------------------------------------------------------------------------------- legacy encodings

LEGACY = {
    "french-latin1": (
        "Le château de Chambord mêle l'architecture médiévale et la Renaissance italienne. Son escalier à double "
        "révolution permet à deux personnes de monter et descendre sans jamais se croiser.\n",
        "latin-1",
    ),
    "german-latin1": (
        "Die Straße führt über die Brücke zum Marktplatz, wo samstags ein großer Bauernmarkt stattfindet. "
        "Dort verkaufen Händler Käse, Würste und frisches Gemüse.\n",
        "latin-1",
    ),
    "english-cp1252": (
        "\u201cDon\u2019t worry,\u201d she said \u2014 the report\u2019s figures were final\u2026 The committee\u2019s "
        "verdict was \u201cprovisional\u201d \u2013 a word that nobody liked.\n",
        "cp1252",
    ),
    "japanese-shift-jis": (
        "東京は日本の首都であり、世界でも有数の大都市です。江戸時代には将軍の城下町として栄え、明治維新の後に首都と"
        "なりました。浅草の浅草寺や明治神宮など、歴史的な名所も数多く残っています。\n",
        "shift_jis",
    ),
    "chinese-gb2312": (
        "北京是中华人民共和国的首都，也是全国的政治和文化中心。这座城市有三千多年的历史，故宫、天坛和长城等名胜古迹"
        "吸引了来自世界各地的游客。\n",
        "gb2312",
    ),
    "two-words-latin1": ("Café crème", "latin-1"),
}


@pytest.mark.parametrize("name", sorted(LEGACY))
def test_text_in_a_legacy_encoding_is_decoded(name):
    text, encoding = LEGACY[name]
    for suffix in (".txt", ".md"):
        assert extract(text.encode(encoding), suffix).text == text


def test_legacy_encoded_file_is_indexed_not_skipped(tmp_path):
    text = LEGACY["french-latin1"][0]
    (tmp_path / "chambord.txt").write_bytes(text.encode("latin-1"))
    scan = scan_corpus(tmp_path)
    assert [document.text for document in scan.documents] == [text] and not scan.skipped


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("Plain ASCII.\n".encode(), "Plain ASCII.\n"),
        ("Ünïcödé ✓ 東京\n".encode(), "Ünïcödé ✓ 東京\n"),
        (b"\xef\xbb\xbfWith a byte-order mark\n", "With a byte-order mark\n"),
    ],
)
def test_utf8_text_is_read_exactly_as_before(raw, text):
    assert extract(raw, ".txt").text == text


def test_binary_file_named_as_text_is_still_refused():
    with pytest.raises(Unreadable, match=r"^not a text file \(binary content\)"):
        extract(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), ".txt")


def test_text_files_known_by_name_alone_are_read_as_plain_text(tmp_path):
    """README, INSTALL, LICENSE ... without an extension are documents; other names without one are not ours."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "README").write_text("Kettle tools\n\nThe kettle tools boil water on a schedule.\n", encoding="utf-8")
    (root / "INSTALL").write_text("Run make install as root.\n", encoding="utf-8")
    (root / "TODO").write_bytes(b"\x00\x01binary\x00")
    (root / "Makefile").write_text("all:\n\techo kettle\n", encoding="utf-8")
    scan = scan_corpus(root)
    assert sorted(d.doc_id for d in scan.documents) == ["INSTALL", "README"]
    assert next(d for d in scan.documents if d.doc_id == "README").metadata.title == "Kettle tools"
    assert [s.doc_id for s in scan.skipped] == ["TODO"]
    assert format_suffix("docs/Readme") == ".txt" and format_suffix("Makefile") == ""
