"""Keyword postings: an inverted index file, memory-mapped, scored exactly as FTS5's bm25() scores its rows.

The keyword side used to be an FTS5 table in the store, whose query cost grew with the whole corpus. This file
holds the same information as FTS5's index for BM25: for every term, the rows holding it and how often in each
column (context, text), each row's length in tokens, and the row count. Tokens are FTS5's own: at build time the
rows are written in batches into a temporary in-memory FTS5 table with the store's tokenizer and read back from
its ``fts5vocab`` table; at query time a question's terms go through the same tokenizer (``QueryTokenizer``).

A term of the question is an FTS5 phrase. A phrase of one token (nearly all of them) is scored exactly as FTS5
does. A term the tokenizer cuts into several tokens (``snake_case``) is an FTS5 phrase that needs the tokens
side by side; the file keeps no positions, so such a phrase is taken to match a row holding all its tokens in one
column, as often as its rarest token occurs there (docs/performance.md, "Keyword postings", measures how often).

Layout: ``MAGIC``, an 8-byte little-endian header length, a JSON header naming each array's dtype, offset and
length, then the arrays, each aligned to 64 bytes. Nothing in it is executed or unpickled.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence, TypedDict

import numpy as np

from qa.errors import IndexCorrupt
from qa.index.vectors import open_by_path

MAGIC = b"QAKWPOST"
FILE_VERSION = 1
# The store's FTS5 tokenizer (qa.index.store m002): the postings must hold exactly the tokens FTS5 made.
TOKENIZER = "porter unicode61 remove_diacritics 2"
# FTS5's bm25() constants (sqlite ext/fts5/fts5_aux.c, fts5Bm25Function), and its floor for the IDF of a term
# found in more than half the rows.
K1 = 1.2
B = 0.75
IDF_FLOOR = 1e-6
# Rows tokenized per temporary FTS5 table while building: bounds the build's memory, whatever the corpus size.
BUILD_BATCH = 20_000
_ALIGN = 64
# Query terms whose tokens are remembered per thread (a term always gives the same tokens).
_TOKEN_CACHE_SIZE = 50_000
# The rarest phrases are scored first until their postings number this many times k, to set the bar.
_SEED_FACTOR = 32
# A phrase's list longer than this many times the candidates is searched for them rather than read whole.
_BINARY_SEARCH_FACTOR = 16
# Candidates beyond 1/this of all rows are looked up through a row -> slot map rather than by binary search.
_SLOT_MAP_FACTOR = 64


@dataclass(frozen=True)
class Collection:
    """The statistics BM25 takes from the whole collection when one postings file holds only a part of it (a
    segment, qa.index.segments): its row count, average row length, and each phrase's document frequency."""

    n_rows: int
    avgdl: float
    # Rows holding each phrase of the question, in the question's order.
    frequencies: tuple[int, ...]


@dataclass(frozen=True)
class KeywordRow:
    """One row of the keyword index: a chunk id with its context and text as written to the index."""

    chunk_id: int
    context: str
    text: str


def _tokenizing_database() -> sqlite3.Connection:
    """An in-memory database with a contentless FTS5 table ``t`` (context, text) and its vocabularies: ``v`` (one
    row per token instance, ordered by term, row, column, offset) and ``r`` (one row per term, in that order)."""
    db = sqlite3.connect(":memory:", check_same_thread=False)
    # Contentless: only the index is needed, and 'delete-all' empties it with no tombstones left to read past.
    db.execute(f"CREATE VIRTUAL TABLE t USING fts5(context, text, content = '', tokenize = '{TOKENIZER}')")
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    db.execute("CREATE VIRTUAL TABLE r USING fts5vocab(t, 'row')")
    return db


def _empty(db: sqlite3.Connection) -> None:
    """Empty the temporary FTS5 table."""
    db.execute("INSERT INTO t (t) VALUES ('delete-all')")


@dataclass
class _Batch:
    """Term counts of one batch of rows: parallel arrays, grouped by term, row ids ascending within a term."""

    terms: list[str]
    term_index: np.ndarray  # int64, into ``terms``
    chunk_ids: np.ndarray  # int64
    context: np.ndarray  # int64 counts
    text: np.ndarray  # int64 counts


