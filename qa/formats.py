"""Turn a file's bytes into the document text that is indexed, cited and served, one reader per format.

Every reader returns :class:`Extracted`: the text (citation offsets index exactly this string), the start
offset of each page for paged formats (PDF), and whatever metadata the format declares (an HTML ``<title>``,
a PDF's info dictionary, a DOCX title paragraph). A file that cannot be read raises :class:`Unreadable` with a
reason for people; the caller skips it and says why.
"""

from __future__ import annotations

import codecs
import io
import re
import zipfile
from collections import Counter
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Callable

# Plain text formats are decoded as they are; the others are parsed.
TEXT_SUFFIXES = (".txt", ".md")
SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf", ".docx")
# Pages of a PDF are joined with a blank line; ``Extracted.pages`` says where each one starts.
PAGE_SEPARATOR = "\n\n"
# A NUL byte in the first block marks a binary file posing as text.
_BINARY_SNIFF_BYTES = 8192
# A DOCX is a zip: refuse one that declares more unpacked bytes than this (a zip bomb, not a document).
MAX_UNPACKED_BYTES = 256 * 1024 * 1024
# Extracted text longer than this is refused: no real document is that long, and chunking it would take hours.
MAX_TEXT_CHARS = 64 * 1024 * 1024
# Characters that stored and served text cannot hold: NUL, and unpaired surrogates (not encodable as UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class Unreadable(Exception):
    """The file cannot be turned into text; ``str(exc)`` says why, for a skip reason."""


@dataclass(frozen=True)
class Extracted:
    """A file's document text and what its format says about it.

    ``pages`` holds the offset in ``text`` where each page starts (page 1 first, always 0) for paged formats,
    None otherwise. ``title``, ``date`` and ``author`` are declared by the file itself (None when it does not).
    """

    text: str
    pages: tuple[int, ...] | None = None
    title: str | None = None
    date: str | None = None
    author: str | None = None


def supported(name: str) -> bool:
    """Whether a file name has a suffix this module reads (case-insensitive)."""
    return name.lower().endswith(SUFFIXES)


def extract(raw: bytes, suffix: str) -> Extracted:
    """The document text of a file with this suffix.

    Raises:
        Unreadable: not text, not the format its name says, encrypted, or holding no text.
    """
    reader = _READERS.get(suffix.lower())
    if reader is None:
        raise Unreadable(f"unsupported file type {suffix!r}")
    extracted = reader(raw)
    if len(extracted.text) > MAX_TEXT_CHARS:
        raise Unreadable(f"extracted text is longer than {MAX_TEXT_CHARS} characters")
    return extracted


def _storable(text: str) -> str:
    """Parsed text with NULs dropped and lone surrogates replaced, so SQLite, JSON and terminals can take it."""
    return _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", text)


def _decode_text(raw: bytes, encoding: str = "utf-8") -> str:
    """Bytes of a text file as a string without a leading byte-order mark.

    Raises:
        Unreadable: binary content, or bytes that are not valid in ``encoding``.
    """
    if b"\x00" in raw[:_BINARY_SNIFF_BYTES]:
        raise Unreadable("not a text file (binary content)")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        name = "UTF-8" if codecs.lookup(encoding).name == "utf-8" else encoding
        raise Unreadable(f"not valid {name} (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None
    # A byte-order mark is not content; offsets count from the first real character.
    return text.removeprefix("\ufeff")


def read_plain(raw: bytes) -> Extracted:
    """A .txt or .md file: UTF-8 text, served exactly as written."""
    return Extracted(_decode_text(raw))


# ---------------------------------------------------------------------------------------------------- HTML

# Never rendered: their content is code, styling or metadata. (``head`` is handled apart, for <title>.)
_INVISIBLE_TAGS = frozenset({"script", "style", "template", "noscript", "svg", "math", "iframe", "object", "canvas"})
# Each starts and ends a line of text.
_BLOCK_TAGS = frozenset(
    "address article aside blockquote body br caption dd details dialog div dl dt fieldset figcaption figure "
    "footer form h1 h2 h3 h4 h5 h6 header hgroup hr html legend li main menu nav ol p pre section summary table "
    "tbody tfoot thead tr ul".split()
)
_CELL_TAGS = frozenset({"td", "th"})
# What may stand in <head>; any other element starts the body.
_HEAD_TAGS = frozenset({"head", "title", "meta", "link", "style", "script", "base", "noscript", "template"})
# Elements with no end tag: a start tag must not open a hidden region that nothing closes.
_VOID_TAGS = frozenset("area base br col embed hr img input link meta param source track wbr".split())
# End tags a page may leave out; a ``hidden`` one of these could swallow the rest of the page, so it is not
# honoured, except on <p>, which any block element closes.
_OPTIONAL_END = frozenset("li dt dd tr td th option optgroup thead tbody tfoot colgroup caption rp rt".split())
_DISPLAY_NONE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_META_DATE = frozenset({"date", "dc.date", "dcterms.date", "pubdate", "publishdate", "article:published_time",
                        "og:published_time", "citation_publication_date", "dc.date.issued"})
_META_AUTHOR = frozenset({"author", "dc.creator", "article:author", "citation_author"})
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\n\r\f\v]+")


