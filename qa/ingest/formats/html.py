"""HTML: the text a browser shows of a page's main content, one line per block, with headings, anchors and code."""

from __future__ import annotations

import codecs
import re
from collections.abc import Container
from dataclasses import dataclass, field
from html.parser import HTMLParser

from qa.ingest.formats.base import BINARY_SNIFF_BYTES, SPACES, Extracted, Heading, Unreadable, looks_binary, storable
from qa.ingest.metadata import parse_date

# Never rendered: their content is code, styling or metadata. (``head`` is handled apart, for <title>.)
_INVISIBLE_TAGS = frozenset({"script", "style", "template", "noscript", "svg", "math", "iframe", "object", "canvas"})
# Each starts and ends a line of text.
_BLOCK_TAGS = frozenset(
    "address article aside blockquote body br caption dd details dialog div dl dt fieldset figcaption figure "
    "footer form h1 h2 h3 h4 h5 h6 header hgroup hr html legend li main menu nav ol p pre section summary table "
    "tbody tfoot thead tr ul".split()
)
_CELL_TAGS = frozenset({"td", "th"})
_HEADING_TAGS = {f"h{level}": level for level in range(1, 7)}
# What may stand in <head>; any other element starts the body.
_HEAD_TAGS = frozenset({"head", "title", "meta", "link", "style", "script", "base", "noscript", "template"})
# Elements with no end tag.
_VOID_TAGS = frozenset("area base br col embed hr img input link meta param source track wbr".split())
# A start tag of one of these ends an open <p> (the HTML standard's list, less the ones that never appear there).
_P_CLOSERS = _BLOCK_TAGS - {"br", "body", "html", "caption", "tbody", "tfoot", "thead", "tr"} | {"table"}
# An element whose end tag may be left out is ended by the next sibling it cannot contain; these stop the search
# for it (so a <li> in a nested list does not close the outer one).
_IMPLIED_END: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "p": (frozenset({"p"}), frozenset({"table", "td", "th", "caption", "button", "template", "html", "body"})),
    "li": (frozenset({"li"}), frozenset({"ul", "ol", "menu", "table", "td", "th"})),
    "dt": (frozenset({"dt", "dd"}), frozenset({"dl", "table", "td", "th"})),
    "dd": (frozenset({"dt", "dd"}), frozenset({"dl", "table", "td", "th"})),
    "tr": (frozenset({"tr", "td", "th"}), frozenset({"table", "thead", "tbody", "tfoot"})),
    "td": (frozenset({"td", "th"}), frozenset({"tr", "table"})),
    "th": (frozenset({"td", "th"}), frozenset({"tr", "table"})),
    "thead": (frozenset({"thead", "tbody", "tfoot", "tr", "td", "th"}), frozenset({"table"})),
    "tbody": (frozenset({"thead", "tbody", "tfoot", "tr", "td", "th"}), frozenset({"table"})),
    "tfoot": (frozenset({"thead", "tbody", "tfoot", "tr", "td", "th"}), frozenset({"table"})),
    "option": (frozenset({"option"}), frozenset({"select", "datalist", "optgroup"})),
}
# Deeper elements (pages that never close their <font> tags) become siblings: no real page nests this deep, and
# it bounds both the work per tag and the recursion when the text is written.
_MAX_DEPTH = 256
_DISPLAY_NONE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)

