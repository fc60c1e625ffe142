"""HTML main content: navigation, sidebars and footers left out; headings, anchors, code blocks, charsets, dates."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from qa.ingest.corpus import scan_corpus
from qa.ingest.formats import Extracted, Unreadable, extract
from qa.ingest.formats.html import read_html
from qa.ingest.metadata import parse_date

SPHINX = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8" />
<title>re — Regular expression operations &#8212; Pylib 1.0 documentation</title>
<script src="_static/doctools.js"></script>
</head><body>
<div class="related" role="navigation" aria-label="related navigation">
  <h3>Navigation</h3>
  <ul>
    <li class="right"><a href="genindex.html" title="General Index" accesskey="I">index</a></li>
    <li class="right"><a href="string.html" title="string" accesskey="N">next</a> |</li>
    <li><a href="index.html">Pylib 1.0 documentation</a> &#187;</li>
  </ul>
</div>
<div class="document">
  <div class="documentwrapper"><div class="bodywrapper">
  <div class="body" role="main">
  <section id="module-re">
  <span id="re-regular-expression-operations"></span>
  <h1>re — Regular expression operations<a class="headerlink" href="#module-re" title="Permalink">¶</a></h1>
  <p>This module provides regular expression matching operations similar to those found in Perl.</p>
  <section id="module-contents">
  <h2>Module Contents<a class="headerlink" href="#module-contents" title="Permalink">¶</a></h2>
  <p>The module defines several functions, constants, and an exception.</p>
  <dl class="py function">
  <dt class="sig sig-object py" id="re.findall">
  <span class="sig-prename descclassname"><span class="pre">re.</span></span><span class="sig-name
descname"><span class="pre">findall</span></span><span class="sig-paren">(</span><em class="sig-param"><span
class="n"><span class="pre">pattern</span></span></em>, <em class="sig-param"><span class="n"><span
class="pre">string</span></span></em><span class="sig-paren">)</span><a class="headerlink" href="#re.findall"
title="Permalink">¶</a></dt>
  <dd><p>Return all non-overlapping matches of <em>pattern</em> in <em>string</em>, as a list of strings.</p>
  <div class="highlight-python3 notranslate"><div class="highlight"><pre><span></span><span
class="gp">&gt;&gt;&gt; </span><span class="n">re</span><span class="o">.</span><span
class="n">findall</span><span class="p">(</span><span class="sa">r</span><span
class="s1">&#39;\\bf[a-z]*&#39;</span><span class="p">,</span> <span
class="s1">&#39;which foot or hand fell&#39;</span><span class="p">)</span>
<span class="go">[&#39;foot&#39;, &#39;fell&#39;]</span>

<span class="gp">&gt;&gt;&gt; </span><span class="k">if</span> <span class="n">found</span><span class="p">:</span>
<span class="gp">... </span>    <span class="nb">print</span><span class="p">(</span><span
class="n">found</span><span class="p">)</span>
</pre></div></div>
  </dd></dl>
  </section>
  <section id="regular-expression-syntax">
  <h2>Regular Expression Syntax<a class="headerlink" href="#regular-expression-syntax" title="Permalink">¶</a></h2>
  <p>A regular expression specifies a set of strings that matches it; the <code class="docutils literal
notranslate"><span class="pre">search()</span></code> function tests each one.</p>
  </section>
  </section>
  </div></div></div>
  <div class="sphinxsidebar" role="navigation" aria-label="main navigation">
    <div class="sphinxsidebarwrapper">
      <h3><a href="index.html">Table of Contents</a></h3>
      <ul><li><a class="reference internal" href="#">re — Regular expression operations</a></li></ul>
      <div role="note" aria-label="source link">
        <h3>This Page</h3>
        <ul class="this-page-menu">
          <li><a href="bugs.html">Report a Bug</a></li>
          <li><a href="_sources/re.rst.txt" rel="nofollow">Show Source</a></li>
        </ul>
      </div>
    </div>
  </div>
</div>
<div
class="footer">&#169; Copyright 2001-2026, the Pylib team. Last updated on Nov 29, 2026. Created using Sphinx.</div>
</body></html>
"""

DOCBOOK = """<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml"><head>
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8" /><title>2.6. Joins Between Tables</title></head>
<body><div class="navheader"><table width="100%" summary="Navigation header"><tr><th colspan="5"
align="center">2.6. Joins
Between Tables</th></tr><tr><td width="10%" align="left"><a accesskey="p" href="tutorial-select.html">Prev</a> </td>
<td width="10%" align="left"><a accesskey="u" href="tutorial-sql.html">Up</a></td><th width="60%"
align="center">Chapter 2.
The SQL Language</th><td width="10%" align="right"><a accesskey="h" href="index.html">Home</a></td><td width="10%"
align="right"> <a accesskey="n" href="tutorial-agg.html">Next</a></td></tr></table><hr /></div>
<div class="sect1" id="TUTORIAL-JOIN"><div class="titlepage"><div><div><h2 class="title" style="clear: both">2.6. Joins
Between Tables</h2></div></div></div>
<div class="toc"><dl class="toc"><dt><span class="sect2"><a href="#TUTORIAL-OUTER">2.6.1. Outer joins</a></span></dt>
<dt><span class="sect2"><a href="#TUTORIAL-SELF">2.6.2. Self joins</a></span></dt>
<dt><span class="sect2"><a href="#TUTORIAL-ALIAS">2.6.3. Table aliases</a></span></dt></dl></div>
<a id="id-1.4.4.7.2" class="indexterm"></a><p>Thus far, our queries have only accessed one table at a time.</p>
<pre class="programlisting">SELECT *
    FROM weather JOIN cities ON city = name;</pre>
<div class="sect2" id="TUTORIAL-OUTER"><div class="titlepage"><div><div><h3
class="title">2.6.1. Outer joins</h3></div></div></div>
<p>An outer join keeps the rows of the left table that have no match.</p>
<div class="variablelist"><dl class="variablelist"><dt id="JOIN-LEFT"><span class="term"><code class="literal">LEFT
OUTER JOIN</code></span></dt><dd><p>Every row of the left table appears at least once.</p></dd></dl></div>
</div></div>
<div class="navfooter"><hr /><table width="100%" summary="Navigation footer"><tr><td width="40%" align="left"><a
accesskey="p" href="tutorial-select.html">Prev</a> </td><td width="20%" align="center"><a accesskey="u"
href="tutorial-sql.html">Up</a></td><td width="40%" align="right"> <a accesskey="n"
href="tutorial-agg.html">Next</a></td>
</tr><tr><td width="40%" align="left" valign="top">2.5. Querying a Table </td><td width="20%" align="center"><a
accesskey="h" href="index.html">Home</a></td><td width="40%" align="right"
valign="top"> 2.7. Aggregate Functions</td></tr>
</table></div></body></html>
"""

