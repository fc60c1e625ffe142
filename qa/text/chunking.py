"""Pure chunking: document text -> sentence-aligned passages with exact character and line spans."""

from __future__ import annotations

import hashlib
import heapq
import re
from bisect import bisect_left
from dataclasses import dataclass, replace
from itertools import chain, islice
from typing import Callable, Iterable, Iterator, Mapping, Sequence

# Counts tokens for a batch of texts, without special tokens ([CLS]/[SEP] are added by the caller's budget).
TokenCounter = Callable[[Sequence[str]], list[int]]

# Sentence ends: Western terminators followed by optional closing quotes/brackets; CJK terminators need
# no following space. Lines are also boundaries: headlines and bylines carry no final punctuation.
# Runs match only from their first character and never give characters back (possessive ``++``/``*+``):
# otherwise a long run of dots or commas with no space after it costs quadratic time to reject.
_TERMINATOR = re.compile(r"""(?<![.!?])[.!?]++["'”’)\]]*+(?=\s)|[。！？；]+[”’」』）)]*""")
_NEWLINE = re.compile(r"\n")
# Inside an over-long sentence: cut after clause punctuation first, then between words.
_CLAUSE = re.compile(r"(?<![,;:，；：、])[,;:，；：、]++(?=\s)|[，；：、]+")
_WORD_END = re.compile(r"\S(?=\s)")
# Tokens before a period that do not end a sentence.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st no nos vs etc e.g i.e fig art sec vol p pp jan feb mar apr jun jul aug "
    "sep sept oct nov dec inc ltd co corp gov dept u.s u.k".split()
)


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open character range ``[start, end)`` of a document."""

    start: int
    end: int


@dataclass(frozen=True)
class Chunk:
    """One passage: ``document_text[start:end] == text``; lines are 1-based and inclusive.

    ``section`` is the path of headings the passage sits under (outermost first, joined by " › ") and ``anchor``
    the element id a link can open its source at; both None until the indexer resolves them (qa.text.sections).
    """

    index: int
    start: int
    end: int
    line_start: int
    line_end: int
    text: str
    n_tokens: int
    section: str | None = None
    anchor: str | None = None


# Texts handed to the token counter at once: a tokenizer keeps every encoding of a batch in memory.
_COUNT_BATCH = 4096
# Every passage is bounded in characters as well as tokens: a tokenizer reads a "word" of any length (a base64
# blob, a 2 MB run without spaces) as one unknown token, so a token budget alone lets a passage grow without
# end. Text counts as at least one token per this many characters; real prose and code stay well under it.
MAX_CHARS_PER_TOKEN = 10


def bounded_counter(count: TokenCounter) -> TokenCounter:
    """``count`` made to count at least one token per ``MAX_CHARS_PER_TOKEN`` characters."""

    def counted(texts: Sequence[str]) -> list[int]:
        return [max(n, _fewest(t)) for t, n in zip(texts, count(texts))]

    return counted


def _fewest(text: str) -> int:
    """The fewest tokens ``text`` counts as: one per ``MAX_CHARS_PER_TOKEN`` characters, rounded up."""
    return -(-len(text) // MAX_CHARS_PER_TOKEN)


def _capped_counter(count: TokenCounter, longest: int) -> TokenCounter:
    """``bounded_counter(count)``, except that a text over ``longest`` characters is never handed to ``count``.

    Such a text counts ``ceil(len / MAX_CHARS_PER_TOKEN)`` tokens, which is over every budget when ``longest`` is
    ``MAX_CHARS_PER_TOKEN`` times the largest budget: callers only learn that it does not fit, as they would from
    the real count. A tokenizer holds offsets and alignments for every character it reads, so reading a 50 MB
    sentence just to learn that it is too long costs gigabytes.
    """

    def counted(texts: Sequence[str]) -> list[int]:
        short = [t for t in texts if len(t) <= longest]
        raw = iter(count(short) if short else ())
        return [max(next(raw), _fewest(t)) if len(t) <= longest else _fewest(t) for t in texts]

    return counted


def _counted(text: str, spans: Iterable[Span], count: TokenCounter) -> Iterator[tuple[Span, int]]:
    """Each span with its token count, counted in bounded batches: only one batch of substrings exists at a time."""
    spans = iter(spans)
    while batch := list(islice(spans, _COUNT_BATCH)):
        yield from zip(batch, count([text[s.start : s.end] for s in batch]))


def _trimmed(text: str, start: int, end: int) -> Span | None:
    """Shrink ``[start, end)`` to exclude surrounding whitespace; None when nothing is left."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(start, end) if start < end else None


