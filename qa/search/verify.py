"""Checking a quote: is a text (a quote, or each sentence of a paragraph) in the documents, and exactly where?

Each piece gets one verdict: ``exact`` (it occurs, folded as ``qa.text.quotes`` folds; every place found is cited),
``approximate`` (the closest span is very similar; the differing words are marked), ``supported`` (not quoted, but
a passage's sentence states it, by a calibrated support score) or ``not_found``. Candidates come from the service
core's interfaces only: BM25 over the quote's own words (its rare words find the passage it comes from) and, for
support, the vector search; the alignment then runs over the candidates' documents around them, so a quote across
a passage boundary is found whole. No separate quote index: docs/verify.md says why.
"""

from __future__ import annotations

import bisect
import math
import re
import time
from dataclasses import dataclass, field

import numpy as np

from qa.errors import IndexCorrupt, InvalidRequest
from qa.index.store import StoredChunk, StoredDocument
from qa.search.confidence import term_coverage
from qa.search.filters import SearchFilter
from qa.search.keyword import STOPWORDS, query_terms
from qa.search.service import Citation, Highlight, SearchService
from qa.text.chunking import split_sentences
from qa.text.quotes import (
    Alignment,
    Difference,
    Folded,
    clean_quote,
    closest_span,
    differing_words,
    exact_places,
    fold,
    rough_place,
)

VERDICTS = ("exact", "approximate", "supported", "not_found")
# A text to check is a quote or a paragraph, not a document.
MAX_TEXT_CHARS = 10_000
MAX_PIECES = 50
# Places listed for one exact quote (a boilerplate sentence can occur in hundreds of documents).
MAX_PLACES = 10
# Passages the quote's words bring as candidates; identical copies of a passage rank together, so the top ones
# hold its places.
KEYWORD_CANDIDATES = 20
# Words of a quote asked of the keyword index (the longest: see keyword_query).
KEYWORD_QUERY_WORDS = 12
# Passages each retriever adds when looking for a passage that states a sentence (the vector search's for its
# meaning, the keyword search's for its words).
DENSE_CANDIDATES = 20
# A text of at most this many sentences is first looked for whole (a quotation of a few sentences is one place).
WHOLE_SENTENCES = 3
# The closest span is an approximate quote from this similarity up (Indel similarity of the folded,
# lower-cased texts): tuned by benchmarks/verify_quotes.py (docs/verify.md).
APPROXIMATE_MIN_SIMILARITY = 0.73
# The longest folded text aligned as a possible approximate quote. Aligning costs more than the square of the
# text's length (rapidfuzz's partial alignment over windows as long again either way), so a text at the 10,000
# characters allowed would hold a worker for minutes; a longer text is still found when it is exact, and judged by
# support when it is not. Several passages long, it is past what "a quote with a word changed" means.
MAX_ALIGNED_CHARS = 1_500
# The longest run of changed words a text of several sentences may have and still be one approximate quote.
MAX_CHANGED_RUN = 3
# Names and numbers of a text that its supporting sentence lacks are counted up to this many: one invented name or
# number is strong evidence, a second confirms it, and a cap keeps a text full of names from deciding alone (two
# did best on the tuning half: benchmarks/verify_quotes.py).
MAX_UNMATCHED = 2
# What the support score weighs, in the order of SupportModel.weights: the best sentence's cosine with the text
# and the share of the text's content words it holds, its passage's cosine, and how many of the text's names and
# numbers the sentence lacks (see Evidence).
SUPPORT_FEATURES = ("cosine", "coverage", "passage_cosine", "unmatched")


@dataclass(frozen=True)
class SupportModel:
    """A logistic model over the features of a text's best supporting sentence (``SUPPORT_FEATURES``), calibrated
    the way ``answerable`` is; fitted by benchmarks/verify_quotes.py."""

    weights: tuple[float, ...]
    bias: float
    threshold: float = 0.5

    def confidence(self, features: dict[str, float]) -> float:
        """Probability in [0, 1] that a passage states the text."""
        z = self.bias + sum(w * features[name] for w, name in zip(self.weights, SUPPORT_FEATURES))
        return 1.0 / (1.0 + math.exp(-z))

    def supports(self, confidence: float) -> bool:
        """Whether the score is high enough to call the text ``supported``."""
        return confidence >= self.threshold


# Fitted by benchmarks/verify_quotes.py on the tuning half of the labelled set (docs/verify.md).
SUPPORT_MODEL = SupportModel(weights=(4.96, 0.655, 4.179, -1.615), bias=-4.337)


