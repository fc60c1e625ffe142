"""Finding a quote in a text: folding both the same way, exact places and the closest approximate span (pure).

A quote is compared with a document after folding what people and extraction change without changing the words:
runs of whitespace and line breaks become one space, typographic quotes and dashes their ASCII forms, soft hyphens
and zero-width characters go, and the first letter's case is free. Every folded text keeps the offset in the
original of each of its characters, so a span found in the folded text maps back exactly:
``original[start:end]`` folds to the quote.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

# One-for-one replacements, so offsets survive: typographic quotes, primes and dashes to ASCII, every kind of
# whitespace (line breaks, no-break and thin spaces) to a space.
_SINGLE_QUOTES = "\u2018\u2019\u201a\u201b\u2032\u02bc\u0060\u00b4"
_DOUBLE_QUOTES = "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb"
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_SPACES = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)
_TABLE = str.maketrans(
    {
        **{c: "'" for c in _SINGLE_QUOTES},
        **{c: '"' for c in _DOUBLE_QUOTES},
        **{c: "-" for c in _DASHES},
        **{c: " " for c in _SPACES},
    }
)
# What folding drops: the second and later spaces of a run, and characters that are invisible in print.
_DROPPED = re.compile(r"(?<= ) +|[\u00ad\u200b\u200c\u200d\u2060\ufeff]+")
_WORD = re.compile(r"\w+")
# Quote marks a person wraps a quotation in; they are not part of what is quoted.
_WRAPPING = " \"'"


@dataclass(frozen=True)
class Folded:
    """A text folded for comparison: ``text`` (case kept), ``lower`` (the same, lower-cased, equally long), and
    ``origin[i]``, the offset in the original text of ``text[i]`` plus ``base``."""

    text: str
    lower: str
    origin: np.ndarray

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of the folded characters ``start:end`` (``end > start``)."""
        return int(self.origin[start]), int(self.origin[end - 1]) + 1


def fold(text: str, base: int = 0) -> Folded:
    """``text`` folded for comparison, with the original offset (plus ``base``) of each folded character."""
    replaced = text.translate(_TABLE)
    keep = np.ones(len(replaced), dtype=bool)
    for match in _DROPPED.finditer(replaced):
        keep[match.start() : match.end()] = False
    if keep.all():
        folded = replaced
        origin = np.arange(len(replaced), dtype=np.int64)
    else:
        codes = np.frombuffer(replaced.encode("utf-32-le"), dtype=np.uint32)[keep]
        folded = codes.tobytes().decode("utf-32-le")
        origin = np.flatnonzero(keep).astype(np.int64)
    return Folded(folded, _lower_same_length(folded), origin + base)


