"""Plain text and Markdown: decoded and served as written (plain text as a terminal shows it); Markdown headings and
code blocks located."""

from __future__ import annotations

import re

from qa.ingest.formats.base import BINARY_SNIFF_BYTES, Extracted, Heading, Unreadable, decode_text

# When the detector cannot tell legacy encodings apart (short files score the same in many), windows-1252 is the
# likeliest: the most common legacy encoding, and what browsers read unlabelled or "latin1" text as.
_PREFERRED_LEGACY = "cp1252"
# Text with no NUL bytes is not UTF-16 or UTF-32, whatever a detector makes of a few bytes.
_WIDE_ENCODINGS = ("utf_16", "utf_32")

_LINE = re.compile(r"[^\n]*\n?")
_ATX = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")
_FENCE_OPEN = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*")
_INDENTED = re.compile(r"(?: {4}|[ ]{0,3}\t)")
# A line that starts a block of its own, so it neither continues a paragraph nor is one a setext line can underline.
_BLOCK_START = re.compile(r" {0,3}(?:[-*+][ \t]|\d{1,9}[.)][ \t]|>|<|\|)")
_FRONT_MATTER_END = re.compile(r"(?:---|\.\.\.)[ \t]*")
# ECMA-48 control sequences (CSI: ESC [ parameters intermediates final) and the two-character escapes (ESC and one of
# @ to _), which terminals act on rather than show.
_ANSI_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")
# A character struck over by the next: the same one twice (bold), or an underscore under it (underline).
_OVERSTRIKE = re.compile(r"([^\n\b])\x08([^\n\b])")


def read_plain(raw: bytes) -> Extracted:
    """A .txt file: UTF-8 (or, failing that, its detected legacy encoding), served as written, as a terminal shows it
    (see :func:`as_terminal_shows`).

    Raises:
        Unreadable: binary content, or bytes that no known encoding reads.
    """
    return Extracted(as_terminal_shows(decode_any(raw)))


def as_terminal_shows(text: str) -> str:
    """Text with terminal formatting taken out as a terminal takes it: ANSI escape sequences (colours, bold,
    underline: ``ESC[1m``) and nroff's overstrikes (``x BACKSPACE x`` for bold, ``_ BACKSPACE x`` for underline), which
    man pages rendered to text and tool output saved to a file are full of. Lines stay where they were."""
    if "\x1b" not in text and "\b" not in text:
        return text
    text = _ANSI_ESCAPE.sub("", text)
    struck = 1
    while struck:  # a character struck three times is two overstrikes, taken one pass each
        text, struck = _OVERSTRIKE.subn(_struck, text)
    return text


def _struck(match: re.Match) -> str:
    """What a terminal shows of a character struck over by another: the character an underscore underlines, else the
    later one (the same one again, for bold)."""
    under, over = match.group(1), match.group(2)
    return under if over == "_" else over


def read_markdown(raw: bytes) -> Extracted:
    """A .md file decoded as :func:`read_plain` does, with its headings and code blocks located in the text.

    Raises:
        Unreadable: binary content, or bytes that no known encoding reads.
    """
    text = decode_any(raw)
    headings, code = markdown_structure(text)
    return Extracted(text, headings=headings, code=code)


def decode_any(raw: bytes) -> str:
    """Text bytes as a string: UTF-8 first (exactly as :func:`decode_text`), else the encoding detected.

    Raises:
        Unreadable: binary content (a NUL byte near the start), or bytes that no known encoding reads.
    """
    try:
        return decode_text(raw)
    except Unreadable as not_utf8:
        if b"\x00" in raw[:BINARY_SNIFF_BYTES]:
            raise
        text = _decode_legacy(raw)
        if text is None:
            raise not_utf8 from None
        return text


def _decode_legacy(raw: bytes) -> str | None:
    """Bytes in the legacy encoding charset-normalizer finds likeliest, or None when none reads them."""
    from charset_normalizer import from_bytes

    matches = [match for match in from_bytes(raw) if not match.encoding.startswith(_WIDE_ENCODINGS)]
    if not matches:
        return None
    best = matches[0]
    tied = [match.encoding for match in matches if (match.chaos, match.coherence) == (best.chaos, best.coherence)]
    ordered = ([_PREFERRED_LEGACY] if _PREFERRED_LEGACY in tied else []) + [match.encoding for match in matches]
    for encoding in ordered:
        try:  # the detector reads samples of a large file; the rest must decode too
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def text_lines(text: str) -> list[tuple[int, str]]:
    """Each line of ``text`` with its start offset, line ending kept (a last line without one as it is)."""
    return [(match.start(), match.group()) for match in _LINE.finditer(text) if match.group()]


