"""Word .docx: paragraphs and tables in order, one line per paragraph, with headings and the document's date."""

from __future__ import annotations

import html
import io
import re
import zipfile
from datetime import datetime, timezone

from qa.ingest.formats.base import MAX_UNPACKED_BYTES, SPACES, Extracted, Heading, Unreadable, storable

_TITLE_STYLES = ("title", "heading 1")
_HEADING_STYLE = re.compile(r"heading ([1-9])")
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
# Word's outline levels run 0-8; 9 means body text.
_BODY_TEXT_LEVEL = 9
# Every document python-docx creates from its own template carries this stamp until someone sets the dates.
_PYTHON_DOCX_TEMPLATE_DATE = datetime(2013, 12, 23, 23, 15, tzinfo=timezone.utc)
_TAGS = re.compile(r"<[^>]*>")
# A DOCX yields at most this many characters of text per byte of file, beyond a first million it may always hold.
# Zip compression and entity references let a small file expand without end (a paragraph declared once and
# referenced a million times); real documents hold about 1-2 characters per byte (prose, tables), and even
# thousands of copies of one line about 5, so 20 refuses only a document that mostly repeats itself.
MAX_TEXT_PER_BYTE = 20
TEXT_ALWAYS_ALLOWED = 1_000_000


def read_docx(raw: bytes) -> Extracted:
    """A Word document: its paragraphs and tables in order, one line per paragraph, table cells tab-separated.

    Headers, footers, footnotes and comments are left out. The title is the first paragraph styled Title
    (else Heading 1), else the title in the document properties. Headings are the paragraphs styled Title
    (level 1) or Heading 1-9, or given an outline level; the date is the modified date in the document
    properties, else the created date.

    Raises:
        Unreadable: not a zip, a zip that is not a Word document, or one that unpacks to far more than it holds
            (more than ``MAX_UNPACKED_BYTES``, or more text than ``text_limit`` allows for its size).
    """
    try:
        import docx
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
    limit = text_limit(len(raw))
    try:
        document = docx.Document(io.BytesIO(raw))
        _inline_entities(document.element, limit)
        lines = _document_lines(document)
        declared = (document.core_properties.title or "").strip()
        date = _core_date(document.core_properties)
    except Unreadable:
        raise
    except Exception as exc:  # python-docx on a damaged or foreign package can fail in any way
        raise Unreadable(f"not a readable DOCX file: {type(exc).__name__}: {exc}") from None
    text, headings = _join(lines)
    if len(text) > limit:
        raise Unreadable(_too_much_text(f"DOCX of {len(raw)} bytes", len(text), limit))
    if not text.strip():
        raise Unreadable("DOCX has no text")
    styled: dict[str, str] = {}  # the first paragraph in each title style
    for line, style, _level in lines:
        if line and style in _TITLE_STYLES:
            styled.setdefault(style, line)
    title = next((styled[s] for s in _TITLE_STYLES if s in styled), None) or declared
    return Extracted(text, title=storable(title) if title else None, date=date, headings=headings)


def text_limit(file_bytes: int) -> int:
    """The most characters of text a DOCX file of ``file_bytes`` bytes may yield."""
    return max(TEXT_ALWAYS_ALLOWED, MAX_TEXT_PER_BYTE * file_bytes)


def _too_much_text(what: str, chars: int, limit: int) -> str:
    """The skip reason for a DOCX whose ``what`` expands to ``chars`` characters, over its ``limit``."""
    return (
        f"{what} expands to {chars} characters of text, more than the {limit} allowed for its size "
        f"(a document that repeats itself, not one to index)"
    )


def _document_lines(document) -> list[tuple[str, str, int | None]]:
    """(line, style name, heading level or None) for each paragraph and table row, in document order."""
    from docx.table import Table

    # Style names and outline levels by id, looked up once: ``paragraph.style`` resolves the style part each call.
    styles = {style.style_id: style for style in document.styles}
    style_names = {style_id: (style.name or "").lower() for style_id, style in styles.items()}
    style_levels = {style_id: _style_outline_level(style) for style_id, style in styles.items()}
    has_title = any(
        style_names.get(block._p.style, "") == "title" and block.text.strip()
        for block in document.iter_inner_content()
        if not isinstance(block, Table)
    )
    lines: list[tuple[str, str, int | None]] = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            lines.extend((line, "", None) for line in _table_lines(block))
            continue
        style_id = block._p.style
        style = style_names.get(style_id, "")
        level = _heading_level(block._p, style, style_levels.get(style_id), has_title)
        lines.append((storable(block.text).strip(), style, level))
    return lines