def _lower_same_length(text: str) -> str:
    """``text`` lower-cased character by character where that keeps one character (a few, like İ, would not)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(low if len(low := c.lower()) == 1 else c for c in text)


def clean_quote(quote: str) -> str:
    """The quote folded, without surrounding whitespace and the quotation marks it may be wrapped in."""
    folded = fold(quote).text.strip(_WRAPPING)
    return folded.strip()


def _is_word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def exact_places(quote: str, window: Folded) -> list[tuple[int, int]]:
    """Every folded span of ``window`` equal to the folded ``quote`` (first letter's case aside), on word bounds.

    Args:
        quote: already folded (``clean_quote``), not empty.

    Returns:
        Original ``(start, end)`` spans, in order.
    """
    needle = _lower_same_length(quote)
    found, at = [], window.lower.find(needle)
    text = window.text
    while at != -1:
        end = at + len(quote)
        same = text[at + 1 : end] == quote[1:]
        starts_clean = not (at > 0 and _is_word_char(quote[0]) and _is_word_char(text[at - 1]))
        ends_clean = not (end < len(text) and _is_word_char(quote[-1]) and _is_word_char(text[end]))
        if same and starts_clean and ends_clean:
            found.append(window.span(at, end))
        at = window.lower.find(needle, at + 1)
    return found


@dataclass(frozen=True)
class Alignment:
    """The closest span of a window to a quote: original offsets, folded similarity in [0, 1]."""

    start: int
    end: int
    similarity: float
    folded_start: int
    folded_end: int


# How many words either way the ends of a rough alignment are moved to find the closest whole-word span.
_SHIFT_WORDS = 6


def rough_place(quote: str, window: Folded):
    """rapidfuzz's best quote-long stretch of ``window`` for the folded ``quote`` (its ``score`` is 0-100), or
    None for a window without text: cheap, to choose which windows to align closely."""
    if not window.lower.strip():
        return None
    return fuzz.partial_ratio_alignment(_lower_same_length(quote), window.lower)


def closest_span(quote: str, window: Folded, rough=None) -> Alignment | None:
    """The span of ``window`` most like ``quote`` (folded, lower-cased), snapped to whole words.

    rapidfuzz's partial alignment (``rough_place``) places a quote-long stretch of the window; its ends are then
    moved a few words either way to where the whole-span similarity is highest, so a dropped or added word still
    gives the right span. The similarity is Levenshtein's, normalised to [0, 1]: a changed word costs its changed
    letters, where Indel would rather leave the word out.

    Args:
        quote: already folded (``clean_quote``), not empty.
        rough: ``rough_place(quote, window)`` when already known.
    """
    rough = rough_place(quote, window) if rough is None else rough
    if rough is None:
        return None
    needle, hay = _lower_same_length(quote), window.lower
    words = [(m.start(), m.end()) for m in _WORD.finditer(hay)]
    if not words:
        return None
    starts = np.array([s for s, _ in words])
    ends = np.array([e for _, e in words])
    first = int(np.clip(np.searchsorted(ends, rough.dest_start, side="right"), 0, len(words) - 1))
    last = int(np.clip(np.searchsorted(starts, rough.dest_end, side="left") - 1, 0, len(words) - 1))
    leading, trailing = _edge_extras(quote)
    best: tuple[float, int, int] | None = None
    for i in range(max(0, first - _SHIFT_WORDS), min(len(words), first + _SHIFT_WORDS + 1)):
        start = max(0, int(starts[i]) - leading)
        for j in range(max(i, last - _SHIFT_WORDS), min(len(words), last + _SHIFT_WORDS + 1)):
            end = min(len(hay), int(ends[j]) + trailing)
            score = Levenshtein.normalized_similarity(needle, hay[start:end])
            if best is None or score > best[0]:
                best = (score, start, end)
    # ``first`` is at most ``last + 1`` (the word ending after the rough start, the word starting before its end), so
    # the loops always meet at least one (i, j).
    assert best is not None
    score, start, end = best
    original = window.span(start, end)
    return Alignment(original[0], original[1], round(score, 4), start, end)


def _edge_extras(quote: str) -> tuple[int, int]:
    """How many characters the quote has before its first word and after its last (punctuation, quotes)."""
    words = list(_WORD.finditer(quote))
    if not words:
        return 0, 0
    return words[0].start(), len(quote) - words[-1].end()


@dataclass(frozen=True)
class Difference:
    """Words that differ: ``quote`` says what the quote has, ``document`` what the document has at ``start:end``
    (original offsets; ``start == end`` where the document has nothing the quote has)."""

    quote: str
    document: str
    start: int
    end: int

    def as_dict(self) -> dict:
        """Plain data for JSON."""
        return {"quote": self.quote, "document": self.document, "start": self.start, "end": self.end}


def differing_words(quote: str, window: Folded, original: str, alignment: Alignment, base: int) -> list[Difference]:
    """The words where the aligned span and the quote differ (compared folded and lower-cased).

    Args:
        quote: the folded quote.
        original: the unfolded window text, whose offset 0 is ``base`` in the document.
    """
    quote_words = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(_lower_same_length(quote))]
    span_lower = window.lower[alignment.folded_start : alignment.folded_end]
    span_words = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(span_lower)]
    matcher = difflib.SequenceMatcher(
        None, [w for w, _, _ in quote_words], [w for w, _, _ in span_words], autojunk=False
    )
    differences = []
    for tag, q1, q2, s1, s2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        said = quote[quote_words[q1][1] : quote_words[q2 - 1][2]] if q2 > q1 else ""
        if s2 > s1:
            start, end = window.span(
                alignment.folded_start + span_words[s1][1], alignment.folded_start + span_words[s2 - 1][2]
            )
        else:
            at = alignment.folded_start + (span_words[s1][1] if s1 < len(span_words) else len(span_lower))
            start = end = (
                int(window.origin[min(at, len(window.origin) - 1)]) if at < len(window.origin) else alignment.end
            )
        differences.append(Difference(said, original[start - base : end - base], start, end))
    return differences