def _ends_with_abbreviation(text: str, period_at: int) -> bool:
    """Whether the period at ``period_at`` closes an abbreviation or an initial rather than a sentence."""
    word_start = period_at
    while word_start > 0 and not text[word_start - 1].isspace():
        word_start -= 1
    word = text[word_start:period_at].lower().lstrip("(\"'“")
    if not word:
        return False
    if word in _ABBREVIATIONS:
        return True
    # Single-letter initials ("J. Smith") and dotted acronyms ("U.S.") do not end sentences.
    return len(word) == 1 and word.isalpha()


def split_sentences(text: str) -> list[Span]:
    """Split text into sentence spans (whitespace trimmed) that cover every non-blank character.

    Args:
        text: the whole document.

    Returns:
        Spans in document order; every non-whitespace character lies in exactly one span.
    """
    return list(_iter_sentences(text))


def _iter_sentences(text: str) -> Iterator[Span]:
    """``split_sentences`` one span at a time, so a document of millions of lines holds no list of its cuts."""
    newlines = (match.end() for match in _NEWLINE.finditer(text))
    cuts = heapq.merge([0], newlines, _sentence_ends(text), [len(text)])
    start = next(cuts)
    for end in cuts:
        if end == start:
            continue
        span = _trimmed(text, start, end)
        if span is not None:
            yield span
        start = end


def _sentence_ends(text: str) -> Iterator[int]:
    """Offsets just after each sentence terminator that is not an abbreviation's period, in order."""
    for match in _TERMINATOR.finditer(text):
        token = match.group()
        if token[0] == "." and len(token.rstrip("\"'”’)]")) == 1 and _ends_with_abbreviation(text, match.start()):
            continue
        yield match.end()


def _split_long(text: str, span: Span, n_tokens: int, budget: int, count: TokenCounter) -> Iterator[tuple[Span, int]]:
    """Cut a sentence of ``n_tokens`` (over ``budget``) into pieces that fit: at clauses, then at words.

    Pieces are found, counted and packed as a stream, so a sentence of millions of words never has all of them
    in memory at once.
    """
    clauses = _pieces(text, span, _CLAUSE)
    first_two = list(islice(clauses, 2))
    if len(first_two) == 1 and first_two[0] == span:
        # A sentence with no clause break is its own single clause: its count is known already.
        counted_clauses: Iterable[tuple[Span, int]] = [(span, n_tokens)]
    else:
        counted_clauses = _counted(text, chain(first_two, clauses), count)
    return _pack(text, _fitting_pieces(text, counted_clauses, budget, count), budget, count)


def _fitting_pieces(
    text: str, clauses: Iterable[tuple[Span, int]], budget: int, count: TokenCounter
) -> Iterator[tuple[Span, int]]:
    """Each clause that fits, else its words, else (a single "word" over the budget) its character pieces."""
    for clause, n in clauses:
        if n <= budget:
            yield clause, n
            continue
        for word, m in _counted(text, _pieces(text, clause, _WORD_END), count):
            # A single "word" over the budget (a long URL, unbroken CJK text): cut it by characters.
            if m > budget:
                yield from _split_by_characters(text, word, budget, count)
            else:
                yield word, m


def _pieces(text: str, span: Span, boundary: re.Pattern[str]) -> Iterator[Span]:
    """``span`` cut after each ``boundary`` match, whitespace trimmed, one piece at a time."""
    # Matched on the slice, not on ``text`` with a start position: a lookbehind must not see before the span.
    segment = text[span.start : span.end]
    previous = span.start
    for match in boundary.finditer(segment):
        piece = _trimmed(text, previous, span.start + match.end())
        if piece is not None:
            yield piece
        previous = span.start + match.end()
    piece = _trimmed(text, previous, span.end)
    if piece is not None:
        yield piece