def markdown_structure(text: str) -> tuple[tuple[Heading, ...], tuple[tuple[int, int], ...]]:
    """The ATX and setext headings outside code, and the fenced and indented code blocks, of Markdown text.

    Returns:
        ``(headings, code)``: each heading starts at its first line (a setext heading at its first text line);
        each code span runs from the start of the block's first line to the end of its last, newline excluded.
    """
    lines = text_lines(text)
    headings: list[Heading] = []
    code: list[tuple[int, int]] = []
    paragraph: list[tuple[int, str]] = []  # the lines of the paragraph being read, for a setext underline
    index = _front_matter_end(lines)
    while index < len(lines):
        start, line = lines[index]
        content = line.rstrip("\r\n")
        fence = _FENCE_OPEN.fullmatch(content)
        if fence and not (fence.group(1)[0] == "`" and "`" in fence.group(2)):
            index, end = _fence_end(lines, index, fence.group(1))
            code.append((start, end))
            paragraph = []
            continue
        if not content.strip():
            paragraph = []
            index += 1
            continue
        if not paragraph and _INDENTED.match(content) and not _continues_list(lines, index):
            index, end = _indented_end(lines, index)
            code.append((start, end))
            continue
        atx = _ATX.fullmatch(content)
        setext = _SETEXT.fullmatch(content)
        if atx:
            title = (atx.group(2) or "").strip()
            if title:
                headings.append(Heading(start, len(atx.group(1)), " ".join(title.split())))
            paragraph = []
        elif setext:  # under a paragraph an underline; alone, a thematic break
            if paragraph:
                title = " ".join(" ".join(text_line.split()) for _, text_line in paragraph)
                headings.append(Heading(paragraph[0][0], 1 if setext.group(1)[0] == "=" else 2, title))
            paragraph = []
        elif _BLOCK_START.match(content):
            paragraph = []
        else:
            paragraph.append((start, content))
        index += 1
    return tuple(headings), tuple(code)


def _front_matter_end(lines: list[tuple[int, str]]) -> int:
    """The index of the first line after YAML front matter (``---`` ... ``---``), 0 when there is none."""
    if not lines or lines[0][1].rstrip("\r\n") != "---":
        return 0
    for index in range(1, len(lines)):
        if _FRONT_MATTER_END.fullmatch(lines[index][1].rstrip("\r\n")):
            return index + 1
    return 0


def _fence_end(lines: list[tuple[int, str]], opening: int, fence: str) -> tuple[int, int]:
    """(index of the line after the block, end offset of its last line) for the fence opened at ``opening``.

    An unclosed fence runs to the end of the document, as CommonMark says.
    """
    closing = re.compile(r" {0,3}" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}[ \t]*")
    for index in range(opening + 1, len(lines)):
        start, line = lines[index]
        if closing.fullmatch(line.rstrip("\r\n")):
            return index + 1, start + len(line.rstrip("\r\n"))
    start, line = lines[-1]
    return len(lines), start + len(line.rstrip("\r\n"))


def _indented_end(lines: list[tuple[int, str]], first: int) -> tuple[int, int]:
    """(index of the line after the block, end offset of its last indented line) for indented code at ``first``.

    Blank lines inside the block belong to it only when an indented line follows them.
    """
    index, last = first, first
    while index < len(lines):
        content = lines[index][1].rstrip("\r\n")
        if _INDENTED.match(content) and content.strip():
            last = index
        elif content.strip():
            break
        index += 1
    start, line = lines[last]
    return last + 1, start + len(line.rstrip("\r\n"))


def _continues_list(lines: list[tuple[int, str]], index: int) -> bool:
    """True when the indented line at ``index`` continues a list item: the nearest unindented line above it,
    blank lines skipped, is a list item."""
    for back in range(index - 1, -1, -1):
        content = lines[back][1].rstrip("\r\n")
        if not content.strip():
            continue
        if _BLOCK_START.match(content) and content.lstrip()[:1] not in (">", "<", "|"):
            return True
        if not _INDENTED.match(content):
            return False
    return False
