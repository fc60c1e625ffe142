"""Keyword retrieval: BM25 as FTS5 scores it, over the index's memory-mapped keyword postings
(``qa.index.postings``)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from qa.index.manifest import KEYWORDS_FILE
from qa.index.postings import Postings, QueryTokenizer
from qa.text.cjk import fts_form, is_stop_term

if TYPE_CHECKING:
    from qa.index.interfaces import KeywordPostings, ServiceStore

_TERM = re.compile(r"\w+", re.UNICODE)
# Lucene's English stop words plus question words: they carry no topic and only slow an OR query down.
STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these they "
    "this to was will with what which who whom whose when where why how does do did has have had been being can "
    "could would should its it's i me my we our you your he she his her them than so about from were".split()
)


def query_terms(question: str) -> list[str]:
    """Distinct lower-cased terms of a question, stop words removed (unless nothing else is left).

    Chinese, Japanese and Korean runs become the bigrams the keyword index holds (``qa.text.cjk.fts_form``), less
    those holding a stop character; a question without CJK characters gives the same terms as before.
    """
    terms = list(dict.fromkeys(t.lower() for t in _TERM.findall(fts_form(question))))
    content = [t for t in terms if t not in STOPWORDS and not is_stop_term(t)]
    return content or terms


def match_expression(question: str) -> str | None:
    """An FTS5 query matching any of the question's terms; each is quoted, so no user text is FTS syntax.

    The keyword postings answer exactly this query (``KeywordRetriever``); tools and tests that compare them with
    an FTS5 table ask it this.
    """
    terms = query_terms(question)
    if not terms:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


class KeywordRetriever:
    """Ranks chunks by BM25 (Porter stemming) over their text and their document context (title, date, author,
    source), from the keyword postings of the store's build: the same scores FTS5's ``bm25()`` gave."""

    def __init__(self, store: ServiceStore, *, context_weight: float = 1.0, text_weight: float = 1.0) -> None:
        self.store = store
        self.weights = (context_weight, text_weight)
        self._postings: KeywordPostings | None = store.keywords
        self.tokenizer = QueryTokenizer()

    @property
    def postings(self) -> KeywordPostings:
        """The postings of the store's build: the snapshot's, or (a store opened alone) the file beside it.

        Raises:
            IndexCorrupt: a store opened alone has no readable postings file beside it.
        """
        if self._postings is None:
            self._postings = Postings.open_path(self.store.path.parent / KEYWORDS_FILE)
        return self._postings

    def retrieve(self, question: str, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Best ``k`` ``(chunk id, BM25 score)`` pairs, best first (ties by chunk id); empty when no term matches.

        Args:
            allowed: when given, the only chunk ids that may be returned (a filter, applied before ranking).
        """
        terms = query_terms(question)
        if not terms:
            return []
        return self.postings.rank(self.tokenizer.tokens(terms), k, weights=self.weights, allowed=allowed)