def _pack(
    text: str, pieces: Iterable[tuple[Span, int]], budget: int, count: TokenCounter
) -> Iterator[tuple[Span, int]]:
    """Merge consecutive pieces while the merged text stays within ``budget`` tokens.

    A run is first taken while the pieces' counts add up to at most ``budget`` and counted once as a whole
    (shortened from the end if joining made it longer); then, as joins inside a word can count fewer tokens
    than their parts, it grows one piece at a time on real counts while there is room. Counting once per run
    rather than once per piece keeps a long sentence of many words linear in its length. Pieces are read from
    the stream only as far as a run can reach (every piece counts at least one token), so the window is small.
    """
    stream = iter(pieces)
    window: list[tuple[Span, int]] = []

    def has(i: int) -> bool:
        """Whether piece ``i`` of the window exists, reading from the stream as needed."""
        while len(window) <= i:
            piece = next(stream, None)
            if piece is None:
                return False
            window.append(piece)
        return True

    while has(0):
        start = window[0][0].start
        last, total = 0, window[0][1]
        while has(last + 1) and total + window[last + 1][1] <= budget:
            last += 1
            total += window[last][1]
        n = window[0][1] if last == 0 else count([text[start : window[last][0].end]])[0]
        while n > budget and last > 0:
            last -= 1
            n = window[0][1] if last == 0 else count([text[start : window[last][0].end]])[0]
        while has(last + 1) and n + window[last + 1][1] <= budget:
            merged_n = count([text[start : window[last + 1][0].end]])[0]
            if merged_n > budget:
                break
            last, n = last + 1, merged_n
        yield Span(start, window[last][0].end), n
        del window[: last + 1]


def _split_by_characters(text: str, span: Span, budget: int, count: TokenCounter) -> list[tuple[Span, int]]:
    """Last resort for text with no spaces: the longest prefixes that fit.

    Each prefix is found by galloping (a window of ``budget`` characters, doubled while it fits) and then
    bisection inside the last window, so no count reads much more than one piece: linear in the span, where
    bisecting over the whole remaining span would be quadratic.
    """
    pieces = []
    start = span.start
    while start < span.end:
        low = start + 1  # at least one character, even if it alone is over the budget
        low_n: int | None = None
        window = max(budget, 1)
        high = span.end
        while True:
            probe = min(start + window, span.end)
            n = count([text[start:probe]])[0]
            if n <= budget:
                low, low_n = probe, n
                if probe == span.end:
                    break
                window *= 2
            else:
                high = probe - 1
                break
        while low < high:
            mid = (low + high + 1) // 2
            n = count([text[start:mid]])[0]
            if n <= budget:
                low, low_n = mid, n
            else:
                high = mid - 1
        pieces.append((Span(start, low), low_n if low_n is not None else count([text[start:low]])[0]))
        start = low
    return pieces


def _line_number(line_starts: list[int], offset: int) -> int:
    """1-based line holding character ``offset`` (``line_starts`` are the offsets where lines begin)."""
    low, high = 0, len(line_starts) - 1
    while low < high:
        mid = (low + high + 1) // 2
        if line_starts[mid] <= offset:
            low = mid
        else:
            high = mid - 1
    return low + 1


# A sentence under this share of the passage size that can share a passage with nothing after it is a fragment:
# it joins the passage before, which may then stretch to STRETCH times the size (benchmarks on SciFact train
# and the seeds questions: docs/retrieval-quality.md, "How the defaults were chosen").
FRAGMENT_SHARE = 0.25
STRETCH = 1.25


def _is_fragment(units: list[tuple[Span, int]], i: int, size: int) -> bool:
    """Whether unit ``i`` is short and could start no passage but its own: the text ends after it, or it and
    the unit after it do not fit in one passage together."""
    n = units[i][1]
    return n < FRAGMENT_SHARE * size and (i + 1 == len(units) or n + units[i + 1][1] > size)


