"""Chunking properties on generated hostile text: exact offsets, nothing lost, the token limit, right lines."""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from qa.text.chunking import STRETCH, bounded_counter, chunk_text, split_sentences


def four_chars_a_token(texts):
    """A stand-in tokenizer: each whitespace-separated word costs one token per 4 characters (rounded up)."""
    return [sum(math.ceil(len(word) / 4) for word in text.split()) for text in texts]


def four_characters_spaces_included(texts):
    """A counter where joining costs: spaces count too, so two pieces together can exceed their sum."""
    return [math.ceil(len(text) / 4) for text in texts]


def words_and_gaps(texts):
    """A counter where every join costs a token: each word and each gap between words counts one."""
    return [2 * len(words) - 1 if (words := text.split()) else 0 for text in texts]


COUNTERS = st.sampled_from([four_chars_a_token, four_characters_spaces_included, words_and_gaps])


_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-'", min_size=1, max_size=12)
_LONG_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz/:.", min_size=30, max_size=400)
_PUNCTUATION = st.sampled_from(
    [
        ". ",
        "! ",
        "? ",
        "?! ",
        ", ",
        "; ",
        ": ",
        "...",
        ".",
        "....... ",
        '."',
        "'. ",
        ".) ",
        ",,,,",
        "!!!",
        "。",
        "，",
        "、",
        "！",
        "？",
        "；",
        "”",
        "」",
        "Dr. ",
        "U.S. ",
        "J. ",
        "e.g. ",
    ]
)
_NEWLINES = st.sampled_from(["\n", "\r\n", "\n\n", "\r\n\r\n", "\r", "\n \n", "\u2028"])
_WHITESPACE = st.text(alphabet=" \t\u00a0\u3000\x0b\x0c\x1c", min_size=1, max_size=8)
_CJK = st.text(alphabet="汉字中文句子测试数据検索한국어", min_size=1, max_size=60)
_EMOJI = st.sampled_from(["😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "✨", "\u200d", "\ufe0f", "e\u0301"])
_ANY = st.text(max_size=20)  # arbitrary code points (controls, odd whitespace, surrogates excluded by default)

FRAGMENT = st.one_of(
    _WORD,
    _WORD,
    _WORD,
    _LONG_WORD,
    _PUNCTUATION,
    _PUNCTUATION,
    _NEWLINES,
    _WHITESPACE,
    _CJK,
    _EMOJI,
    _ANY,
    st.just(" "),
    st.just(" "),
)
SOUP = st.lists(FRAGMENT, max_size=120).map("".join)
# Prose: sentences of spaced words (some long, some with clauses), so long sentences really must be cut at
# clauses and words and the pieces packed back together.
_SENTENCE = st.tuples(
    st.lists(
        st.one_of(_WORD, _WORD, _WORD, _LONG_WORD, _CJK, st.sampled_from([",", ";", "，"])), min_size=1, max_size=60
    ),
    st.sampled_from([". ", "! ", "? ", "。", "\n", "\r\n", " ", ""]),
).map(lambda parts: " ".join(parts[0]) + parts[1])
PROSE = st.lists(_SENTENCE, max_size=12).map("".join)
TEXT = st.one_of(SOUP, PROSE)


def _check_chunks(text: str, chunks, size: int, count, limit: int | None = None) -> None:
    # A passage passes ``size`` only when it takes in a fragment, and then never the stretch or the limit.
    most = size if limit is None else max(size, min(int(STRETCH * size), limit))
    for position, chunk in enumerate(chunks):
        assert chunk.index == position
        # Offsets are exact, and a chunk never starts or ends with whitespace.
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.text and not chunk.text[0].isspace() and not chunk.text[-1].isspace()
        # The limit, as the counter counts the passage itself (not the sum of its parts), with at least one token
        # per MAX_CHARS_PER_TOKEN characters so a passage is bounded in characters too.
        assert bounded_counter(count)([chunk.text])[0] == chunk.n_tokens <= most
        assert chunk.line_start == text.count("\n", 0, chunk.start) + 1
        assert chunk.line_end == text.count("\n", 0, chunk.end - 1) + 1
    starts = [c.start for c in chunks]
    assert starts == sorted(set(starts)), "starts must strictly increase"
    # Every passage reaches past the one before: none holds only repeated overlap.
    ends = [c.end for c in chunks]
    assert all(a < b for a, b in zip(ends, ends[1:])), "ends must strictly increase"
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start, chunk.end))
    lost = [i for i, ch in enumerate(text) if not ch.isspace() and i not in covered]
    assert not lost, f"characters lost at {lost[:10]}: {[text[i] for i in lost[:10]]}"