ASCIIDOC = """<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN" "http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en"><head>
<meta http-equiv="Content-Type" content="application/xhtml+xml; charset=UTF-8" />
<title>git-stash(1)</title>
<style type="text/css">/* Shared CSS for AsciiDoc */ body { font-family: Georgia,serif; }</style>
</head><body class="manpage">
<div id="header"><h1>git-stash(1) Manual Page</h1><h2>NAME</h2>
<div class="sectionbody"><p>git-stash - Stash the changes in a dirty working directory away</p></div></div>
<div id="toc"><div id="toctitle">Table of Contents</div>
<div class="toclevel1"><a href="#_synopsis">SYNOPSIS</a></div>
<div class="toclevel1"><a href="#_description">DESCRIPTION</a></div>
<div class="toclevel1"><a href="#_examples">EXAMPLES</a></div></div>
<div id="content">
<div class="sect1"><h2 id="_synopsis">SYNOPSIS</h2><div class="sectionbody"><div class="verseblock">
<pre class="content">git stash list [&lt;log-options&gt;]
git stash show [-u | --include-untracked] [&lt;stash&gt;]</pre></div></div></div>
<div class="sect1"><h2 id="_description">DESCRIPTION</h2><div class="sectionbody">
<div
class="paragraph"><p>Use <code>git stash</code> when you want to record the current state of the working
directory.</p></div>
</div></div>
<div class="sect1"><h2 id="_examples">EXAMPLES</h2><div class="sectionbody"><div class="dlist"><dl>
<dt class="hdlist1">Pulling into a dirty tree</dt><dd><p>When you are in the middle of something, you learn that
there are upstream changes.</p></dd></dl></div></div></div>
<div class="sect1"><h2 id="_see_also">SEE ALSO</h2><div class="sectionbody">
<div class="paragraph"><p><a href="git-checkout.html">git-checkout(1)</a>, <a href="git-commit.html">git-commit(1)</a>,
<a href="git-reset.html">git-reset(1)</a></p></div></div></div>
</div>
<div id="footnotes"><hr /></div>
<div id="footer"><div id="footer-text">Last updated
 2024-05-31 00:35:55 UTC</div></div>
</body></html>
"""

WITH_MAIN = """<!doctype html><html><head><meta charset="utf-8"><title>Harbour news</title>
<meta property="article:published_time" content="2025-03-01T08:00:00Z">
<meta property="article:modified_time" content="2025-04-02T09:30:00Z"></head>
<body>
<header class="site-header"><a href="/">Harbour Authority</a><nav><a href="/news">News</a> <a
href="/tides">Tides</a></nav>
</header>
<div class="cookie-banner">We use cookies to improve this site. <button>Accept</button></div>
<main id="content">
<article>
<header><h1 id="dredging">Dredging of the inner basin</h1><p class="byline">By the harbour master</p></header>
<p>Dredging of the inner basin starts in May and lasts six weeks.</p>
<h2>Berths affected</h2>
<table><tr><th>Berth</th><th>Closed</th></tr><tr><td>North quay</td><td>May 4-18</td></tr></table>
<aside class="footnote" role="note"><p>Pilots are advised of closures by radio.</p></aside>
<footer><p>Filed under <a href="/tags/works">works</a></p></footer>
</article>
<aside class="related-posts"><h3>Related</h3><ul><li><a href="/a">Quay lights</a></li><li><a href="/b">Buoys</a></li>
<li><a href="/c">Pilots</a></li></ul></aside>
</main>
<footer class="site-footer"><p>&copy; 2025 Harbour Authority. All rights reserved.</p></footer>
</body></html>
"""

NO_LANDMARKS = """<html><head><title>Bee notes</title></head><body>
<div id="top"><a href="index.html">Home</a> | <a href="hives.html">Hives</a> | <a href="honey.html">Honey</a> |
<a href="contact.html">Contact</a></div>
<table><tr><td class="left">
<ul><li><a href="spring.html">Spring work</a></li><li><a href="summer.html">Summer work</a></li>
<li><a href="autumn.html">Autumn work</a></li><li><a href="winter.html">Winter work</a></li></ul>
</td><td>
<h1>Moving hives to the heather</h1>
<p>The hives go up to the moor in <a href="august.html">August</a>, when the heather flowers.</p>
<dl><dt>Distance</dt><dd>At least three miles, or the foragers fly back to the old site.</dd></dl>
<p>Further reading:</p>
<ul><li><a href="https://example.org/heather.pdf">Heather honey, a field guide</a></li>
<li><a href="https://example.org/moors.pdf">Moorland beekeeping</a></li>
<li><a href="https://example.org/transport.pdf">Moving colonies safely</a></li></ul>
</td></tr></table>
<p class="edit"><a href="edit.cgi?page=heather">Edit this page</a></p>
</body></html>
"""


def _read(page: str, **options) -> Extracted:
    return read_html(page.encode("utf-8"), **options)


def _check_offsets(extracted: Extracted) -> None:
    """Every heading's line starts with its title; anchors and code spans index the text in order."""
    text = extracted.text
    for heading in extracted.headings:
        assert text[heading.start :].startswith(heading.title), heading
        assert heading.start == 0 or text[heading.start - 1] == "\n", heading
    offsets = [offset for offset, _ in extracted.anchors]
    assert offsets == sorted(offsets) and all(0 <= offset < len(text) for offset in offsets)
    for start, end in extracted.code:
        assert 0 <= start < end <= len(text)
    assert list(extracted.code) == sorted(extracted.code)


# ------------------------------------------------------------------------------------------------ main content


