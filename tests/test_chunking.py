"""Chunking: exact offsets, right line spans, sentence boundaries and the model's token limit."""

from __future__ import annotations

import re

import pytest
from conftest import SEEDS, WordCounter

from qa.text.chunking import chunk_text, split_sentences

SEED_FILES = sorted(SEEDS.glob("*.txt"))


def _covered(text: str, chunks) -> set[int]:
    return {i for c in chunks for i in range(c.start, c.end)}


@pytest.mark.parametrize("path", SEED_FILES, ids=lambda p: p.name[:3])
def test_every_seed_chunk_is_an_exact_slice_with_right_lines_and_within_token_limit(path, encoder, torch_encoder):
    text = path.read_text(encoding="utf-8")
    chunks = chunk_text(text, size=encoder.max_tokens, overlap=32, count_tokens=encoder.count_tokens)
    assert chunks
    lines = text.split("\n")
    tokenizer = torch_encoder._model.tokenizer
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.line_start == text.count("\n", 0, chunk.start) + 1
        assert chunk.line_end == text.count("\n", 0, chunk.end - 1) + 1
        assert chunk.text in "\n".join(lines[chunk.line_start - 1 : chunk.line_end])
        # Counted with the model's own tokenizer, special tokens included, nothing truncated.
        ids = tokenizer(chunk.text, add_special_tokens=True, truncation=False)["input_ids"]
        assert len(ids) <= torch_encoder._model.max_seq_length
    non_blank = {i for i, ch in enumerate(text) if not ch.isspace()}
    assert non_blank <= _covered(text, chunks)


_SENTENCE_END = r"[.!?;。！？]['\"”’)]*$"
_CLAUSE_END = r"[,:，；：、]$"


def _boundaries(text: str, size: int, encoder):
    chunks = chunk_text(text, size=size, overlap=16, count_tokens=encoder.count_tokens)
    # A passage that stops at a line break stops at a boundary too (headlines carry no full stop).
    ends = [c.text for c in chunks[:-1] if not text[c.end : c.end + 1] == "\n"]
    return chunks, ends, [text[: c.start].rstrip() for c in chunks[1:]]


def test_single_paragraph_seed_is_cut_only_at_sentence_ends(encoder):
    text = (SEEDS / "002_7611d074bac0c8e6.txt").read_text(encoding="utf-8")
    assert len(text) > 16000 and text.count("\n") <= 2
    # 200 tokens holds the longest sentence of this seed, so no sentence needs cutting.
    chunks, ends, befores = _boundaries(text, 200, encoder)
    assert len(chunks) > 10
    for passage in ends:
        assert re.search(_SENTENCE_END, passage), passage[-60:]
    for before in befores:
        assert before == "" or re.search(_SENTENCE_END, before) or text[len(before) :].startswith("\n")


def test_sentences_over_the_size_are_cut_at_clauses(encoder):
    text = (SEEDS / "002_7611d074bac0c8e6.txt").read_text(encoding="utf-8")
    chunks, ends, _ = _boundaries(text, 64, encoder)
    assert all(c.n_tokens <= 64 for c in chunks)
    for passage in ends:
        assert re.search(_SENTENCE_END, passage) or re.search(_CLAUSE_END, passage), passage[-60:]


def test_sentences_split_on_terminators_and_lines_not_abbreviations():
    text = "Title line\nDr. Smith met Mr. J. Doe in the U.S. today. He agreed! Did she? 这是中文。另一句。"
    spans = [text[s.start : s.end] for s in split_sentences(text)]
    assert spans == [
        "Title line",
        "Dr. Smith met Mr. J. Doe in the U.S. today.",
        "He agreed!",
        "Did she?",
        "这是中文。",
        "另一句。",
    ]


def test_overlap_repeats_whole_trailing_sentences():
    text = " ".join(f"Sentence number {i} has five words." for i in range(1, 11))
    # Each sentence is 6 words; size 18 fits three, overlap 6 repeats the last one.
    chunks = chunk_text(text, size=18, overlap=6, count_tokens=WordCounter())
    assert [c.text.count("Sentence") for c in chunks[:-1]] == [3] * (len(chunks) - 1)
    for previous, current in zip(chunks, chunks[1:]):
        last_sentence = previous.text[previous.text.rfind("Sentence") :]
        assert current.text.startswith(last_sentence)