def _code_units(
    text: str, units: list[tuple[Span, int]], code: Sequence[tuple[int, int]], size: int, count: TokenCounter
) -> list[tuple[Span, int]]:
    """``units`` with the lines of each code block that fits in ``size`` tokens merged into one unit, so no
    passage cuts it; a block too long for one passage keeps its lines as units."""
    if not code:
        return units
    merged: list[tuple[Span, int]] = []
    blocks = sorted(code)
    b = 0
    i = 0
    while i < len(units):
        span = units[i][0]
        while b < len(blocks) and blocks[b][1] <= span.start:
            b += 1
        if b == len(blocks) or not (blocks[b][0] <= span.start and span.end <= blocks[b][1]):
            merged.append(units[i])
            i += 1
            continue
        j = i
        while j + 1 < len(units) and units[j + 1][0].end <= blocks[b][1]:
            j += 1
        if j > i:
            whole = Span(span.start, units[j][0].end)
            n = count([text[whole.start : whole.end]])[0]
            if n <= size:
                merged.append((whole, n))
                i = j + 1
                continue
        merged.extend(units[i : j + 1])
        i = j + 1
    return merged


def _sections(
    units: list[tuple[Span, int]], boundaries: Sequence[int], text: str, size: int
) -> list[list[tuple[Span, int]]]:
    """``units`` grouped by the section each starts in (``boundaries`` are section starts).

    A section holding nothing but its heading line (a chapter heading right before its first sub-heading)
    joins the section after it: a heading belongs with what it introduces, never in a passage of its own.
    So does a short preamble before the first heading (front matter, a byline: under ``FRAGMENT_SHARE`` of
    ``size``), which could only stand alone as a fragment.
    """
    if not boundaries:
        return [units] if units else []
    cuts = sorted(set(boundaries))
    groups: list[list[tuple[Span, int]]] = []
    current: list[tuple[Span, int]] = []
    c = 0
    for unit in units:
        start = unit[0].start
        opened = False
        while c < len(cuts) and cuts[c] <= start:
            c += 1
            opened = True
        if opened and current:
            groups.append(current)
            current = []
        current.append(unit)
    if current:
        groups.append(current)
    joined: list[list[tuple[Span, int]]] = []
    carry: list[tuple[Span, int]] = []
    preamble = groups[0][0][0].start < cuts[0]
    if preamble and len(groups) > 1 and sum(n for _, n in groups[0]) < FRAGMENT_SHARE * size:
        carry = groups.pop(0)
    for group in groups:
        if len(group) == 1 and "\n" not in text[group[0][0].start : group[0][0].end] and group is not groups[-1]:
            carry.extend(group)  # a lone heading line: it goes with the next section
            continue
        joined.append(carry + group)
        carry = []
    if carry:
        joined.append(carry)
    return joined


def chunk_text(
    text: str,
    *,
    size: int,
    overlap: int,
    count_tokens: TokenCounter,
    limit: int | None = None,
    boundaries: Sequence[int] = (),
    code: Sequence[tuple[int, int]] = (),
    reuse: Mapping[str, Sequence[Chunk]] | None = None,
) -> list[Chunk]:
    """Pack whole sentences into passages of at most ``size`` tokens, overlapping by up to ``overlap`` tokens.

    Args:
        text: the whole document text; offsets refer to it.
        size: maximum tokens per passage as counted by ``count_tokens`` (without special tokens).
        overlap: how many tokens of trailing sentences the next passage may repeat; whole sentences only; never
            so many that the next passage would have no room for a sentence of its own.
        count_tokens: the model tokenizer's counter; sentences longer than ``size`` are cut at words.
        limit: the most tokens any passage may hold (what the model reads). With it, a fragment (a sentence under
            ``FRAGMENT_SHARE`` of ``size`` that ends the text or cannot share a passage with the sentence after
            it) joins the passage before, which may then hold up to ``min(STRETCH * size, limit)`` tokens,
            instead of standing alone. Without it, no passage holds more than ``size``.
        boundaries: offsets where a section starts (its heading line); no passage runs across one, and overlap
            never carries text over one, except that a section holding only its heading joins the next.
        code: ``(start, end)`` spans of code blocks; a block that fits in ``size`` tokens is never cut.
        reuse: the passages of pieces chunked before (``known_pieces`` of an earlier version of the text), by
            piece key: the text is then chunked piece by piece (``pieces``), each piece found here taken as it is
            (offsets shifted, lines counted again) and only the others chunked, with the same passages as a
            chunking of the whole text.

    Returns:
        Chunks in order, each a verbatim slice of ``text``, none longer than ``MAX_CHARS_PER_TOKEN`` characters per
        token it may hold (``n_tokens`` counts at least one token per that many characters).
    """
    if size < 1:
        raise ValueError("size must be at least 1")
    if overlap < 0 or overlap >= size:
        raise ValueError("overlap must be at least 0 and smaller than size")
    if reuse:
        return _chunk_by_pieces(text, size, overlap, count_tokens, limit, boundaries, code, reuse)
    stretched = size if limit is None else max(size, min(int(STRETCH * size), limit))
    # No budget below is over ``stretched``: a longer text's exact count is never needed, only that it is over.
    count_tokens = _capped_counter(count_tokens, MAX_CHARS_PER_TOKEN * stretched)
    units: list[tuple[Span, int]] = []
    for span, n in _counted(text, _iter_sentences(text), count_tokens):
        if n > size:
            units.extend(_split_long(text, span, n, size, count_tokens))
        else:
            units.append((span, n))
    units = _code_units(text, units, code, size, count_tokens)

    line_starts = [0] + [m.end() for m in _NEWLINE.finditer(text)]
    chunks: list[Chunk] = []
    for section in _sections(units, boundaries, text, size):
        _pack_section(text, section, size, overlap, stretched, count_tokens, line_starts, chunks)
    return chunks