def _tokenize_batch(db: sqlite3.Connection, rows: Sequence[KeywordRow]) -> _Batch:
    """Write ``rows`` into the temporary FTS5 table, read back every (term, row) with its per-column counts, and
    empty the table again.

    Every token instance comes back in one string per column, in the vocabulary's own order, and is counted in
    numpy: a Python object per instance (or an SQL ``GROUP BY``, which sorts) costs several times as much.

    Raises:
        RuntimeError: FTS5 gave its vocabulary in an order this code does not expect (never seen; checked so that
            a change in SQLite cannot make wrong postings silently).
    """
    _empty(db)
    db.executemany(
        "INSERT INTO t (rowid, context, text) VALUES (?, ?, ?)", ((r.chunk_id, r.context, r.text) for r in rows)
    )
    vocabulary = db.execute("SELECT term, cnt FROM r").fetchall()
    docs, columns = db.execute("SELECT group_concat(doc, ' '), group_concat(col = 'text', '') FROM v").fetchone()
    docs = np.fromstring(docs or "", dtype=np.int64, sep=" ")
    in_text = np.frombuffer((columns or "").encode("ascii"), dtype=np.uint8).astype(np.int64) - ord("0")
    counts = np.array([count for _, count in vocabulary], dtype=np.int64)
    if len(docs) != len(in_text) or len(docs) != int(counts.sum()):
        raise RuntimeError("FTS5's vocabulary tables disagree on the number of token instances")
    term_index = np.repeat(np.arange(len(vocabulary), dtype=np.int64), counts)
    same_term = term_index[1:] == term_index[:-1]
    if np.any(same_term & (docs[1:] < docs[:-1])):
        raise RuntimeError("FTS5's instance vocabulary is not ordered by row within a term")
    starts = np.flatnonzero(np.concatenate(([True], ~same_term | (docs[1:] != docs[:-1])))) if len(docs) else docs
    text = np.add.reduceat(in_text, starts) if len(docs) else docs
    lengths = np.diff(np.append(starts, len(docs)))
    return _Batch([term for term, _ in vocabulary], term_index[starts], docs[starts], lengths - text, text)


def _smallest_unsigned(values: np.ndarray) -> np.ndarray:
    """``values`` (non-negative counts) in the narrowest unsigned dtype that holds them all."""
    top = int(values.max()) if len(values) else 0
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return values.astype(dtype)
    return values.astype(np.uint64)


def build_postings(rows: Iterable[KeywordRow], path: Path, *, batch: int = BUILD_BATCH) -> dict:
    """Write the postings file of ``rows`` (chunk ids ascending) at ``path``.

    Returns:
        Counts for the manifest: rows, distinct terms, postings.

    Raises:
        ValueError: chunk ids are not strictly ascending.
    """
    db = _tokenizing_database()
    vocabulary: dict[str, int] = {}
    pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    chunk_ids: list[int] = []
    pending: list[KeywordRow] = []

    def flush() -> None:
        found = _tokenize_batch(db, pending)
        global_ids = np.array([vocabulary.setdefault(term, len(vocabulary)) for term in found.terms], dtype=np.int32)
        first = len(chunk_ids) - len(pending)
        batch_ids = np.array([r.chunk_id for r in pending], dtype=np.int64)
        positions = (first + np.searchsorted(batch_ids, found.chunk_ids)).astype(np.int32)
        # Compact types: at a million passages there are tens of millions of postings to hold until written.
        pieces.append(
            (global_ids[found.term_index], positions, _smallest_unsigned(found.context), _smallest_unsigned(found.text))
        )
        pending.clear()

    for row in rows:
        if chunk_ids and row.chunk_id <= chunk_ids[-1]:
            raise ValueError(f"keyword rows out of order: chunk {row.chunk_id} after {chunk_ids[-1]}")
        chunk_ids.append(row.chunk_id)
        pending.append(row)
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    db.close()
    ids = np.array(chunk_ids, dtype=np.int64)
    arrays = _postings_arrays(ids, vocabulary, pieces)
    _write(path, arrays, {"rows": len(ids), "total_tokens": int(arrays["row_tokens"].sum(dtype=np.int64))})
    return {"rows": len(ids), "terms": len(vocabulary), "postings": int(len(arrays["posting_rows"]))}