_CONTROL_RUN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]+")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_SINGLE_NEWLINE = re.compile(r"(?<!\n)\n(?!\n)")
_GLOB_SPECIAL = re.compile(r"([*?\[])")


@dataclass(frozen=True)
class GivenCitation:
    """The citation a quote came with: a document id, and optionally a span ``start:end`` or a ``page``."""

    source: str
    start: int | None = None
    end: int | None = None
    page: int | None = None

    @classmethod
    def of(cls, source: object, start: object = None, end: object = None, page: object = None) -> GivenCitation:
        """A checked citation.

        Raises:
            InvalidRequest: ``source`` is not a non-empty string, a number is not a whole number, only one of
                ``start`` and ``end`` is given, or ``start > end``.
        """
        if not isinstance(source, str) or not _CONTROL_RUN.sub(" ", source).strip():
            raise InvalidRequest("citation source must be a non-empty document id")
        if _LONE_SURROGATE.search(source):
            raise InvalidRequest("citation source must be valid Unicode text (it holds an unpaired surrogate)")
        start_at, end_at, page_number = _whole("start", start), _whole("end", end), _whole("page", page)
        if (start_at is None) != (end_at is None):
            raise InvalidRequest("citation start and end go together: give both or neither")
        if start_at is not None and end_at is not None and start_at > end_at:
            raise InvalidRequest(f"citation start ({start_at}) is after its end ({end_at})")
        if page_number is not None and page_number < 1:
            raise InvalidRequest(f"citation page must be 1 or more, got {page_number}")
        return cls(source.strip(), start_at, end_at, page_number)

    def as_dict(self) -> dict:
        """Plain data for JSON."""
        return {"source": self.source, "start": self.start, "end": self.end, "page": self.page}