# ------------------------------------------------------------------------------------ what main content leaves out
_NAV_TAGS = frozenset({"nav", "aside"})
# A <header> or <footer> inside one of these belongs to it (an article's byline), not to the site.
_SECTIONING = frozenset({"article", "section", "main"})
_NAV_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary", "search", "menubar", "toolbar"})
# Class or id words of navigation boxes, matched against whole class names and ids and their -/_ parts.
_NAV_NAMES = re.compile(
    r"(?:[a-z0-9]+[-_])*(?:nav|navbar|navigation|navheader|navfooter|navpanel|sidebar|sphinxsidebar|"
    r"sphinxsidebarwrapper|related|relbar|breadcrumbs?|toc|toctree|toctree-wrapper|footer|cookies?|"
    r"cookie-?(?:banner|consent|notice)|consent|gdpr|skip-?link|skip-?nav|pagination|pager|"
    r"this-page-menu|sourcelink|srclink|edit-?(?:link|this-?page|on-?github)|social|share|sharing|"
    r"menu|mainmenu|submenu|"
    r"menubar|topbar|masthead|banner|tagline|search|searchbox|searchmenu|searchform)(?:[-_][a-z0-9]+)*",
    re.IGNORECASE,
)
# Class names that contain a navigation word but mark content (a reStructuredText sidebar's title).
_CONTENT_NAMES = re.compile(r"footnotes?|footnote-list|sidebar-title|sidebar-subtitle|nav-?content", re.IGNORECASE)
# A class that says a navigation box is absent ("no-sidebar", "without-toc") or inside ("has-srclink", rustdoc's
# class for an API entry that holds a source link; "with-sidebar") names the layout, not a box.
_NEGATED_NAME = re.compile(r"(?:no|without|has|with)[-_]", re.IGNORECASE)
# Links that act on the page rather than being part of it.
_PAGE_ACTIONS = re.compile(
    r"edit(?: (?:this|the) page| page| source| on (?:github|gitlab))?|(?:view|show)(?: page)? source"
    r"|(?:view|open) on (?:github|gitlab)|suggest an edit|improve this (?:page|doc)|page source"
    r"|(?:report|file|open) an? (?:bug|issue|problem)"
    # Sphinx's viewcode: an API entry's link to its highlighted source, and the source's link back to the entry.
    r"|\[source\]|\[docs\]"
    # A summary's link to the full description (Doxygen's "More...", a blog's "Read more"): never a sentence's words.
    r"|more\s*(?:\.\.\.|…)|read more(?:\s*(?:\.\.\.|…|»|→))?",
    re.IGNORECASE,
)
# The label of a control that acts on the page, not content: a <details> toggle's ("Expand description",
# rustdoc's), a button's ("Copy", "Run"). A summary or an accordion's button that says what is inside ("How do I
# reset my password?") is content.
_CONTROL_LABELS = re.compile(
    r"(?:click to )?(?:expand|collapse|show|hide|toggle)(?: (?:all|more|less|details|description|contents?|hidden"
    r"|code|navigation|menu|sidebar|theme))?|copy(?: code| to clipboard)?|copied!?|run(?: code)?|play|close|menu"
    r"|search|submit|cancel|ok|share|print|download|",
    re.IGNORECASE,
)
# What a generator writes the same on every page of a kind: rustdoc's "Blanket Implementations" (impl<T> From<T>
# for T, Any, Borrow ... with the standard library's text), collapsed on the page and never about the crate.
_GENERATED_ON_EVERY_PAGE = frozenset({"blanket-implementations", "blanket-implementations-list"})
# Classes of a box that holds the page's title where a generator writes it without a heading.
_TITLE_CLASSES = frozenset({"title", "headertitle", "page-title", "pagetitle"})
# Text shown only while the pointer rests on its sign ("ⓘ"): rustdoc's notable-traits box, CSS tooltips.
_TOOLTIP_NAMES = re.compile(r"(?:[a-z0-9]+[-_])*tooltip(?:[-_]?text)?", re.IGNORECASE)
_PREV_NEXT_RELS = frozenset({"next", "prev", "previous", "up", "contents", "index", "start", "home"})
_PREV_NEXT_KEYS = frozenset({"n", "p", "u", "h"})
# A drop-down's options are choices for a form, not text of the page.
_FORM_CONTROLS = frozenset({"select", "datalist"})
_EXTERNAL_HREF = re.compile(r"\s*(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
_LINK_DENSE_TAGS = frozenset({"ul", "ol", "menu", "dl", "table", "div", "section", "td"})
# A block is a link list when this share of its characters is link text and it holds at least this many links.
_LINK_DENSITY = 0.8
_LINK_DENSE_MIN_LINKS = 3
# A "Previous / Up / Next" bar: this many such links, and at most this many characters that are not link text.
_PREV_NEXT_MIN_LINKS = 2
_PREV_NEXT_MAX_OTHER_CHARS = 60
# A trail of links: at least this many, nothing else but these separators, short.
# Blocks, not lists or table cells: an item or a cell of two links ("RFC 9110: HTTP Semantics") is content.
_TRAIL_TAGS = frozenset({"div", "p", "span"})
_TRAIL_MIN_LINKS = 2
_TRAIL_MAX_CHARS = 400
# Not commas or colons: "See Also: BEGIN, ROLLBACK" and "RFC 9110: HTTP Semantics" are sentences of the content.
_TRAIL_SEPARATORS = re.compile(r"[\s>›»/|·•→\-–—\u00a0]*")
# A box of headings and links: this share of its characters, and at most this share of the page.
_BOX_TAGS = frozenset({"div", "section", "td"})
_BOX_DENSITY = 0.9
_BOX_MAX_SHARE = 0.5
_ID_PARTS = re.compile(r"[-_]")
# A section that is only a link line: its body is links between separators (commas too: "SEE ALSO git-am(1),
# git-send-email(1)" under its own heading is a list, not a sentence), or, as the page's last section, one short line
# of at most this many words beside its links ("GIT Part of the git(1) suite"). In the middle of a page such a line
# is content ("nokeepalive: This disables KeepAlive when set.").
_SECTION_LINK_SEPARATORS = re.compile(r"[\s,;.>›»/|·•→\-–—\u00a0]*")
_LINK_LINE_MAX_WORDS = 4
_LINK_LINE_MAX_CHARS = 80
# A notice above the page's first heading (a version banner: "This document describes the current stable version
# ... For development docs, go here"): a short block with a link to another site, before the title it stands over.
# A link within the site there is the page's own (an introduction's "described separately", a contents list).
_NOTICE_TAGS = frozenset({"div", "p", "aside", "section"})
_NOTICE_MAX_CHARS = 300
# Generators put one of these after a heading as a link to it; it is not part of the title.
_PERMALINK_SIGN = re.compile(r"\s*[¶🔗]$")

# ------------------------------------------------------------------------------------------------- generated pages
# Pages a documentation builder writes beside the documents, known by the markup the builder gives them (never by
# the file name alone: a user's own page may be called search.html): what each is, for the reason it is skipped.
# The most telling first: a module index's table is an "indextable" too.
_GENERATED_CLASSES = {
    "modindextable": "the module index",  # Sphinx: py-modindex.html and other domains' indexes
    "genindextable": "the general index",  # Sphinx: genindex.html, genindex-A.html ...
    "genindex-jumpbox": "the general index",  # Sphinx: a split index's page of letters
    "indextable": "the general index",  # older Sphinx templates (the Python docs'): a letter's page of the index
}
# The highlighted source a builder writes beside the pages that document it (the builders' own search leaves it out
# too): a copy of code whose docstrings the pages already give, which would take answers' places.
_SOURCE_VIEW = "the highlighted source code"
_SOURCE_VIEW_CLASSES = frozenset(
    {
        "viewcode-block",  # Sphinx's viewcode: _modules/<module>.html
        "source-page",  # javadoc 17 and later: src-html/<package>/<Class>.html (on the body)
        "sourceLineNo",  # javadoc 8 to 16: the same pages, each line's number
    }
)
_SOURCE_VIEW_BODIES = (frozenset({"rustdoc", "source"}), frozenset({"rustdoc", "src"}))  # rustdoc: src/<file>.rs.html
_SOURCE_VIEW_GENERATORS = ("javadoc/SourceToHTMLConverter",)  # <meta name="generator"> of javadoc's source pages
# Doxygen's <file>_source.html: the file as a code fragment with numbered lines, and no documented member or
# description (a page that documents code and inlines a function's source has those).
_DOXYGEN_FRAGMENT, _DOXYGEN_LINE_NUMBER = "fragment", "lineno"
_DOXYGEN_DOCUMENTATION = frozenset({"memitem", "textblock"})
# rustdoc's settings page (settings.html): a form its script fills in, nothing to read.
_SETTINGS_SCRIPTS = ("settings.js",)
# What a skipped generated page is instead of a document.
_GENERATED_WHY = {
    _SOURCE_VIEW: "a copy of the code its pages document (index the source files to search code)",
    "the settings page": "a form for the reader's display settings, not a document",
}
_SEARCH_SCRIPTS = ("searchindex.js",)  # Sphinx loads its search index on the search page only
_SEARCH_RESULT_IDS = frozenset({"search-results", "mkdocs-search-results"})


# ----------------------------------------------------------------------------------------------------------- dates
# Modified dates first: for documentation the last change is the date that matters.
_META_DATES = (
    "last-modified",
    "dcterms.modified",
    "article:modified_time",
    "og:updated_time",
    "dc.date.modified",
    "dc.modified",
    "modified",
    "date.modified",
    "revised",
    "lastmod",
    "updated",
    "date",
    "dc.date",
    "dcterms.date",
    "pubdate",
    "publishdate",
    "article:published_time",
    "og:published_time",
    "citation_publication_date",
    "dc.date.issued",
    "dcterms.issued",
    "dcterms.created",
    "dc.date.created",
)
_ITEMPROP_DATES = ("datemodified", "datepublished", "datecreated")
_META_AUTHOR = frozenset({"author", "dc.creator", "article:author", "citation_author"})
_MODIFIED_WORDS = re.compile(r"modif|updat|revis|changed", re.IGNORECASE)
_PUBLISHED_WORDS = re.compile(r"publish|creat|issued|posted", re.IGNORECASE)
# "Last updated on Nov 29, 2026.", "Last modified: 2024-05-01", "Page last edited 3 June 2024, at 10:00".
_DATE_LINE = re.compile(
    r"\b(?:last\s+(?:updated|modified|changed|revised|edited)|updated|modified|revised)(?:\s+(?:on|at))?\s*[:：]?"
    r"\s*(?P<value>[^\n]{4,60})",
    re.IGNORECASE,
)
_DATE_WORD = re.compile(r"updated|modified|changed|revised|edited", re.IGNORECASE)
_MAX_DATE_LINE_CHARS = 200
_DATE_IN_LINE = re.compile(
    r"(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s+)?"
    r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:[T\s]+\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|UTC|GMT|[+-]\d{2}:?\d{2})?)?"
    r"|[A-Za-z]{3,9}\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}"
    r"|\d{1,2}(?:st|nd|rd|th)?\s+[A-Za-z]{3,9}\.?,?\s+\d{4}(?:\s+\d{1,2}:\d{2}(?::\d{2})?\s*(?:Z|UTC|GMT)?)?)",
    re.IGNORECASE,
)

