"""A changed Markdown file is chunked section by section, its unchanged sections' passages taken from the previous
index, with the passages of a clean build: offsets, lines, token counts, sections, anchors and vectors."""

from __future__ import annotations

import random
import shutil

import numpy as np
import pytest
from test_update_cost import BUILD, _section, _vectors_by_passage

import qa.index.indexer
from qa.index.manifest import Manifest
from qa.index.segments import open_store
from qa.ingest.formats.rst import rst_structure
from qa.ingest.formats.text import markdown_structure
from qa.text.chunking import chunk_text, known_pieces, pieces

NAMES = ("eggs", "bread", "soup", "tea", "jam")


def _file(sections: list[str]) -> str:
    """A headed Markdown file of these sections, each long enough for several passages."""
    return "# Kitchen notes\n\nThe notes of the kitchen.\n\n" + "\n".join(_section(name, 24) for name in sections)


@pytest.fixture()
def corpus(tmp_path):
    """One long headed file of five sections, and others beside it, so that an update of it adds a segment."""
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "kitchen.md").write_text(_file(list(NAMES)))
    for number in range(4):
        flowers = [f"{flower}{number}" for flower in ("roses", "tulips", "lilies", "daisies", "irises")]
        (root / f"garden{number}.md").write_text("# Garden notes\n\n" + "\n".join(_section(f, 24) for f in flowers))
    return root


def _passages(index_dir):
    """Every shown passage with its document, offsets, lines, text, section and anchor."""
    store = open_store(index_dir, Manifest.read(index_dir))
    try:
        return sorted(
            (c.doc_id, c.start, c.end, c.line_start, c.line_end, c.text, c.section, c.anchor)
            for c, _ in store.iter_chunks()
        )
    finally:
        store.close()


def _newest_files(index_dir) -> dict[str, bytes]:
    """The files of the index's newest segment, by name."""
    newest = Manifest.read(index_dir).segments[-1]["dir"]
    folder = index_dir / newest
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.name != "manifest.json"}


def _counted_texts(encoder, monkeypatch) -> list[str]:
    """Record every text the tokenizer counts from now on."""
    counted: list[str] = []
    real = encoder.count_tokens
    monkeypatch.setattr(encoder, "count_tokens", lambda texts: counted.extend(texts) or real(texts))
    return counted