@pytest.mark.parametrize(
    ("page", "left_out", "kept"),
    [
        (
            SPHINX,
            [
                "Navigation",
                "Pylib 1.0 documentation",
                "Table of Contents",
                "Report a Bug",
                "Show Source",
                "Copyright",
                "next",
                "¶",
            ],
            ["This module provides regular expression matching", "Return all non-overlapping matches"],
        ),
        (
            DOCBOOK,
            ["Prev", "Home", "Next", "2.6.2. Self joins", "2.7. Aggregate Functions", "The SQL Language"],
            ["Thus far, our queries", "An outer join keeps the rows", "Every row of the left table"],
        ),
        (
            ASCIIDOC,
            ["Table of Contents", "Last updated"],
            [
                "git-stash(1) Manual Page",
                "git-stash - Stash the changes",
                "Pulling into a dirty tree",
                "Use git stash when you want",
            ],
        ),
        (
            WITH_MAIN,
            ["Harbour Authority", "Tides", "cookies", "Accept", "Quay lights", "All rights reserved"],
            [
                "Dredging of the inner basin starts in May",
                "By the harbour master",
                "North quay May 4-18",
                "Pilots are advised of closures by radio.",
                "Filed under works",
            ],
        ),
        (
            NO_LANDMARKS,
            ["Contact", "Spring work", "Winter work", "Edit this page"],
            [
                "Moving hives to the heather",
                "The hives go up to the moor in August, when the heather flowers.",
                "Distance",
                "At least three miles",
                "Heather honey, a field guide",
                "Moving colonies safely",
            ],
        ),
    ],
    ids=["sphinx", "docbook", "asciidoc", "main", "no-landmarks"],
)
def test_navigation_sidebars_and_footers_are_left_out_of_html_text_and_content_stays(page, left_out, kept):
    main = _read(page)
    whole = _read(page, main_content=False)
    for boilerplate in left_out:
        assert boilerplate not in main.text
        assert boilerplate in whole.text  # main_content=False keeps the whole visible page
    for content in kept:
        assert content in main.text and content in whole.text
    _check_offsets(main)
    _check_offsets(whole)


def test_sphinx_headings_and_api_entries_form_a_section_path_with_anchors():
    extracted = _read(SPHINX)
    headings = [(h.level, h.title, h.anchor) for h in extracted.headings]
    assert headings == [
        (1, "re — Regular expression operations", "module-re"),
        (2, "Module Contents", "module-contents"),
        (3, "re.findall(pattern, string)", "re.findall"),
        (2, "Regular Expression Syntax", "regular-expression-syntax"),
    ]
    assert extracted.text.startswith("re — Regular expression operations\nThis module provides")


def test_whole_page_keeps_the_permalink_sign_in_text_but_not_in_heading_titles():
    extracted = _read(SPHINX, main_content=False)
    assert "Module Contents¶" in extracted.text
    assert "Module Contents" in [heading.title for heading in extracted.headings]
    _check_offsets(extracted)


def test_docbook_heading_takes_the_id_of_the_section_it_opens_and_terms_with_ids_become_headings():
    extracted = _read(DOCBOOK)
    headings = [(h.level, h.title, h.anchor) for h in extracted.headings]
    assert headings == [
        (2, "2.6. Joins Between Tables", "TUTORIAL-JOIN"),
        (3, "2.6.1. Outer joins", "TUTORIAL-OUTER"),
        (4, "LEFT OUTER JOIN", "JOIN-LEFT"),
    ]


def test_asciidoc_headings_use_their_own_ids_and_a_heading_without_one_has_none():
    extracted = _read(ASCIIDOC)
    anchors = {h.title: h.anchor for h in extracted.headings}
    assert anchors["SYNOPSIS"] == "_synopsis" and anchors["EXAMPLES"] == "_examples"
    assert anchors["git-stash(1) Manual Page"] == "header"  # the first heading in <div id="header">
    assert anchors["NAME"] is None  # <div id="header"> already opened with the <h1>


def test_heading_anchor_can_come_from_a_named_link_inside_it():
    page = '<body><h2><a name="SECTION0301">Smoothing</a></h2><p>Splines fit the points.</p></body>'
    (heading,) = _read(page).headings
    assert (heading.level, heading.title, heading.anchor) == (2, "Smoothing", "SECTION0301")


def test_anchors_hold_every_element_id_in_the_kept_text_at_the_start_of_its_text():
    extracted = _read(DOCBOOK)
    anchors = dict((anchor, offset) for offset, anchor in extracted.anchors)
    text = extracted.text
    assert text[anchors["TUTORIAL-JOIN"] :].startswith("2.6. Joins Between Tables")
    assert text[anchors["TUTORIAL-OUTER"] :].startswith("2.6.1. Outer joins")
    assert text[anchors["JOIN-LEFT"] :].startswith("LEFT OUTER JOIN")
    # An empty index-term anchor points at the text that follows it.
    assert text[anchors["id-1.4.4.7.2"] :].startswith("Thus far")
    sphinx = _read(SPHINX)
    ids = [anchor for _, anchor in sphinx.anchors]
    assert ids[:2] == ["module-re", "re-regular-expression-operations"]
    assert "searchbox" not in ids and "re.findall" in ids  # ids in left-out navigation are not anchors


# ------------------------------------------------------------------------------------------------------- code


def test_a_sphinx_highlighted_block_keeps_every_line_and_its_span_is_code():
    extracted = _read(SPHINX)
    (span,) = extracted.code
    assert extracted.text[span[0] : span[1]] == (
        ">>> re.findall(r'\\bf[a-z]*', 'which foot or hand fell')\n"
        "['foot', 'fell']\n"
        "\n"
        ">>> if found:\n"
        "...     print(found)"
    )


def test_pre_lines_keep_their_indentation_and_inline_code_stays_inline():
    extracted = _read(DOCBOOK)
    (span,) = extracted.code
    assert extracted.text[span[0] : span[1]] == "SELECT *\n    FROM weather JOIN cities ON city = name;"
    sphinx = _read(SPHINX)
    assert "the search() function tests each one." in sphinx.text


def test_a_newline_right_after_pre_is_not_a_line_of_code():
    extracted = _read("<body><p>Run:</p><pre>\n  make html\n</pre><p>Done.</p></body>")
    assert extracted.text == "Run:\n  make html\nDone."
    assert extracted.code == ((5, 16),)


# -------------------------------------------------------------------------------------- edge cases of the rules


def test_a_page_that_is_only_navigation_is_kept_whole_rather_than_dropped():
    page = '<body><nav><ul><li><a href="a.html">Alpha</a></li><li><a href="b.html">Beta</a></li></ul></nav></body>'
    assert _read(page).text == "Alpha\nBeta"