def _whole(name: str, value: object) -> int | None:
    """A citation's number as given, or None when not given.

    Raises:
        InvalidRequest: it is not a whole number of at least 0 (a bool is not a number here).
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequest(f"citation {name} must be a whole number of at least 0, got {value!r}")
    return value


@dataclass(frozen=True)
class Match:
    """A place that holds the text: ``text`` is ``document_text[citation.start:citation.end]``; the citation's
    ``highlight`` is the quoted span (exact, approximate) or the supporting sentence (supported)."""

    text: str
    citation: Citation
    score: float

    def as_dict(self) -> dict:
        """Plain data for JSON."""
        return {"text": self.text, "score": self.score, "citation": self.citation.as_dict()}


@dataclass(frozen=True)
class CitationCheck:
    """Whether a given citation points where the text is: ``correct``, and ``message`` saying where it really is."""

    given: GivenCitation
    correct: bool
    message: str
    found_at: Citation | None

    def as_dict(self) -> dict:
        """Plain data for JSON."""
        return {
            "given": self.given.as_dict(),
            "correct": self.correct,
            "message": self.message,
            "found_at": self.found_at.as_dict() if self.found_at else None,
        }


@dataclass(frozen=True)
class Piece:
    """The verdict on one piece of the text (the whole quote, or one sentence): ``text[start:end]`` of the input.

    ``score`` is 1 for ``exact``, the similarity for ``approximate``, and the support score (a calibrated
    probability) for ``supported`` and ``not_found``.
    """

    text: str
    start: int
    end: int
    verdict: str
    score: float
    matches: list[Match]
    differences: list[Difference] = field(default_factory=list)
    citation_check: CitationCheck | None = None

    def as_dict(self) -> dict:
        """Plain data for JSON."""
        return {
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "verdict": self.verdict,
            "score": self.score,
            "matches": [m.as_dict() for m in self.matches],
            "differences": [d.as_dict() for d in self.differences],
            "citation_check": self.citation_check.as_dict() if self.citation_check else None,
        }


@dataclass(frozen=True)
class Verification:
    """The answer to one check; ``verdict`` is the weakest of its pieces' (exact > approximate > supported >
    not_found), so one line says whether all of the text holds."""

    text: str
    verdict: str
    pieces: list[Piece]
    took_ms: float

    def as_dict(self) -> dict:
        """Plain data for JSON: the shape of POST /verify, ``qa verify --json`` and the MCP tool."""
        return {
            "text": self.text,
            "verdict": self.verdict,
            "pieces": [p.as_dict() for p in self.pieces],
            "took_ms": self.took_ms,
        }


def check_text(text: object) -> str:
    """The text made safe to check: control characters become spaces, lone surrogates U+FFFD, ends stripped.

    Raises:
        InvalidRequest: not a string, empty, or over ``MAX_TEXT_CHARS``.
    """
    if not isinstance(text, str):
        raise InvalidRequest("text must be a string")
    cleaned = _LONE_SURROGATE.sub("\ufffd", _CONTROL_RUN.sub(" ", text)).strip()
    if not cleaned:
        raise InvalidRequest("text to check is empty")
    if len(cleaned) > MAX_TEXT_CHARS:
        raise InvalidRequest(f"text to check is {len(cleaned)} characters long; the limit is {MAX_TEXT_CHARS}")
    return cleaned


def keyword_query(quote: str) -> str:
    """The words of a quote the keyword index is asked for: its ``KEYWORD_QUERY_WORDS`` longest distinct words.

    Long words are mostly rare ones, and rare words carry a passage's BM25 score; asking for every word of a long
    quote costs time in proportion to the postings of its common words and finds the same passage.
    """
    words = list(dict.fromkeys(query_terms(quote)))
    if len(words) <= KEYWORD_QUERY_WORDS:
        return " ".join(words)
    longest = set(sorted(words, key=len, reverse=True)[:KEYWORD_QUERY_WORDS])
    return " ".join(w for w in words if w in longest)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """The sentences of a pasted text as ``(start, end)``; a single line break (a wrapped line) does not end one."""
    unwrapped = _SINGLE_NEWLINE.sub(" ", text)
    return [(span.start, span.end) for span in split_sentences(unwrapped)]


class Verifier:
    """Checks quotes against the documents of one search service (one opened index)."""

    def __init__(
        self,
        service: SearchService,
        *,
        min_similarity: float = APPROXIMATE_MIN_SIMILARITY,
        support: SupportModel = SUPPORT_MODEL,
    ) -> None:
        self.service = service
        self.min_similarity = min_similarity
        self.support = support

    def verify(self, text: str, citation: GivenCitation | None = None) -> Verification:
        """The verdict on ``text``: whole when it is found so (or a single sentence), else sentence by sentence.

        Raises:
            InvalidRequest: the text is empty or too long, or holds more than ``MAX_PIECES`` sentences.
        """
        started = time.perf_counter()
        text = check_text(text)
        request = _Request(self.service)
        spans = sentence_spans(text) or [(0, len(text))]
        if len(spans) > MAX_PIECES:
            raise InvalidRequest(f"text holds {len(spans)} sentences; the limit is {MAX_PIECES}")
        pieces: list[Piece | None] = []
        if len(spans) <= WHOLE_SENTENCES:
            whole = self._quoted(request, text, 0, len(text), citation)
            # Several sentences pass whole only as a quote with small edits: a run of changed words is a sentence
            # of its own, judged alone.
            if len(spans) > 1 and whole is not None and _longest_change(whole) > MAX_CHANGED_RUN:
                whole = None
            if whole is not None or len(spans) == 1:
                pieces = [whole]
                spans = [(0, len(text))]
        if not pieces:
            pieces = [self._quoted(request, text[s:e], s, e, citation) for s, e in spans]
        unresolved = [i for i, piece in enumerate(pieces) if piece is None]
        if unresolved:
            supported = self._supported(request, [(text[spans[i][0] : spans[i][1]], *spans[i]) for i in unresolved])
            for i, piece in zip(unresolved, supported):
                pieces[i] = piece
        judged = [piece for piece in pieces if piece is not None]
        assert len(judged) == len(pieces)  # _supported judged every piece left unresolved
        if citation is not None:
            judged = [_with_check(request, piece, citation) for piece in judged]
        verdict = max((piece.verdict for piece in judged), key=VERDICTS.index)
        return Verification(text, verdict, judged, round((time.perf_counter() - started) * 1000, 3))

    def _quoted(
        self, request: _Request, piece: str, start: int, end: int, citation: GivenCitation | None
    ) -> Piece | None:
        """The piece as an exact or approximate quote, or None when it is neither (support is looked at later)."""
        quote = clean_quote(piece)
        if not re.search(r"\w", quote):
            return Piece(piece, start, end, "not_found", 0.0, [])
        windows = request.windows(quote, citation)
        places: list[tuple[str, int, int]] = []
        for doc_id, window in windows:
            places.extend((doc_id, s, e) for s, e in exact_places(quote, window) if (doc_id, s, e) not in places)
        if places:
            matches = [request.match(doc_id, s, e, 1.0) for doc_id, s, e in places[:MAX_PLACES]]
            return Piece(piece, start, end, "exact", 1.0, matches)
        best = _closest(quote, windows)
        if best is None or best[1].similarity < self.min_similarity:
            request.closest[start] = best[1].similarity if best else 0.0
            return None
        doc_id, alignment, window = best
        document = request.found_document(doc_id)
        base = int(window.origin[0]) if len(window.origin) else 0
        original = document.text[base : int(window.origin[-1]) + 1]
        differences = differing_words(quote, window, original, alignment, base)
        match = request.match(doc_id, alignment.start, alignment.end, alignment.similarity)
        return Piece(piece, start, end, "approximate", alignment.similarity, [match], differences)

    def _supported(self, request: _Request, pieces: list[tuple[str, int, int]]) -> list[Piece]:
        """Each piece as ``supported`` by its best sentence, or ``not_found``; the pieces are embedded together."""
        results = []
        for (text, start, end), evidence in zip(pieces, self.support_evidence(request, [t for t, _, _ in pieces])):
            if evidence is None:
                results.append(Piece(text, start, end, "not_found", 0.0, []))
                continue
            score = round(self.support.confidence(evidence.features()), 4)
            if not self.support.supports(score):
                results.append(Piece(text, start, end, "not_found", score, []))
                continue
            citation = request.passage_citation(evidence.chunk, evidence.sentence)
            results.append(Piece(text, start, end, "supported", score, [Match(evidence.chunk.text, citation, score)]))
        return results

    def support_evidence(self, request: _Request, texts: list[str]) -> list[Evidence | None]:
        """For each text, the passage sentence closest in meaning among the vector search's and the keyword
        search's candidates, with the features the support score weighs (None when no passage has sentences)."""
        service = self.service
        queries = service.dense.encoder.encode(texts)
        _, dense_ids = service.dense.vectors.search(np.asarray(queries), DENSE_CANDIDATES)
        found: list[Evidence | None] = []
        for text, query, ids in zip(texts, queries, dense_ids):
            keyword = request.keyword_ids.get(clean_quote(text))
            if keyword is None:
                keyword = [i for i, _ in service.keyword.retrieve(keyword_query(clean_quote(text)), DENSE_CANDIDATES)]
            candidates = list(dict.fromkeys([int(i) for i in ids if i != -1] + keyword))
            best = request.best_sentence(query, candidates)
            if best is None:
                found.append(None)
                continue
            chunk, sentence, cosine = best
            sentence_text = request.found_document(chunk.doc_id).text[sentence[0] : sentence[1]]
            [passage] = service.dense.vectors.reconstruct([chunk.id])
            coverage = term_coverage(query_terms(text), sentence_text)
            unmatched = min(len(unmatched_specifics(text, sentence_text)), MAX_UNMATCHED)
            found.append(Evidence(chunk, sentence, cosine, coverage, float(np.dot(passage, query)), unmatched))
        return found

    def features(self, text: str) -> dict:
        """What the verdict on ``text`` as one piece rests on, before any threshold (for tuning): whether it is
        exact, the closest span's similarity, and the support features of its best sentence (``SUPPORT_FEATURES``)."""
        request = _Request(self.service)
        quote = clean_quote(check_text(text))
        windows = request.windows(quote, None)
        exact = any(exact_places(quote, window) for _, window in windows)
        closest = _closest(quote, windows)
        [evidence] = self.support_evidence(request, [text])
        support = evidence.features() if evidence else dict.fromkeys(SUPPORT_FEATURES, 0.0)
        return {"exact": exact, "similarity": closest[1].similarity if closest else 0.0, **support}


