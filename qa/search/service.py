"""The service core: load an index once, answer questions with cited passages, serve documents."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np

from qa.config import MODES, Settings
from qa.embed.encoder import Encoder, load_encoder, model_id_for
from qa.errors import DocumentNotFound, IndexCorrupt, IndexIncompatible, InvalidRequest
from qa.index.interfaces import KeywordIndex, SentenceStore, ServiceStore
from qa.index.manifest import Manifest
from qa.index.postings import QueryTokenizer
from qa.index.sentence_vectors import SentenceVectors
from qa.index.snapshot import Snapshot, open_snapshot
from qa.index.store import StoredChunk, StoredDocument
from qa.search.confidence import DEFAULT_CALIBRATION, term_coverage
from qa.search.dense import DenseRetriever
from qa.search.duplicates import Place, group_duplicates
from qa.search.filters import SearchFilter
from qa.search.fusion import normalised_score_fusion, reciprocal_rank_fusion
from qa.search.highlight import supporting_sentences
from qa.search.keyword import STOPWORDS, KeywordRetriever, query_terms
from qa.search.rerank import Reranker, load_reranker, rerank
from qa.text.chunking import Span, split_sentences
from qa.text.cjk import fts_form

# What check_question folds away: runs of control characters, and surrogates that cannot be encoded.
_CONTROL_RUN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]+")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Keyword retrieval runs here while the calling thread embeds the question: the model call releases the GIL,
# so on a machine with another core the postings search (tokenizing in SQLite, scoring in numpy) mostly
# overlaps it. One pool per process (not per service: a reloaded index must not leave idle threads behind).
_KEYWORD_THREADS = 2
_keyword_pool: ThreadPoolExecutor | None = None
_keyword_pool_lock = threading.Lock()


T = TypeVar("T")


def _in_background(call: Callable[..., T], *args: object) -> Future[T]:
    """``call(*args)`` started on the keyword thread pool."""
    global _keyword_pool
    if _keyword_pool is None:
        with _keyword_pool_lock:
            if _keyword_pool is None:
                _keyword_pool = ThreadPoolExecutor(_KEYWORD_THREADS, thread_name_prefix="qa-keyword")
    return _keyword_pool.submit(call, *args)


# Passages whose sentence split is remembered (by chunk id; an index never changes under its service).
_SPLIT_CACHE_SIZE = 20_000
# When near-identical passages took places in the top k, rank this many times deeper once, to fill them.
_DEEPER = 4
# Keyword feedback (settings.keyword_feedback; docs/retrieval-quality.md, "Round three"): the most frequent words
# of the best first-stage passage become a second keyword query. One passage and five words were read off the
# Debian documentation questions; more passages brought in other topics' words.
_FEEDBACK_WORDS = 5
# Words of three letters or more: numbers, CJK bigrams and short tokens name too little to search for.
_FEEDBACK_WORD = re.compile(r"[^\W\d_]{3,}")
_feedback_tokenizer = QueryTokenizer()
# The section lead goes to a section's first passage only when it has this many words (read off the Debian
# documentation questions: docs/retrieval-quality.md, "Round four").
_LEAD_LEAST_WORDS = 20
_WORD = re.compile(r"\w+")


def feedback_words(question: str, passage: str, count: int = _FEEDBACK_WORDS) -> list[str]:
    """The ``count`` words most frequent in ``passage`` (by stem, stop words aside) whose stems the question
    lacks, most frequent first (ties in order of first appearance): the terms of pseudo-relevance feedback as
    RM3 weighs them for one feedback passage (its term frequencies; no IDF, which BM25 applies afterwards)."""
    words = [w.lower() for w in _FEEDBACK_WORD.findall(fts_form(passage))]
    words = [w for w in words if w not in STOPWORDS]
    if not words:
        return []
    asked = {token for tokens in _feedback_tokenizer.tokens(query_terms(question)) for token in tokens}
    stems = _feedback_tokenizer.tokens(words)
    counts: Counter[str] = Counter()
    written: dict[str, str] = {}
    for word, tokens in zip(words, stems):
        if len(tokens) != 1 or tokens[0] in asked:
            continue
        counts[tokens[0]] += 1
        written.setdefault(tokens[0], word)
    return [written[stem] for stem, _ in counts.most_common(count)]


def states_something(text: str) -> bool:
    """Whether a passage holds at least ``_LEAD_LEAST_WORDS`` words (CJK text counted in bigrams, as indexed): fewer
    make a heading alone or a one-line section ("SEE ALSO git-am(1)"), which opens its section but states no point,
    and whose few words BM25 scores high for their shortness."""
    return sum(1 for _ in islice(_WORD.finditer(fts_form(text)), _LEAD_LEAST_WORDS)) == _LEAD_LEAST_WORDS


def _with_feedback(
    keyword: list[tuple[int, float]], expanded: list[tuple[int, float]], weight: float
) -> list[tuple[int, float]]:
    """The keyword candidates with the feedback query's BM25 scores added, scaled so the feedback's best adds
    ``weight`` times the question's best score (BM25 scores of two queries are on different scales); best first,
    ties by id."""
    if not expanded:
        return keyword
    scale = weight * (keyword[0][1] if keyword else expanded[0][1]) / expanded[0][1]
    scores = dict(keyword)
    for chunk_id, score in expanded:
        scores[chunk_id] = scores.get(chunk_id, 0.0) + scale * score
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


@dataclass(frozen=True)
class Ranking:
    """The first stage of a search: ``ranked`` holds ``(chunk id, score)`` best first (higher is better; the
    mode's score: fused, cosine or BM25), ``query`` the question's unit vector, and ``cosines`` the cosines
    already known by chunk id (every dense candidate's, and in hybrid mode every keyword candidate's too)."""

    ranked: list[tuple[int, float]]
    query: np.ndarray
    cosines: dict[int, float]


@dataclass(frozen=True)
class Highlight:
    """A supporting sentence: ``document.text[start:end]``, inside the passage."""

    start: int
    end: int


@dataclass(frozen=True)
class Citation:
    """Where a passage comes from: ``document.text[start:end]`` is the passage; lines are 1-based, inclusive.

    ``page`` and ``page_end`` are the 1-based pages holding the passage's first and last characters in a paged
    document (PDF); both None for documents without pages. ``date_source`` says where ``date`` came from
    ("document", "text" or "file": see ``qa.ingest.metadata.Metadata``); ``section`` is the path of headings above the
    passage ("A › B › C") and ``anchor`` the id of the source element nearest before it (HTML), so
    ``source#anchor`` opens the page at that spot; each None where the document has none. ``aliases`` are the
    document's other paths in the corpus (files with the same bytes, indexed once under ``source``); the same
    offsets index each of them.
    """

    source: str
    title: str | None
    date: str | None
    date_source: str | None
    section: str | None
    anchor: str | None
    start: int
    end: int
    line_start: int
    line_end: int
    page: int | None
    page_end: int | None
    highlight: list[Highlight]
    aliases: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, chunk: StoredChunk, highlight: list[Highlight], aliases: list[str]) -> "Citation":
        """The citation of a stored passage, with these highlights and its document's other paths."""
        return cls(
            source=chunk.doc_id,
            title=chunk.title,
            date=chunk.date,
            date_source=chunk.date_source,
            section=chunk.section,
            anchor=chunk.anchor,
            start=chunk.start,
            end=chunk.end,
            line_start=chunk.line_start,
            line_end=chunk.line_end,
            page=chunk.page,
            page_end=chunk.page_end,
            highlight=highlight,
            aliases=aliases,
        )

    def as_dict(self) -> dict:
        """Plain data for JSON, fields in declaration order."""
        return {
            "source": self.source,
            "title": self.title,
            "date": self.date,
            "date_source": self.date_source,
            "section": self.section,
            "anchor": self.anchor,
            "start": self.start,
            "end": self.end,
            "line_start": self.line_start,
            "line_end": self.line_end,
            "page": self.page,
            "page_end": self.page_end,
            "highlight": [{"start": h.start, "end": h.end} for h in self.highlight],
            "aliases": list(self.aliases),
        }


@dataclass(frozen=True)
class Hit:
    """One ranked passage; ``duplicates`` are the other places whose passage repeats this one's text (see
    :mod:`qa.search.duplicates`), collapsed into this result so they do not take the places of other answers."""

    rank: int
    score: float
    text: str
    citation: Citation
    duplicates: list[Place] = field(default_factory=list)

    def as_dict(self) -> dict:
        """Plain data for JSON, fields in declaration order."""
        return {
            "rank": self.rank,
            "score": self.score,
            "text": self.text,
            "citation": self.citation.as_dict(),
            "duplicates": [place.as_dict() for place in self.duplicates],
        }


@dataclass(frozen=True)
class Answer:
    """The response to one question; ``as_dict`` is the JSON shape shared by HTTP and `qa ask --json`.

    ``answerable`` is False when the best passage probably does not answer the question (results are still
    returned); ``confidence`` is the calibrated probability behind that call. ``excluded_undated`` counts the
    documents a date filter left out only because they have no date (0 without a date filter).
    """

    question: str
    mode: str
    answerable: bool
    confidence: float
    results: list[Hit]
    took_ms: float
    excluded_undated: int = 0

    def as_dict(self) -> dict:
        """Plain data for JSON: what ``dataclasses.asdict`` gives, built directly (it deep-copies every value)."""
        return {
            "question": self.question,
            "mode": self.mode,
            "answerable": self.answerable,
            "confidence": self.confidence,
            "results": [hit.as_dict() for hit in self.results],
            "took_ms": self.took_ms,
            "excluded_undated": self.excluded_undated,
        }


class SearchService:
    """An opened index plus its model; one per process, shared by every request."""

    # Set by ``open`` (and by ``ShardedService``): what changes when the index is rebuilt (see ``qa.search.reload``).
    identity: tuple

    def __init__(
        self,
        settings: Settings,
        manifest: Manifest,
        store: ServiceStore,
        dense: DenseRetriever,
        reranker: Reranker | None = None,
    ) -> None:
        self.settings = settings
        self.reranker = reranker
        self.manifest = manifest
        self.store = store
        self.dense = dense
        self.keyword: KeywordIndex = KeywordRetriever(
            store, context_weight=settings.context_weight, text_weight=settings.text_weight
        )
        self.sentences: SentenceStore = SentenceVectors(store, manifest.dimension)
        self._splits: dict[int, tuple[list[Span], list[str]]] = {}
        self._stating: dict[int, bool] = {}
        self.calibration = DEFAULT_CALIBRATION

    @classmethod
    def open(cls, settings: Settings, encoder: Encoder | None = None) -> "SearchService":
        """Load the index at ``settings.index_dir`` and the model it was built with.

        Args:
            encoder: an already loaded model to use instead of loading one (it must match the index).

        Raises:
            IndexNotFound, IndexIncompatible, IndexCorrupt, ModelError: the index (or the re-ranking model named
                by ``settings.rerank``) cannot be used as asked.
        """
        index_dir = Path(settings.index_dir)
        # Manifest, vectors and store from one build, even if a rebuild swaps the directory meanwhile.
        snapshot = open_snapshot(index_dir)
        try:
            service = cls._from_snapshot(settings, index_dir, snapshot, encoder)
        except BaseException:
            snapshot.store.close()
            raise
        service.identity = snapshot.identity
        return service

    @classmethod
    def _from_snapshot(
        cls, settings: Settings, index_dir: Path, snapshot: Snapshot, encoder: Encoder | None
    ) -> "SearchService":
        """The service over an opened snapshot, with the model it was built with (checked against it)."""
        manifest, vectors = snapshot.manifest, snapshot.vectors
        if settings.model is not None and model_id_for(settings.model) != manifest.model:
            raise IndexIncompatible(
                f"index at {index_dir} was built with model {manifest.model!r}, but model {settings.model!r} was "
                f"requested: query it with --model {manifest.model} (or no --model), or rebuild it"
            )
        precision = manifest.precision
        # Questions are embedded at the precision the index was embedded at.
        encoder = encoder or load_encoder(
            manifest.model, settings.encoder, precision=precision, cache_dir=settings.cache_dir
        )
        if encoder.model_id != manifest.model:
            raise IndexIncompatible(f"index at {index_dir} needs model {manifest.model!r}, got {encoder.model_id!r}")
        if encoder.precision != precision:
            raise IndexIncompatible(
                f"index at {index_dir} was embedded at {precision} precision, but the {encoder.backend} encoder "
                f"runs at {encoder.precision}: rebuild the index or choose another encoder"
            )
        if encoder.dimension != manifest.dimension:
            raise IndexIncompatible(
                f"index at {index_dir} holds {manifest.dimension}-dimensional vectors but model "
                f"{encoder.model_id!r} produces {encoder.dimension}: rebuild the index"
            )
        if vectors.dimension != manifest.dimension or len(vectors) != manifest.counts.get("chunks"):
            raise IndexCorrupt(
                f"vector file in {index_dir} does not match its manifest "
                f"({len(vectors)} vectors of {vectors.dimension} dims, expected {manifest.counts.get('chunks')} "
                f"of {manifest.dimension}): rebuild it with `qa index`"
            )
        reranker = load_reranker(settings.rerank) if settings.rerank else None
        return cls(settings, manifest, snapshot.store, DenseRetriever(encoder, vectors), reranker)

    def close(self) -> None:
        """Close the index files (the store's connection); the service must not be used afterwards."""
        close = getattr(self.store, "close", None)
        if close is not None:
            close()

    def check_question(self, question: object) -> str:
        """The question made safe to search and echo, with surrounding whitespace removed.

        Control characters (C0 except tab, newline and carriage return; DEL; C1) are not text a person means
        to ask: each run of them becomes one space, so ``what\\x00is`` still reads as two words and nothing
        like a terminal escape is echoed back. Lone surrogates (possible in JSON ``"\\ud800"`` escapes, but
        not encodable, so the tokenizer and SQLite fail on them) become U+FFFD. Everything else, including
        format characters such as bidirectional marks and zero-width joiners, is kept as written.

        Raises:
            InvalidRequest: not a string, empty (or only control characters), or longer than the limit.
        """
        if not isinstance(question, str):
            raise InvalidRequest("question must be a string")
        cleaned = _LONE_SURROGATE.sub("\ufffd", _CONTROL_RUN.sub(" ", question)).strip()
        if not cleaned:
            raise InvalidRequest("question is empty")
        limit = self.settings.max_question_chars
        if len(cleaned) > limit:
            raise InvalidRequest(f"question is {len(cleaned)} characters long; the limit is {limit}")
        return cleaned

    def check_top_k(self, top_k: object) -> int:
        """``top_k`` if it is a whole number in range.

        Raises:
            InvalidRequest: out of range or not an integer.
        """
        limit = self.settings.max_top_k
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or not 1 <= top_k <= limit:
            raise InvalidRequest(f"top_k must be a whole number from 1 to {limit}, got {top_k!r}")
        return int(top_k)

    def check_mode(self, mode: object) -> str:
        """``mode`` if it names a retrieval mode.

        Raises:
            InvalidRequest: an unknown mode.
        """
        if mode not in MODES:
            raise InvalidRequest(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        return str(mode)

    def search(
        self,
        question: str,
        top_k: int | None = None,
        *,
        mode: str | None = None,
        search_filter: SearchFilter | None = None,
        highlights: bool = True,
    ) -> Answer:
        """The ``top_k`` passages that best answer ``question``, each with its citation and supporting sentences.

        With a re-ranker (``settings.rerank``), the best ``rerank_depth`` first-stage candidates are put in the
        cross-encoder's order, and their ``score`` becomes its score: what ``CrossEncoder.predict`` returns for
        (question, passage), a probability for models saved with a sigmoid (the default for one label), a raw
        logit for those saved without one (such as the ms-marco cross-encoders). Higher is more relevant; it
        compares passages for one question and model only. Hits past the depth keep their first-stage order and
        score. Citations and highlights do not change; ``answerable`` and ``confidence`` stay those of the first
        stage, on which they are calibrated.

        Args:
            mode: ``dense``, ``keyword`` or ``hybrid`` (default: the settings' mode).
            search_filter: restricts which documents may answer, before ranking.
            highlights: find supporting sentences (evaluation of deep rankings turns this off).

        Raises:
            InvalidRequest: the question, ``top_k`` or mode is unusable.
        """
        started = time.perf_counter()
        question = self.check_question(question)
        top_k = self.check_top_k(self.settings.top_k if top_k is None else top_k)
        mode = self.check_mode(self.settings.mode if mode is None else mode)
        groups, query, cosines, chunks, first_stage_best = self._rank_distinct(question, top_k, mode, search_filter)
        ranked = [group[0] for group in groups]
        shown = [chunk_id for chunk_id, _ in ranked]
        aliases: dict[int, tuple[str, ...]] = {}
        if self.manifest.counts.get("duplicates"):  # an index without identical files has no aliases to look up
            aliases = self.store.aliases_of(sorted({chunks[chunk_id].document_row for chunk_id in shown}))
        terms = query_terms(question)
        sentences = {}
        if highlights:
            sentences = self.sentences.of(shown)
        hits = [
            self._hit(
                rank,
                chunks[chunk_id],
                score,
                query,
                terms,
                sentences.get(chunk_id) if highlights else None,
                aliases,
                [chunks[other] for other, _ in group[1:]],
            )
            for rank, ((chunk_id, score), group) in enumerate(zip(ranked, groups), 1)
        ]
        if first_stage_best is not None:
            best = first_stage_best
            top_cosine = cosines.get(best)
            if top_cosine is None:
                top_cosine = self.dense.similarity(query, [best])[best]
            confidence = self.calibration.confidence(top_cosine, term_coverage(terms, chunks[best].text))
        else:
            confidence = 0.0
        excluded = 0
        if search_filter is not None and (search_filter.after or search_filter.before):
            excluded = self.store.count_undated(search_filter)
        return Answer(
            question=question,
            mode=mode,
            answerable=self.calibration.answerable(confidence),
            confidence=round(confidence, 4),
            results=hits,
            took_ms=round((time.perf_counter() - started) * 1000, 3),
            excluded_undated=excluded,
        )

    def _rank_distinct(
        self, question: str, top_k: int, mode: str, search_filter: SearchFilter | None
    ) -> tuple[list[list[tuple[int, float]]], np.ndarray, dict[int, float], dict[int, StoredChunk], int | None]:
        """The ranking of ``rank`` (re-ordered by the re-ranker when there is one) in groups of near-identical
        passages (``qa.search.duplicates``), at most ``top_k`` groups each led by its best passage; with the question
        vector, the known cosines, the chunks read, and the first stage's best chunk (for confidence)."""
        depth = top_k
        # Computed once per search: the filter's allowed ids, the question's vector, and the whole first-stage list
        # of the last depth asked (a deeper look at the same depth is a longer prefix of the same list).
        allowed = self.store.allowed_chunks(search_filter) if search_filter else None
        whole: Ranking | None = None
        whole_fetch = 0
        while True:
            fetch = max(depth, self.settings.rerank_depth) if self.reranker is not None else depth
            if whole is None or self._depth(mode, fetch) != self._depth(mode, whole_fetch):
                whole = self._first_stage(question, fetch, mode, allowed, None if whole is None else whole.query)
                whole_fetch = fetch
            ranked, query, cosines = whole.ranked[:fetch], whole.query, whole.cosines
            first_stage_best = ranked[0][0] if ranked else None
            chunks = self.store.chunks([chunk_id for chunk_id, _ in ranked])
            if self.reranker is not None:
                texts = {chunk_id: chunk.text for chunk_id, chunk in chunks.items()}
                ranked = rerank(self.reranker, question, ranked, texts, self.settings.rerank_depth)
            groups = group_duplicates([chunks[chunk_id].text for chunk_id, _ in ranked])
            # Repeats took places another passage could fill: the same ranking, deeper, once (fusion scales by
            # fixed windows, so the passages above keep their order).
            if len(groups) >= top_k or len(ranked) < fetch or depth > top_k:
                break
            depth = top_k * _DEEPER
        return [[ranked[i] for i in group] for group in groups[:top_k]], query, cosines, chunks, first_stage_best

    def rank(
        self,
        question: str,
        top_k: int,
        *,
        mode: str | None = None,
        search_filter: SearchFilter | None = None,
    ) -> Ranking:
        """The first stage of ``search``, on its own: the best ``top_k`` passages by the mode's score, before
        re-ranking, duplicate grouping, citations and highlights (what evaluation and benchmarks measure).

        ``question`` and ``top_k`` are taken as they are (``search`` checks them first).

        Args:
            mode: ``dense``, ``keyword`` or ``hybrid`` (default: the settings' mode).
            search_filter: restricts which documents may answer, before ranking.
        """
        mode = self.settings.mode if mode is None else mode
        # The filter becomes allowed chunk ids once, for both retrievers, before anything is ranked.
        allowed = self.store.allowed_chunks(search_filter) if search_filter else None
        whole = self._first_stage(question, top_k, mode, allowed)
        return Ranking(whole.ranked[:top_k], whole.query, whole.cosines)

    def _depth(self, mode: str, top_k: int) -> int:
        """How many candidates each retriever is asked for when ``top_k`` results are wanted in ``mode``."""
        return top_k if mode != "hybrid" else max(top_k, self.settings.candidates)

    def _first_stage(
        self,
        question: str,
        top_k: int,
        mode: str,
        allowed: np.ndarray | None,
        query: np.ndarray | None = None,
    ) -> Ranking:
        """``rank``'s ranking before the cut at ``top_k``: in hybrid mode every fused candidate of the retrievers'
        ``_depth`` (the same list for any ``top_k`` of the same depth). With keyword feedback on, the hybrid list is
        fused a second time, the keyword side joined by the candidates of the first fusion's best passage's words.

        Args:
            allowed: the only chunk ids that may be returned (None: all).
            query: the question's vector when it is already known (embedding it again gives the same vector).
        """
        depth = self._depth(mode, top_k)
        pending = _in_background(self.keyword.retrieve, question, depth, allowed) if mode != "dense" else None
        if query is None:
            query = self.dense.embed(question)
        if mode == "keyword":
            assert pending is not None  # started for every mode but "dense"
            return Ranking(pending.result(), query, {})
        # Dense search runs before waiting for the keyword side (FAISS releases the GIL), so on a second core the
        # two overlap when the postings take longer than the question's model call.
        dense = self.dense.retrieve(query, depth, allowed)
        if mode == "dense":
            return Ranking(dense, query, dict(dense))
        assert pending is not None  # started for every mode but "dense"
        best: dict[int, float] = {}
        fused, cosines = self._fuse(query, dense, pending, best)
        if self.settings.keyword_feedback and fused:
            keyword = pending.result()
            expanded = self._feedback_ranking(question, fused[0][0], depth, allowed)
            if expanded:
                with_feedback = _with_feedback(keyword, expanded, self.settings.keyword_feedback)
                fused, cosines = self._fuse(query, dense, with_feedback, best, cosines)
        return Ranking(fused, query, cosines)

    def _fuse(
        self,
        query: np.ndarray,
        dense: list[tuple[int, float]],
        keyword: Future[list[tuple[int, float]]] | list[tuple[int, float]],
        best: dict[int, float],
        cosines: dict[int, float] | None = None,
    ) -> tuple[list[tuple[int, float]], dict[int, float]]:
        """Hybrid mode's fused candidates, best first, and the cosines with ``query`` known by chunk id.

        Args:
            dense: the dense retriever's candidates for ``query``.
            keyword: the keyword retriever's candidates, or the future that will hold them (waited for only once
                the dense side's best sentences are scored, so the two overlap).
            best: best-sentence cosines with ``query`` already known by chunk id; filled in with the candidates'.
            cosines: cosines with ``query`` already known (a second fusion of the same question scores only the
                candidates new to it).
        """
        blend = self.settings.fusion != "rrf" and self.settings.sentence_weight > 0
        # The dense candidates' best sentences, too, are scored while the keyword side may still be running.
        if blend:
            best.update(self.sentences.best(query, [chunk_id for chunk_id, _ in dense if chunk_id not in best]))
        if isinstance(keyword, Future):
            keyword = keyword.result()
        cosines = dict(dense) if cosines is None else dict(cosines)
        if self.settings.fusion == "rrf":
            fused = reciprocal_rank_fusion([dense, keyword], k=self.settings.rrf_k)
        else:
            # Keyword-only candidates get their exact cosine, so both scores exist for every candidate.
            cosines.update(self.dense.similarity(query, [i for i, _ in keyword if i not in cosines]))
            meaning = cosines
            if blend:
                best.update(self.sentences.best(query, [i for i, _ in keyword if i not in best]))
                meaning = self._with_best_sentence(cosines, best, self.settings.sentence_weight)
            fused = normalised_score_fusion(
                meaning, dict(keyword), dense_weight=self.settings.dense_weight, window=self.settings.fusion_window
            )
            if self.settings.section_lead:
                fused = self._with_section_leads(fused, self.settings.section_lead)
        return fused, cosines

    def _feedback_ranking(
        self, question: str, chunk_id: int, depth: int, allowed: np.ndarray | None
    ) -> list[tuple[int, float]]:
        """The keyword candidates of ``feedback_words`` of the passage ``chunk_id`` (the first fusion's best),
        among ``allowed`` only; empty when the passage adds no word to the question, or has no heading over it.

        A passage under a heading is about the heading's one topic, so its frequent words tend to name what a
        paraphrased question asks; an article's or abstract's passage shares the whole text's general vocabulary
        instead (docs/retrieval-quality.md, "Round three").
        """
        passage = self.store.chunks([chunk_id]).get(chunk_id)
        words = feedback_words(question, passage.text) if passage is not None and passage.section else []
        return self.keyword.retrieve(" ".join(words), depth, allowed) if words else []

    def _with_section_leads(self, fused: list[tuple[int, float]], bonus: float) -> list[tuple[int, float]]:
        """``fused`` with ``bonus`` added to each passage that opens a headed section and states something (see
        ``states_something``), best first again (ties by id): documentation states a section's point in its first
        paragraph, and the small model often ranks an example or an option further down the same section above it.
        """
        leads = self.store.section_leads([chunk_id for chunk_id, _ in fused])
        if not leads:
            return fused
        leads = self._leads_stating_something(leads)
        scored = sorted((chunk_id, score + bonus if chunk_id in leads else score) for chunk_id, score in fused)
        scored.sort(key=itemgetter(1), reverse=True)
        return scored

    def _leads_stating_something(self, leads: set[int]) -> set[int]:
        """The passages of ``leads`` that state something (``states_something``), each read and judged once per
        service (an index never changes under its service; a search's second fusion meets the first's leads)."""
        unknown = sorted(chunk_id for chunk_id in leads if chunk_id not in self._stating)
        if unknown:
            if len(self._stating) >= _SPLIT_CACHE_SIZE:
                self._stating.clear()  # bounded, as the sentence splits are
            for chunk_id, chunk in self.store.chunks(unknown).items():
                self._stating[chunk_id] = states_something(chunk.text)
        return {chunk_id for chunk_id in leads if self._stating.get(chunk_id, False)}

    @staticmethod
    def _with_best_sentence(cosines: dict[int, float], best: dict[int, float], weight: float) -> dict[int, float]:
        """Blend each passage's cosine with its best sentence's (``best``, from ``SentenceStore.best``): a question
        about one fact should find the passage holding the sentence that states it, even when the rest of the
        passage is about other things.

        A passage without sentence vectors keeps its cosine.
        """
        return {
            chunk_id: (1 - weight) * cosine + weight * best.get(chunk_id, cosine)
            for chunk_id, cosine in cosines.items()
        }

    def _hit(
        self,
        rank: int,
        chunk: StoredChunk,
        score: float,
        query: np.ndarray,
        terms: list[str],
        sentence_vectors: np.ndarray | None,
        aliases: dict[int, tuple[str, ...]],
        repeats: list[StoredChunk],
    ) -> Hit:
        """A result with its citation and, when its ``sentence_vectors`` are given, its supporting sentences.

        Args:
            aliases: the other paths of documents, by document row.
            repeats: lower-ranked passages near-identical to this one, named as its duplicates.
        """
        support = []
        if sentence_vectors is not None:
            spans, texts = self._sentences_of(chunk)
            if len(sentence_vectors) == len(spans):
                support = supporting_sentences(query, spans, sentence_vectors, texts, terms)
        citation = Citation.of(
            chunk, [Highlight(span.start, span.end) for span in support], list(aliases.get(chunk.document_row, ()))
        )
        places = [Place(c.doc_id, c.start, c.end, c.line_start, c.line_end, c.page) for c in repeats]
        return Hit(rank=rank, score=round(float(score), 6), text=chunk.text, citation=citation, duplicates=places)

    def _sentences_of(self, chunk: StoredChunk) -> tuple[list[Span], list[str]]:
        """A passage's sentence spans (document offsets) and texts, split once per passage (treat as read-only)."""
        found = self._splits.get(chunk.id)
        if found is None:
            local = split_sentences(chunk.text)
            found = (
                [Span(chunk.start + s.start, chunk.start + s.end) for s in local],
                [chunk.text[s.start : s.end] for s in local],
            )
            if len(self._splits) >= _SPLIT_CACHE_SIZE:
                self._splits.clear()  # bounded; a big index's hot passages come back at once
            self._splits[chunk.id] = found
        return found

    def document(self, doc_id: str) -> StoredDocument:
        """A document by id, exactly as indexed (citations index its text).

        Raises:
            DocumentNotFound: no such id in this index.
        """
        document = self.store.document(doc_id)
        if document is None:
            raise DocumentNotFound(f"no document with id {doc_id!r} in this index")
        return document

    def info(self) -> dict:
        """What is in the index: model, counts, build parameters."""
        manifest = self.manifest
        return {
            "index_dir": str(Path(self.settings.index_dir).absolute()),
            "format_version": manifest.format_version,
            "model": manifest.model,
            "dimension": manifest.dimension,
            "chunking": manifest.chunking,
            "corpus": manifest.corpus,
            "counts": manifest.counts,
            "created": manifest.created,
        }