def test_zero_overlap_gives_disjoint_chunks():
    text = " ".join(f"Sentence {i} is here." for i in range(30))
    chunks = chunk_text(text, size=10, overlap=0, count_tokens=WordCounter())
    for previous, current in zip(chunks, chunks[1:]):
        assert previous.end <= current.start


def test_sentence_longer_than_size_is_cut_at_words():
    text = "word " * 50 + "end."
    chunks = chunk_text(text, size=12, overlap=0, count_tokens=WordCounter())
    assert all(WordCounter()([c.text])[0] <= 12 for c in chunks)
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert {i for i, ch in enumerate(text) if not ch.isspace()} <= _covered(text, chunks)


def test_unbroken_text_longer_than_size_is_cut_by_characters(encoder):
    text = "汉" * 2000  # no spaces, no punctuation: only a character cut can fit the limit
    chunks = chunk_text(text, size=100, overlap=0, count_tokens=encoder.count_tokens)
    assert "".join(c.text for c in chunks) == text
    assert max(encoder.count_tokens([c.text for c in chunks])) <= 100


def test_crlf_text_keeps_exact_offsets_and_lines():
    text = "Headline\r\n\r\nFirst sentence here. Second one.\r\nThird line."
    chunks = chunk_text(text, size=4, overlap=0, count_tokens=WordCounter())
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert not chunk.text.endswith("\r")
    assert (chunks[-1].line_start, chunks[-1].line_end) == (3, 4)


@pytest.mark.parametrize("size, overlap", [(0, 0), (10, 10), (10, -1)])
def test_invalid_size_or_overlap_is_rejected(size, overlap):
    with pytest.raises(ValueError):
        chunk_text("Some text.", size=size, overlap=overlap, count_tokens=WordCounter())


def test_blank_text_gives_no_chunks():
    assert chunk_text(" \n\t ", size=10, overlap=0, count_tokens=WordCounter()) == []


def _sentence(words: int, tag: str) -> str:
    """A sentence of ``words`` words (one token each for WordCounter), all ``tag`` (a word, not an initial)."""
    return " ".join([tag] * words) + "."


def test_a_short_last_sentence_joins_the_passage_before_within_the_limit():
    text = " ".join([_sentence(9, "aaa"), _sentence(9, "bbb"), _sentence(3, "ccc")])
    chunks = chunk_text(text, size=20, overlap=0, count_tokens=WordCounter(), limit=254)
    assert [c.text for c in chunks] == [text]
    assert chunks[0].n_tokens == 21
    # Without a limit, or with one that leaves no room to stretch, the fragment stands alone.
    for limit in (None, 20):
        chunks = chunk_text(text, size=20, overlap=0, count_tokens=WordCounter(), limit=limit)
        assert [c.text for c in chunks] == [text[: text.index("ccc")].rstrip(), _sentence(3, "ccc")]


def test_a_short_sentence_between_long_ones_joins_the_passage_before():
    parts = [_sentence(18, "aaa"), _sentence(3, "bbb"), _sentence(18, "ccc")]
    chunks = chunk_text(" ".join(parts), size=20, overlap=0, count_tokens=WordCounter(), limit=254)
    assert [c.text for c in chunks] == [f"{parts[0]} {parts[1]}", parts[2]]


def test_a_short_sentence_that_can_open_the_next_passage_stays_there():
    parts = [_sentence(18, "aaa"), _sentence(3, "bbb"), _sentence(10, "ccc")]
    chunks = chunk_text(" ".join(parts), size=20, overlap=0, count_tokens=WordCounter(), limit=254)
    assert [c.text for c in chunks] == [parts[0], f"{parts[1]} {parts[2]}"]


def test_a_sentence_of_a_quarter_of_the_size_or_more_is_no_fragment():
    parts = [_sentence(18, "aaa"), _sentence(5, "bbb")]
    chunks = chunk_text(" ".join(parts), size=20, overlap=0, count_tokens=WordCounter(), limit=254)
    assert [c.text for c in chunks] == parts


def test_overlap_never_makes_a_passage_of_repeats_alone():
    # The last sentence of the first passage fits the overlap, but not beside the long sentence after it:
    # carrying it over would give a passage holding nothing new.
    parts = [_sentence(10, "aaa"), _sentence(5, "bbb"), _sentence(18, "ccc")]
    chunks = chunk_text(" ".join(parts), size=20, overlap=6, count_tokens=WordCounter())
    assert [c.text for c in chunks] == [f"{parts[0]} {parts[1]}", parts[2]]