EDITS = {
    # One sentence of the middle section changed.
    "middle section edited": lambda text: text.replace("step 3 of soup takes 5", "step 3 of soup takes 50"),
    # A new heading splits the fourth section in two.
    "heading added": lambda text: text.replace("The tea note says step 9", "## Brewing\n\nThe tea note says step 9"),
    # The third section's heading removed: its text joins the second section.
    "heading removed": lambda text: text.replace("## Soup\n\n", ""),
    # A word added to the first section: every later section starts elsewhere, unchanged.
    "later sections only moved": lambda text: text.replace("The notes of", "The many notes of"),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_update_reusing_unchanged_sections_equals_a_clean_build(edit, corpus, tmp_path, encoder, monkeypatch):
    index_dir = tmp_path / "index"
    qa.index.indexer.build_index(corpus, index_dir, encoder, **BUILD)
    without_reuse = tmp_path / "without-reuse"
    shutil.copytree(index_dir, without_reuse)
    path = corpus / "kitchen.md"
    path.write_text(EDITS[edit](path.read_text()))
    counted = _counted_texts(encoder, monkeypatch)
    report = qa.index.indexer.build_index(corpus, index_dir, encoder, **BUILD)
    assert report.changed == 1 and report.segments == 2
    # The sections before the edit were not counted again (the first, whose start is the file's, is one piece with
    # its title; the edit in "later sections only moved" is in it).
    untouched = ["bread"] if edit == "later sections only moved" else ["eggs"]
    assert not [text for text in counted if any(f"of {name} takes" in text for name in untouched)]
    monkeypatch.undo()
    clean = tmp_path / "clean"
    qa.index.indexer.build_index(corpus, clean, encoder, **BUILD, full=True)
    assert _passages(index_dir) == _passages(clean)
    ours, theirs = _vectors_by_passage(index_dir, encoder), _vectors_by_passage(clean, encoder)
    assert ours.keys() == theirs.keys()
    assert max(float(np.abs(ours[key] - theirs[key]).max()) for key in ours) <= 1e-6
    # The same update cutting the whole file again writes the same segment, byte for byte (token counts too).
    monkeypatch.setattr(qa.index.indexer, "_earlier_versions", lambda plan, before: {})
    qa.index.indexer.build_index(corpus, without_reuse, encoder, **BUILD)
    assert _newest_files(index_dir) == _newest_files(without_reuse)


def test_sections_a_changed_file_shares_with_its_earlier_version_are_not_counted_again(
    corpus, tmp_path, encoder, monkeypatch
):
    index_dir = tmp_path / "index"
    qa.index.indexer.build_index(corpus, index_dir, encoder, **BUILD)
    path = corpus / "kitchen.md"
    path.write_text(EDITS["middle section edited"](path.read_text()))
    counted = _counted_texts(encoder, monkeypatch)
    qa.index.indexer.build_index(corpus, index_dir, encoder, **BUILD)
    assert any("of soup takes" in text for text in counted)
    for name in ("eggs", "bread", "tea", "jam"):
        assert not [text for text in counted if f"of {name} takes" in text], name


def _rst_file(sections: list[str]) -> str:
    """A reStructuredText file of these sections (an overlined title, underlined sections, a literal block)."""
    body = "\n".join(
        _section(name, 24).replace(f"## {name.capitalize()}\n", f"{name.capitalize()}\n{'-' * len(name)}\n")
        for name in sections
    )
    return "=============\nKitchen notes\n=============\n\nThe notes of the kitchen::\n\n    kettle.boil()\n\n" + body


def test_a_changed_rst_file_reuses_its_unchanged_sections_and_equals_a_clean_build(
    corpus, tmp_path, encoder, monkeypatch
):
    (corpus / "kitchen.rst").write_text(_rst_file(list(NAMES)))
    index_dir = tmp_path / "index"
    qa.index.indexer.build_index(corpus, index_dir, encoder, **BUILD)
    path = corpus / "kitchen.rst"
    path.write_text(EDITS["middle section edited"](path.read_text()))
    counted = _counted_texts(encoder, monkeypatch)
    report = qa.index.indexer.build_index(corpus, index_dir, encoder, **BUILD)
    assert report.changed == 1
    assert any("of soup takes" in text for text in counted)
    for name in ("eggs", "bread", "tea", "jam"):
        assert not [text for text in counted if f"of {name} takes" in text], name
    monkeypatch.undo()
    clean = tmp_path / "clean"
    qa.index.indexer.build_index(corpus, clean, encoder, **BUILD, full=True)
    assert _passages(index_dir) == _passages(clean)
    sections = {passage[6] for passage in _passages(clean) if passage[0] == "kitchen.rst"}
    assert sections >= {"Kitchen notes › Soup", "Kitchen notes › Jam"}


def test_a_plain_text_file_is_chunked_whole(corpus, tmp_path, encoder, monkeypatch):
    (corpus / "notes.txt").write_text(_file(list(NAMES)))
    index_dir = tmp_path / "index"
    qa.index.indexer.build_index(corpus, index_dir, encoder, **BUILD)
    (corpus / "notes.txt").write_text(EDITS["middle section edited"]((corpus / "notes.txt").read_text()))
    counted = _counted_texts(encoder, monkeypatch)
    qa.index.indexer.build_index(corpus, index_dir, encoder, **BUILD)
    assert any("of eggs takes" in text for text in counted)  # no headings in a .txt: one piece


def _generated_markdown(rng: random.Random, words: list[str]) -> str:
    """Markdown with a preamble or not, headings of three levels, lone headings, fenced code and long lines."""
    parts = [" ".join(rng.choices(words, k=rng.randint(1, 30))) + ".\n\n"] if rng.random() < 0.5 else []
    for _ in range(rng.randint(0, 8)):
        parts.append("#" * rng.randint(1, 3) + " " + rng.choice(words) + "\n")
        if rng.random() < 0.2:
            continue  # a heading with nothing under it
        parts.append("\n")
        for _ in range(rng.randint(1, 4)):
            if rng.random() < 0.15:
                lines = [" ".join(rng.choices(words, k=rng.randint(1, 8))) for _ in range(rng.randint(1, 6))]
                parts.append("```\n" + "\n".join(lines) + "\n```\n\n")
            else:
                sentences = [
                    " ".join(rng.choices(words, k=rng.randint(1, 40))) + rng.choice(".!?,")
                    for _ in range(rng.randint(1, 12))
                ]
                parts.append(" ".join(sentences) + "\n\n")
    return "".join(parts)


def _generated_rst(rng: random.Random, words: list[str]) -> str:
    """reStructuredText with a preamble or not, over- and underlined titles of three styles, lone titles, literal
    blocks after "::" and long lines."""
    parts = [" ".join(rng.choices(words, k=rng.randint(1, 30))) + ".\n\n"] if rng.random() < 0.5 else []
    for _ in range(rng.randint(0, 8)):
        title = rng.choice(words)
        style = rng.choice("=-~")
        overline = f"{style * len(title)}\n" if style == "=" and rng.random() < 0.5 else ""
        parts.append(f"{overline}{title}\n{style * len(title)}\n\n")
        if rng.random() < 0.2:
            continue  # a title with nothing under it
        for _ in range(rng.randint(1, 4)):
            if rng.random() < 0.15:
                lines = [" ".join(rng.choices(words, k=rng.randint(1, 8))) for _ in range(rng.randint(1, 6))]
                parts.append("For example::\n\n" + "".join(f"    {line}\n" for line in lines) + "\n")
            else:
                sentences = [
                    " ".join(rng.choices(words, k=rng.randint(1, 40))) + rng.choice(".!?,")
                    for _ in range(rng.randint(1, 12))
                ]
                parts.append(" ".join(sentences) + "\n\n")
    return "".join(parts)


@pytest.mark.parametrize(
    ("generated", "structure", "seed"),
    [
        (_generated_markdown, markdown_structure, 11),
        (_generated_rst, rst_structure, 12),
    ],
    ids=["markdown", "rst"],
)
def test_chunking_piece_by_piece_gives_the_passages_of_the_whole_text(encoder, generated, structure, seed):
    """On generated Markdown and reStructuredText (whose titles are two or three lines) with the real tokenizer, at
    three passage sizes: chunked piece by piece (none known) or with every piece taken from a chunking of the same
    text, the passages are those of the whole text."""
    words = "kettle water boils quickly, then the tea steeps for three minutes before milk".split()
    rng = random.Random(seed)
    compared = 0
    for _ in range(60):
        text = generated(rng, words)
        if not text.strip():
            continue
        headings, code = structure(text)
        boundaries = [h.start for h in headings]
        for size, overlap, limit in ((24, 6, 32), (64, 16, 80), (256, 32, 256)):
            options = dict(size=size, overlap=overlap, limit=limit, boundaries=boundaries, code=code)
            whole = chunk_text(text, count_tokens=encoder.count_tokens, **options)
            piecewise = chunk_text(text, count_tokens=encoder.count_tokens, reuse={"no such piece": []}, **options)
            assert piecewise == whole
            known = known_pieces(text, whole, **options)
            assert sum(len(found) for found in known.values()) <= len(whole) and known
            reused = chunk_text(text, count_tokens=encoder.count_tokens, reuse=known, **options)
            assert reused == whole
            compared += 1
    assert compared > 100


def test_a_lone_heading_and_a_preamble_stay_with_the_section_after_them():
    text = "A byline.\n\n# One\n\n## Two\n\nFirst line.\nSecond line.\n\n# Three\n\nLast line.\n"
    headings, code = markdown_structure(text)
    cut = pieces(text, size=64, overlap=8, limit=80, boundaries=[h.start for h in headings], code=code)
    # No cut before "One" (a preamble comes before it) nor before "Two" (after the lone heading "One").
    assert [text[p.start : p.end].split("\n")[0] for p in cut] == ["A byline.", "# Three"]


def test_a_section_repeated_word_for_word_in_one_file_is_reused_once_per_place(corpus, tmp_path, encoder):
    """Two sections of the same text have one key: each place takes its passages once, not both lists."""
    repeated = _section("tea", 8)
    (corpus / "kitchen.md").write_text(_file(["eggs"]) + repeated + _section("soup", 8) + repeated)
    index_dir = tmp_path / "index"
    qa.index.indexer.build_index(corpus, index_dir, encoder, **BUILD)
    path = corpus / "kitchen.md"
    path.write_text(path.read_text().replace("step 3 of soup takes 5", "step 3 of soup takes 50"))
    qa.index.indexer.build_index(corpus, index_dir, encoder, **BUILD)
    clean = tmp_path / "clean"
    qa.index.indexer.build_index(corpus, clean, encoder, **BUILD, full=True)
    assert _passages(index_dir) == _passages(clean)
