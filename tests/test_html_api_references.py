"""API reference pages as rustdoc, Doxygen and javadoc write them: signatures are section titles; source links,
tooltips, toggle labels, tabs and other controls are not text; the highlighted source a builder writes beside its
pages is skipped with a reason."""

from __future__ import annotations

import random
import zlib

import pytest

from qa.ingest.corpus import scan_corpus
from qa.ingest.formats import Unreadable
from qa.ingest.formats.html import read_html

# The shape of a rustdoc item page (rustdoc 1.6x, as Debian's cargo-doc ships the syn crate's reference): each
# method is a <section> holding a "source" link and an <h4> signature whose types are links, inside the <summary>
# of a toggle, with a notable-traits tooltip in the heading and an external "Read more" after a trait method.
RUSTDOC = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Fields in syn - Rust</title></head>
<body class="rustdoc enum"><nav class="sidebar"><h2 class="location"><a href="#">Fields</a></h2>
<div class="block"><h3 class="sidebar-title"><a href="#implementations">Methods</a></h3>
<ul><li><a href="#method.iter">iter</a></li><li><a href="#method.len">len</a></li></ul></div></nav>
<main><div class="width-limiter"><section id="main-content" class="content"><div class="main-heading">
<h1 class="fqn"><span class="in-band">Enum <a href="index.html">syn</a>::<a class="enum" href="#">Fields</a></span></h1>
</div>
<details class="rustdoc-toggle top-doc" open><summary class="hideme"><span>Expand description</span></summary>
<div class="docblock"><p>Data stored within an enum variant or struct.</p></div></details>
<h2 id="implementations" class="small-section-header">Implementations</h2>
<div id="implementations-list"><details class="rustdoc-toggle implementors-toggle" open><summary>
<section id="impl" class="impl has-srclink"><span class="rightside"><a class="srclink"
href="../src/syn/data.rs.html#75-115">source</a></span><a href="#impl" class="anchor"></a>
<h3 class="code-header in-band">impl <a class="enum" href="enum.Fields.html">Fields</a></h3></section></summary>
<div class="impl-items"><details class="rustdoc-toggle method-toggle" open><summary>
<section id="method.iter" class="method has-srclink"><span class="rightside"><a class="srclink"
href="../src/syn/data.rs.html#79-85">source</a></span><a href="#method.iter" class="anchor"></a>
<h4 class="code-header">pub fn <a href="#method.iter" class="fnname">iter</a>(&amp;self) -&gt;
<a class="struct" href="punctuated/struct.Iter.html">Iter</a>&lt;'_,
<a class="struct" href="struct.Field.html">Field</a>&gt;<span
class="notable-traits"><span class="notable-traits-tooltip">ⓘ<span class="notable-traits-tooltiptext"><span
class="docblock"><span class="notable">Notable traits for <a href="punctuated/struct.Iter.html">Iter</a></span></span>
</span></span></span></h4></section></summary><div class="docblock"><p>Get an iterator over the borrowed
<a href="struct.Field.html">Field</a> items in this object.</p></div></details>
<details class="rustdoc-toggle method-toggle" open><summary><section id="method.clone" class="method trait-impl">
<span class="rightside"><span class="since">1.0.0</span> · <a class="srclink"
href="https://doc.rust-lang.org/nightly/src/core/clone.rs.html#130">source</a></span>
<h4 class="code-header">fn <a href="#method.clone" class="fnname">clone</a>(&amp;self) -&gt; Self</h4></section>
</summary><div class="docblock"><p>Returns a copy of the value.
<a href="https://doc.rust-lang.org/nightly/core/clone/trait.Clone.html#tymethod.clone">Read more</a></p></div>
</details></div></details></div>
<h2 id="synthetic-implementations" class="small-section-header">Auto Trait Implementations</h2>
<div id="synthetic-implementations-list"><section id="impl-Send" class="impl has-srclink">
<h3 class="code-header in-band">impl !<a class="trait"
href="https://doc.rust-lang.org/core/marker/trait.Send.html">Send</a>
for <a class="enum" href="enum.Fields.html">Fields</a></h3></section></div>
<h2 id="blanket-implementations" class="small-section-header">Blanket Implementations</h2>
<div id="blanket-implementations-list"><details class="rustdoc-toggle implementors-toggle"><summary>
<section id="impl-From%3CT%3E" class="impl has-srclink">
<h3 class="code-header in-band">impl&lt;T&gt; From&lt;T&gt; for T</h3>
</section></summary><div class="docblock"><p>Returns the argument unchanged.</p></div></details></div>
</section></div></main></body></html>"""


def test_signatures_whose_types_are_links_stay_section_titles():
    page = read_html(RUSTDOC.encode())
    titles = [heading.title for heading in page.headings]
    assert "pub fn iter(&self) -> Iter<'_, Field>" in titles
    assert "impl Fields" in titles
    assert "fn clone(&self) -> Self" in titles
    assert "pub fn iter(&self) -> Iter<'_, Field>\nGet an iterator over the borrowed Field items" in page.text


def test_source_links_read_more_tooltips_toggle_labels_and_blanket_implementations_are_left_out():
    page = read_html(RUSTDOC.encode())
    assert page.text == (
        "Enum syn::Fields\n"
        "Data stored within an enum variant or struct.\n"
        "Implementations\n"
        "impl Fields\n"
        "pub fn iter(&self) -> Iter<'_, Field>\n"
        "Get an iterator over the borrowed Field items in this object.\n"
        "1.0.0 ·\n"
        "fn clone(&self) -> Self\n"
        "Returns a copy of the value.\n"
        "Auto Trait Implementations\n"
        "impl !Send for Fields"
    )


def test_the_whole_page_setting_keeps_what_main_content_leaves_out():
    page = read_html(RUSTDOC.encode(), main_content=False)
    assert "Notable traits for Iter" in page.text
    assert "source" in page.text.split()
    assert "Read more" in page.text
    assert "Expand description" in page.text
    assert "Returns the argument unchanged." in page.text


def test_a_section_of_headings_over_a_link_list_is_still_a_box_beside_the_content():
    box = (
        '<section class="quick"><h3>Methods</h3><ul><li><a href="#a">iter</a></li><li><a href="#b">len</a></li>'
        '<li><a href="#c">is_empty</a></li></ul></section>'
    )
    page = read_html(f"<body><h1>Fields</h1><p>Stored within a variant.</p>{box}</body>".encode())
    assert page.text == "Fields\nStored within a variant."


def test_a_link_whose_text_is_the_word_source_within_a_sentence_stays():
    page = read_html(b'<body><p>The parser reads its <a href="input.html">source</a> once.</p></body>')
    assert page.text == "The parser reads its source once."


@pytest.mark.parametrize(
    "control",
    [
        '<button class="copybtn" title="Copy to clipboard">Copy</button>',
        '<button class="copybtn"><img src="copy.svg" alt=""></button>',
        '<button onclick="run()">Run</button>',
        "<details><summary>Show hidden</summary><p>x = 1</p></details>",
    ],
)
def test_a_control_on_the_page_is_not_its_text(control):
    page = read_html(f"<body><p>Assign it.</p>{control}<pre>x = 1</pre></body>".encode())
    assert page.text.splitlines()[:2] == ["Assign it.", "x = 1"]


def test_a_summary_or_an_accordion_button_that_names_its_content_stays():
    page = read_html(
        b"<body><details><summary>How do I reset my password?</summary><p>Use the link.</p></details>"
        b'<h3><button aria-expanded="false">Billing questions</button></h3><p>Pay by card.</p>'
        b'<button class="accordion">What is X?</button><div>X is y.</div></body>'
    )
    assert page.text == (
        "How do I reset my password?\nUse the link.\nBilling questions\nPay by card.\nWhat is X?\nX is y."
    )
    assert [heading.title for heading in page.headings] == ["Billing questions"]


# The shape of a Doxygen class page (Doxygen 1.9, as Debian's libjsoncpp-doc ships it, whose custom header has no
# <title>): the title in a box of the header, a "More..." link after the brief description, and each member's
# heading opened by a permalink sign.
DOXYGEN = """<html><head><meta name="generator" content="Doxygen 1.9.1"/></head><body>
<div id="nav-path" class="navpath"><ul><li class="navelem"><a class="el" href="namespace_json.html">Json</a></li>
<li class="navelem"><a class="el" href="class_json_1_1_reader.html">Reader</a></li></ul></div>
<div class="header"><div class="summary"><a href="#pub-methods">Public Member Functions</a> &#124;
<a href="class_json_1_1_reader-members.html">List of all members</a></div>
<div class="headertitle"><div class="title">Json::Reader Class Reference</div></div></div>
<div class="contents"><p>Unserialize a JSON document into a Value. <a href="#details">More...</a></p>
<h2 class="memtitle"><span class="permalink"><a href="#a0b3c4">&#9670;&nbsp;</a></span>good()</h2>
<div class="memitem"><p>Return whether there are any errors.</p></div></div></body></html>"""


def test_a_doxygen_page_keeps_its_title_box_and_drops_more_links_and_permalink_signs():
    page = read_html(DOXYGEN.encode())
    assert page.text == (
        "Json::Reader Class Reference\nUnserialize a JSON document into a Value.\ngood()\n"
        "Return whether there are any errors."
    )
    assert [heading.title for heading in page.headings] == ["good()"]
    assert page.title == "Json::Reader Class Reference"


def test_a_page_without_a_title_element_is_titled_by_its_first_top_level_heading():
    page = read_html(
        b'<body><ul class="menu"><li><a href="a.html">Home</a></li></ul><h2>Intro</h2>'
        b"<h1>Install guide</h1><p>Run the installer.</p></body>"
    )
    assert page.title == "Install guide"


def test_a_sign_inside_a_heading_that_is_not_a_link_stays():
    page = read_html(b"<body><h2>C# &amp; F# \xc2\xa7 notes</h2><p>Both.</p></body>")
    assert [heading.title for heading in page.headings] == ["C# & F# § notes"]


def test_a_permalink_sign_after_a_headings_words_stays_in_the_text_but_not_in_the_title():
    page = read_html(
        '<body><h2 id="conf">Configuration <a class="permalink" href="#conf">¶</a></h2><p>Set it.</p></body>'.encode()
    )
    assert page.text == "Configuration ¶\nSet it."
    assert [heading.title for heading in page.headings] == ["Configuration"]


# Sphinx's viewcode page for a module (_modules/celery/app/task.html) and rustdoc's source view (src/syn/error.rs.html).
SPHINX_VIEWCODE = """<body><div class="body" role="main"><h1>Source code for celery.app.task</h1>
<div class="highlight"><pre><span></span><div class="viewcode-block" id="Task.retry"><a class="viewcode-back"
href="../../../reference/celery.app.task.html#celery.app.task.Task.retry">[docs]</a>
<span class="k">def</span> <span class="nf">retry</span><span class="p">(</span><span class="bp">self</span>):
    <span class="sd">&quot;&quot;&quot;Retry the task.&quot;&quot;&quot;</span></div></pre></div></div></body>"""
RUSTDOC_SOURCE = """<body class="rustdoc source"><main><div class="example-wrap"><pre class="src-line-numbers">
<span id="1">1</span></pre><pre class="rust"><code><span class="doccomment">/// The result of a Syn parser.</span>
<span
class="kw">pub type</span> Result&lt;T&gt; = std::result::Result&lt;T, Error&gt;;</code></pre></div></main></body>"""
SOURCE_VIEW_REASON = (
    "the highlighted source code a documentation builder generated: a copy of the code its pages "
    "document (index the source files to search code)"
)


@pytest.mark.parametrize(
    ("page", "docstring"),
    [
        (SPHINX_VIEWCODE, '"""Retry the task."""'),
        (RUSTDOC_SOURCE, "/// The result of a Syn parser."),
    ],
)
def test_the_highlighted_source_a_builder_writes_beside_its_pages_is_skipped_with_a_reason(page, docstring):
    with pytest.raises(Unreadable) as raised:
        read_html(page.encode())
    assert str(raised.value) == SOURCE_VIEW_REASON
    assert docstring in read_html(page.encode(), main_content=False).text  # the whole page, for those who ask


def test_an_api_page_linking_to_its_source_is_a_document(tmp_path):
    api = (
        '<body><dl class="py method"><dt class="sig" id="celery.app.task.Task.retry"><span class="sig-name">retry'
        '</span><a class="reference internal" href="../_modules/celery/app/task.html#Task.retry">'
        '<span class="viewcode-link"><span class="pre">[source]</span></span></a></dt>'
        "<dd><p>Retry the task, adding it to the back of the queue.</p></dd></dl></body>"
    )
    (tmp_path / "task.html").write_text(api, encoding="utf-8")
    (tmp_path / "_modules").mkdir()
    (tmp_path / "_modules" / "task.html").write_text(SPHINX_VIEWCODE, encoding="utf-8")
    scan = scan_corpus(tmp_path)
    assert [document.doc_id for document in scan.documents] == ["task.html"]
    assert "Retry the task, adding it to the back of the queue." in scan.documents[0].text
    assert {skipped.doc_id: skipped.reason for skipped in scan.skipped} == {"_modules/task.html": SOURCE_VIEW_REASON}


def test_javadoc_table_tabs_are_controls_and_the_table_stays():
    page = read_html(
        b'<body><h2>Method Summary</h2><div role="tablist" aria-orientation="horizontal">'
        b'<button role="tab" aria-selected="true" class="active-table-tab">All Methods</button>'
        b'<button role="tab" aria-selected="false" class="table-tab">Static Methods</button></div>'
        b'<div role="tabpanel"><div class="col-first">static String</div>'
        b'<div class="col-second">random(int count)</div></div></body>'
    )
    assert page.text == "Method Summary\nstatic String\nrandom(int count)"


# Doxygen's forwards_8h_source.html, javadoc's src-html pages (17 and later; 8 to 16), as Debian's libjsoncpp-doc and
# libcommons-lang3-java ship them, cut down.
DOXYGEN_SOURCE = """<html><head><meta name="generator" content="Doxygen 1.9.1"/></head><body><div class="header">
<div class="headertitle"><div class="title">forwards.h</div></div></div><div class="contents">
<a href="forwards_8h.html">Go to the documentation of this file.</a><div class="fragment"><div class="line">
<a name="l00001"></a><span class="lineno">    1</span><span class="comment">// Copyright 2007-2010 Baptiste Lepilleur
</span></div><div class="line"><span class="lineno">    2</span><span class="keyword">class </span>FastWriter;
</div></div></div>
</body></html>"""
JAVADOC_SOURCE = """<html><head><title>Source code</title>
<meta name="generator" content="javadoc/SourceToHTMLConverter"></head>
<body class="source-page"><main role="main"><div class="source-container"><pre>
<span class="source-line-no">001</span><span id="line-1">/** Operations on classes in a null-safe manner. */</span>
</pre></div></main></body></html>"""
JAVADOC_8_SOURCE = """<html><head><title>Source code</title></head><body><div class="sourceContainer"><pre>
<span class="sourceLineNo">001</span><a name="line.1">/** Operations on classes in a null-safe manner. */</a>
</pre></div></body></html>"""


@pytest.mark.parametrize(
    ("page", "code"),
    [
        (DOXYGEN_SOURCE, "Copyright 2007-2010 Baptiste Lepilleur"),
        (JAVADOC_SOURCE, "Operations on classes in a null-safe manner."),
        (JAVADOC_8_SOURCE, "Operations on classes in a null-safe manner."),
    ],
)
def test_doxygen_and_javadoc_source_views_are_skipped_with_a_reason(page, code):
    with pytest.raises(Unreadable) as raised:
        read_html(page.encode())
    assert str(raised.value) == SOURCE_VIEW_REASON
    assert code in read_html(page.encode(), main_content=False).text


def test_a_doxygen_page_that_documents_code_and_shows_numbered_source_is_a_document():
    """With INLINE_SOURCES a member's documentation carries its body as a numbered fragment: still a document."""
    page = """<body><div class="contents"><div class="memitem"><div class="memproto">int size() const</div>
    <div class="memdoc"><p>Number of values in array or object.</p><div class="fragment"><div class="line">
    <span class="lineno">  12</span>return value_.map_-&gt;size();</div></div></div></div></div></body>"""
    assert "Number of values in array or object." in read_html(page.encode()).text


