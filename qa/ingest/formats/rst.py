"""reStructuredText: decoded and served exactly as written, like Markdown; its section titles and literal blocks
located as docutils reads them (a title under, or between, lines of one repeated punctuation character; levels in
the order the adornment styles first appear; ``::`` and code directives followed by an indented block)."""

from __future__ import annotations

import re

from qa.ingest.formats.base import Extracted, Heading
from qa.ingest.formats.text import decode_any, text_lines

# An adornment: one non-alphanumeric printable ASCII character repeated (docutils' rule), at least two of them.
_ADORNMENT = re.compile(r"([!-/:-@\[-`{-~])\1+[ \t]*")
# Directives whose indented content is code (Sphinx's and docutils' names), and the option lines that may follow one.
_CODE_DIRECTIVE = re.compile(r"\.\.[ \t]+(?:code-block|code|sourcecode|doctest|testcode|testoutput|highlight-block)::")
_OPTION = re.compile(r"[ \t]+:[\w-]+:")
# Inline markup in a title, replaced by its text: a role (":func:`name`", "`title <target>`_"), literals, emphasis.
_ROLE = re.compile(r"(?::[\w.+-]+:)?`([^`]+?)`(?::[\w.+-]+:)?_{0,2}")
_LITERAL = re.compile(r"``(.+?)``")
# The emphasised text holds no "*", so finding it costs one pass, whatever a hostile title is made of.
_EMPHASIS = re.compile(r"(?<![\w*])(\*{1,2})([^\s*](?:[^*]*[^\s*])?)\1(?![\w*])")
_ESCAPE = re.compile(r"\\(.)")
# A line that is a directive, a comment or a hyperlink target (``.. note::``, ``.. _label:``): never a title.
_EXPLICIT = re.compile(r"\.\.(?:[ \t]|$)")
# An underline shorter than its title still makes one from this length up (docutils warns); below it, it is text.
_SHORT_UNDERLINE_LEAST = 4


def read_rst(raw: bytes) -> Extracted:
    """A .rst file (or Sphinx's ``.rst.txt`` copy of one) decoded as plain text is, with its section titles and
    literal blocks located in the text and its first title as the document's title.

    Raises:
        Unreadable: binary content, or bytes that no known encoding reads.
    """
    text = decode_any(raw)
    headings, code = rst_structure(text)
    return Extracted(text, title=headings[0].title if headings else None, headings=headings, code=code)


def rst_structure(text: str) -> tuple[tuple[Heading, ...], tuple[tuple[int, int], ...]]:
    """The section titles outside literal blocks, and the literal blocks, of reStructuredText.

    Returns:
        ``(headings, code)``: each heading starts at its first line (the overline when it has one), its level the
        place of its adornment style (character, and whether it has an overline) among the styles met so far;
        each code span runs from the start of the block's first line to the end of its last, newline excluded.
    """
    lines = [(start, line.rstrip("\r\n")) for start, line in text_lines(text)]
    headings: list[Heading] = []
    code: list[tuple[int, int]] = []
    styles: list[tuple[str, bool]] = []
    index, literal_after = 0, None  # literal_after: the indent of a paragraph that ended with "::"
    while index < len(lines):
        start, line = lines[index]
        if not line.strip():
            index += 1
            continue
        if literal_after is not None and _indent(line) > literal_after:
            index = _take_block(lines, index, _indent(line), code)
            literal_after = None
            continue
        literal_after = None
        if _CODE_DIRECTIVE.match(line.lstrip()):
            index = _directive_body(lines, index, code)
            continue
        title = _title_at(lines, index)
        if title is not None:
            text_line, style, taken = title
            if style not in styles:
                styles.append(style)
            plain = plain_title(text_line)
            if plain:  # a title of markup alone ("` `") names nothing
                headings.append(Heading(start, styles.index(style) + 1, plain))
            index += taken
            continue
        paragraph_end = _paragraph_end(lines, index)
        last = lines[paragraph_end - 1][1].rstrip()
        if last.endswith("::") and not _EXPLICIT.match(line.lstrip()):
            literal_after = _indent(line)
        if line.lstrip().startswith(">>> ") and _indent(line) == 0:  # a doctest block runs to the blank line
            code.append((start, lines[paragraph_end - 1][0] + len(lines[paragraph_end - 1][1])))
        index = paragraph_end
    return tuple(headings), tuple(code)