def test_a_section_whose_id_names_navigation_is_still_content_when_it_holds_a_heading():
    page = (
        '<body><div class="body" role="main"><section id="related-projects"><h2>Related projects</h2>'
        "<p>Several tools build on this one.</p></section></div></body>"
    )
    extracted = _read(page)
    assert extracted.text == "Related projects\nSeveral tools build on this one."
    assert extracted.headings[0].anchor == "related-projects"


def test_header_and_footer_of_an_article_stay_when_there_is_no_main_landmark():
    page = (
        '<body><header><a href="/">Site</a></header><article><header><h1>Title</h1></header>'
        "<p>Body text.</p><footer>Posted by Ann</footer></article><article><p>Second.</p></article>"
        "<footer>Site footer</footer></body>"
    )
    assert _read(page).text == "Title\nBody text.\nPosted by Ann\nSecond."


def test_extract_and_scan_corpus_pass_main_content_through(tmp_path):
    assert "Harbour Authority" not in extract(WITH_MAIN.encode(), ".html").text
    assert "Harbour Authority" in extract(WITH_MAIN.encode(), ".html", main_content=False).text
    (tmp_path / "news.html").write_text(WITH_MAIN, encoding="utf-8")
    (main,) = scan_corpus(tmp_path).documents
    (whole,) = scan_corpus(tmp_path, main_content=False).documents
    assert "Harbour Authority" not in main.text and "Harbour Authority" in whole.text
    assert main.headings[0].title == "Dredging of the inner basin" and main.anchors[0] == (0, "content")


# --------------------------------------------------------------------------------------------------- charsets

CAFE = "<html><head><title>Menu</title></head><body><p>Café crème, 3 €</p></body></html>"


def test_a_utf16_meta_charset_without_a_byte_order_mark_means_the_bytes_are_utf8():
    page = CAFE.replace("<head>", '<head><meta charset="utf-16">')
    assert read_html(page.encode("utf-8")).text == "Café crème, 3 €"


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_a_utf16_page_without_a_byte_order_mark_is_detected(encoding):
    assert read_html(CAFE.encode(encoding)).text == "Café crème, 3 €"


@pytest.mark.parametrize("bom, encoding", [(codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF8, "utf-8")])
def test_a_byte_order_mark_decides_the_encoding(bom, encoding):
    assert read_html(bom + CAFE.encode(encoding)).text == "Café crème, 3 €"


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        (
            "Le café est servi en terrasse l'été, et la crème brûlée est préparée chaque matin par le pâtissier.",
            "cp1252",
        ),
        ("Чай подают в саду каждый вечер, а пирог пекут утром по старому рецепту бабушки.", "cp1251"),
        ("Zażółć gęślą jaźń: każdy pszczelarz wie, że miód wrzosowy zbiera się późnym latem.", "cp1250"),
    ],
)
def test_a_legacy_page_without_a_declaration_is_decoded_not_dropped(text, encoding):
    page = f"<html><head><title>Notes</title></head><body><p>{text}</p></body></html>"
    assert read_html(page.encode(encoding)).text == text


def test_a_declared_charset_is_honoured_and_a_wrong_one_does_not_lose_the_page():
    page = '<html><head><meta charset="iso-8859-1"></head><body><p>Prices in € and naïve café.</p></body></html>'
    # Browsers read a Latin-1 label as windows-1252, which has the euro sign.
    assert read_html(page.encode("cp1252")).text == "Prices in € and naïve café."
    wrong = page.replace("iso-8859-1", "utf-8").encode("cp1252")
    assert read_html(wrong).text == "Prices in € and naïve café."


# ------------------------------------------------------------------------------------------------------ dates


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ('<meta http-equiv="last-modified" content="Wed, 21 Oct 2015 07:28:00 GMT">', "2015-10-21"),
        ('<meta name="dcterms.modified" content="2024-02-03">', "2024-02-03"),
        ('<meta property="article:modified_time" content="2025-04-02T09:30:00Z">', "2025-04-02"),
        ('<meta property="og:updated_time" content="2023-06-01 10:12:22 UTC">', "2023-06-01"),
        ('<meta name="DC.date.modified" content="Nov 29, 2026">', "2026-11-29"),
        ('<meta name="date" content="2020-01-05"><meta name="last-modified" content="2021-07-08">', "2021-07-08"),
    ],
)
def test_meta_dates_are_found_and_a_modified_date_wins_over_a_published_one(head, expected):
    extracted = read_html(f"<html><head>{head}</head><body><p>Text.</p></body></html>".encode())
    assert parse_date(extracted.date) == expected


def test_time_element_saying_modified_wins_over_published_and_meta_over_both():
    body = (
        '<p>Posted <time datetime="2024-01-10" itemprop="datePublished">10 January</time>, updated '
        '<time class="updated" datetime="2024-03-15T12:00:00+01:00">15 March</time>.</p>'
    )
    assert read_html(f"<body>{body}</body>".encode()).date == "2024-03-15T12:00:00+01:00"
    assert parse_date(_read(WITH_MAIN).date) == "2025-04-02"


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        (SPHINX, "2026-11-29"),
        (ASCIIDOC, "2024-05-31"),
        ("<body><p>Text.</p><p>Last modified: 2024-05-01</p></body>", "2024-05-01"),
        ("<body><p>Text.</p><div>This page was last edited on 3 June 2024, at 10:00.</div></body>", "2024-06-03"),
        ("<body><p>Text.</p><p>Page updated Wed, 21 Oct 2015 07:28:00 GMT</p></body>", "2015-10-21"),
    ],
)
def test_last_updated_lines_give_the_date_even_in_a_footer_main_content_leaves_out(page, expected):
    extracted = _read(page)
    assert parse_date(extracted.date) == expected


def test_a_paragraph_that_mentions_an_update_is_not_a_date_line():
    sentence = "The survey was updated 2019-04-02 after the storm. " * 5
    assert _read(f"<body><p>{sentence}</p></body>").date is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Nov 29, 2026", "2026-11-29"),
        ("2023-06-01 10:12:22 UTC", "2023-06-01"),
        ("Wed, 21 Oct 2015 07:28:00 GMT", "2015-10-21"),
        ("Sunday, 3 June 2024", "2024-06-03"),
        ("Monday", None),
    ],
)
def test_parse_date_reads_footer_and_http_dates(value, expected):
    assert parse_date(value) == expected