# -------------------------------------------------------------------------------------------------------- charsets
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
# Legacy encodings of web pages, most used first (the first is what browsers in Western locales assume).
_WEB_ENCODINGS = tuple(
    codecs.lookup(name).name
    for name in (
        "cp1252",
        "cp1251",
        "cp1250",
        "shift_jis",
        "gb18030",
        "euc_jp",
        "euc_kr",
        "big5",
        "iso8859_2",
        "koi8_r",
        "cp1254",
        "cp1253",
        "cp1256",
        "cp1255",
        "cp1257",
        "cp874",
        "cp1258",
        "iso8859_15",
        "koi8_u",
        "iso8859_5",
        "iso8859_7",
        "iso8859_9",
        "gb2312",
        "gbk",
        "iso2022_jp",
        # Supersets that detection names for the same East Asian pages.
        "cp949",
        "cp932",
        "euc_jis_2004",
        "euc_jisx0213",
        "shift_jis_2004",
        "shift_jisx0213",
        "cp950",
        "big5hkscs",
    )
)
# Readings within this much of the best one's "chaos" (garbling) and language coherence fit the bytes equally well.
_CHAOS_TIE = 0.01
_COHERENCE_TIE = 0.01
# Labels a browser reads as another encoding (the WHATWG Encoding standard): Latin-1 and ASCII pages are windows-1252.
_BROWSER_ENCODING = {"iso8859-1": "cp1252", "ascii": "cp1252"}


@dataclass(eq=False)
class _Node:
    """An element of the parsed page: tag, attributes and children (elements and text) in order."""

    tag: str
    attrs: dict[str, str]
    parent: _Node | None = None
    children: list[_Node | str] = field(default_factory=list)
    hidden: bool = False
    # Filled by _measure: non-space characters of visible text, of it inside links, and links that count.
    chars: int = 0
    link_chars: int = 0
    links: int = 0
    prev_next_links: int = 0
    language_links: int = 0  # links to the page in another language (hreflang, rel=alternate)
    has_block_content: bool = False  # holds a heading or a <pre>: never a link list
    # Characters inside any link (to other sites too) and such links; characters of headings; whether a <pre>
    # or an <h1> is inside: what tells a box of headings over link lists from a section of content.
    any_link_chars: int = 0
    any_links: int = 0
    heading_chars: int = 0
    headings: int = 0
    # Links inside headings: a heading's own text (rustdoc's method signatures link each type they name).
    heading_link_chars: int = 0
    heading_links: int = 0
    has_pre: bool = False
    has_h1: bool = False


class _TreeBuilder(HTMLParser):
    """Builds the element tree a browser would, closely enough: optional end tags implied, stray end tags ignored."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Node("#document", {})
        self._stack: list[_Node] = [self.root]
        self.title_parts: list[str] | None = None  # None until a <title> opens; only the first one counts
        self._in_title = False
        self._in_head = False
        self.meta: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k.lower(): (v or "") for k, v in attrs}
        if tag == "meta":
            self._meta(attributes)
            return
        if tag == "title":
            self._in_title = True
            if self.title_parts is None:
                self.title_parts = []
            return
        if tag == "head":
            self._in_head = True
        elif self._in_head and tag not in _HEAD_TAGS:
            self._close("head")  # a browser ends <head> at the first element that cannot be in it
        if tag in _P_CLOSERS:
            self._close_implied("p")
        if tag in _IMPLIED_END:
            self._close_implied(tag)
        node = _Node(tag, attributes, self._stack[-1])
        node.hidden = tag in _INVISIBLE_TAGS or (
            tag not in _VOID_TAGS
            and ("hidden" in attributes or bool(_DISPLAY_NONE.search(attributes.get("style", ""))))
        )
        self._stack[-1].children.append(node)
        if tag not in _VOID_TAGS and len(self._stack) < _MAX_DEPTH:
            self._stack.append(node)

    def _meta(self, attributes: dict[str, str]) -> None:
        name = (attributes.get("name") or attributes.get("property") or attributes.get("http-equiv") or "").lower()
        if name and attributes.get("content"):
            self.meta.setdefault(name, attributes["content"])
        if attributes.get("itemprop") and attributes.get("content"):
            self.meta.setdefault("itemprop:" + attributes["itemprop"].lower(), attributes["content"])

    def _close_implied(self, tag: str) -> None:
        """Close an open element that ``tag`` implicitly ends, unless a boundary element stands in between."""
        closes, boundaries = _IMPLIED_END[tag]
        for index in range(len(self._stack) - 1, 0, -1):
            name = self._stack[index].tag
            if name in closes:
                del self._stack[index:]
                return
            if name in boundaries:
                return

    def _close(self, tag: str) -> None:
        """Close the innermost open ``tag`` and everything left open inside it; a stray end tag does nothing."""
        for index in range(len(self._stack) - 1, 0, -1):
            if self._stack[index].tag == tag:
                del self._stack[index:]
                return

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # ``<br/>`` is a void element. XHTML pages (DocBook) write an empty element as ``<a id="x"/>``: closed here,
        # as an XML reader would close it, so that it does not swallow the text that follows.
        self.handle_starttag(tag, attrs)
        if tag not in _VOID_TAGS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag == "head":
            self._in_head = False
        if tag == "br":
            self.handle_starttag("br", [])  # browsers read </br> as <br>
        elif tag not in _VOID_TAGS:
            self._close(tag)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            if self.title_parts is not None and len(self.title_parts) < 1000:
                self.title_parts.append(data)
            return
        if self._in_head and self._stack[-1].tag in ("head", "html", "#document"):
            if not data.strip():
                return
            self._close("head")  # text cannot be in <head>: a browser shows it as the start of the body
            self._in_head = False
        children = self._stack[-1].children
        if children and isinstance(children[-1], str):
            children[-1] += data
        else:
            children.append(data)


# --------------------------------------------------------------------------------------- choosing the main content


def _elements(node: _Node, *, visible: bool = False):
    """Every element under ``node`` (itself first), in document order; ``visible``: not inside hidden ones."""
    stack = [node]
    while stack:
        current = stack.pop()
        if visible and (current.hidden or current.tag == "head"):
            continue
        yield current
        stack.extend(reversed([child for child in current.children if isinstance(child, _Node)]))


def _measure(root: _Node) -> None:
    """Count, bottom up, each element's visible characters, link characters and links (for link density)."""
    order = [node for node in _elements(root)]
    for node in reversed(order):
        if node.hidden or node.tag == "head":
            continue
        # Links to other sites (references, further reading) are content; a site's navigation links within it.
        is_any_link = node.tag == "a" and "href" in node.attrs
        is_link = is_any_link and not _EXTERNAL_HREF.match(node.attrs["href"])
        for child in node.children:
            if isinstance(child, str):
                node.chars += len(child) - child.count(" ") - child.count("\n") - child.count("\t")
            elif not child.hidden and child.tag != "head":
                node.chars += child.chars
                node.link_chars += child.link_chars
                node.links += child.links
                node.prev_next_links += child.prev_next_links
                node.language_links += child.language_links
                node.has_block_content |= child.has_block_content or child.tag in _HEADING_TAGS or child.tag == "pre"
                node.any_link_chars += child.any_link_chars
                node.any_links += child.any_links
                node.heading_chars += child.heading_chars
                node.headings += child.headings
                node.heading_link_chars += child.heading_link_chars
                node.heading_links += child.heading_links
                node.has_pre |= child.has_pre or child.tag == "pre"
                node.has_h1 |= child.has_h1 or child.tag == "h1"
        if is_any_link:
            node.any_link_chars = node.chars
            node.any_links += 1
            # A link to the page in another language (a language switcher) is navigation as "Next" is.
            if "hreflang" in node.attrs or "alternate" in node.attrs.get("rel", "").lower().split():
                node.prev_next_links += 1
                node.language_links += 1
        if is_link:
            node.link_chars = node.chars
            node.links += 1
            rels = set(node.attrs.get("rel", "").lower().split())
            if rels & _PREV_NEXT_RELS or node.attrs.get("accesskey", "").lower() in _PREV_NEXT_KEYS:
                node.prev_next_links += 1
        if node.tag in _HEADING_TAGS:
            node.heading_chars = node.chars
            node.headings += 1
            node.heading_link_chars, node.heading_links = node.any_link_chars, node.any_links


