"""Keyword retrieval: BM25 over the SQLite FTS5 index that is written with the chunks."""

from __future__ import annotations

import re

from qa.cjk import fts_form, is_stop_term
from qa.filters import SearchFilter
from qa.store import StoreReader

_TERM = re.compile(r"\w+", re.UNICODE)
# Lucene's English stop words plus question words: they carry no topic and only slow an OR query down.
STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these they "
    "this to was will with what which who whom whose when where why how does do did has have had been being can "
    "could would should its it's i me my we our you your he she his her them than so about from were".split()
)


def query_terms(question: str) -> list[str]:
    """Distinct lower-cased terms of a question, stop words removed (unless nothing else is left).

    Chinese, Japanese and Korean runs become the bigrams the keyword index holds (``qa.cjk.fts_form``), less
    those holding a stop character; a question without CJK characters gives the same terms as before.
    """
    terms = list(dict.fromkeys(t.lower() for t in _TERM.findall(fts_form(question))))
    content = [t for t in terms if t not in STOPWORDS and not is_stop_term(t)]
    return content or terms


def match_expression(question: str) -> str | None:
    """An FTS5 query matching any of the question's terms; each is quoted, so no user text is FTS syntax."""
    terms = query_terms(question)
    if not terms:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


class KeywordRetriever:
    """Ranks chunks by BM25 (FTS5, Porter stemming) over their text and their document context (title, date, author, source)."""

    def __init__(self, store: StoreReader, *, context_weight: float = 1.0, text_weight: float = 1.0) -> None:
        self.store = store
        self.weights = (context_weight, text_weight)

    def retrieve(self, question: str, k: int, search_filter: SearchFilter | None = None) -> list[tuple[int, float]]:
        """Best ``k`` ``(chunk id, BM25 score)`` pairs, best first; empty when no term matches."""
        expression = match_expression(question)
        if expression is None:
            return []
        where, params = search_filter.sql() if search_filter else (None, ())
        return self.store.keyword_search(expression, k, weights=self.weights, where=where, params=params)
