"""PDF: the text of each page in order (read by PDFium), with where each page starts, the outline and dates."""

from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta, timezone

from qa.ingest.formats.base import PAGE_SEPARATOR, SPACES, Extracted, Heading, Unreadable, storable

# PDFium is not thread-safe: no two threads may be inside it at once (pypdfium2 leaves locking to its callers).
_PDFIUM_LOCK = threading.Lock()
# PDFium's load error codes (FPDF_ERR_*) that say more than "damaged".
_ERR_PASSWORD, _ERR_SECURITY = 4, 5
# Deeper outline levels than this are not sections a reader navigates by.
_MAX_OUTLINE_DEPTH = 15
# PDFium marks a hyphen it took out of a word broken across lines with U+FFFE and ends lines with CRLF.
_SOFT_HYPHEN_MARK = "\ufffe"
_LINE_ENDS = re.compile(r"[ \t]*(?:\r\n|\r|\n)")
# D:YYYYMMDDHHmmSS followed by Z or +HH'mm' (PDF 32000-1, 7.9.4); every part after the year is optional.
_PDF_DATE = re.compile(
    r"D:(?P<y>\d{4})(?P<m>\d{2})?(?P<d>\d{2})?(?P<H>\d{2})?(?P<M>\d{2})?(?P<S>\d{2})?"
    r"(?:(?P<z>Z)|(?P<sign>[+-])(?P<oh>\d{2})'?(?P<om>\d{2})?'?)?"
)
# Titles that name a file or a template rather than the document.
_JUNK_TITLE = re.compile(r"^(untitled|microsoft (word|powerpoint|excel) - |document\d*$|slide\d*$)", re.IGNORECASE)
_FILE_NAME = re.compile(r"(^|[\\/])[^\\/]*\.(pdf|dvi|ps|docx?|odt|rtf|tex|txt|html?|pptx?|xlsx?|indd|qxd)$", re.I)
# A heading line may carry a number the outline entry leaves out ("2.1 ", "IV. ", "A ").
_SECTION_NUMBER = r"[ \t]*(?:(?:\d+|[IVXLC]+|[A-Z])(?:\.\d+)*\.?[ \t]+)?"
_LETTER = re.compile(r"[^\W\d_]")
# A first line shorter than this many letters (a page number, a running head) is not taken for a title.
_MIN_TITLE_LETTERS = 3
_MAX_TITLE_CHARS = 200


def read_pdf(raw: bytes) -> Extracted:
    """A PDF: the text of each page in order, pages separated by a blank line, with each page's start offset.

    Headings come from the outline (bookmarks); the date from /ModDate, else /CreationDate; the title from
    /Title, and where that is a number, a file name or a placeholder, from the first line of page 1 with a few
    letters, else the first outline entry.

    Raises:
        Unreadable: not a PDF, damaged, encrypted with a password, or with no text on any page (a scan).
    """
    if not raw.lstrip()[:5] == b"%PDF-":
        raise Unreadable("not a PDF file (no %PDF header)")
    with _PDFIUM_LOCK:
        document = _open(raw)
        try:
            pages = _page_texts(document)
            outline = _outline(document)
            info = _info(document)
        except Unreadable:
            raise
        except Exception as exc:  # a parser meeting hostile bytes can fail in any way; the file is skipped
            raise Unreadable(f"damaged PDF: {type(exc).__name__}: {exc}") from None
        finally:
            document.close()
    if not any(pages):
        raise Unreadable("PDF has no extractable text (scanned images?)" if pages else "PDF has no pages")
    pages = [without_leader_lines(page) for page in pages] if any(map(without_leader_lines, pages)) else pages
    starts, offset = [], 0
    for page in pages:
        starts.append(offset)
        offset += len(page) + len(PAGE_SEPARATOR)
    text = PAGE_SEPARATOR.join(pages)
    headings = outline_headings(outline, text, tuple(starts))
    title = _title(info.get("Title"), headings, pages[0])
    author = _person_text(info.get("Author"))
    date = pdf_date(info.get("ModDate", "")) or pdf_date(info.get("CreationDate", ""))
    return Extracted(text, pages=tuple(starts), title=title, date=date, author=author, headings=headings)