@dataclass(frozen=True)
class Evidence:
    """The passage sentence closest in meaning to a text, and what the support score weighs about it: the
    sentence's document span, its cosine with the text, the share of the text's content words it holds, the whole
    passage's cosine (a sentence read out of its passage can match by accident), and how many of the text's names
    and numbers the sentence lacks (at most ``MAX_UNMATCHED``)."""

    chunk: StoredChunk
    sentence: tuple[int, int]
    cosine: float
    coverage: float
    passage_cosine: float
    unmatched: int

    def features(self) -> dict[str, float]:
        """The features by name (``SUPPORT_FEATURES``)."""
        return {name: float(getattr(self, name)) for name in SUPPORT_FEATURES}


# Number words are compared as the digits they stand for ("three" matches "3", "nineteenth" "19th"); "one" is
# left out, as it is mostly a pronoun or an article ("one should", "one key route").
_NUMBER_WORDS = {
    word: str(value)
    for value, words in enumerate(
        [
            "zero",
            "first",
            "two second twice",
            "three third",
            "four fourth",
            "five fifth",
            "six sixth",
            "seven seventh",
            "eight eighth",
            "nine ninth",
            "ten tenth",
            "eleven eleventh",
            "twelve twelfth",
            "thirteen thirteenth",
            "fourteen fourteenth",
            "fifteen fifteenth",
            "sixteen sixteenth",
            "seventeen seventeenth",
            "eighteen eighteenth",
            "nineteen nineteenth",
            "twenty twentieth",
        ]
    )
    for word in words.split()
}
_NUMBER_WORDS.update(
    {w: str(v) for v, w in ((30, "thirty"), (40, "forty"), (50, "fifty"), (60, "sixty"), (70, "seventy"))}
)
_NUMBER_WORDS.update({w: str(v) for v, w in ((80, "eighty"), (90, "ninety"), (100, "hundred"), (1000, "thousand"))})
_NUMBER_WORDS.update({"million": "1000000", "billion": "1000000000"})
# A number standing alone (not the digits of a name like "Rpl23" or "H2A"), with its thousands separators or
# decimal point ("200,000", "2.5") and an ordinal's suffix ("19th").
_NUMBER = re.compile(r"(?<!\w)\d+(?:[.,]\d+)*(?:st|nd|rd|th)?(?![^\W_])")
_SPECIFIC_WORD = re.compile(r"\w+")
# An abbreviation a text defines itself, "(WFR)" after "weighed food records": not a name its source must hold.
_DEFINED_ABBREVIATION = re.compile(r"\(\s*[A-Z][A-Z0-9]*s?\s*\)")
# What may stand between a sentence's end and its next word.
_OPENERS = " \t\n\"'\u201c\u2018(["