def _pack_section(
    text: str,
    units: list[tuple[Span, int]],
    size: int,
    overlap: int,
    stretched: int,
    count_tokens: TokenCounter,
    line_starts: list[int],
    chunks: list[Chunk],
) -> None:
    """Append to ``chunks`` the passages of one section's ``units`` (see ``chunk_text``)."""
    first, previous_last = 0, -1
    while first < len(units):
        last, used = first, units[first][1]
        while last + 1 < len(units) and used + units[last + 1][1] <= size:
            last += 1
            used += units[last][1]
        filled = last
        while last + 1 < len(units) and _is_fragment(units, last + 1, size) and used + units[last + 1][1] <= stretched:
            last += 1
            used += units[last][1]
        start, end = units[first][0].start, units[last][0].end
        chunk = text[start:end]
        # Joining can tokenise differently from the parts (rarely); trust only the real count.
        n_tokens = count_tokens([chunk])[0]
        while n_tokens > (stretched if last > filled else size) and last > first:
            last -= 1
            end = units[last][0].end
            chunk = text[start:end]
            n_tokens = count_tokens([chunk])[0]
        if last <= previous_last:
            # Only repeated overlap is left (joined, the text counted more than its parts): start after it.
            first = previous_last + 1
            continue
        previous_last = last
        chunks.append(
            Chunk(
                index=len(chunks),
                start=start,
                end=end,
                line_start=_line_number(line_starts, start),
                line_end=_line_number(line_starts, end - 1),
                text=chunk,
                n_tokens=n_tokens,
            )
        )
        if last + 1 >= len(units):
            break
        # Step back over whole trailing sentences while they fit in the overlap and leave the next passage room
        # for the next sentence (else it would repeat them and nothing more), always moving forward.
        next_first, carried, following = last + 1, 0, units[last + 1][1]
        while (
            next_first - 1 > first
            and carried + units[next_first - 1][1] <= overlap
            and carried + units[next_first - 1][1] + following <= size
        ):
            next_first -= 1
            carried += units[next_first][1]
        first = next_first


@dataclass(frozen=True)
class Piece:
    """A part of a text that ``chunk_text`` packs apart from the rest (see ``pieces``): ``[start, end)``, and a key
    naming its passages: equal keys, equal passages (relative to the piece), in any text and at any offset."""

    start: int
    end: int
    key: str
    # The section boundaries and code spans inside the piece, relative to its start: what chunking it alone takes.
    boundaries: tuple[int, ...] = ()
    code: tuple[tuple[int, int], ...] = ()


