"""HTML: the text a browser shows, one line per block element, with the page's declared metadata."""

from __future__ import annotations

import codecs
import re
from collections import Counter
from html.parser import HTMLParser

from qa.formats.base import SPACES, Extracted, Unreadable, decode_text, storable

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
        line = SPACES.sub(" ", line).strip()
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


def read_html(raw: bytes, *, main_content: bool = True) -> Extracted:
    """An HTML page: its visible text, one line per block element; scripts, styles and hidden parts dropped.

    Whitespace inside a line is folded as a browser folds it (``<pre>`` keeps its lines). The title comes from
    ``<title>``, the date and author from ``<meta>`` tags when the page declares them.
    """
    encoding = _html_encoding(raw)
    if encoding.startswith("utf-16"):
        markup = raw.decode(encoding, errors="replace")
    else:
        markup = decode_text(raw, encoding)
    parser = _VisibleText()
    parser.feed(storable(markup))
    parser.close()
    lines: list[str] = []
    for line in parser.lines:
        line = line.rstrip()
        if line or (lines and lines[-1]):  # at most one blank line in a row, none at the start
            lines.append(line)
    text = "\n".join(lines).strip()
    if not text:
        raise Unreadable("no visible text")
    title = SPACES.sub(" ", "".join(parser.title_parts or [])).strip() or None
    date = next((parser.meta[k] for k in parser.meta if k in _META_DATE), None)
    author = next((parser.meta[k] for k in parser.meta if k in _META_AUTHOR), None)
    return Extracted(text, title=title, date=date, author=author.strip() if author else None)