# ---------------------------------------------------------------------------------------- real installed pages

DOC = Path("/usr/share/doc")
REAL_PAGES = [
    (
        "sphinx-doc/html/usage/quickstart.html",
        ["Site navigation", "On this page", "Created using"],
        "The root directory of a Sphinx collection of plain-text document sources is called the source directory.",
    ),
    (
        "postgresql-doc-15/html/tutorial-join.html",
        ["Prev", "Up", "Home"],
        "Thus far, our queries have only accessed one table at a time.",
    ),
    (
        "git-doc/git-add.html",
        ["Last updated"],
        "This command updates the index using the current content found in the working tree",
    ),
    (
        "asymptote/html/fill.html",
        ["Previous: draw", "Contents][Index"],
        "There is also a convenient filldraw command, which fills the path and then draws in the boundary.",
    ),
    (
        "apache2-doc/manual/en/mod/mod_alias.html",
        ["Apache > HTTP Server", "Available Languages", "Bugfix checklist", "Known issues", "Modules | Directives"],
        "The Alias and ScriptAlias directives are used to map between URLs and filesystem paths.",
    ),
    (
        "apache2-doc/manual/en/glossary.html",
        ["Modules | Directives", "Available Languages", "Copyright"],
        "The restriction of access to network realms.",
    ),
]


@pytest.mark.parametrize(("path", "left_out", "sentence"), REAL_PAGES, ids=[p.split("/")[0] for p, *_ in REAL_PAGES])
def test_real_installed_documentation_pages_lose_their_navigation_and_keep_their_content(path, left_out, sentence):
    page = DOC / path
    if not page.is_file():
        pytest.skip(f"{page} is not installed (Debian package {path.split('/')[0]})")
    raw = page.read_bytes()
    main, whole = read_html(raw), read_html(raw, main_content=False)
    assert sentence in main.text
    for boilerplate in left_out:
        assert boilerplate in whole.text and boilerplate not in main.text
    assert main.headings and len(main.text) < len(whole.text)
    _check_offsets(main)


def test_a_page_that_never_closes_its_tags_is_read_without_running_out_of_stack():
    page = "<body>" + "<div><font>deep " * 5000 + "</body>"
    extracted = _read(page)
    assert extracted.text.count("deep") == 5000


def test_a_restructuredtext_sidebar_is_content_and_a_header_link_bar_is_not():
    page = (
        '<body><div class="header"><a href="https://docutils.example.org">Docutils</a> | '
        '<a href="../index.html">Overview</a> | <a href="../users.html">Users</a> | '
        '<a href="../ref.html">Reference</a></div>'
        '<div class="document"><h1 class="title">Configuration</h1>'
        '<div class="sidebar"><p class="first sidebar-title">Security</p>'
        '<p class="last">For web applications, see <a href="security.html">Deploying Securely</a>.</p></div>'
        "<p>Settings are read from configuration files.</p></div></body>"
    )
    assert _read(page).text.splitlines() == [
        "Configuration",
        "Security",
        "For web applications, see Deploying Securely.",
        "Settings are read from configuration files.",
    ]


def test_a_main_landmark_inside_a_template_is_not_the_main_content():
    page = "<body><template><main><p>Template copy.</p></main></template><div><p>The visible page.</p></div></body>"
    assert _read(page).text == "The visible page."


def test_a_line_break_inside_a_heading_keeps_the_heading_on_one_line():
    extracted = _read("<body><h1>Annual report<br>2024</h1><p>Figures.</p></body>")
    assert extracted.text == "Annual report 2024\nFigures."
    assert extracted.headings[0].title == "Annual report 2024"


@pytest.mark.parametrize(
    "action", ["Edit this page", "Edit on GitHub", "View page source", "Report a bug", "Show Source"]
)
def test_page_action_links_are_left_out_but_a_link_in_a_sentence_stays(action):
    page = f'<body><p>Read the <a href="view.html">view</a> guide.</p><p><a href="x">{action}</a></p></body>'
    assert _read(page).text == "Read the view guide."


def test_a_header_holding_the_pages_own_title_stays_and_a_site_banner_does_not():
    page = (
        '<body><header><h1><a href="/">Garden Blog</a></h1><nav><a href="/about">About</a></nav></header>'
        '<header class="post"><h1>Pruning roses</h1><p>March 2024</p></header>'
        "<p>Cut above an outward-facing bud.</p></body>"
    )
    extracted = _read(page)
    assert extracted.text == "Pruning roses\nMarch 2024\nCut above an outward-facing bud."
    assert [heading.title for heading in extracted.headings] == ["Pruning roses"]


def test_api_entries_nested_in_a_description_are_one_level_deeper():
    page = (
        '<body><section id="api"><h2>API</h2><dl class="py class"><dt id="Pool">class Pool</dt><dd>'
        '<p>A pool of workers.</p><dl class="py method"><dt id="Pool.map">map(func, items)</dt>'
        "<dd><p>Apply func to each item.</p></dd></dl></dd></dl>"
        '<dl><dt>timeout</dt><dd><dl><dt id="close">close()</dt><dd>Stop.</dd></dl></dd></dl></section></body>'
    )
    headings = [(h.level, h.title) for h in _read(page).headings]
    assert headings == [(2, "API"), (3, "class Pool"), (4, "map(func, items)"), (3, "close()")]


def test_a_meta_date_that_is_not_a_date_gives_way_to_the_next_source():
    page = (
        '<html><head><meta name="last-modified" content="see changelog"></head>'
        "<body><p>Text.</p><footer>Last updated on Nov 29, 2026.</footer></body></html>"
    )
    assert _read(page).date == "Nov 29, 2026"


def test_a_breadcrumb_trail_is_left_out_even_when_its_links_lead_to_other_sites():
    page = (
        '<body><div id="path"><a href="https://www.example.org/">Example</a> &gt; '
        '<a href="https://docs.example.org/">Documentation</a> &gt; <a href="../">Version 2</a></div>'
        '<p>See <a href="https://example.org/a">one</a> / <a href="https://example.org/b">two</a> for more.</p>'
        "</body>"
    )
    assert _read(page).text == "See one / two for more."