@pytest.mark.slow  # hundreds of generated examples
@settings(max_examples=400, deadline=None, database=None)
@given(text=TEXT, size=st.integers(1, 80), count=COUNTERS, data=st.data())
@example(text="." * 3000 + "x", size=4, count=four_chars_a_token, data=None)  # terminators, no space after
@example(text="a" * 500, size=3, count=four_chars_a_token, data=None)
@example(text="\r\n\r\n" * 50, size=2, count=four_chars_a_token, data=None)
@example(text="aaaa bbbb cccc dddd", size=2, count=four_characters_spaces_included, data=None)  # joining costs a token
@example(text="0. 0 0. 0 0 0 0 0 0 0 0. ", size=18, count=words_and_gaps, data=None)  # overlap that joined costs more
def test_chunks_are_exact_complete_ordered_and_within_size(text, size, count, data):
    overlap = data.draw(st.integers(0, size - 1), label="overlap") if data is not None else size // 2
    # As the indexer calls it (the model's room as the limit), and with no stretching at all.
    limit = data.draw(st.none() | st.integers(size, 2 * size), label="limit") if data is not None else None
    chunks = chunk_text(text, size=size, overlap=overlap, count_tokens=count, limit=limit)
    _check_chunks(text, chunks, size, count, limit)
    if text.strip():
        assert chunks


@pytest.mark.slow  # hundreds of generated examples
@settings(max_examples=300, deadline=None, database=None)
@given(text=TEXT)
def test_sentences_cover_every_visible_character_exactly_once(text):
    spans = split_sentences(text)
    seen: list[int] = []
    previous_end = 0
    for span in spans:
        assert previous_end <= span.start < span.end <= len(text)
        assert not text[span.start].isspace() and not text[span.end - 1].isspace()
        seen.extend(range(span.start, span.end))
        previous_end = span.end
    assert {i for i, ch in enumerate(text) if not ch.isspace()} <= set(seen)


@settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT, data=st.data())
def test_real_tokenizer_never_gets_a_passage_over_its_limit(encoder, text, data):
    assume(text.strip())
    # Mostly small sizes, so the generated text really has to be cut; sometimes the model's whole window.
    size = data.draw(st.one_of(st.integers(4, 48), st.just(encoder.max_tokens)), label="size")
    overlap = data.draw(st.integers(0, size - 1), label="overlap")
    limit = data.draw(st.sampled_from([None, size, encoder.max_tokens]), label="limit")
    chunks = chunk_text(text, size=size, overlap=overlap, count_tokens=encoder.count_tokens, limit=limit)
    _check_chunks(text, chunks, size, encoder.count_tokens, limit)
    assert all(chunk.n_tokens <= encoder.max_tokens for chunk in chunks)


@pytest.mark.slow  # splits very long runs of punctuation
@pytest.mark.parametrize(
    "text", ["." * 200_000 + "x", "a " + "," * 200_000 + "x", "!?" * 100_000 + "x"], ids=["dots", "commas", "bangs"]
)
def test_long_runs_of_punctuation_do_not_make_the_splitter_backtrack(text):
    # A run of terminators or commas with no space after it used to cost quadratic regex time (40,000 dots: 26 s).
    started = time.perf_counter()
    chunks = chunk_text(text, size=16, overlap=4, count_tokens=four_chars_a_token)
    assert time.perf_counter() - started < 5
    _check_chunks(text, chunks, 16, four_chars_a_token)


@pytest.mark.parametrize(
    "text, most",
    [("汉" * 20_000, 30), ("http://example.org/" + "abc/def-ghi_" * 2_000, 30), ("word " * 20_000, 10)],
    ids=["unbroken CJK", "long URL", "unpunctuated words"],
)
def test_text_without_sentence_ends_is_tokenised_a_bounded_number_of_times(encoder, text, most):
    # Linear work: each character goes through the tokenizer a bounded number of times. Bisecting over the
    # whole remaining text (CJK, URLs) or recounting the growing passage per word made this quadratic.
    counted = 0

    def count(texts):
        nonlocal counted
        counted += sum(map(len, texts))
        return encoder.count_tokens(texts)

    chunks = chunk_text(text, size=128, overlap=24, count_tokens=count)
    assert counted <= most * len(text), f"{counted / len(text):.1f} characters counted per character"
    _check_chunks(text, chunks, 128, encoder.count_tokens)