def pdfium_page_texts(raw: bytes, *, max_pages: int | None = None) -> list[str]:
    """The text of each page as :func:`read_pdf` gets it, for the first ``max_pages`` pages (all when None).

    Raises:
        Unreadable: damaged or encrypted with a password.
    """
    with _PDFIUM_LOCK:
        document = _open(raw)
        try:
            return _page_texts(document, max_pages)
        finally:
            document.close()


def _open(raw: bytes):
    """The PDFium document for these bytes (an empty password is tried, as readers do).

    Raises:
        Unreadable: damaged, or encrypted with a password.
    """
    try:
        import pypdfium2 as pdfium
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ImportError("reading PDF files needs pypdfium2: pip install pypdfium2") from exc
    try:
        return pdfium.PdfDocument(raw)
    except pdfium.PdfiumError as exc:
        if exc.err_code == _ERR_PASSWORD:
            raise Unreadable("PDF is encrypted with a password") from None
        if exc.err_code == _ERR_SECURITY:
            raise Unreadable("PDF is encrypted and cannot be opened: unsupported security handler") from None
        raise Unreadable(f"damaged PDF: {exc}") from None


# A table-of-contents or index entry: dot leaders running to a page number ("2.1 Installation . . . . . 3").
_LEADER_LINE = re.compile(r"(?m)^[^\n]*?(?:\.\s?){4,}\s*[0-9ivxlcdmIVXLCDM]{1,6}[ \t]*(?:\n|$)")


def without_leader_lines(page: str) -> str:
    """A page's text without its table-of-contents and index entries: they are the manual's navigation, not its
    content, and a page of them otherwise ranks first for questions it cannot answer (like an HTML page's
    sidebar). The rest of the page is kept as it is."""
    return _LEADER_LINE.sub("", page).strip()


def _page_texts(document, max_pages: int | None = None) -> list[str]:
    """Each page's text: LF line ends, no trailing spaces, words broken by a hyphen at a line end joined."""
    texts = []
    for index in range(len(document) if max_pages is None else min(max_pages, len(document))):
        page = document[index]
        try:
            textpage = page.get_textpage()
            try:
                raw_text = textpage.get_text_range()
            finally:
                textpage.close()
        finally:
            page.close()
        text = _LINE_ENDS.sub("\n", raw_text.replace(_SOFT_HYPHEN_MARK, ""))
        texts.append(storable(text).strip())
    return texts


def _outline(document) -> list[tuple[int, str, int | None]]:
    """The outline as (depth, title, page index or None) in outline order; empty when there is none."""
    try:
        return [
            (bookmark.level, bookmark.get_title() or "", _bookmark_page(document, bookmark))
            for bookmark in document.get_toc(max_depth=_MAX_OUTLINE_DEPTH)
        ]
    except Exception:  # the outline is a nicety; a damaged one must not lose the text
        return []


def _bookmark_page(document, bookmark) -> int | None:
    """The index of the page a bookmark opens, from its destination or else its GoTo action; None if neither."""
    import pypdfium2.raw as pdfium_c

    destination = bookmark.get_dest()
    if destination is not None:
        return destination.get_index()
    action = pdfium_c.FPDFBookmark_GetAction(bookmark)
    if not action or pdfium_c.FPDFAction_GetType(action) != pdfium_c.PDFACTION_GOTO:
        return None
    raw_destination = pdfium_c.FPDFAction_GetDest(document, action)
    if not raw_destination:
        return None
    index = pdfium_c.FPDFDest_GetDestPageIndex(document, raw_destination)
    return index if index >= 0 else None