def test_a_see_also_section_of_comma_separated_links_is_left_out_but_the_same_links_in_a_sentence_stay():
    page = (
        '<body><h1>COMMIT</h1><p>Commits the current transaction. See Also: <a href="sql-begin.html">BEGIN</a>, '
        '<a href="sql-rollback.html">ROLLBACK</a></p><div class="refsect1"><h2>See Also</h2>'
        '<p><a href="sql-begin.html">BEGIN</a>, <a href="sql-rollback.html">ROLLBACK</a></p></div>'
        '<div class="refsect1"><h2>Compatibility</h2><p>The standard has no COMMIT WORK.</p></div></body>'
    )
    assert _read(page).text == (
        "COMMIT\nCommits the current transaction. See Also: BEGIN, ROLLBACK\nCompatibility\n"
        "The standard has no COMMIT WORK."
    )


# Shapes of real pages: Apache's directive sections end in a "See also" list of one or two links; asciidoc's git
# manual pages end in "SEE ALSO" and "GIT: Part of the git(1) suite" sections.
APACHE_SEE_ALSO = (
    '<div id="page-content"><h1>Apache Core Features</h1><div class="directive-section">'
    '<h2 id="acceptfilter">AcceptFilter Directive</h2><p>Enables optimizations for a protocol\'s listener sockets.</p>'
    '<h3>See also</h3><ul><li><code class="directive"><a href="#protocol">Protocol</a></code></li></ul></div>'
    '<div class="directive-section"><h2 id="protocol">Protocol Directive</h2><p>Protocol for a listening socket.</p>'
    "</div></div>"
)
GIT_CLOSING = (
    '<div id="header"><h1>git-stash(1) Manual Page</h1></div><div id="content">'
    '<div class="sect1"><h2 id="_description">DESCRIPTION</h2><div class="sectionbody"><div class="paragraph">'
    '<p>Use <a href="git-stash.html">git stash</a> when you want to record the current state.</p></div></div></div>'
    '<div class="sect1"><h2 id="_see_also">SEE ALSO</h2><div class="sectionbody"><div class="paragraph"><p>'
    '<a href="git-checkout.html">git-checkout(1)</a>,\n<a href="git-commit.html">git-commit(1)</a></p></div></div>'
    "</div>"
    '<div class="sect1"><h2 id="_git">GIT</h2><div class="sectionbody"><div class="paragraph">'
    '<p>Part of the <a href="git.html">git(1)</a> suite</p></div></div></div></div>'
    '<div id="footer"><div id="footer-text">Last updated 2024-05-31 00:35:55 UTC</div></div>'
)


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        (
            APACHE_SEE_ALSO,
            "Apache Core Features\nAcceptFilter Directive\nEnables optimizations for a protocol's listener "
            "sockets.\nProtocol Directive\nProtocol for a listening socket.",
        ),
        (
            GIT_CLOSING,
            "git-stash(1) Manual Page\nDESCRIPTION\nUse git stash when you want to record the current state.",
        ),
    ],
)
def test_sections_that_are_only_a_line_of_links_are_left_out_heading_and_all(page, expected):
    extracted = _read(f"<body>{page}</body>")
    assert extracted.text == expected
    assert "See also" not in [heading.title for heading in extracted.headings]
    assert _read(f"<body>{page}</body>", main_content=False).text.count("git(1)") == page.count("git(1)")


def test_a_short_line_with_a_link_is_content_in_the_middle_of_a_page_and_a_pointer_only_at_its_end():
    middle = (
        '<h1>Environment Variables</h1><h3>nokeepalive</h3><p>This disables <a href="core.html#keepalive">'
        "KeepAlive</a> when set.</p><h3>prefer-language</h3><p>This influences the negotiation.</p>"
    )
    assert _read(f"<body>{middle}</body>").text == (
        "Environment Variables\nnokeepalive\nThis disables KeepAlive when set.\nprefer-language\n"
        "This influences the negotiation."
    )
    closing = middle + '<h3>Further reading</h3><p>See <a href="negotiation.html">negotiation</a>.</p>'
    assert _read(f"<body>{closing}</body>").text.endswith("This influences the negotiation.")


def test_a_heading_over_a_contents_list_of_its_own_subsections_stays():
    page = (
        '<body><h1>Configure</h1><h2 id="options">Options</h2><ul><li><a href="#cache">Cache options</a></li></ul>'
        '<h3 id="cache">Cache options</h3><p>The results are cached in a file.</p></body>'
    )
    extracted = _read(page)
    assert [heading.title for heading in extracted.headings] == ["Configure", "Options", "Cache options"]
    assert "The results are cached in a file." in extracted.text


def test_a_language_bar_naming_the_pages_own_language_with_a_plain_link_is_left_out():
    page = (
        '<body><h1>mod_logio</h1><div class="bottomlang"><p><span>Available Languages: </span>'
        '<a href="../../en/mod/mod_logio.html" title="English">&nbsp;en&nbsp;</a> |\n'
        '<a href="../../fr/mod/mod_logio.html" hreflang="fr" rel="alternate">&nbsp;fr&nbsp;</a></p></div>'
        '<p>Logging of input and output bytes. See <a href="a.html">one</a> | <a href="b.html">two</a>.</p></body>'
    )
    assert _read(page).text == "mod_logio\nLogging of input and output bytes. See one | two."


CELERY_DECK = (
    '<div class="body" role="main"><div class="deck"><p>This document describes the current stable version of Celery '
    '(5.2). For development docs, <a href="http://docs.celeryproject.org/en/master/userguide/calling.html">go here</a>.'
    '</p></div><section id="calling-tasks"><h1>Calling Tasks</h1><p>This document describes Celery\'s uniform '
    '"Calling API" used by task instances and the canvas.</p></section></div>'
)


def test_a_version_banner_above_the_page_title_is_left_out_but_kept_with_the_whole_page():
    assert _read(f"<body>{CELERY_DECK}</body>").text == (
        'Calling Tasks\nThis document describes Celery\'s uniform "Calling API" used by task instances and the canvas.'
    )
    assert "current stable version" in _read(f"<body>{CELERY_DECK}</body>", main_content=False).text