def test_rustdoc_settings_page_is_skipped_and_a_page_named_settings_is_not():
    settings = """<html><head><title>Rustdoc settings</title><script defer src="settings.js"></script></head>
    <body class="rustdoc mod"><main><section id="main-content" class="content"><h1 class="fqn">
    <span class="in-band">Rustdoc settings</span></h1><noscript><section>You need to enable Javascript be able to
    update your settings.</section></noscript></section></main></body></html>"""
    with pytest.raises(Unreadable, match="^the settings page a documentation builder generated: a form"):
        read_html(settings.encode())
    own = """<html><head><script src="settings.js"></script></head><body><h1>Settings</h1>
    <p>Set the cache size with <code>cache_size</code>.</p></body></html>"""
    assert "Set the cache size" in read_html(own.encode()).text


def test_a_page_with_a_stray_nul_is_read_and_a_binary_file_named_html_is_not():
    """javadoc's page for CharUtils shows the NUL character itself in a <code> element."""
    page = b"<html><body><h1>CharUtils</h1><p><code>\x00</code> null control character.</p>" + b"<p>x</p>" * 500
    assert read_html(page).text.startswith("CharUtils\nnull control character.")
    compressed = zlib.compress(random.Random(0).randbytes(64 * 1024))  # the fewest NULs a binary has: 1 in 256
    for binary in (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + compressed, b"<html>\x00\x01\x02</html>"):
        with pytest.raises(Unreadable, match="binary content"):
            read_html(binary)