def pieces(
    text: str,
    *,
    size: int,
    overlap: int,
    limit: int | None,
    boundaries: Sequence[int] = (),
    code: Sequence[tuple[int, int]] = (),
) -> list[Piece]:
    """``text`` cut where ``chunk_text`` shares nothing across the cut, so that chunking each piece alone (with the
    boundaries and code spans inside it) gives the passages of the whole text there.

    A cut is made only at a section boundary that starts a line (sentences are cut at every line start, and no
    sentence end looks past a newline), outside every code block, after a section of at least two non-blank lines
    (so not a lone heading line, which joins the section after it), and never at the first boundary when text
    comes before it (a short preamble joins the first section). Every passage then lies inside one piece.
    """
    blocks = sorted(code)
    cuts = [0]
    ordered = sorted(set(boundaries))
    for number, boundary in enumerate(ordered):
        if boundary <= 0 or boundary >= len(text) or text[boundary - 1] != "\n":
            continue
        if any(start < boundary < end for start, end in blocks):
            continue
        if number == 0:
            continue  # text before the first section is a preamble, which may join it
        # The section just before: two non-blank lines make two units at least, so it is no lone heading line.
        if sum(1 for line in text[ordered[number - 1] : boundary].split("\n") if line.strip()) < 2:
            continue
        cuts.append(boundary)
    ends = [*cuts[1:], len(text)]
    found = []
    for start, end in zip(cuts, ends):
        inner = tuple(b - start for b in ordered if start <= b < end)
        spans = tuple((a - start, b - start) for a, b in blocks if start <= a and b <= end)
        found.append(Piece(start, end, _piece_key(text[start:end], inner, spans, size, overlap, limit), inner, spans))
    return found


def _piece_key(
    text: str, boundaries: Sequence[int], code: Sequence[tuple[int, int]], size: int, overlap: int, limit: int | None
) -> str:
    """What a piece's passages depend on, hashed: its text, its boundaries and code spans, the packing limits."""
    digest = hashlib.sha256(repr((list(boundaries), list(code), size, overlap, limit)).encode())
    digest.update(b"\0" + text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def known_pieces(
    text: str,
    chunks: Sequence[Chunk],
    *,
    size: int,
    overlap: int,
    limit: int | None,
    boundaries: Sequence[int] = (),
    code: Sequence[tuple[int, int]] = (),
) -> dict[str, list[Chunk]]:
    """The passages ``chunk_text`` gave ``text`` (``chunks``, with these arguments), by the key of the piece holding
    them and relative to it, for a later version of the text to reuse (``chunk_text(reuse=...)``); empty when a
    passage lies across pieces (which ``pieces`` rules out for passages chunked with these arguments)."""
    by_piece: dict[int, list[Chunk]] = {}
    cut = pieces(text, size=size, overlap=overlap, limit=limit, boundaries=boundaries, code=code)
    starts = [piece.start for piece in cut]
    for chunk in chunks:
        at = bisect_left(starts, chunk.start + 1) - 1
        piece = cut[at]
        if chunk.end > piece.end:
            return {}
        by_piece.setdefault(at, []).append(
            replace(chunk, start=chunk.start - piece.start, end=chunk.end - piece.start, section=None, anchor=None)
        )
    found: dict[str, list[Chunk]] = {}
    for at, relative in by_piece.items():
        # Two pieces of the same text (a section repeated in one file) have the same key and the same passages:
        # the first one's stand for both, rather than both lists run together.
        found.setdefault(cut[at].key, relative)
    return found


def _chunk_by_pieces(
    text: str,
    size: int,
    overlap: int,
    count_tokens: TokenCounter,
    limit: int | None,
    boundaries: Sequence[int],
    code: Sequence[tuple[int, int]],
    reuse: Mapping[str, Sequence[Chunk]],
) -> list[Chunk]:
    """``chunk_text`` piece by piece, taking the passages of each piece ``reuse`` knows (see ``chunk_text``)."""
    line_starts = [0] + [m.end() for m in _NEWLINE.finditer(text)]
    chunks: list[Chunk] = []
    for piece in pieces(text, size=size, overlap=overlap, limit=limit, boundaries=boundaries, code=code):
        relative = reuse.get(piece.key)
        if relative is None:  # chunk_text sorts a piece's boundaries and code spans itself, as pieces did
            relative = chunk_text(
                text[piece.start : piece.end],
                size=size,
                overlap=overlap,
                count_tokens=count_tokens,
                limit=limit,
                boundaries=piece.boundaries,
                code=piece.code,
            )
        for chunk in relative:
            start, end = piece.start + chunk.start, piece.start + chunk.end
            chunks.append(
                Chunk(
                    index=len(chunks),
                    start=start,
                    end=end,
                    line_start=_line_number(line_starts, start),
                    line_end=_line_number(line_starts, end - 1),
                    text=text[start:end],
                    n_tokens=chunk.n_tokens,
                )
            )
    return chunks