class _VisibleText(HTMLParser):
    """Collects the text a browser would show, one line per block element, and the page's declared metadata."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._line: list[str] = []
        self._hidden: list[str] = []  # open elements whose content is not shown, innermost last
        self._hidden_names: Counter[str] = Counter()  # how many of each name are in _hidden: no list scans
        self._in_head = False
        self._in_title = False
        self._pre = 0
        self.title_parts: list[str] | None = None  # None until a <title> opens; only the first one counts
        self.meta: dict[str, str] = {}

    def _break(self, *, empty_line: bool = False) -> None:
        """End the current line; an empty one is kept only when asked (``<br>``) or inside ``<pre>``."""
        line = "".join(self._line)
        self._line = []
        if self._pre:
            self.lines.extend(line.split("\n"))
            return
        line = _SPACES.sub(" ", line).strip()
        if line or empty_line:
            self.lines.append(line)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._hidden == ["p"] and tag in _BLOCK_TAGS:
            self._close_hidden("p")  # a block element ends a hidden <p> whose end tag was left out
        if self._hidden:
            # Count nested elements of the names that are open, so the right end tag closes the region.
            if self._hidden_names[tag] or tag in _INVISIBLE_TAGS:
                self._open_hidden(tag)
            return
        attributes = {k.lower(): (v or "") for k, v in attrs}
        if tag == "meta":
            name = (attributes.get("name") or attributes.get("property") or "").lower()
            if name and attributes.get("content"):
                self.meta.setdefault(name, attributes["content"])
            return
        if tag == "title":
            self._in_title = True
            if self.title_parts is None:
                self.title_parts = []
            return
        if tag == "head":
            self._in_head = True
        elif self._in_head and tag not in _HEAD_TAGS:
            self._in_head = False  # a browser ends <head> at the first element that cannot be in it
        hidden = "hidden" in attributes or _DISPLAY_NONE.search(attributes.get("style", ""))
        if tag in _INVISIBLE_TAGS or (hidden and tag not in _VOID_TAGS and tag not in _OPTIONAL_END):
            self._open_hidden(tag)
            return
        if tag == "br":
            self._break(empty_line=not self._line)
        elif tag in _BLOCK_TAGS:
            self._break()
        elif tag in _CELL_TAGS and self._line:
            self._line.append(" ")
        if tag == "pre":
            self._pre += 1

    def _open_hidden(self, tag: str) -> None:
        self._hidden.append(tag)
        self._hidden_names[tag] += 1

    def _close_hidden(self, tag: str) -> None:
        """Close the innermost open hidden element named ``tag`` and anything left open inside it."""
        while self._hidden:
            closed = self._hidden.pop()
            self._hidden_names[closed] -= 1
            if closed == tag:
                return

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # ``<br/>``: a void element has no content and no end tag. Elsewhere the slash means nothing in HTML.
        self.handle_starttag(tag, attrs)
        if tag not in _VOID_TAGS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._hidden == ["p"] and tag != "p" and tag in _BLOCK_TAGS:
            self._close_hidden("p")  # so does the end of the element holding it
        if self._hidden:
            if self._hidden_names[tag]:
                self._close_hidden(tag)
            return
        if tag == "title":
            self._in_title = False
        elif tag == "head":
            self._in_head = False
        elif tag in _BLOCK_TAGS and tag != "br":
            self._break()
            if tag == "pre":
                self._pre = max(0, self._pre - 1)

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if self._in_title:
            if self.title_parts is not None and len(self.title_parts) < 1000:
                self.title_parts.append(data)
            return
        if self._in_head:
            if not data.strip():
                return
            self._in_head = False  # text cannot be in <head>: a browser shows it as the start of the body
        self._line.append(data)

    def close(self) -> None:
        super().close()
        self._break()


def _html_encoding(raw: bytes) -> str:
    """The encoding a page declares (byte-order mark, then ``<meta charset>``), UTF-8 when it declares none."""
    for bom, name in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if raw.startswith(bom):
            return name
    match = _CHARSET.search(raw[:4096])
    if match:
        try:
            return codecs.lookup(match.group(1).decode("ascii")).name
        except LookupError:
            pass
    return "utf-8"


def read_html(raw: bytes) -> Extracted:
    """An HTML page: its visible text, one line per block element; scripts, styles and hidden parts dropped.

    Whitespace inside a line is folded as a browser folds it (``<pre>`` keeps its lines). The title comes from
    ``<title>``, the date and author from ``<meta>`` tags when the page declares them.
    """
    encoding = _html_encoding(raw)
    if encoding.startswith("utf-16"):
        markup = raw.decode(encoding, errors="replace")
    else:
        markup = _decode_text(raw, encoding)
    parser = _VisibleText()
    parser.feed(_storable(markup))
    parser.close()
    lines: list[str] = []
    for line in parser.lines:
        line = line.rstrip()
        if line or (lines and lines[-1]):  # at most one blank line in a row, none at the start
            lines.append(line)
    text = "\n".join(lines).strip()
    if not text:
        raise Unreadable("no visible text")
    title = _SPACES.sub(" ", "".join(parser.title_parts or [])).strip() or None
    date = next((parser.meta[k] for k in parser.meta if k in _META_DATE), None)
    author = next((parser.meta[k] for k in parser.meta if k in _META_AUTHOR), None)
    return Extracted(text, title=title, date=date, author=author.strip() if author else None)


# ----------------------------------------------------------------------------------------------------- PDF


def read_pdf(raw: bytes) -> Extracted:
    """A PDF: the text of each page in order, pages separated by a blank line, with each page's start offset.

    Raises:
        Unreadable: not a PDF, damaged, encrypted with a password, or with no text on any page (a scan).
    """
    try:
        import logging

        from pypdf import PdfReader
        from pypdf.errors import FileNotDecryptedError, PdfReadError
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ImportError("reading PDF files needs pypdf: pip install pypdf") from exc
    # pypdf logs every oddity it recovers from; what matters reaches the user as a skip reason instead.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    if not raw.lstrip()[:5] == b"%PDF-":
        raise Unreadable("not a PDF file (no %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            # Many PDFs are encrypted only to set permissions, with an empty password that anyone may use.
            try:
                opened = reader.decrypt("")
            except Exception as exc:
                raise Unreadable(f"PDF is encrypted and cannot be opened: {exc}") from None
            if not opened:
                raise Unreadable("PDF is encrypted with a password")
        pages = [_storable(page.extract_text() or "").strip() for page in reader.pages]
    except Unreadable:
        raise
    except FileNotDecryptedError:
        raise Unreadable("PDF is encrypted with a password") from None
    except PdfReadError as exc:
        raise Unreadable(f"damaged PDF: {exc}") from None
    except Exception as exc:  # a parser meeting hostile bytes can fail in any way; the file is skipped, not the build
        raise Unreadable(f"damaged PDF: {type(exc).__name__}: {exc}") from None
    if not any(pages):
        raise Unreadable("PDF has no extractable text (scanned images?)" if pages else "PDF has no pages")
    starts, offset = [], 0
    for page in pages:
        starts.append(offset)
        offset += len(page) + len(PAGE_SEPARATOR)
    info = _pdf_info(reader)
    text = PAGE_SEPARATOR.join(pages)
    return Extracted(text, pages=tuple(starts), title=info.get("title"), author=info.get("author"))


def _pdf_info(reader) -> dict[str, str]:
    """Title and author from a PDF's info dictionary, when set to something a person wrote."""
    try:
        info = reader.metadata or {}
        found = {"title": info.get("/Title"), "author": info.get("/Author")}
    except Exception:  # metadata is a nicety; a damaged info dictionary must not lose the text
        return {}
    out = {}
    for key, value in found.items():
        value = _storable(str(value)).strip() if value else ""
        if value and not value.lower().startswith(("microsoft word - ", "untitled")):
            out[key] = value
    return out


# ---------------------------------------------------------------------------------------------------- DOCX

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
    text = _storable("\n".join(line for line in lines if line))
    if not text.strip():
        raise Unreadable("DOCX has no text")
    title = next((styled[s] for s in _TITLE_STYLES if s in styled), None) or declared
    return Extracted(text, title=_storable(title) if title else None)


def _table_lines(table) -> list[str]:
    """One line per table row, cells separated by tabs; a merged cell once, nested tables flattened."""
    lines = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell appears once per grid column it spans
                continue
            seen.add(id(cell._tc))
            cells.append(_SPACES.sub(" ", cell.text).strip())
        line = "\t".join(cells).strip()
        if line:
            lines.append(line)
    return lines


_READERS: dict[str, Callable[[bytes], Extracted]] = {
    ".txt": read_plain,
    ".md": read_plain,
    ".html": read_html,
    ".htm": read_html,
    ".pdf": read_pdf,
    ".docx": read_docx,
}