def _heading_level(paragraph, style: str, style_level: int | None, has_title: bool) -> int | None:
    """A paragraph's heading level (1 = outermost), or None for body text.

    Title is level 1; Heading N is level N, or N + 1 under a Title so that the Title stays outermost. An outline
    level set on the paragraph itself wins over its style's; a style's outline level makes a custom style a heading.
    """
    shift = 1 if has_title else 0
    own = _outline_level(paragraph.pPr)
    if own is not None:
        return own + 1 + shift if own < _BODY_TEXT_LEVEL else None
    if style == "title":
        return 1
    named = _HEADING_STYLE.fullmatch(style)
    if named:
        return int(named.group(1)) + shift
    if style_level is not None and style_level < _BODY_TEXT_LEVEL:
        return style_level + 1 + shift
    return None


def _style_outline_level(style) -> int | None:
    """The outline level a paragraph style sets, itself or through the styles it is based on."""
    seen = set()
    while style is not None and id(style) not in seen:
        seen.add(id(style))
        level = _outline_level(style.element.pPr) if hasattr(style.element, "pPr") else None
        if level is not None:
            return level
        style = getattr(style, "base_style", None)
    return None


def _outline_level(properties) -> int | None:
    """The ``w:outlineLvl`` value in paragraph properties, or None when unset or not a number."""
    if properties is None:
        return None
    element = properties.find(f"{_W}outlineLvl")
    value = element.get(f"{_W}val") if element is not None else None
    return int(value) if value is not None and value.isdigit() else None


def _join(lines: list[tuple[str, str, int | None]]) -> tuple[str, tuple[Heading, ...]]:
    """The non-empty lines joined by newlines, and a heading at the start of each heading line."""
    kept, headings, offset = [], [], 0
    for line, _style, level in lines:
        if not line:
            continue
        if level is not None:
            headings.append(Heading(offset, level, SPACES.sub(" ", line)))
        kept.append(line)
        offset += len(line) + 1
    return "\n".join(kept), tuple(headings)


def _inline_entities(root, limit: int) -> None:
    """Replace each entity reference in the XML with its declared text, in place.

    python-docx parses with entity resolution off (so a document cannot read local files), which leaves an
    entity declared in the part's DTD as a node that paragraph text skips, together with the rest of its run.
    Internal entities become their text; external and undeclared ones become nothing.

    Raises:
        Unreadable: the references together would add more than ``limit`` characters (checked before any is
            inlined, so a text declared once and referenced a million times is never built).
    """
    from lxml import etree

    references = list(root.iter(etree.Entity))
    if not references:
        return
    dtd = root.getroottree().docinfo.internalDTD
    declared = {entity.name: entity.content for entity in dtd.iterentities()} if dtd is not None else {}
    # Declared text can hold markup and character references; only its characters are paragraph text.
    texts = {name: html.unescape(_TAGS.sub("", content)) if content else "" for name, content in declared.items()}
    # Each reference counts at least one character: even an empty one is a node to walk.
    added = sum(max(1, len(texts.get(reference.name, ""))) for reference in references)
    if added > limit:
        raise Unreadable(_too_much_text("DOCX with entity references", added, limit))
    parents = {id(reference.getparent()): reference.getparent() for reference in references}
    for parent in parents.values():
        _inline_children(parent, texts)


def _inline_children(parent, texts: dict[str, str]) -> None:
    """Replace the entity references among ``parent``'s children with their text, where each stood.

    The text around a run of references is joined once: appending to it per reference would take quadratic time.
    """
    from lxml import etree

    parts = [parent.text or ""]
    holder = None  # the last element kept, whose tail takes the text that follows it (None: the parent's text)
    for child in list(parent):
        if child.tag is etree.Entity:
            parts += [texts.get(child.name, ""), child.tail or ""]
            parent.remove(child)
            continue
        _set_text_before(parent, holder, "".join(parts))
        holder, parts = child, [child.tail or ""]
    _set_text_before(parent, holder, "".join(parts))


def _set_text_before(parent, holder, text: str) -> None:
    """Set the text that follows ``holder`` inside ``parent`` (the parent's own text when ``holder`` is None)."""
    if holder is None:
        parent.text = text or None
    else:
        holder.tail = text or None


def _core_date(properties) -> str | None:
    """The modified date in the document properties, else the created date, in ISO 8601; None if neither."""
    for moment in (properties.modified, properties.created):
        if moment is None:
            continue
        if moment.tzinfo is None:  # python-docx reads W3CDTF "Z" times as naive UTC
            moment = moment.replace(tzinfo=timezone.utc)
        if moment == _PYTHON_DOCX_TEMPLATE_DATE:
            continue
        return moment.isoformat().replace("+00:00", "Z")
    return None


def _table_lines(table) -> list[str]:
    """One line per table row, cells separated by tabs; a merged cell once, nested tables flattened."""
    lines = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell appears once per grid column it spans
                continue
            seen.add(id(cell._tc))
            cells.append(SPACES.sub(" ", storable(cell.text)).strip())
        line = "\t".join(cells).strip()
        if line:
            lines.append(line)
    return lines