def specifics(text: str) -> set[str]:
    """The names and numbers of a text, folded for comparison: capitalised words of two or more characters that
    are not stop words (lower case; a sentence's first word is capitalised anyway, so it is left out, and so is an
    abbreviation the text defines in brackets), and numbers as digits without separators or ordinal suffixes
    (number words too)."""
    found = {_digits(m.group()) for m in _NUMBER.finditer(text)}
    # Numbers and defined abbreviations are blanked out at their own length, so a word's offset is its offset
    # in ``text``.
    blanked = _NUMBER.sub(_blank, _DEFINED_ABBREVIATION.sub(_blank, text))
    for match in _SPECIFIC_WORD.finditer(blanked):
        word, lower = match.group(), match.group().lower()
        if lower in _NUMBER_WORDS:
            found.add(_NUMBER_WORDS[lower])
        elif (
            len(word) > 1 and word[0].isupper() and lower not in STOPWORDS and not _starts_sentence(text, match.start())
        ):
            found.add(lower)
    return found


def _blank(match: re.Match) -> str:
    """Spaces as long as the match (offsets after it stay where they were)."""
    return " " * len(match.group())


def _starts_sentence(text: str, at: int) -> bool:
    """Whether the word at ``at`` begins the text or a sentence (quotes and brackets before it aside)."""
    before = text[max(0, at - 16) : at].rstrip(_OPENERS)
    return before[-1:] in ("", ".", "!", "?") and (bool(before) or at <= 16)


def unmatched_specifics(text: str, passage: str) -> set[str]:
    """The names and numbers of ``text`` that ``passage`` does not hold (as a name, a number or a number word):
    an invented name or number is what an embedding does not see."""
    wanted = specifics(text)
    if not wanted:
        return set()
    held = {_digits(m.group()) for m in _NUMBER.finditer(passage)}
    for word in _SPECIFIC_WORD.findall(_NUMBER.sub(" ", passage)):
        lower = word.lower()
        held.add(_NUMBER_WORDS.get(lower, lower))
    return wanted - held


def _digits(number: str) -> str:
    """``200,000`` -> ``200000``, ``19th`` -> ``19``, ``06`` -> ``6`` (a decimal point is kept: ``2.5``)."""
    number = re.sub(r",(?=\d{3}\b)", "", re.sub(r"(st|nd|rd|th)$", "", number))
    # Leading zeros stripped as text: int() refuses a pasted number of thousands of digits.
    return number.lstrip("0") or "0" if number.isdecimal() else number