def _main_root(document: _Node) -> _Node:
    """The page's main landmark (``<main>``, ``role=main``, or its only ``<article>``); the page itself otherwise."""
    articles: list[_Node] = []
    for node in _elements(document, visible=True):
        if node.tag == "main" or node.attrs.get("role", "").lower() == "main":
            return node
        if node.tag == "article" and not _has_ancestor(node, {"article"}):
            articles.append(node)
    return articles[0] if len(articles) == 1 else document


def _ancestors(node: _Node):
    """The elements enclosing ``node``, nearest first."""
    parent = node.parent
    while parent is not None:
        yield parent
        parent = parent.parent


def _has_ancestor(node: _Node, tags: Container[str]) -> bool:
    """Whether an element named in ``tags`` encloses ``node``."""
    return any(parent.tag in tags for parent in _ancestors(node))


def _text_of(node: _Node, *, outside_links: bool = False, until: _Node | None = None) -> str:
    """The visible text under ``node`` (``outside_links``: not inside a link; ``until``: before that element, in
    document order), whitespace folded to one line."""
    parts: list[str] = []
    stack: list[_Node | str] = [node]
    while stack:
        current = stack.pop()
        if current is until:
            break
        if isinstance(current, str):
            parts.append(current)
        elif not current.hidden and not (outside_links and current.tag == "a" and "href" in current.attrs):
            stack.extend(reversed(current.children))
    return SPACES.sub(" ", "".join(parts)).strip()


def _is_boilerplate(node: _Node, root: _Node) -> bool:
    """Whether ``node`` is navigation, a banner, a footer, a sidebar or a page action rather than content.

    Inside a heading only a page action is: a heading's text is its section's title, whatever its link's class says
    (docutils links each title of a page with a local table of contents back to it, as ``<a class="toc-backref">``)."""
    if node is root or _is_authored_aside(node):
        return False
    if _is_hidden_from_readers(node):
        return True
    if _has_ancestor(node, _HEADING_TAGS):
        return _is_page_action(node) or _is_permalink_sign(node)
    return (
        _is_navigation_landmark(node, root)
        or _has_navigation_name(node)
        or _is_page_action(node)
        or node.attrs.get("id") in _GENERATED_ON_EVERY_PAGE
        or _is_link_list(node)
        or _is_link_trail(node)
        or _is_link_box(node, root)
    )


def _is_hidden_from_readers(node: _Node) -> bool:
    """``aria-hidden="true"``: a closed dialog (a search box's), an icon, a line number, a heading's anchor sign. Not
    ``hidden`` for the whole page (it may be on screen), but not content either, as Readability judges it. And a
    tooltip's text, which shows only while the pointer rests on its sign, in a heading too."""
    if node.attrs.get("aria-hidden", "").strip().lower() == "true":
        return True
    return any(_TOOLTIP_NAMES.fullmatch(name) for name in node.attrs.get("class", "").split())


def _is_navigation_landmark(node: _Node, root: _Node) -> bool:
    """``<nav>``, ``<aside>``, a navigation role, a site-wide header or footer, a drop-down."""
    if node.attrs.get("role", "").lower() in _NAV_ROLES or node.tag in _NAV_TAGS or node.tag in _FORM_CONTROLS:
        return True
    if node.tag not in ("header", "footer") or root.tag != "#document" or _has_ancestor(node, _SECTIONING):
        return False
    return node.tag == "footer" or not _holds_page_title(node)


def _holds_page_title(node: _Node) -> bool:
    """Whether a ``<header>`` holds the page's own ``<h1>``; a site banner's h1 is a link to the home page."""
    return any(
        element.tag == "h1" and element.chars and element.link_chars < element.chars / 2
        for element in _elements(node, visible=True)
    )


def _has_navigation_name(node: _Node) -> bool:
    """A class or id that names navigation (``sphinxsidebar``, ``navheader``, ``breadcrumb``, ``toc``...)."""
    if node.tag in ("html", "body"):
        return False  # the page itself, whatever its classes say of its layout ("no-sidebar")
    classes = node.attrs.get("class", "").split()
    # An id is often made from a heading ("related-projects"), and <div class="page-header"> often holds the title:
    # an element that holds a heading is never left out for its id or for a "header" class.
    id_parts = _ID_PARTS.split(node.attrs.get("id", ""))
    if not node.has_block_content and ("header" in classes or id_parts[-1] == "header"):
        return not _holds_title_box(node)
    names = classes + ([] if node.has_block_content else node.attrs.get("id", "").split())
    return any(
        _NAV_NAMES.fullmatch(name) and not _CONTENT_NAMES.fullmatch(name) and not _NEGATED_NAME.match(name)
        for name in names
    )


def _is_permalink_sign(node: _Node) -> bool:
    """A heading's link to itself shown as a sign (Doxygen's ◆, #, §) before the title's words.

    A sign after the words (Apache's ¶) stays in the text as it always has, and the heading's title drops it
    (``_PERMALINK_SIGN``): taking it out changed no word a reader or the keyword index sees, only the passages'
    vectors, and with them the ranking of held-out questions, for the worse."""
    if node.tag != "a" or "href" not in node.attrs:
        return False
    sign = _text_of(node).strip()
    if not sign or any(character.isalnum() for character in sign):
        return False
    heading = next((parent for parent in _ancestors(node) if parent.tag in _HEADING_TAGS), None)
    return heading is not None and not any(character.isalnum() for character in _text_of(heading, until=node))


