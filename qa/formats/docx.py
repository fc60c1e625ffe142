"""Word .docx: paragraphs and tables in order, one line per paragraph."""

from __future__ import annotations

import io
import zipfile

from qa.formats.base import MAX_UNPACKED_BYTES, SPACES, Extracted, Unreadable, storable

_TITLE_STYLES = ("title", "heading 1")


def read_docx(raw: bytes) -> Extracted:
    """A Word document: its paragraphs and tables in order, one line per paragraph, table cells tab-separated.

    Headers, footers, footnotes and comments are left out. The title is the first paragraph styled Title
    (else Heading 1), else the title in the document properties.

    Raises:
        Unreadable: not a zip, a zip that is not a Word document, or one that unpacks to far more than it holds.
    """
    try:
        import docx
        from docx.table import Table
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ImportError("reading DOCX files needs python-docx: pip install python-docx") from exc
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise Unreadable(f"not a DOCX file (not a zip archive: {exc})") from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise Unreadable(f"DOCX unpacks to {unpacked} bytes, more than the {MAX_UNPACKED_BYTES} allowed")
    if "[Content_Types].xml" not in names:
        raise Unreadable("not a DOCX file (a zip archive without [Content_Types].xml)")
    try:
        document = docx.Document(io.BytesIO(raw))
        lines: list[str] = []
        styled: dict[str, str] = {}  # the first paragraph in each title style
        # Style names by id, looked up once: ``paragraph.style`` resolves the style part on every call.
        style_names = {style.style_id: (style.name or "").lower() for style in document.styles}
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                lines.extend(_table_lines(block))
                continue
            line = block.text.strip()
            lines.append(line)
            style = style_names.get(block._p.style, "")
            if line and style in _TITLE_STYLES:
                styled.setdefault(style, line)
        declared = (document.core_properties.title or "").strip()
    except Exception as exc:  # python-docx on a damaged or foreign package can fail in any way
        raise Unreadable(f"not a readable DOCX file: {type(exc).__name__}: {exc}") from None
    text = storable("\n".join(line for line in lines if line))
    if not text.strip():
        raise Unreadable("DOCX has no text")
    title = next((styled[s] for s in _TITLE_STYLES if s in styled), None) or declared
    return Extracted(text, title=storable(title) if title else None)


def _table_lines(table) -> list[str]:
    """One line per table row, cells separated by tabs; a merged cell once, nested tables flattened."""
    lines = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell appears once per grid column it spans
                continue
            seen.add(id(cell._tc))
            cells.append(SPACES.sub(" ", cell.text).strip())
        line = "\t".join(cells).strip()
        if line:
            lines.append(line)
    return lines
