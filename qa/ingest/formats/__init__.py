"""Turn a file's bytes into the document text that is indexed, cited and served, one reader per format.

Every reader returns :class:`Extracted`: the text (citation offsets index exactly this string), the start
offset of each page for paged formats (PDF), the headings and code blocks, and whatever metadata the format
declares (an HTML ``<title>``, a PDF's info dictionary, a DOCX title paragraph). A file that cannot be read
raises :class:`Unreadable` with a reason for people; the caller skips it and says why.

One module per format: ``text`` (plain text and Markdown), ``rst`` (reStructuredText), ``html``, ``pdf``, ``docx``;
``base`` holds what they share.
"""

from __future__ import annotations

from typing import Callable

from qa.ingest.formats.base import PAGE_SEPARATOR, Extracted, Heading, Unreadable
from qa.ingest.formats.docx import read_docx
from qa.ingest.formats.html import read_html
from qa.ingest.formats.pdf import read_pdf
from qa.ingest.formats.rst import read_rst, rst_structure
from qa.ingest.formats.text import markdown_structure, read_markdown, read_plain

__all__ = ["PAGE_SEPARATOR", "SUFFIXES", "Extracted", "Heading", "Unreadable", "extract", "text_structure"]

SUFFIXES = (".txt", ".md", ".rst", ".html", ".htm", ".pdf", ".docx")
# Extracted text longer than this is refused: no real document is that long, and chunking it would take hours.
MAX_TEXT_CHARS = 64 * 1024 * 1024


def extract(raw: bytes, suffix: str, *, main_content: bool = True) -> Extracted:
    """The document text of a file with this suffix.

    Args:
        main_content: for HTML, leave out the page's navigation, header, footer and sidebars (False keeps the
            whole visible page).

    Raises:
        Unreadable: not text, not the format its name says, encrypted, or holding no text.
    """
    suffix = suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        raise Unreadable(f"unsupported file type {suffix!r}")
    extracted = read_html(raw, main_content=main_content) if reader is read_html else reader(raw)
    if len(extracted.text) > MAX_TEXT_CHARS:
        raise Unreadable(f"extracted text is longer than {MAX_TEXT_CHARS} characters")
    return extracted


_READERS: dict[str, Callable[..., Extracted]] = {
    ".txt": read_plain,
    ".md": read_markdown,
    ".rst": read_rst,
    ".html": read_html,
    ".htm": read_html,
    ".pdf": read_pdf,
    ".docx": read_docx,
}


# Formats whose headings and code blocks are a function of the document text alone (it is the file as written), so a
# previous version's can be found again from the text the index stored: an update chunks only changed sections.
_TEXT_STRUCTURES: dict[str, Callable[[str], tuple[tuple[Heading, ...], tuple[tuple[int, int], ...]]]] = {
    ".md": markdown_structure,
    ".rst": rst_structure,
}


def text_structure(suffix: str) -> Callable[[str], tuple[tuple[Heading, ...], tuple[tuple[int, int], ...]]] | None:
    """``(headings, code)`` of a document text of the format this suffix picks, when they follow from the text alone
    (Markdown, reStructuredText); None for the others."""
    return _TEXT_STRUCTURES.get(suffix.lower())