def _untitled_page_title(rendered: _Rendered, document: _Node) -> str | None:
    """A page without ``<title>``: its first top-level heading, else its title box (Doxygen's with a custom header),
    rather than its first line, which is often the site's menu."""
    if top := next((heading.title for heading in rendered.headings if heading.level == 1), None):
        return top
    return next((text for box in _title_boxes(document) if (text := _text_of(box))), None)


def _holds_title_box(node: _Node) -> bool:
    """Whether a header holds the page's title written as a box, not a heading (Doxygen's ``<div class="title">``)."""
    return any(box is not node for box in _title_boxes(node))


def _title_boxes(node: _Node):
    """The visible elements under ``node`` (itself included) whose class says they hold the page's title."""
    return (
        element
        for element in _elements(node, visible=True)
        if _TITLE_CLASSES.intersection(element.attrs.get("class", "").split())
    )


def _is_page_action(node: _Node) -> bool:
    """A control or a link that acts on the page: a button ("Copy", "Run"), a toggle's label ("Expand
    description"), "Edit this page", "Show Source", "Report a Bug" wherever the link points (an edit link goes to
    the forge, rustdoc's "source" to the standard library's own pages)."""
    if node.tag == "button" and node.attrs.get("role", "").lower() == "tab":
        return True  # a tab that filters what is below it (javadoc's "All Methods | Static Methods"), not its text
    if node.tag in ("button", "summary"):
        return bool(_CONTROL_LABELS.fullmatch(_text_of(node).strip()))
    return node.tag == "a" and node.any_links > 0 and bool(_PAGE_ACTIONS.fullmatch(_text_of(node)))


def _is_link_list(node: _Node) -> bool:
    """A list, table or box that is almost all link text, or a "Previous / Up / Next" bar."""
    if node.has_block_content or node.tag not in _LINK_DENSE_TAGS | {"p"}:
        return False
    if node.tag != "p" and node.links >= _LINK_DENSE_MIN_LINKS and node.link_chars >= _LINK_DENSITY * node.chars:
        return True
    # A language switcher names the page's own language too, often as a plain link: "en | fr" is a switcher when
    # one of its links says it leads to another language.
    bar_links = node.prev_next_links if not node.language_links else max(node.prev_next_links, node.links)
    return bar_links >= _PREV_NEXT_MIN_LINKS and node.chars - node.link_chars <= _PREV_NEXT_MAX_OTHER_CHARS


def _is_link_trail(node: _Node) -> bool:
    """A breadcrumb trail or a bar of links between separators ("Apache > HTTP Server > Modules", "A | B | C"),
    wherever the links point: nothing but links and separator characters."""
    if node.has_block_content or node.tag not in _TRAIL_TAGS or node.any_links < _TRAIL_MIN_LINKS:
        return False
    if node.chars > _TRAIL_MAX_CHARS or node.chars == node.any_link_chars:
        # All link text is a link list's business (_is_link_list), which spares links to other sites.
        return False
    return _TRAIL_SEPARATORS.fullmatch(_text_of(node, outside_links=True)) is not None


def _is_link_box(node: _Node, root: _Node) -> bool:
    """A box of headings over lists of links, set beside the content (a "quick view" of topics, directives,
    "See also" and bug-tracker links): its text is all headings and links, wherever the links point, and it holds
    neither the page's title nor code. A section of content has prose of its own; links inside a heading are the
    heading's own text (an API entry's signature links each type it names), not a list beside it."""
    if node.tag not in _BOX_TAGS or not node.heading_chars or node.has_pre or node.has_h1 or node is root:
        return False
    listed_links = node.any_links - node.heading_links
    if listed_links < _LINK_DENSE_MIN_LINKS or node.chars > _BOX_MAX_SHARE * root.chars:
        return False
    other = node.chars - (node.any_link_chars - node.heading_link_chars) - node.heading_chars
    # Beside the links, a box of several headings may hold a short remark ("This module provides no directives.");
    # a short section of content (one heading, a sentence with links in it) may not.
    allowance = _PREV_NEXT_MAX_OTHER_CHARS if node.headings >= 2 else 0
    return other <= max((1 - _BOX_DENSITY) * node.chars, allowance)


def _is_authored_aside(node: _Node) -> bool:
    """Footnotes (``<aside class="footnote">``) and reStructuredText sidebars: set apart, but written as content."""
    classes = node.attrs.get("class", "").lower().split()
    if node.attrs.get("role", "").lower() in ("note", "doc-footnote", "doc-endnotes"):
        return True
    if any(name.startswith("footnote") for name in classes):
        return True
    # Docutils writes the ``sidebar`` directive as a box whose first paragraph is its title.
    return "sidebar" in classes and any(
        isinstance(child, _Node) and "sidebar-title" in child.attrs.get("class", "").split() for child in node.children
    )


def _page_furniture(root: _Node) -> set[int]:
    """The ids (``id()``) of the elements that make up link-line sections and notices above the title (see
    :func:`_link_line_sections` and :func:`_notices_above_title`): decided from the whole main content at once, as
    they are sequences of siblings or depend on where the first heading is."""
    return _link_line_sections(root) | _notices_above_title(root)


def _link_line_sections(root: _Node) -> set[int]:
    """The headings (h2-h6) whose section holds nothing but a line of links, with that section's elements.

    A section is the heading and the siblings after it up to the next heading or the end of its parent; it is left
    out when its body is links and separators only ("SEE ALSO git-am(1), git-send-email(1)", a "See also" list of
    one directive), or, as the page's last section, one short line of a few words around a link ("GIT Part of the
    git(1) suite"). The page's own title (h1) always stays, and a body with a heading or code in it is content, as is
    a section with subsections."""
    found: set[int] = set()
    last = next((node for node in reversed(list(_elements(root, visible=True))) if node.tag in _HEADING_TAGS), None)
    for parent in _elements(root, visible=True):
        heading: _Node | None = None
        body: list[_Node | str] = []
        for part in [*parent.children, None]:  # None closes the last section
            if part is None or isinstance(part, _Node) and part.tag in _HEADING_TAGS:
                # A heading followed by a deeper one has subsections: its links are their contents list, not all of it.
                deeper = heading and part and _HEADING_TAGS[part.tag] > _HEADING_TAGS[heading.tag]
                if heading and body and not deeper and _is_link_line(body, closing=heading is last):
                    found.add(id(heading))
                    found.update(id(node) for node in body if isinstance(node, _Node))
                heading = part if part is not None and part.tag != "h1" and not part.hidden else None
                body = []
            elif isinstance(part, str) or not part.hidden:
                body.append(part)
    return found


def _is_link_line(body: list[_Node | str], *, closing: bool) -> bool:
    """Whether a section body is only links between separators, or (``closing``: the page's last section) one short
    line of a few words and links."""
    nodes = [part for part in body if isinstance(part, _Node)]
    if not any(node.any_links for node in nodes) or any(node.has_block_content or node.has_pre for node in nodes):
        return False
    if any(node.tag in _HEADING_TAGS or node.tag == "pre" for node in nodes):
        return False
    outside = " ".join(part if isinstance(part, str) else _text_of(part, outside_links=True) for part in body)
    if _SECTION_LINK_SEPARATORS.fullmatch(outside):
        return True
    if not closing:
        return False
    chars = sum(node.chars for node in nodes) + sum(len(SPACES.sub("", part)) for part in body if isinstance(part, str))
    return len(outside.split()) <= _LINK_LINE_MAX_WORDS and chars <= _LINK_LINE_MAX_CHARS