class _Request:
    """What one verification has read: documents, their passages, and the candidates found per quote."""

    def __init__(self, service: SearchService) -> None:
        self.service = service
        self._documents: dict[str, StoredDocument | None] = {}
        self._chunks_of: dict[str, list[StoredChunk]] = {}
        self._chunks: dict[int, StoredChunk] = {}
        self.keyword_ids: dict[str, list[int]] = {}
        self.closest: dict[int, float] = {}

    def document(self, doc_id: str) -> StoredDocument | None:
        """A document by id or alias (None if there is none), read once per request."""
        if doc_id not in self._documents:
            self._documents[doc_id] = self.service.store.document(doc_id)
        return self._documents[doc_id]

    def found_document(self, doc_id: str) -> StoredDocument:
        """The document of a passage or window found in the store (``document``, which cannot be None for it).

        Raises:
            IndexCorrupt: the store holds a passage of a document it does not hold.
        """
        document = self.document(doc_id)
        if document is None:
            raise IndexCorrupt(f"the index holds passages of {doc_id!r} but not the document: rebuild it")
        return document

    def windows(self, quote: str, citation: GivenCitation | None) -> list[tuple[str, Folded]]:
        """The folded stretches of text to look for ``quote`` in: around each passage its words rank highest
        (widened by the quote's length either way, so a quote crossing into the next passage is whole), and
        around the given citation."""
        ranked = self.service.keyword.retrieve(keyword_query(quote), KEYWORD_CANDIDATES)
        ids = [chunk_id for chunk_id, _ in ranked]
        self.keyword_ids[quote] = ids[:DENSE_CANDIDATES]
        missing = [i for i in ids if i not in self._chunks]
        if missing:
            self._chunks.update(self.service.store.chunks(missing))
        reach = len(quote) + 64
        spans: dict[str, list[tuple[int, int]]] = {}
        for chunk_id in ids:
            chunk = self._chunks.get(chunk_id)
            if chunk is not None:
                spans.setdefault(chunk.doc_id, []).append((chunk.start - reach, chunk.end + reach))
        if citation is not None:
            document = self.document(citation.source)
            if document is not None:
                spans.setdefault(document.doc_id, []).insert(0, _cited_span(document, citation, reach))
        windows = []
        for doc_id, wanted in spans.items():
            text = self.found_document(doc_id).text
            for start, end in _merged(wanted, len(text)):
                windows.append((doc_id, fold(text[start:end], base=start)))
        return windows

    def chunks_of(self, doc_id: str) -> list[StoredChunk]:
        """Every passage of a document, by start offset (read through the store's source filter)."""
        if doc_id not in self._chunks_of:
            glob = _GLOB_SPECIAL.sub(r"[\1]", doc_id)
            ids = self.service.store.allowed_chunks(SearchFilter(source=glob)).tolist()
            found = self.service.store.chunks(ids)
            self._chunks_of[doc_id] = sorted(found.values(), key=lambda c: c.start)
        return self._chunks_of[doc_id]

    def passage_at(self, doc_id: str, offset: int) -> StoredChunk | None:
        """The passage holding ``offset`` (the last one starting at or before it)."""
        for chunk in self._chunks.values():
            if chunk.doc_id == doc_id and chunk.start <= offset < chunk.end:
                return chunk
        chunks = self.chunks_of(doc_id)
        at = bisect.bisect_right([c.start for c in chunks], offset) - 1
        return chunks[max(at, 0)] if chunks else None

    def match(self, doc_id: str, start: int, end: int, score: float) -> Match:
        """A found span ``start:end`` of a document as a match with its full citation."""
        document = self.found_document(doc_id)
        return Match(document.text[start:end], self.span_citation(document, start, end), score)

    def span_citation(self, document: StoredDocument, start: int, end: int) -> Citation:
        """The citation of any span of a document: lines, pages, and the section and anchor of its passage."""
        text, meta = document.text, document.metadata
        passage = self.passage_at(document.doc_id, start)
        page, page_end = _pages(document, start, end)
        return Citation(
            source=document.doc_id,
            title=meta.title,
            date=meta.date,
            date_source=meta.date_source,
            section=passage.section if passage else None,
            anchor=passage.anchor if passage else None,
            start=start,
            end=end,
            line_start=text.count("\n", 0, start) + 1,
            line_end=text.count("\n", 0, max(start, end - 1)) + 1,
            page=page,
            page_end=page_end,
            highlight=[Highlight(start, end)],
            aliases=list(document.aliases),
        )

    def passage_citation(self, chunk: StoredChunk, sentence: tuple[int, int]) -> Citation:
        """A passage's citation (as search gives it) with ``sentence`` as its one highlight."""
        document = self.document(chunk.doc_id)
        return Citation.of(chunk, [Highlight(*sentence)], list(document.aliases) if document else [])

    def best_sentence(self, query: np.ndarray, ids: list[int]) -> tuple[StoredChunk, tuple[int, int], float] | None:
        """The passage sentence closest to ``query`` among passages ``ids``: the passage, the sentence's document
        span and its cosine."""
        missing = [i for i in ids if i not in self._chunks]
        if missing:
            self._chunks.update(self.service.store.chunks(missing))
        vectors = self.service.sentences.of(ids)
        best: tuple[StoredChunk, tuple[int, int], float] | None = None
        for chunk_id, rows in vectors.items():
            chunk = self._chunks.get(chunk_id)
            if chunk is None:
                continue
            spans = split_sentences(chunk.text)
            if not len(rows) or len(rows) != len(spans):
                continue
            scores = rows @ query
            at = int(np.argmax(scores))
            if best is None or scores[at] > best[2]:
                span = spans[at]
                best = (chunk, (chunk.start + span.start, chunk.start + span.end), float(scores[at]))
        return best