def _postings_arrays(ids: np.ndarray, vocabulary: dict[str, int], pieces: list) -> dict[str, np.ndarray]:
    """The file's arrays: vocabulary sorted by UTF-8 bytes (as FTS5 orders terms), postings grouped by term.

    Args:
        pieces: per batch, parallel arrays of term number (in ``vocabulary``), row position and the term's count
            in the context and in the text, rows ascending within a term.
    """

    def joined(column: int, dtype) -> np.ndarray:
        return np.concatenate([p[column] for p in pieces]) if pieces else np.empty(0, dtype)

    term_ids, rows, context, text = joined(0, np.int32), joined(1, np.int32), joined(2, np.uint8), joined(3, np.uint8)
    encoded = [term.encode("utf-8") for term in vocabulary]
    order = sorted(range(len(encoded)), key=encoded.__getitem__)
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    sorted_terms = rank[term_ids]
    del term_ids
    # Stable: batches come in row order and rows ascend within a batch's term, so rows ascend within each term.
    by_term = np.argsort(sorted_terms, kind="stable")
    term_starts = np.zeros(len(order) + 1, dtype=np.int64)
    np.cumsum(np.bincount(sorted_terms, minlength=len(order)), out=term_starts[1:])
    del sorted_terms
    vocab_bytes = [encoded[i] for i in order]
    vocab_starts = np.zeros(len(order) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in vocab_bytes], out=vocab_starts[1:])
    row_tokens = np.bincount(rows, weights=context.astype(np.float64) + text, minlength=len(ids)).astype(np.int64)
    rows, context, text = rows[by_term], context[by_term], text[by_term]
    firsts = term_starts[:-1]
    return {
        "chunk_ids": ids,
        "row_tokens": row_tokens,
        "term_starts": term_starts,
        "vocab_starts": vocab_starts,
        "vocab": np.frombuffer(b"".join(vocab_bytes), dtype=np.uint8),
        "posting_rows": rows,
        "posting_context": _smallest_unsigned(context),
        "posting_text": _smallest_unsigned(text),
        # What bounds a term's contribution to any row whatever the column weights (see Postings.search).
        "term_max_context": _smallest_unsigned(np.maximum.reduceat(context, firsts) if len(rows) else context),
        "term_max_text": _smallest_unsigned(np.maximum.reduceat(text, firsts) if len(rows) else text),
        "term_min_tokens": np.minimum.reduceat(row_tokens[rows], firsts) if len(rows) else row_tokens[:0],
    }


class _ArrayEntry(TypedDict):
    """Where one array is in the file, as the header names it."""

    dtype: str
    offset: int
    length: int