def _notices_above_title(root: _Node) -> set[int]:
    """Short blocks with a link that stand before the main content's first heading: a banner pointing at another
    version of the page or at news, not what the page says. Nothing is left out of a page without headings."""
    found: set[int] = set()
    stack: list[_Node] = [root]
    while stack:
        node = stack.pop()
        if node.hidden or node.tag == "head":
            continue
        if node.tag in _HEADING_TAGS or node.tag == "dt" and node.attrs.get("id"):
            return found  # the first heading: what comes after it is the page
        if node is not root and _is_notice(node):
            found.add(id(node))
            continue
        stack.extend(reversed([child for child in node.children if isinstance(child, _Node)]))
    return set()  # no heading at all: no title for a notice to stand above


def _is_notice(node: _Node) -> bool:
    """A short block holding a link to another site and neither a heading nor code."""
    if node.tag not in _NOTICE_TAGS or not 0 < node.chars <= _NOTICE_MAX_CHARS or node.headings or node.has_pre:
        return False
    return node.any_links > node.links  # a link to another site (``links`` counts those within it)


# ------------------------------------------------------------------------------------------------ writing the text


class _Writer:
    """Writes the text line by line, folding whitespace as a browser does, and records offsets as it goes.

    ``pending`` marks (element ids, heading starts) take the offset of the next visible character written.
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.length = 0  # len("\n".join(self.lines))
        self.line = ""  # the line being written: folded, or raw inside <pre>
        self.pre = 0
        self.pending: list[list] = []  # [offset or None, payload], resolved at the next visible character
        self.code: list[tuple[int, int]] = []
        self._code_start: int | None = None
        self._code_end = 0
        self._at_pre_start = False  # a newline right after <pre> is not content (the HTML standard)

    def _line_start(self) -> int:
        return self.length + 1 if self.lines else self.length

    def _emit(self, line: str, *, empty_line: bool = False) -> int | None:
        """Append a line (at most one blank line in a row, none at the start); its start offset, None if dropped."""
        line = line.rstrip()
        if not line and not (empty_line and self.lines and self.lines[-1]):
            return None
        start = self._line_start()
        self.lines.append(line)
        self.length = start + len(line)
        return start

    def mark(self, payload: object) -> list:
        entry = [None, payload]
        self.pending.append(entry)
        return entry

    def _resolve(self, offset: int) -> None:
        for entry in self.pending:
            entry[0] = offset
        self.pending = []

    def text(self, data: str) -> None:
        if self.pre:
            self._pre_text(data)
            return
        piece = SPACES.sub(" ", data)
        if not self.line or self.line.endswith(" "):
            piece = piece.lstrip(" ")
        if self.pending and piece.strip():
            self._resolve(self._line_start() + len(self.line) + len(piece) - len(piece.lstrip(" ")))
        self.line += piece

    def _pre_text(self, data: str) -> None:
        if self._at_pre_start:
            data = data.removeprefix("\r").removeprefix("\n")
            self._at_pre_start = False
        self.line += data
        *complete, self.line = self.line.split("\n")
        for line in complete:
            self._pre_line(line)

    def _pre_line(self, line: str) -> None:
        if not line.strip():
            self._emit("", empty_line=True)
            return
        if self.pending:
            self._resolve(self._line_start() + len(line) - len(line.lstrip()))
        start = self._emit(line)
        if self._code_start is None:
            self._code_start = start
        self._code_end = self.length

    def cell(self) -> None:
        if self.line and not self.line.endswith(" "):
            self.line += " "

    def brk(self, *, empty_line: bool = False) -> None:
        """End the current line; an empty one is kept only when asked (``<br>``)."""
        if self.pre:
            self._pre_line(self.line)
        else:
            self._emit(self.line, empty_line=empty_line)
        self.line = ""

    def start_pre(self) -> None:
        self.brk()
        self.pre += 1
        if self.pre == 1:
            self._code_start = None
            self._at_pre_start = True

    def end_pre(self) -> None:
        if self.pre == 1 and self.line.strip():
            self._pre_line(self.line)
        self.line = ""
        self.pre = max(0, self.pre - 1)
        if self.pre == 0 and self._code_start is not None:
            self.code.append((self._code_start, self._code_end))
            self._code_start = None


@dataclass
class _Rendered:
    """The written text with what was recorded along the way, offsets into ``text``."""

    text: str
    headings: list[Heading]
    code: list[tuple[int, int]]
    anchors: list[tuple[int, str]]


class _Renderer:
    """Walks the tree (leaving out what ``skip`` says) and writes its text, headings, anchors and code spans."""

    def __init__(self, skip) -> None:
        self.skip = skip
        self.out = _Writer()
        self.headings: list[tuple[list, int, str, str | None]] = []
        self.anchors: list[tuple[list, str]] = []
        self._headed_ids: list[list] = []  # [id, has a heading been seen inside] for each open element with an id
        self._section_level = 0
        self._entry_level: int | None = None  # level of the last definition term, None when it was no heading
        self._entry_levels: list[int | None] = []  # that level for each open <dd>
        self._in_heading = 0

    def render(self, node: _Node) -> None:
        if node.hidden or node.tag == "head" or self.skip(node):
            return
        tag = node.tag
        element_id = node.attrs.get("id") or (node.attrs.get("name") if tag == "a" else None)
        if element_id:
            self.anchors.append((self.out.mark(element_id), element_id))
        heading_level = self._heading_level(node)
        if tag == "dd":
            self._entry_levels.append(self._entry_level)  # entries inside this one's description nest below it
        if heading_level is not None:
            self._heading(node, heading_level)
            self._in_heading += 1
        if element_id:
            self._headed_ids.append([element_id, False])
        self._open(tag)
        for child in node.children:
            if isinstance(child, str):
                self.out.text(child)
            else:
                self.render(child)
        self._close(tag)
        if element_id:
            self._headed_ids.pop()
        if heading_level is not None:
            self._in_heading -= 1
        if tag == "dd":
            self._entry_levels.pop()

    def _heading_level(self, node: _Node) -> int | None:
        """h1-h6 by number; a definition term with an id (an API entry) one level below what encloses it."""
        level = _HEADING_TAGS.get(node.tag)
        if level is not None:
            self._section_level = level
            return level
        if node.tag != "dt":
            return None
        if not node.attrs.get("id"):
            self._entry_level = None
            return None
        enclosing = next((entry for entry in reversed(self._entry_levels) if entry is not None), self._section_level)
        self._entry_level = enclosing + 1
        return self._entry_level

    def _heading(self, node: _Node, level: int) -> None:
        title = _PERMALINK_SIGN.sub("", _text_of_rendered(node, self.skip))
        if not title:
            return
        self.out.brk()  # the heading's own line starts here, so its start mark falls on that line
        anchor = node.attrs.get("id") or self._enclosing_id() or _inner_anchor(node)
        for entry in self._headed_ids:
            entry[1] = True
        self.headings.append((self.out.mark("heading"), level, title, anchor))

    def _enclosing_id(self) -> str | None:
        """The id of the innermost open element, when this is the first heading inside it."""
        if self._headed_ids and not self._headed_ids[-1][1]:
            return self._headed_ids[-1][0]
        return None

    def _open(self, tag: str) -> None:
        if tag == "br" and self._in_heading:
            self.out.cell()  # a heading stays one line, so that its title is its line
        elif tag == "br":
            self.out.brk(empty_line=not self.out.line)
        elif tag == "pre":
            self.out.start_pre()
        elif tag in _BLOCK_TAGS:
            self.out.brk()
        elif tag in _CELL_TAGS:
            self.out.cell()

    def _close(self, tag: str) -> None:
        if tag == "pre":
            self.out.end_pre()
        elif tag in _BLOCK_TAGS and tag != "br":
            self.out.brk()

    def finish(self) -> _Rendered:
        self.out.brk()
        joined = "\n".join(self.out.lines)
        text = joined.strip()
        shift = len(joined) - len(joined.lstrip())

        def place(entry: list) -> int | None:
            return None if entry[0] is None else min(max(entry[0] - shift, 0), len(text))

        headings = [
            Heading(offset, level, title, anchor)
            for entry, level, title, anchor in self.headings
            if (offset := place(entry)) is not None and offset < len(text)
        ]
        anchors = [
            (offset, anchor)
            for entry, anchor in self.anchors
            if (offset := place(entry)) is not None and offset < len(text)
        ]
        code = [(max(start - shift, 0), min(end - shift, len(text))) for start, end in self.out.code]
        return _Rendered(text, headings, [span for span in code if span[0] < span[1]], anchors)


def _text_of_rendered(node: _Node, skip) -> str:
    """A heading's text as it will be shown: hidden and left-out parts (a permalink sign) dropped, one line."""
    parts: list[str] = []
    stack: list[_Node | str] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, str):
            parts.append(current)
        elif current.tag == "br":
            parts.append(" ")
        elif current is node or not (current.hidden or skip(current) or "headerlink" in current.attrs.get("class", "")):
            stack.extend(reversed(current.children))
    return SPACES.sub(" ", "".join(parts)).strip()