# Windows aligned word by word, best first by their rough (quote-long) similarity.
_ALIGNED_WINDOWS = 3


def _closest(quote: str, windows: list[tuple[str, Folded]]) -> tuple[str, Alignment, Folded] | None:
    """The window span closest to ``quote``: ``(document id, alignment, window)``, or None without any text or
    for a quote longer than ``MAX_ALIGNED_CHARS``."""
    if len(quote) > MAX_ALIGNED_CHARS:
        return None
    rough = [(place, doc_id, window) for doc_id, window in windows if (place := rough_place(quote, window)) is not None]
    rough.sort(key=lambda found: -found[0].score)
    best = None
    for place, doc_id, window in rough[:_ALIGNED_WINDOWS]:
        alignment = closest_span(quote, window, place)
        if alignment is not None and (best is None or alignment.similarity > best[1].similarity):
            best = (doc_id, alignment, window)
    return best


def _longest_change(piece: Piece) -> int:
    """The most words on either side of any one difference of an approximate piece (0 for an exact one)."""
    return max((max(len(d.quote.split()), len(d.document.split())) for d in piece.differences), default=0)


def _cited_span(document: StoredDocument, citation: GivenCitation, reach: int) -> tuple[int, int]:
    """The stretch of a cited document to search: the cited span or page widened by ``reach``, else all of it."""
    if citation.start is not None and citation.end is not None:  # ``GivenCitation.of`` gives both or neither
        return citation.start - reach, citation.end + reach
    if citation.page is not None and document.pages and citation.page <= len(document.pages):
        pages = document.pages
        end = pages[citation.page] if citation.page < len(pages) else len(document.text)
        return pages[citation.page - 1] - reach, end + reach
    return 0, len(document.text)


def _merged(spans: list[tuple[int, int]], length: int) -> list[tuple[int, int]]:
    """Spans clipped to ``0:length`` with overlapping ones joined, in the order of their first appearance."""
    clipped = sorted((max(0, s), min(length, e)) for s, e in spans if min(length, e) > max(0, s))
    merged: list[list[int]] = []
    for start, end in clipped:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def _pages(document: StoredDocument, start: int, end: int) -> tuple[int | None, int | None]:
    """The 1-based pages holding a span's first and last characters, or None for a document without pages."""
    if not document.pages:
        return None, None
    first = bisect.bisect_right(document.pages, start)
    last = bisect.bisect_right(document.pages, max(start, end - 1))
    return max(first, 1), max(last, 1)


def _with_check(request: _Request, piece: Piece, citation: GivenCitation) -> Piece:
    """The piece with its given citation checked against where the text was found."""
    check = check_citation(request, piece, citation)
    return Piece(
        piece.text, piece.start, piece.end, piece.verdict, piece.score, piece.matches, piece.differences, check
    )