def outline_headings(
    outline: list[tuple[int, str, int | None]], text: str, pages: tuple[int, ...]
) -> tuple[Heading, ...]:
    """Headings from outline entries: each starts where its title appears on its page, else at the page start.

    Entries without a page, with an empty title, or that would start before the heading kept before them are
    dropped, so ``start`` ascends.
    """
    headings: list[Heading] = []
    for depth, raw_title, page_index in outline:
        title = SPACES.sub(" ", storable(raw_title)).strip()
        if not title or page_index is None or not 0 <= page_index < len(pages):
            continue
        page_start = pages[page_index]
        page_end = pages[page_index + 1] - len(PAGE_SEPARATOR) if page_index + 1 < len(pages) else len(text)
        previous = headings[-1].start if headings else 0
        search_from = page_start
        if headings and previous >= page_start:  # on the same page as the heading before it, so after it
            search_from = previous + 1
        found = _find_title(title, text, search_from, page_end)
        start = found if found is not None else page_start
        if start < previous:
            continue
        headings.append(Heading(start, depth + 1, title))
    return tuple(headings)


def _find_title(title: str, text: str, start: int, end: int) -> int | None:
    """Where ``title`` appears in ``text[start:end]``, whitespace ignored (PDF text spaces words its own way).

    A line that is the title (after a section number) wins over a line that starts with it, which wins over
    the title anywhere: a running head or a sentence can hold the same words before the heading does.
    """
    letters = [re.escape(char) for char in title if not char.isspace()]
    if not letters:
        return None
    body = r"\s*".join(letters)
    for pattern in (rf"^{_SECTION_NUMBER}{body}[ \t]*$", rf"^{_SECTION_NUMBER}{body}", body):
        match = re.compile(pattern, re.IGNORECASE | re.MULTILINE).search(text, start, end)
        if match:
            return match.start()
    return None


def _info(document) -> dict[str, str]:
    """The document information dictionary (Title, Author, ModDate, ...); empty when it cannot be read."""
    try:
        return {key: value for key, value in document.get_metadata_dict(skip_empty=True).items() if value}
    except Exception:  # metadata is a nicety; a damaged info dictionary must not lose the text
        return {}


def pdf_date(value: str) -> str | None:
    """A PDF date string (``D:20230115093000+01'00'``) in ISO 8601, as precise as it was given; None if invalid."""
    match = _PDF_DATE.match(value.strip())
    if not match:
        return None
    parts = match.groupdict()
    if parts["m"] is None:
        return parts["y"]
    if parts["d"] is None:
        return f"{parts['y']}-{parts['m']}" if 1 <= int(parts["m"]) <= 12 else None
    try:
        moment = datetime(
            int(parts["y"]),
            int(parts["m"]),
            int(parts["d"]),
            int(parts["H"] or 0),
            int(parts["M"] or 0),
            int(parts["S"] or 0),
        )
    except ValueError:
        return None
    if parts["H"] is None:
        return moment.date().isoformat()
    if parts["z"]:
        return moment.replace(tzinfo=timezone.utc).isoformat().replace("+00:00", "Z")
    if parts["sign"]:
        offset = timedelta(hours=int(parts["oh"]), minutes=int(parts["om"] or 0))
        if offset >= timedelta(hours=24):
            return moment.isoformat()
        return moment.replace(tzinfo=timezone(offset if parts["sign"] == "+" else -offset)).isoformat()
    return moment.isoformat()


def _title(declared: str | None, headings: tuple[Heading, ...], first_page: str) -> str | None:
    """The declared title when a person wrote it; for a junk one, page 1's first line with a few letters, else the
    first outline entry (on real manuals page 1 opens with the title, the outline with "1 Introduction"). None when
    no title is declared, so the title is read from the text as for any document."""
    declared = _person_text(declared)
    if not declared:
        return None
    if not is_junk_title(declared):
        return declared
    for line in first_page.splitlines():
        line = SPACES.sub(" ", line).strip()
        if len(_LETTER.findall(line)) >= _MIN_TITLE_LETTERS:
            return line[:_MAX_TITLE_CHARS]
    return headings[0].title if headings else None


def is_junk_title(title: str) -> bool:
    """True for a title property no person chose: a number, a file name, a template name, under 3 letters."""
    return (
        len(_LETTER.findall(title)) < _MIN_TITLE_LETTERS
        or bool(_JUNK_TITLE.match(title))
        or bool(_FILE_NAME.search(title))
    )


def _person_text(value: str | None) -> str | None:
    """An info-dictionary string with whitespace folded; None when empty."""
    value = SPACES.sub(" ", storable(value)).strip() if value else ""
    return value or None