def _inner_anchor(node: _Node) -> str | None:
    """The first ``<a id>`` or ``<a name>`` inside a heading (latex2html, texinfo and DocBook put one there)."""
    for element in _elements(node):
        if element is not node and (element.attrs.get("id") or (element.tag == "a" and element.attrs.get("name"))):
            return element.attrs.get("id") or element.attrs.get("name")
    return None


def _render(document: _Node, *, main_content: bool) -> _Rendered:
    """The text of the page (``main_content``: of its main content only) with headings, anchors and code."""
    if not main_content:
        renderer = _Renderer(lambda node: False)
        renderer.render(document)
        return renderer.finish()
    root = _main_root(document)
    furniture = _page_furniture(root)

    def skip(node: _Node) -> bool:
        return (
            id(node) in furniture
            or _is_boilerplate(node, root)
            or (node.tag == "a" and "headerlink" in node.attrs.get("class", "").split())
        )

    renderer = _Renderer(skip)
    renderer.render(root)
    return renderer.finish()


# ------------------------------------------------------------------------------------------------- generated pages


def generated_page(document: _Node) -> str | None:
    """What a page is when a documentation builder generated it as a list of links, a search form or a copy of the
    documented code (Sphinx's general and module indexes, search page and viewcode source, MkDocs' search page,
    the source views of rustdoc, javadoc and Doxygen, rustdoc's settings page), None for a page of content.

    Known by the builder's own markup: the index tables' classes, the search page's script that loads the search
    index, or a results box with a search field in the page's main content (MkDocs themes also put both in a search
    dialog on every page: not there)."""
    numbered_fragment = documented = rustdoc = settings_script = False
    for node in _elements(document):
        classes = node.attrs.get("class", "").split()
        for name, kind in _GENERATED_CLASSES.items():
            if name in classes:
                return kind
        if (
            _SOURCE_VIEW_CLASSES.intersection(classes)
            or (node.tag == "body" and any(body <= set(classes) for body in _SOURCE_VIEW_BODIES))
            or (
                node.tag == "meta"
                and node.attrs.get("name") == "generator"
                and node.attrs.get("content", "").startswith(_SOURCE_VIEW_GENERATORS)
            )
        ):
            return _SOURCE_VIEW
        if node.tag == "script" and _loads_search_index(node):
            return "the search page"
        numbered_fragment |= _DOXYGEN_LINE_NUMBER in classes and any(
            _DOXYGEN_FRAGMENT in parent.attrs.get("class", "").split() for parent in _ancestors(node)
        )
        documented |= bool(_DOXYGEN_DOCUMENTATION.intersection(classes))
        rustdoc |= node.tag == "body" and "rustdoc" in classes
        settings_script |= node.tag == "script" and _script_name(node) in _SETTINGS_SCRIPTS
    if numbered_fragment and not documented:
        return _SOURCE_VIEW
    if rustdoc and settings_script:
        return "the settings page"
    results_box = search_field = False
    for node in _elements(_main_root(document)):
        results_box |= node.attrs.get("id", "") in _SEARCH_RESULT_IDS and not _in_dialog(node)
        search_field |= node.tag == "input" and node.attrs.get("name", "") == "q" and not _in_dialog(node)
    return "the search page" if results_box and search_field else None


def _loads_search_index(script: _Node) -> bool:
    """Whether a ``<script>`` loads the builder's search index: as its source, or in its code (Sphinx's
    ``Search.loadIndex("searchindex.js")``, which themes such as Read the Docs' write on the search page)."""
    if _script_name(script) in _SEARCH_SCRIPTS:
        return True
    return any(isinstance(child, str) and name in child for child in script.children for name in _SEARCH_SCRIPTS)


def _script_name(script: _Node) -> str:
    """The file name a ``<script>`` loads (``../settings.js?v=1`` -> ``settings.js``), empty for inline code."""
    return script.attrs.get("src", "").rsplit("/", 1)[-1].split("?")[0]


def _in_dialog(node: _Node) -> bool:
    """Whether ``node`` is inside a dialog (a search box that opens over every page)."""
    return any(
        parent.tag == "dialog" or parent.attrs.get("role", "").lower() in ("dialog", "alertdialog")
        for parent in _ancestors(node)
    )


# ----------------------------------------------------------------------------------------------------------- dates


def _page_date(meta: dict[str, str], document: _Node) -> str | None:
    """The page's date as written: in ``<meta>`` (modified before published), ``<time>``, or a "Last updated" line.

    The first of these that reads as a date wins; the footer lines are looked for on the whole page, since Sphinx
    and asciidoc write them where main content leaves out.
    """
    declared = [meta.get(name, "") for name in _META_DATES]
    declared += [meta.get(f"itemprop:{name}", "") for name in _ITEMPROP_DATES]
    for value in declared:
        if value.strip() and parse_date(value):
            return value.strip()
    for found in (_time_element_date(document), _date_line(document)):
        if found and parse_date(found):
            return found
    return None