def _indent(line: str) -> int:
    """The width of a line's leading white space (a tab as eight columns, as docutils expands it)."""
    return len(line.expandtabs(8)) - len(line.expandtabs(8).lstrip())


def _blank_before(lines: list[tuple[int, str]], index: int) -> bool:
    """Whether the line at ``index`` opens the text or follows a blank line."""
    return index == 0 or not lines[index - 1][1].strip()


def _title_at(lines: list[tuple[int, str]], index: int) -> tuple[str, tuple[str, bool], int] | None:
    """``(title, style, lines taken)`` when a section title starts at ``index``, else None.

    An underlined title is one unindented line of text after a blank line, under a line of one punctuation
    character at least as long as the text; an overlined one has the same line above it too (its text may be
    indented). A line of punctuation alone between blank lines is a transition, not a title.
    """
    if not _blank_before(lines, index):
        return None
    line = lines[index][1]
    over = _ADORNMENT.fullmatch(line)
    if over and index + 2 < len(lines):
        text_line, under = lines[index + 1][1], lines[index + 2][1]
        if (
            text_line.strip()
            and not _ADORNMENT.fullmatch(text_line)
            and under.rstrip() == line.rstrip()
            and len(line.rstrip()) >= len(text_line.rstrip())
        ):
            return text_line.strip(), (line[0], True), 3
    if over or _indent(line) > 0 or _EXPLICIT.match(line) or index + 1 >= len(lines):
        return None
    under = lines[index + 1][1]
    length = len(under.rstrip())
    if not _ADORNMENT.fullmatch(under) or (length < len(line.rstrip()) and length < _SHORT_UNDERLINE_LEAST):
        return None
    return line.strip(), (under[0], False), 2


def _paragraph_end(lines: list[tuple[int, str]], index: int) -> int:
    """The index of the blank line (or the end) after the paragraph or block of lines starting at ``index``."""
    while index < len(lines) and lines[index][1].strip():
        index += 1
    return index


def _take_block(lines: list[tuple[int, str]], first: int, least: int, code: list[tuple[int, int]]) -> int:
    """Record the indented block at ``first`` (lines indented at least ``least``, blank lines inside it) as code;
    returns the index of the line after it."""
    index, last = first, first
    while index < len(lines):
        line = lines[index][1]
        if line.strip() and _indent(line) < least:
            break
        if line.strip():
            last = index
        index += 1
    code.append((lines[first][0], lines[last][0] + len(lines[last][1])))
    return last + 1


def _directive_body(lines: list[tuple[int, str]], index: int, code: list[tuple[int, int]]) -> int:
    """Skip a code directive's line and its options; record its content (indented further than the directive) as
    code. Returns the index of the line after the directive."""
    directive_indent = _indent(lines[index][1])
    index += 1
    while index < len(lines) and _OPTION.match(lines[index][1]):
        index += 1
    while index < len(lines) and not lines[index][1].strip():
        index += 1
    if index < len(lines) and _indent(lines[index][1]) > directive_indent:
        return _take_block(lines, index, _indent(lines[index][1]), code)
    return index


def plain_title(title: str) -> str:
    """A section title as a reader sees it rendered: roles, literals and emphasis replaced by their text (a
    reference's title without its target), backslash escapes resolved, white space collapsed."""
    plain = _LITERAL.sub(r"\1", title)
    plain = _ROLE.sub(lambda match: _without_target(match.group(1)), plain)
    plain = _EMPHASIS.sub(r"\2", plain)
    return " ".join(_ESCAPE.sub(r"\1", plain).split())


def _without_target(reference: str) -> str:
    """A reference's title without its ``<target>`` ("--app <celery --app>" -> "--app"); a target alone stays."""
    opening = reference.rfind("<")
    if not reference.endswith(">") or opening <= 0 or ">" in reference[opening + 1 : -1]:
        return reference
    return reference[:opening].rstrip() or reference