def check_citation(request: _Request, piece: Piece, citation: GivenCitation) -> CitationCheck:
    """Whether ``citation`` points where the piece was found (the quoted span, or the supporting sentence)."""
    document = request.document(citation.source)
    if document is None:
        where = _where(piece)
        return CitationCheck(
            citation, False, f"there is no document {citation.source!r} in this index" + where, _found(piece)
        )
    if citation.end is not None and citation.end > len(document.text):
        return CitationCheck(
            citation,
            False,
            f"the span {citation.start}-{citation.end} is outside {document.doc_id!r}, which has "
            f"{len(document.text)} characters" + _where(piece),
            _found(piece),
        )
    if citation.page is not None and citation.page > max(len(document.pages or ()), 1):
        pages = len(document.pages or ()) or 1
        return CitationCheck(
            citation,
            False,
            f"{document.doc_id!r} has {pages} page{'s' if pages != 1 else ''}, not {citation.page}" + _where(piece),
            _found(piece),
        )
    for match in piece.matches:
        c = match.citation
        span = c.highlight[0] if c.highlight else Highlight(c.start, c.end)
        if c.source != document.doc_id:
            continue
        if _points_at(citation, span, c):
            return CitationCheck(citation, True, f"the citation points at the text: {_describe(c, span)}", c)
    if not piece.matches:
        return CitationCheck(citation, False, "the text was not found, in the cited document or elsewhere", None)
    in_cited = [m for m in piece.matches if m.citation.source == document.doc_id]
    place = "the cited place" if in_cited else f"the cited document {document.doc_id!r}"
    # Where the text really is: in the cited document when it is there (a citation with the wrong span), else
    # the best place elsewhere.
    preferred = Piece(piece.text, piece.start, piece.end, piece.verdict, piece.score, in_cited or piece.matches)
    return CitationCheck(citation, False, f"{place} does not hold the text" + _where(preferred), _found(preferred))


def _points_at(citation: GivenCitation, span: Highlight, found: Citation) -> bool:
    """Whether a citation covers a found span: its span overlaps at least half of it, or its page holds it."""
    if citation.start is not None and citation.end is not None:  # ``GivenCitation.of`` gives both or neither
        overlap = min(citation.end, span.end) - max(citation.start, span.start)
        return overlap > 0 and overlap * 2 >= span.end - span.start
    if citation.page is not None:
        if found.page is None:
            return citation.page == 1
        return found.page <= citation.page <= (found.page_end or found.page)
    return True


def _found(piece: Piece) -> Citation | None:
    return piece.matches[0].citation if piece.matches else None


def _where(piece: Piece) -> str:
    """``; it is at ...`` naming where the text was found, or an empty string."""
    found = _found(piece)
    if found is None:
        return ""
    span = found.highlight[0] if found.highlight else Highlight(found.start, found.end)
    return f"; it is at {_describe(found, span)}"


def _describe(citation: Citation, span: Highlight) -> str:
    """``doc.md, characters 10-40, line 3, page 2``: a found span in words."""
    lines = (
        f"line {citation.line_start}"
        if citation.line_start == citation.line_end
        else f"lines {citation.line_start}-{citation.line_end}"
    )
    parts = [citation.source, f"characters {span.start}-{span.end}", lines]
    if citation.page is not None:
        parts.append(
            f"page {citation.page}"
            if citation.page_end in (None, citation.page)
            else f"pages {citation.page}-{citation.page_end}"
        )
    return ", ".join(parts)


_LABELS = {"exact": "FOUND", "approximate": "CLOSE", "supported": "SUPPORTED", "not_found": "NOT FOUND"}


def render_verification(verification: Verification) -> str:
    """The verdicts for a reader (terminal or assistant): per piece a label line, then where it is and what
    differs; control characters in document text and names are shown as escapes."""
    from qa.cli.render import citation_line, safe_line

    count = len(verification.pieces)
    blocks = [f"Verdict: {_LABELS[verification.verdict]} ({count} piece{'s' if count != 1 else ''})"]
    for number, piece in enumerate(verification.pieces, 1):
        lines = [f'{number}. {_LABELS[piece.verdict]} [{piece.score:.2f}] "{safe_line(piece.text)}"']
        for match in piece.matches:
            lines.append(f"   at {citation_line(match.citation)}")
            if piece.verdict == "supported" and match.citation.highlight:
                h = match.citation.highlight[0]
                sentence = match.text[h.start - match.citation.start : h.end - match.citation.start]
                lines.append(f'   stated as: "{safe_line(sentence)}"')
        for difference in piece.differences:
            lines.append(
                f'   differs: quote "{safe_line(difference.quote)}", document "{safe_line(difference.document)}"'
                f" (chars {difference.start}-{difference.end})"
            )
        if piece.citation_check is not None:
            mark = "correct" if piece.citation_check.correct else "WRONG"
            lines.append(f"   citation {mark}: {safe_line(piece.citation_check.message)}")
        blocks.append("\n".join(lines))
    return "\n".join(blocks)