@pytest.mark.parametrize(
    "before_title",
    [
        # SQLite: the title in a box with its contents list, before the first heading ("1. Overview").
        '<div class="nosearch"><div class="fancy_title">Date And Time Functions</div>'
        '<div class="fancy_toc"><a href="#overview">1. Overview</a></div></div>',
        # An introduction whose link stays within the site.
        "<p>The document only describes locking for the rollback journal. Locking for WAL mode is "
        '<a href="wal.html">described separately</a>.</p>',
    ],
)
def test_text_above_the_first_heading_linking_within_the_site_stays(before_title):
    text = _read(f"<body>{before_title}<h1>1. Overview</h1><p>SQLite supports date functions.</p></body>").text
    assert text.splitlines()[0] in (
        "Date And Time Functions",
        "The document only describes locking for the rollback journal. Locking for WAL mode is described separately.",
    )


def test_a_page_without_headings_keeps_a_short_paragraph_with_a_link_to_another_site():
    page = '<body><p>Downloads moved to <a href="https://example.org/get">the new site</a>.</p></body>'
    assert _read(page).text == "Downloads moved to the new site."


def test_a_list_item_or_table_cell_of_two_links_with_a_separator_stays():
    page = (
        '<body><ul><li><a href="https://www.rfc-editor.org/rfc/rfc9110">RFC 9110</a>: '
        '<a href="semantics.html">HTTP Semantics</a></li></ul><table><tr><td><a href="a.html">read</a> / '
        '<a href="b.html">write</a></td><td>Access modes.</td></tr></table></body>'
    )
    assert _read(page).text == "RFC 9110: HTTP Semantics\nread / write Access modes."


def test_a_language_switcher_is_left_out():
    page = (
        '<body><div class="toplang"><p><span>Available Languages: </span>'
        '<a href="../de/x.html" hreflang="de" rel="alternate">de</a> | '
        '<a href="../fr/x.html" hreflang="fr" rel="alternate">fr</a></p></div><p>Content stays.</p></body>'
    )
    assert _read(page).text == "Content stays."


def test_a_box_of_headings_over_link_lists_is_left_out_but_a_section_with_prose_stays():
    box = (
        '<div id="quickview"><h3>Topics</h3><ul><li><a href="#usage">Usage</a></li></ul>'
        "<h3>Directives</h3><p>None.</p><h3>Bugfix checklist</h3><ul>"
        '<li><a href="https://bugs.example.org/changes">changelog</a></li>'
        '<li><a href="https://bugs.example.org/known">Known issues</a></li></ul></div>'
    )
    section = (
        '<div class="section"><h2 id="usage">Usage</h2><p>Associate files with the handler, then see '
        '<a href="a.html">one</a>, <a href="b.html">two</a> and <a href="https://c.example.org">three</a>.'
        "</p></div>"
    )
    page = f"<body><h1>Module</h1><p>Sends files as they are, headers included.</p>{box}{section}</body>"
    assert _read(page).text == (
        "Module\nSends files as they are, headers included.\nUsage\n"
        "Associate files with the handler, then see one, two and three."
    )


def test_a_body_class_saying_there_is_no_sidebar_does_not_make_the_page_navigation():
    page = (
        '<body class="no-sidebar"><div id="page-header"><p class="apache">Example Server 2</p></div>'
        "<h1>Glossary</h1><p>Terms used here.</p></body>"
    )
    assert _read(page).text == "Glossary\nTerms used here."


def test_titles_linked_back_to_a_local_table_of_contents_stay_headings_and_the_contents_go():
    """Docutils links each section title of a page that has a ``contents`` directive back to it
    (``<a class="toc-backref">``): the title is still the section's, while the contents list is navigation."""
    page = """<html><body><div role="main"><section id="faq"><h1>Frequently Asked Questions<a class="headerlink"
        href="#faq">¶</a></h1>
        <nav class="contents local" id="contents"><ul class="simple">
          <li><p><a class="reference internal" href="#general" id="id1">General</a></p></li>
          <li><p><a class="reference internal" href="#retries" id="id2">Retries</a></p></li>
          <li><p><a class="reference internal" href="#limits" id="id3">Limits</a></p></li></ul></nav>
        <section id="general"><h2><a class="toc-backref" href="#id1" role="doc-backlink">General</a><a
          class="headerlink" href="#general">¶</a></h2><p>Celery is a task queue.</p></section>
        <section id="retries"><h2><a class="toc-backref" href="#id2" role="doc-backlink">Retries</a></h2>
          <p>A task may retry itself when it fails.</p></section>
        </section></div></body></html>"""
    extracted = _read(page)
    _check_offsets(extracted)
    assert [(h.level, h.title, h.anchor) for h in extracted.headings] == [
        (1, "Frequently Asked Questions", "faq"),
        (2, "General", "general"),
        (2, "Retries", "retries"),
    ]
    assert extracted.text.splitlines() == [
        "Frequently Asked Questions",
        "General",
        "Celery is a task queue.",
        "Retries",
        "A task may retry itself when it fails.",
    ]


def test_viewcode_source_links_are_left_out_of_api_entries_and_their_titles():
    """Sphinx's viewcode links an API entry to its highlighted source ("[source]"), and the source back ("[docs]")."""
    page = """<html><body><div role="main"><section id="tasks"><h1>Tasks</h1>
        <dl class="py method"><dt class="sig sig-object py" id="Task.retry"><span class="sig-name descname">retry
        </span>(<em>exc=None</em>)<a class="reference internal" href="../_modules/task.html#Task.retry"><span
        class="viewcode-link"><span class="pre">[source]</span></span></a><a class="headerlink"
        href="#Task.retry">¶</a></dt><dd><p>Retry the task.</p></dd></dl>
        <h2><a class="viewcode-back" href="../tasks.html#Task">[docs]</a>class Task: pass</h2>
        </section></div></body></html>"""
    extracted = _read(page)
    _check_offsets(extracted)
    assert [h.title for h in extracted.headings] == ["Tasks", "retry (exc=None)", "class Task: pass"]
    assert "[source]" not in extracted.text and "[docs]" not in extracted.text