def _write(path: Path, arrays: dict[str, np.ndarray], stats: dict) -> None:
    """Write ``arrays`` and ``stats`` in the file layout (see the module docstring)."""
    entries: dict[str, _ArrayEntry] = {}
    offset = 0
    for name, array in arrays.items():
        entries[name] = {"dtype": array.dtype.str, "offset": offset, "length": int(len(array))}
        offset += -(-array.nbytes // _ALIGN) * _ALIGN
    header = json.dumps({"version": FILE_VERSION, **stats, "arrays": entries}).encode("utf-8")
    start = -(-(len(MAGIC) + 8 + len(header)) // _ALIGN) * _ALIGN
    with open(path, "wb") as handle:
        handle.write(MAGIC + len(header).to_bytes(8, "little") + header)
        for name, array in arrays.items():
            handle.seek(start + entries[name]["offset"])
            handle.write(np.ascontiguousarray(array).tobytes())
        handle.truncate(start + offset)  # to the end of the last array even when the last ones are empty


class Postings:
    """A memory-mapped postings file: look up terms and rank rows by FTS5's BM25."""

    def __init__(self, buffer: mmap.mmap | bytes, name: str = "keywords") -> None:
        """Read the header of ``buffer`` and view its arrays in place.

        Raises:
            IndexCorrupt: not a postings file of this version, or its arrays do not fit or agree.
        """
        self._buffer = buffer
        try:
            self._read(buffer)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise IndexCorrupt(f"unreadable keyword postings {name}: {exc}") from exc

    def _read(self, buffer) -> None:
        if bytes(buffer[: len(MAGIC)]) != MAGIC:
            raise ValueError("not a postings file")
        length = int.from_bytes(buffer[len(MAGIC) : len(MAGIC) + 8], "little")
        header = json.loads(bytes(buffer[len(MAGIC) + 8 : len(MAGIC) + 8 + length]).decode("utf-8"))
        if header.get("version") != FILE_VERSION:
            raise ValueError(f"version {header.get('version')!r}, expected {FILE_VERSION}")
        start = -(-(len(MAGIC) + 8 + length) // _ALIGN) * _ALIGN
        arrays = {}
        for name, entry in header["arrays"].items():
            dtype = np.dtype(entry["dtype"])
            end = start + entry["offset"] + entry["length"] * dtype.itemsize
            if end > len(buffer):
                raise ValueError(f"array {name} runs past the end of the file")
            arrays[name] = np.frombuffer(buffer, dtype=dtype, count=entry["length"], offset=start + entry["offset"])
        self.chunk_ids = arrays["chunk_ids"]
        self.row_tokens = arrays["row_tokens"]
        self.term_starts = arrays["term_starts"]
        self.vocab_starts = arrays["vocab_starts"]
        self.vocab = arrays["vocab"]
        self.posting_rows = arrays["posting_rows"]
        self.posting_context = arrays["posting_context"]
        self.posting_text = arrays["posting_text"]
        self.term_max_context = arrays["term_max_context"]
        self.term_max_text = arrays["term_max_text"]
        self.term_min_tokens = arrays["term_min_tokens"]
        self.n_rows = int(header["rows"])
        self.total_tokens = int(header["total_tokens"])
        n_terms = len(self.term_starts) - 1
        per_term = (self.vocab_starts, self.term_max_context, self.term_max_text, self.term_min_tokens)
        if (
            len(self.chunk_ids) != self.n_rows
            or len(self.row_tokens) != self.n_rows
            or len(self.vocab_starts) != n_terms + 1
        ):
            raise ValueError("array lengths disagree")
        if any(len(array) != n_terms for array in per_term[1:]):
            raise ValueError("per-term array lengths disagree")
        if n_terms >= 0 and len(self.term_starts) and int(self.term_starts[-1]) != len(self.posting_rows):
            raise ValueError("term offsets disagree with the postings")
        # FTS5 divides by the row count; an index always has at least one row, but keep an empty file harmless.
        self.avgdl = self.total_tokens / self.n_rows if self.n_rows else 1.0

    @classmethod
    def open_fd(cls, fd: int, name: str = "keywords") -> "Postings":
        """Map the file open at ``fd`` (the caller keeps and closes ``fd``; the mapping stays valid).

        Raises:
            IndexCorrupt: the file is empty or not a postings file.
        """
        if os.fstat(fd).st_size == 0:
            raise IndexCorrupt(f"keyword postings {name} is empty")
        return cls(mmap.mmap(fd, 0, access=mmap.ACCESS_READ), name)

    @classmethod
    def open_path(cls, path: Path) -> "Postings":
        """Map the postings file at ``path`` (for tools; a service opens it through its snapshot).

        Raises:
            IndexCorrupt: missing, empty or not a postings file.
        """
        missing = f"missing keyword postings {path}: rebuild the index with `qa index`"
        return open_by_path(path, lambda fd: cls.open_fd(fd, str(path)), missing)

    @property
    def n_terms(self) -> int:
        """Distinct tokens in the index."""
        return len(self.term_starts) - 1

    def term(self, number: int) -> str:
        """The ``number``-th token in byte order."""
        return bytes(self.vocab[self.vocab_starts[number] : self.vocab_starts[number + 1]]).decode("utf-8")

    def find(self, token: str) -> int:
        """The number of ``token`` in the vocabulary, or -1 (binary search over the mapped, byte-ordered terms)."""
        wanted = token.encode("utf-8")
        low, high = 0, self.n_terms
        starts, vocab = self.vocab_starts, self.vocab
        while low < high:
            middle = (low + high) // 2
            found = vocab[starts[middle] : starts[middle + 1]].tobytes()
            if found < wanted:
                low = middle + 1
            elif found > wanted:
                high = middle
            else:
                return middle
        return -1

    def postings(self, token: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row positions (ascending) holding ``token``, with its count in each: context, text."""
        return self._postings_of(self.find(token))

    def _postings_of(self, number: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``postings`` of the ``number``-th token (none for -1)."""
        if number < 0:
            empty = np.empty(0, dtype=np.int32)
            return empty, empty, empty
        first, last = int(self.term_starts[number]), int(self.term_starts[number + 1])
        return self.posting_rows[first:last], self.posting_context[first:last], self.posting_text[first:last]

    def phrase_postings(self, tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows matching a phrase, with its count per column (see the module docstring for several tokens)."""
        if not tokens:
            empty = np.empty(0, dtype=np.int32)
            return empty, empty, empty
        rows, context, text = self.postings(tokens[0])
        for token in tokens[1:]:
            other_rows, other_context, other_text = self.postings(token)
            rows, mine, theirs = np.intersect1d(rows, other_rows, assume_unique=True, return_indices=True)
            context = np.minimum(context[mine], other_context[theirs])
            text = np.minimum(text[mine], other_text[theirs])
        if len(tokens) > 1:
            both = (context > 0) | (text > 0)
            rows, context, text = rows[both], context[both], text[both]
        return rows, context, text

    def rows_of(self, chunk_ids: np.ndarray) -> np.ndarray:
        """A boolean mask over rows: True for the rows of ``chunk_ids`` (ids not in the index are ignored)."""
        mask = np.zeros(self.n_rows, dtype=bool)
        ids = np.asarray(chunk_ids, dtype=np.int64)
        positions = np.searchsorted(self.chunk_ids, ids)
        inside = positions < self.n_rows
        positions, ids = positions[inside], ids[inside]
        mask[positions[self.chunk_ids[positions] == ids]] = True
        return mask

    def search(
        self,
        phrases: Sequence[Sequence[str]],
        k: int,
        *,
        weights: tuple[float, float] = (1.0, 1.0),
        allowed: np.ndarray | None = None,
        collection: Collection | None = None,
    ) -> list[tuple[int, float]]:
        """The best ``k`` rows for an OR of ``phrases`` (each a token sequence): ``(chunk id, BM25 score)``.

        Scores are FTS5's ``-bm25(table, context_weight, text_weight)``: higher is better. Ties are ordered by
        chunk id. Rows outside ``allowed`` (a boolean mask over rows) are left out before ranking; IDF and the
        average length stay those of the whole index, as in FTS5 with a ``rowid IN (...)`` restriction.

        Only rows that can reach the top ``k`` are scored (MaxScore): once some rows' exact scores set a bar, the
        phrases whose best possible contributions add up to less than it cannot lift a row holding none of the
        others over it, so their postings are only looked up for the rows the other phrases bring.

        ``collection``, when given, supplies the row count, average length and document frequencies instead of
        this file's own: those of every segment of an index together (qa.index.segments).
        """
        if k < 1 or self.n_rows == 0:
            return []
        terms = [
            term
            for position, tokens in enumerate(phrases)
            if (term := self._scored(tokens, weights, collection, position)) is not None
        ]
        if not terms:
            return []
        candidates = self._candidates(terms, k, allowed)
        return self._best(candidates, self._scores(terms, candidates), k)

    def rank(
        self,
        phrases: Sequence[Sequence[str]],
        k: int,
        *,
        weights: tuple[float, float] = (1.0, 1.0),
        allowed: np.ndarray | None = None,
    ) -> list[tuple[int, float]]:
        """``search`` with ``allowed`` given as chunk ids (a filter's) rather than a mask over rows."""
        mask = self.rows_of(allowed) if allowed is not None else None
        return self.search(phrases, k, weights=weights, allowed=mask)

    def _scored(
        self, tokens: Sequence[str], weights: tuple[float, float], collection: Collection | None, position: int
    ) -> "_Phrase | None":
        """A phrase's postings with its IDF and the most it adds to any row's score; None when nothing matches.

        Args:
            position: the phrase's place in the question (its document frequency's in ``collection``).
        """
        # A one-token phrase is looked up once, for its postings and its bounds.
        number = self.find(tokens[0]) if len(tokens) == 1 else -1
        rows, context, text = self._postings_of(number) if len(tokens) == 1 else self.phrase_postings(tokens)
        if not len(rows):
            return None
        # FTS5 counts a phrase's rows over the whole table, whatever restricts the query.
        n_rows, frequency, avgdl = self.n_rows, len(rows), self.avgdl
        if collection is not None:
            n_rows, frequency, avgdl = collection.n_rows, collection.frequencies[position], collection.avgdl
        idf = math.log((n_rows - frequency + 0.5) / (frequency + 0.5))
        phrase = _Phrase(self, rows, context, text, idf if idf > 0.0 else IDF_FLOOR, weights, avgdl)
        if len(tokens) == 1:
            phrase.bound = phrase.most(
                float(self.term_max_context[number]),
                float(self.term_max_text[number]),
                float(self.term_min_tokens[number]),
            )
        else:  # an intersection made for this question: its own greatest contribution
            phrase.bound = float(phrase.contributions(np.arange(len(rows))).max())
        return phrase

    def _candidates(self, terms: list["_Phrase"], k: int, allowed: np.ndarray | None) -> np.ndarray:
        """Rows (ascending) that may reach the top ``k``: every allowed row holding an essential phrase."""
        seed, total = [], 0
        for term in sorted(terms, key=lambda t: len(t.rows)):  # the rarest phrases give a bar cheaply
            seed.append(term.rows)
            total += len(term.rows)
            if total >= _SEED_FACTOR * k:
                break
        first = self._union(seed, allowed)
        bar = 0.0
        if len(first) >= k and len(seed) < len(terms):
            bar = float(np.partition(self._scores(terms, first), len(first) - k)[len(first) - k])
        essential: list[_Phrase] = []
        below = 0.0
        for term in sorted(terms, key=lambda t: t.bound):
            # Strictly below the bar, with room for rounding: a row holding only these cannot reach or tie it.
            if not essential and below + term.bound < bar * (1 - 1e-9):
                below += term.bound
            else:
                essential.append(term)
        return self._union([term.rows for term in essential], allowed)

    def _union(self, row_lists: list[np.ndarray], allowed: np.ndarray | None) -> np.ndarray:
        """The ascending union of row lists, less rows outside ``allowed``."""
        total = sum(len(rows) for rows in row_lists)
        if total * _SLOT_MAP_FACTOR > self.n_rows:  # long lists: a mask over all rows beats sorting them
            mask = np.zeros(self.n_rows, dtype=bool)
            for rows in row_lists:
                mask[rows] = True
            if allowed is not None:
                mask &= allowed
            return np.flatnonzero(mask)
        union = np.unique(np.concatenate(row_lists)) if len(row_lists) > 1 else np.asarray(row_lists[0])
        return union[allowed[union]] if allowed is not None else union

    def _scores(self, terms: list["_Phrase"], candidates: np.ndarray) -> np.ndarray:
        """Exact scores of ``candidates``, summed in the question's phrase order as FTS5 sums them."""
        scores = np.zeros(len(candidates), dtype=np.float64)
        slots = None
        if len(candidates) * _SLOT_MAP_FACTOR > self.n_rows:
            # Many candidates: a map from row to candidate slot turns each lookup into one gather.
            slots = np.full(self.n_rows, -1, dtype=np.int32)
            slots[candidates] = np.arange(len(candidates), dtype=np.int32)
        for term in terms:  # each candidate gets at most one addition per phrase, so every way sums alike
            if slots is not None and len(term.rows) <= len(candidates) * _BINARY_SEARCH_FACTOR:
                found = slots[term.rows]
                held = np.flatnonzero(found >= 0)
                scores[found[held]] += term.contributions(held)
            elif len(term.rows) < len(candidates):  # find the phrase's rows among the candidates
                places = np.searchsorted(candidates, term.rows)
                inside = places < len(candidates)
                inside[inside] = candidates[places[inside]] == term.rows[inside]
                scores[places[inside]] += term.contributions(np.flatnonzero(inside))
            else:  # find the candidates in the phrase's list, reading (and mapping in) little of a long one
                positions = np.searchsorted(term.rows, candidates)
                inside = positions < len(term.rows)
                inside[inside] = term.rows[positions[inside]] == candidates[inside]
                scores[inside] += term.contributions(positions[inside])
        return scores

    def _best(self, candidates: np.ndarray, scores: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` best candidates, ties by row (so by chunk id) ascending."""
        if len(candidates) > k:
            threshold = np.partition(scores, len(scores) - k)[len(scores) - k]
            above = np.flatnonzero(scores > threshold)
            tied = np.flatnonzero(scores == threshold)[: k - len(above)]
            chosen = np.concatenate([above, tied])
        else:
            chosen = np.arange(len(candidates))
        chosen = chosen[np.lexsort((candidates[chosen], -scores[chosen]))]
        return [(int(i), float(s)) for i, s in zip(self.chunk_ids[candidates[chosen]], scores[chosen])]


class _Phrase:
    """One phrase of a question: its postings, IDF, column weights and the most it adds to a row's score."""

    def __init__(
        self, postings: Postings, rows, context, text, idf: float, weights: tuple[float, float], avgdl: float
    ) -> None:
        self.postings, self.rows, self.context, self.text = postings, rows, context, text
        self.idf, self.weights, self.avgdl = idf, weights, avgdl
        self.bound = math.inf

    def most(self, context: float, text: float, tokens: float) -> float:
        """An upper bound of this phrase's contribution to any row: BM25 grows with the count and falls with the
        row's length, so the largest counts and the shortest row among its postings bound every row's."""
        frequency = self.weights[0] * context + self.weights[1] * text
        return self.idf * ((frequency * (K1 + 1.0)) / (frequency + K1 * (1 - B + B * tokens / self.avgdl)))

    def contributions(self, positions: np.ndarray) -> np.ndarray:
        """This phrase's BM25 term for the postings at ``positions``, as fts5Bm25Function computes it."""
        frequency = self.weights[0] * self.context[positions].astype(np.float64)
        frequency += self.weights[1] * self.text[positions].astype(np.float64)
        length = self.postings.row_tokens[self.rows[positions]].astype(np.float64)
        return self.idf * ((frequency * (K1 + 1.0)) / (frequency + K1 * (1 - B + B * length / self.avgdl)))


class QueryTokenizer:
    """Question terms to FTS5 tokens, by FTS5 itself: one small in-memory FTS5 table per thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _state(self) -> tuple[sqlite3.Connection, dict[str, tuple[str, ...]]]:
        state = getattr(self._local, "state", None)
        if state is None:
            state = self._local.state = (_tokenizing_database(), {})
        return state

    def tokens(self, terms: Sequence[str]) -> list[tuple[str, ...]]:
        """Each term's tokens in order, as FTS5 would make them from the quoted term (empty when none)."""
        db, cache = self._state()
        missing = list(dict.fromkeys(t for t in terms if t not in cache))
        if missing:
            if len(cache) + len(missing) > _TOKEN_CACHE_SIZE:
                cache.clear()
            cache.update(zip(missing, _tokenize_terms(db, missing)))
        return [cache[t] for t in terms]


def _tokenize_terms(db: sqlite3.Connection, terms: Sequence[str]) -> list[tuple[str, ...]]:
    """FTS5's tokens of each term (written to the text column of the temporary table, then removed)."""
    with db:
        db.executemany("INSERT INTO t (rowid, context, text) VALUES (?, '', ?)", enumerate(terms, start=1))
        found = db.execute('SELECT doc, term FROM v ORDER BY doc, "offset"').fetchall()
        _empty(db)
    tokens: list[list[str]] = [[] for _ in terms]
    for row, token in found:
        tokens[row - 1].append(token)
    return [tuple(t) for t in tokens]
