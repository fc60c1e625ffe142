"""What every format reader returns, and the helpers they share: decoding, storable text, the skip exception."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

# Pages of a PDF are joined with a blank line; ``Extracted.pages`` says where each one starts.
PAGE_SEPARATOR = "\n\n"
# A NUL byte in the first block marks a binary file posing as text: a text or Markdown file is served as written,
# so one with a NUL is not taken as text.
BINARY_SNIFF_BYTES = 8192
# A page's markup is parsed, and NULs are dropped from what it shows (``storable``), so HTML is binary only when its
# first block holds NULs at more than one per BINARY_BYTES_PER_NUL bytes: a page may hold a stray one (javadoc's page
# for CharUtils has the NUL character itself inside a <code> element), while even compressed data, the binary with
# the fewest, has one in 256 bytes on average.
BINARY_BYTES_PER_NUL = 2048
# A DOCX is a zip: refuse one that declares more unpacked bytes than this (a zip bomb, not a document).
MAX_UNPACKED_BYTES = 256 * 1024 * 1024
# Characters that stored and served text cannot hold: NUL, and unpaired surrogates (not encodable as UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Whitespace as HTML and table cells fold it.
SPACES = re.compile(r"[ \t\n\r\f\v]+")


class Unreadable(Exception):
    """The file cannot be turned into text; ``str(exc)`` says why, for a skip reason."""


@dataclass(frozen=True)
class Heading:
    """A heading in the document text: the section it opens starts at ``text[start]`` (the heading line itself).

    ``level`` is 1 for the outermost heading (h1, ``#``, Heading 1, a top-level PDF bookmark) and grows inward;
    ``title`` is the heading as a person reads it (one line, whitespace folded); ``anchor`` is the id a link can
    open the source at (HTML: the heading's own id or the nearest enclosing element's), None where there is none.
    """

    start: int
    level: int
    title: str
    anchor: str | None = None


@dataclass(frozen=True)
class Extracted:
    """A file's document text and what its format says about it.

    ``pages`` holds the offset in ``text`` where each page starts (page 1 first, always 0) for paged formats,
    None otherwise. ``title``, ``date`` and ``author`` are declared by the file itself (None when it does not).
    ``headings`` are the document's headings in text order (``start`` ascending). ``code`` holds the half-open
    ``(start, end)`` spans of code blocks (``<pre>``, fenced or indented Markdown code), in order and disjoint,
    which a passage should not cut when the block fits in one. ``anchors`` holds ``(offset, id)`` pairs in
    offset order: from ``text[offset]`` on, the nearest element id before that point is ``id`` (HTML only).
    """

    text: str
    pages: tuple[int, ...] | None = None
    title: str | None = None
    date: str | None = None
    author: str | None = None
    headings: tuple[Heading, ...] = ()
    code: tuple[tuple[int, int], ...] = ()
    anchors: tuple[tuple[int, str], ...] = ()


def storable(text: str) -> str:
    """Parsed text with NULs dropped and lone surrogates replaced, so SQLite, JSON and terminals can take it."""
    return _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", text)


def looks_binary(raw: bytes) -> bool:
    """Whether a page's ``raw`` bytes are binary content rather than markup (see ``BINARY_BYTES_PER_NUL``)."""
    head = raw[:BINARY_SNIFF_BYTES]
    return head.count(b"\x00") * BINARY_BYTES_PER_NUL > len(head)


def decode_text(raw: bytes, encoding: str = "utf-8") -> str:
    """Bytes of a text file as a string without a leading byte-order mark.

    Raises:
        Unreadable: binary content, or bytes that are not valid in ``encoding``.
    """
    if b"\x00" in raw[:BINARY_SNIFF_BYTES]:
        raise Unreadable("not a text file (binary content)")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        name = "UTF-8" if codecs.lookup(encoding).name == "utf-8" else encoding
        raise Unreadable(f"not valid {name} (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None
    # A byte-order mark is not content; offsets count from the first real character.
    return text.removeprefix("\ufeff")