def test_content_hidden_from_screen_readers_is_left_out_of_main_content_but_not_the_whole_page():
    """MkDocs' closed search dialog sits in the content column, ``aria-hidden="true"``: not the page's content."""
    page = """<html><body><div class="body-content">
        <div id="mkdocs_search_modal" class="modal hide fade" role="dialog" aria-hidden="true">\
<div class="modal-header">
        <button type="button" class="close">&times;</button><h3 id="myModalLabel">Documentation search</h3></div></div>
        <h1 id="caching">Caching<a class="headerlink" href="#caching" aria-hidden="true">#</a></h1>
        <p>Caching in REST Framework works well with the cache utilities provided in Django.</p></div></body></html>"""
    extracted = _read(page)
    _check_offsets(extracted)
    assert [(h.level, h.title) for h in extracted.headings] == [(1, "Caching")]
    assert (
        extracted.text == "Caching\nCaching in REST Framework works well with the cache utilities provided in Django."
    )
    whole = _read(page, main_content=False)
    assert "Documentation search" in whole.text


# Pages a documentation builder writes beside the documents, in the shapes Sphinx 5 and MkDocs 1.4 write them.
SPHINX_GENINDEX = (
    '<div class="body" role="main"><h1 id="index">Index</h1><div class="genindex-jumpbox"><a href="#A"><strong>A'
    '</strong></a> | <a href="#C"><strong>C</strong></a></div><h2 id="A">A</h2><table style="width: 100%" '
    'class="indextable genindextable"><tr><td style="width: 33%; vertical-align: top;"><ul><li><a '
    'href="userguide/calling.html#celery.app.task.Task.apply_async">apply_async() (celery.app.task.Task method)</a>'
    "</li></ul></td></tr></table></div>"
)
SPHINX_MODINDEX = (
    '<div class="body" role="main"><h1>Python Module Index</h1><div class="modindex-jumpbox"><a href="#cap-c">'
    '<strong>c</strong></a></div><table class="indextable modindextable"><tr class="cap" id="cap-c"><td></td><td>'
    '<strong>c</strong></td><td></td></tr><tr><td></td><td><a href="reference/celery.html#module-celery"><code '
    'class="xref">celery</code></a></td><td><em></em></td></tr></table></div>'
)
SPHINX_SEARCH = (
    '<div class="body" role="main"><h1 id="search-documentation">Search</h1><p>Searching for multiple words only '
    'shows matches that contain all words.</p><form action="" method="get"><input type="text" name="q" value="" />'
    '<input type="submit" value="search" /></form><div id="search-results"></div></div>'
)
# The Python documentation's theme (and older Sphinx) writes a letter's page of a split index as "indextable" alone.
SPHINX_INDEX_LETTER = (
    '<div class="body" role="main"><h1 id="index">Index &ndash; S</h1><table style="width: 100%" class="indextable">'
    '<tr><td style="width: 33%; vertical-align: top;"><ul><li><a href="library/sched.html#module-sched">sched</a>'
    "</li></ul></td></tr></table></div>"
)
# Read the Docs' Sphinx theme: the search field in the sidebar, the index loaded by an inline script.
RTD_SEARCH = (
    '<div class="wy-side-nav-search"><div role="search"><form id="rtd-search-form" action="#" method="get"><input '
    'type="text" name="q" placeholder="Search docs" /></form></div></div><div role="main" class="document"><div '
    'id="search-results"></div></div><footer><p>&#169; Copyright 2023, the authors.</p></footer>'
    '<script>jQuery(function() { Search.loadIndex("searchindex.js"); });</script>'
)
MKDOCS_SEARCH = (
    '<div role="main" class="document"><h1 id="search">Search Results</h1><form id="content_search" action="" '
    'method="get"><input name="q" id="mkdocs-search-query" type="text"></form><div id="mkdocs-search-results" '
    'data-no-results-text="No results found">Searching...</div></div>'
)


@pytest.mark.parametrize(
    ("head", "body", "kind"),
    [
        ("", SPHINX_GENINDEX, "the general index"),
        ("", SPHINX_MODINDEX, "the module index"),
        ('<script src="searchindex.js" defer></script>', SPHINX_SEARCH, "the search page"),
        ("", SPHINX_SEARCH, "the search page"),
        ("", MKDOCS_SEARCH, "the search page"),
        ("", SPHINX_INDEX_LETTER, "the general index"),
        ("", RTD_SEARCH, "the search page"),
    ],
)
def test_index_and_search_pages_a_documentation_builder_generates_are_skipped_with_a_reason(head, body, kind):
    page = f"<html><head><title>Index</title>{head}</head><body>{body}</body></html>"
    with pytest.raises(Unreadable, match=f"^{kind} a documentation builder generated"):
        _read(page)
    assert _read(page, main_content=False).text  # the whole page, for those who ask for it


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        # A user's own page about searching, named search.html: it has a search field but no builder's results box.
        (
            '<h1>Search</h1><p>Type a question into the box.</p><form><input name="q"></form>',
            "Type a question into the box.",
        ),
        # MkDocs' own theme puts its search box, results and all, in a dialog on every page.
        (
            '<div role="main"><h1>Django REST framework</h1><p>A toolkit for Web APIs.</p></div><div class="modal" '
            'id="mkdocs_search_modal" role="dialog"><input type="text" name="q" id="mkdocs-search-query">'
            '<div id="mkdocs-search-results"></div></div>',
            "A toolkit for Web APIs.",
        ),
    ],
)
def test_a_page_with_a_search_field_but_not_the_builders_search_page_is_content(body, sentence):
    assert sentence in _read(f"<body>{body}</body>").text


def test_a_sphinx_build_folder_skips_its_generated_pages_and_says_which_they_are(tmp_path):
    (tmp_path / "genindex.html").write_text(f"<body>{SPHINX_GENINDEX}</body>", encoding="utf-8")
    (tmp_path / "py-modindex.html").write_text(f"<body>{SPHINX_MODINDEX}</body>", encoding="utf-8")
    (tmp_path / "search.html").write_text(
        f'<head><script src="searchindex.js"></script></head><body>{SPHINX_SEARCH}</body>', encoding="utf-8"
    )
    (tmp_path / "calling.html").write_text(f"<body>{CELERY_DECK}</body>", encoding="utf-8")
    scan = scan_corpus(tmp_path)
    assert [document.doc_id for document in scan.documents] == ["calling.html"]
    reasons = {skipped.doc_id: skipped.reason for skipped in scan.skipped}
    assert reasons == {
        "genindex.html": "the general index a documentation builder generated: links to pages, not a document",
        "py-modindex.html": "the module index a documentation builder generated: links to pages, not a document",
        "search.html": "the search page a documentation builder generated: links to pages, not a document",
    }
    assert len(scan_corpus(tmp_path, main_content=False).documents) == 4