def _time_element_date(document: _Node) -> str | None:
    """The ``<time datetime>`` that says it is the modified date, else the published one, else the first one."""
    found: dict[str, str] = {}
    for node in _elements(document):
        if node.tag != "time" or not node.attrs.get("datetime", "").strip():
            continue
        labels = " ".join(node.attrs.get(name, "") for name in ("itemprop", "class", "id", "name"))
        kind = "modified" if _MODIFIED_WORDS.search(labels) else "published" if _PUBLISHED_WORDS.search(labels) else ""
        found.setdefault(kind, node.attrs["datetime"].strip())
    return found.get("modified") or found.get("published") or found.get("")


def _date_line(document: _Node) -> str | None:
    """The date in a short "Last updated on …" or "Last modified: …" block anywhere on the page, as written."""
    stack: list[_Node] = [document]
    while stack:
        node = stack.pop()
        if node.hidden or node.tag == "head":
            continue
        for child in node.children:
            if isinstance(child, str) and _DATE_WORD.search(child):
                date = _date_in_block(node)
                if date:
                    return date
        stack.extend(reversed([child for child in node.children if isinstance(child, _Node)]))
    return None


def _date_in_block(node: _Node) -> str | None:
    """The date after a "last updated" label in the block element holding ``node``, unless it is a paragraph."""
    while node.parent is not None and node.tag not in _BLOCK_TAGS and node.tag not in _CELL_TAGS:
        node = node.parent
    line = _text_of(node)
    if len(line) > _MAX_DATE_LINE_CHARS:
        return None  # a paragraph that mentions an update is not the page's date line
    for match in _DATE_LINE.finditer(line):
        date = _DATE_IN_LINE.match(match.group("value").strip())
        if date:
            return date.group().strip()
    return None


# -------------------------------------------------------------------------------------------------------- charsets


def _declared_encoding(raw: bytes) -> str | None:
    """The encoding a page declares in ``<meta charset>`` as a browser reads it; None when it declares none."""
    match = _CHARSET.search(raw[:4096])
    if not match:
        return None
    try:
        name = codecs.lookup(match.group(1).decode("ascii")).name
    except LookupError:
        return None
    if name.startswith(("utf-16", "utf-32")):
        # The HTML standard: the bytes that spelled this declaration were ASCII, so the file is not UTF-16.
        return "utf-8"
    return _BROWSER_ENCODING.get(name, name)


def _utf16_without_bom(raw: bytes) -> str | None:
    """ "utf-16-le" or "utf-16-be" when the bytes look like UTF-16 with no byte-order mark (NUL every other byte)."""
    sample = raw[: BINARY_SNIFF_BYTES - BINARY_SNIFF_BYTES % 2]
    if len(sample) < 8:
        return None
    even_nuls, odd_nuls = sample[0::2].count(0), sample[1::2].count(0)
    half = len(sample) // 2
    if odd_nuls >= 0.6 * half and even_nuls <= 0.05 * half:
        return "utf-16-le"
    if even_nuls >= 0.6 * half and odd_nuls <= 0.05 * half:
        return "utf-16-be"
    return None


def _decode(raw: bytes) -> str:
    """A page's markup as text: byte-order mark, then ``<meta charset>``, then UTF-8, then charset detection.

    Raises:
        Unreadable: binary content (NUL bytes that are not UTF-16).
    """
    for bom, name in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if raw.startswith(bom):
            return raw.decode(name, errors="replace").removeprefix("\ufeff")
    utf16 = _utf16_without_bom(raw)
    if utf16:
        return raw.decode(utf16, errors="replace")
    if looks_binary(raw):
        raise Unreadable("not a text file (binary content)")
    declared = _declared_encoding(raw)
    for encoding in dict.fromkeys(filter(None, (declared, "utf-8"))):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue  # a wrong declaration: read the bytes as what they are
    return _detected(raw)


def _detected(raw: bytes) -> str:
    """Bytes in an undeclared legacy encoding, decoded as charset-normalizer reads them (windows-1252 if it cannot).

    Detection rather than windows-1252 alone, as a browser in a Western locale would: on pages made with iconv
    it reads Central European, Cyrillic, Turkish, Japanese and Korean pages that windows-1252 garbles, and
    Western ones as well (benchmarks/html_charsets.py). A short page fits several encodings equally well; then
    the one most used on the web wins (cp1252 over cp1250 for French, cp1251 over Mac Cyrillic for Russian).
    """
    from charset_normalizer import from_bytes  # only legacy pages need it

    matches = list(from_bytes(raw))
    if not matches:
        return raw.decode("cp1252", errors="replace")
    # Readings in encodings web pages use come first (Mac Cyrillic fits Russian text as well as cp1251 does).
    matches = [match for match in matches if _web_rank(match.encoding) < len(_WEB_ENCODINGS)] or matches
    best = matches[0]  # least chaos, then most coherent with a language
    fitting = [
        match
        for match in matches
        if match.chaos <= best.chaos + _CHAOS_TIE and match.coherence >= best.coherence - _COHERENCE_TIE
    ]
    return str(min(fitting, key=lambda match: _web_rank(match.encoding)))


def _web_rank(encoding: str) -> int:
    """Where an encoding stands among legacy web encodings (most used first); others after all of them."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return len(_WEB_ENCODINGS)
    return _WEB_ENCODINGS.index(name) if name in _WEB_ENCODINGS else len(_WEB_ENCODINGS)


def read_html(raw: bytes, *, main_content: bool = True) -> Extracted:
    """An HTML page: the visible text of its main content, one line per block element, with its structure.

    Whitespace inside a line is folded as a browser folds it; ``<pre>`` keeps its lines and is recorded in
    ``code``. Headings (h1-h6, and definition terms with an id, one level below their section) go into
    ``headings`` with the id a link can open them at; every element id in the text goes into ``anchors``.
    The title comes from ``<title>``, the author from ``<meta>``; the date from ``<meta>``, ``<time>``, or a
    "Last updated …" line anywhere on the page, as written.

    Args:
        main_content: leave out navigation, banners, footers, sidebars, tables of contents and link lists
            (landmarks, class names and link density); False keeps the whole visible page.

    Raises:
        Unreadable: binary content, a page with no visible text, or (``main_content``) an index or search page that
            a documentation builder generated (see :func:`generated_page`).
    """
    builder = _TreeBuilder()
    builder.feed(storable(_decode(raw)))
    builder.close()
    document = builder.root
    if main_content and (generated := generated_page(document)):
        why = _GENERATED_WHY.get(generated, "links to pages, not a document")
        raise Unreadable(f"{generated} a documentation builder generated: {why}")
    _measure(document)
    rendered = _render(document, main_content=main_content)
    if not rendered.text:
        rendered = _render(document, main_content=False)  # a page that is only navigation is still a page
    if not rendered.text:
        raise Unreadable("no visible text")
    title = SPACES.sub(" ", "".join(builder.title_parts or [])).strip() or _untitled_page_title(rendered, document)
    date = _page_date(builder.meta, document)
    author = next((builder.meta[k] for k in builder.meta if k in _META_AUTHOR), None)
    return Extracted(
        rendered.text,
        title=title,
        date=date,
        author=author.strip() if author else None,
        headings=tuple(rendered.headings),
        code=tuple(rendered.code),
        anchors=tuple(rendered.anchors),
    )
