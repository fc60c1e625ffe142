"""SQLite store: documents and chunks (their passage and sentence vectors live in the index's vector files)."""

from __future__ import annotations

import calendar
import hashlib
import sqlite3
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from qa.errors import IndexCorrupt
from qa.index.manifest import KEYWORDS_FILE, SENTENCES_FILE
from qa.index.postings import KeywordRow, Postings
from qa.index.sentence_vectors import Quantized, SentenceFile
from qa.ingest.corpus import Document, ReusableFile, Skipped, StoredRow
from qa.ingest.metadata import Metadata
from qa.search.filters import SearchFilter
from qa.text.chunking import Chunk
from qa.text.cjk import fts_form


def m001_create_tables(db: sqlite3.Connection) -> None:
    """Documents with metadata and content hash, chunks with offsets, embeddings keyed by chunk-text hash."""
    db.executescript(
        """
        CREATE TABLE documents (
            id INTEGER PRIMARY KEY,
            doc_id TEXT NOT NULL UNIQUE,
            title TEXT, date TEXT, author TEXT, source TEXT,
            content_hash TEXT NOT NULL,
            n_chars INTEGER NOT NULL,
            n_lines INTEGER NOT NULL,
            text TEXT NOT NULL
        );
        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY,  -- also the vector's id in FAISS
            document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            ord INTEGER NOT NULL,
            start INTEGER NOT NULL, "end" INTEGER NOT NULL,
            line_start INTEGER NOT NULL, line_end INTEGER NOT NULL,
            n_tokens INTEGER NOT NULL,
            text_hash TEXT NOT NULL,
            text TEXT NOT NULL,
            UNIQUE (document_id, ord)
        );
        CREATE INDEX chunks_text_hash ON chunks(text_hash);
        -- One vector per distinct passage text, so unchanged text never needs embedding twice.
        CREATE TABLE embeddings (
            text_hash TEXT PRIMARY KEY,
            vector BLOB NOT NULL
        );
        CREATE TABLE skipped (
            doc_id TEXT PRIMARY KEY,
            reason TEXT NOT NULL
        );
        """
    )


def m002_keyword_index_and_sentence_vectors(db: sqlite3.Connection) -> None:
    """BM25 keyword index over chunk context and text (FTS5); per-passage sentence vectors for highlights."""
    db.executescript(
        """
        -- rowid is the chunk id; written in the same transaction as the chunk row. ``context`` holds what the
        -- passage itself may not say: its document's title, date (in words), author and source.
        CREATE VIRTUAL TABLE chunks_fts USING fts5(context, text, tokenize = 'porter unicode61 remove_diacritics 2');
        -- One row per sentence of the passage (qa.text.chunking.split_sentences of its text), float32, in order.
        ALTER TABLE embeddings ADD COLUMN sentence_vectors BLOB;
        """
    )


def m003_pages(db: sqlite3.Connection) -> None:
    """Where each page of a paged document (PDF) starts in its text, so citations can name their page."""
    db.executescript(
        """
        -- Page ``number`` (1-based) of the document starts at ``text[start]``; no rows for documents without pages.
        CREATE TABLE pages (
            document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            number INTEGER NOT NULL,
            start INTEGER NOT NULL,
            PRIMARY KEY (document_id, number)
        ) WITHOUT ROWID;
        CREATE INDEX pages_start ON pages(document_id, start);
        """
    )


def m004_sections(db: sqlite3.Connection) -> None:
    """Each passage's section path and anchor; where each document's date came from."""
    db.executescript(
        """
        -- ``section``: the headings above the passage, outermost first, joined by " › "; ``anchor``: the id of
        -- the element nearest before it in the source (HTML), so a link can open the source at that spot.
        ALTER TABLE chunks ADD COLUMN section TEXT;
        ALTER TABLE chunks ADD COLUMN anchor TEXT;
        -- "document", "text" or "file" (modification time): see qa.ingest.metadata.Metadata.date_source.
        ALTER TABLE documents ADD COLUMN date_source TEXT;
        """
    )


def m005_document_aliases(db: sqlite3.Connection) -> None:
    """The other paths of a document: files in the corpus with the same bytes, indexed once under its ``doc_id``."""
    db.executescript(
        """
        -- A path is a document's id or one of its aliases, never both (ids and aliases are paths of one corpus).
        CREATE TABLE aliases (
            path TEXT PRIMARY KEY,
            document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE
        );
        CREATE INDEX aliases_document ON aliases(document_id);
        """
    )


def m006_keyword_postings_file(db: sqlite3.Connection) -> None:
    """Drop the FTS5 keyword table: keyword search reads the postings file beside the store (``qa.index.postings``)."""
    # Its content was a second copy of every passage text, and its query cost grew with the whole corpus.
    db.executescript("DROP TABLE IF EXISTS chunks_fts;")


def m007_vectors_outside_the_store(db: sqlite3.Connection) -> None:
    """Passage and sentence vectors leave the store for the index's vector files (qa.index.vectors,
    qa.index.sentence_vectors)."""
    db.executescript(
        """
        -- A chunk's vectors are found by its id in vectors.f32 and sentences.i8; an update reuses them for any
        -- chunk whose chunks.text_hash (the hash of its embed input) a chunk of the previous index had, found in
        -- one pass over the previous chunks (StoreWriter.reusable_inputs), so the index on it has no more use.
        DROP TABLE embeddings;
        DROP INDEX chunks_text_hash;
        """
    )


def m008_file_stats(db: sqlite3.Connection) -> None:
    """What the file system said of each indexed path when it was read, so an update reads only changed files."""
    db.executescript(
        """
        -- ``path``: a document's id or one of its aliases; ``stat``: qa.ingest.corpus._stat_line of it, taken before it
        -- was read (size, modification and change times, inode, of the link and of what it names).
        CREATE TABLE files (
            path TEXT PRIMARY KEY,
            stat TEXT NOT NULL
        ) WITHOUT ROWID;
        """
    )


def m009_document_text_hash(db: sqlite3.Connection) -> None:
    """Each document's text hash, so an update tells changed documents apart without reading every text."""
    db.execute("ALTER TABLE documents ADD COLUMN text_hash TEXT")


MIGRATIONS = [
    m001_create_tables,
    m002_keyword_index_and_sentence_vectors,
    m003_pages,
    m004_sections,
    m005_document_aliases,
    m006_keyword_postings_file,
    m007_vectors_outside_the_store,
    m008_file_stats,
    m009_document_text_hash,
]
SCHEMA_VERSION = len(MIGRATIONS)
# Every table the migrations create; a store missing one (dropped by hand, damaged) is refused when opened.
TABLES = ("documents", "chunks", "skipped", "pages", "aliases", "files")


def missing_tables(db: sqlite3.Connection, schema: str = "main") -> list[str]:
    """The tables of :data:`TABLES` that the database attached as ``schema`` lacks."""
    present = {row[0] for row in db.execute(f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table'")}
    return [name for name in TABLES if name not in present]


def line_count(text: str) -> int:
    """Lines as an editor shows them: a final newline does not start another line."""
    return text.count("\n") + (0 if text.endswith("\n") else 1)


def document_context(meta: Metadata) -> str:
    """Words about a document that its passages may not contain: title, date spelled out, author, source.

    The passage's section path is not added: on the documentation questions it changed nothing beyond noise
    (docs/retrieval-quality.md, "Documentation").
    """
    parts = [meta.title or ""]
    if meta.date:
        parts.append(spelled_date(meta.date))
    parts.extend(p for p in (meta.author, meta.source) if p)
    return "\n".join(p for p in parts if p)


def spelled_date(iso: str) -> str:
    """``2024-03-29`` -> ``March 29 2024`` (partial dates keep what they have), for keyword matching."""
    pieces = iso.split("-")
    words = [pieces[0]]
    if len(pieces) > 1 and pieces[1].isdigit() and 1 <= int(pieces[1]) <= 12:
        words.insert(0, calendar.month_name[int(pieces[1])])
        if len(pieces) > 2 and pieces[2].isdigit():
            words.insert(1, str(int(pieces[2])))
    return " ".join(words)


def text_hash(text: str) -> str:
    """The key for a passage's embedding."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PendingText:
    """A passage waiting for its vectors: the model input, and where the passage starts inside it."""

    embed_input: str
    passage_offset: int
    passage: str


@dataclass(frozen=True)
class PreviousDocument:
    """A document as the index being replaced holds it: enough to find it again and to tell whether it changed.

    ``metadata`` has no ``date_source``: it and the text's hash come after the document's text in the row, so they
    are read only for the documents compared with a file read again (``StoreWriter.previous_stamps``).
    """

    row: int
    content_hash: str  # of the file's bytes
    metadata: Metadata
    # The attached store that holds it (one per segment of the previous index), and every path it had.
    schema: str = "previous"
    paths: frozenset[str] = frozenset()
    # That store's checksum in the previous manifest: with ``row``, what a document taken from it names (StoredRow).
    store: str = ""


@dataclass(frozen=True)
class PreviousStamp:
    """What an update compares besides the bytes and the metadata before the text: the hash of the document's
    decoded text (the same bytes may decode to other text after a change to ingest) and its ``date_source``."""

    text_hash: str | None
    date_source: str | None


@dataclass(frozen=True)
class StoredChunk:
    """A chunk joined with its document's citation fields; ``page`` and ``page_end`` are the pages holding its
    first and last characters (None for documents without pages)."""

    id: int
    document_row: int
    doc_id: str
    title: str | None
    date: str | None
    start: int
    end: int
    line_start: int
    line_end: int
    text: str
    page: int | None = None
    page_end: int | None = None
    section: str | None = None
    anchor: str | None = None
    date_source: str | None = None


@dataclass(frozen=True)
class StoredDocument:
    """A document as served to clients; ``pages`` holds the offset in ``text`` where each page starts, or None;
    ``aliases`` are its other paths (files with the same bytes)."""

    doc_id: str
    text: str
    content_hash: str
    n_lines: int
    metadata: Metadata
    pages: tuple[int, ...] | None = None
    aliases: tuple[str, ...] = ()


# The page holding a chunk's first character and the one holding its last, for chunk ``c`` of document ``d``.
_CHUNK_PAGES = (
    "(SELECT MAX(p.number) FROM pages p WHERE p.document_id = d.id AND p.start <= c.start),"
    ' (SELECT MAX(p.number) FROM pages p WHERE p.document_id = d.id AND p.start < c."end")'
)


# A StoredChunk's fields, in order, for chunk ``c`` of document ``d``.
_CHUNK_COLUMNS = (
    'c.id, d.id, d.doc_id, d.title, d.date, c.start, c."end", c.line_start, c.line_end, c.text,'
    f" {_CHUNK_PAGES}, c.section, c.anchor, d.date_source"
)


def keyword_rows(db: sqlite3.Connection, batch: int = 10_000) -> Iterator[KeywordRow]:
    """Every chunk of ``db`` as the keyword index holds it, in id order, read ``batch`` rows at a time.

    The context is what the passage itself may not say (``document_context``); CJK runs become bigrams in both
    columns (qa.text.cjk), since unicode61 alone keeps a run as one token.
    """
    cursor = db.execute(
        "SELECT c.id, c.text, d.id, d.title, d.date, d.author, d.source FROM chunks c"
        " JOIN documents d ON d.id = c.document_id ORDER BY c.id"
    )
    contexts: dict[int, str] = {}
    while rows := cursor.fetchmany(batch):
        for chunk_id, text, document_row, *meta in rows:
            context = contexts.get(document_row)
            if context is None:
                if len(contexts) >= batch:
                    contexts.clear()  # bounded; a document's chunks have neighbouring ids
                context = contexts[document_row] = fts_form(document_context(Metadata(*meta)))
            yield KeywordRow(chunk_id, context, fts_form(text))


def migrate(db: sqlite3.Connection) -> None:
    """Apply the migrations this database has not seen yet."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
        with db:
            migration(db)
            db.execute(f"PRAGMA user_version = {number}")


class StoreWriter:
    """Writes a new store file; used only while an index is being built."""

    def __init__(self, path: Path, *, first_chunk: int = 1, first_document: int = 1) -> None:
        """Create the store at ``path``; its chunk and document ids start at ``first_chunk`` and ``first_document``
        (a segment's ids follow every id its index used before, so an id never names two passages)."""
        self.db = sqlite3.connect(path)
        self._next_chunk, self._next_document = first_chunk, first_document
        self.documents_written = 0
        self.db.execute("PRAGMA foreign_keys = ON")
        # A built index is one self-contained file: no -wal/-shm companions to forget when copying it.
        self.db.execute("PRAGMA journal_mode = DELETE")
        # No sync per transaction: the file is invisible until the finished build is fsynced and swapped in
        # (qa.index.atomic.replace_directory), and a build killed before that is discarded whole.
        self.db.execute("PRAGMA synchronous = OFF")
        migrate(self.db)
        self._pending: dict[str, PendingText] = {}

    def add_document(self, document: Document, chunks: Sequence[Chunk], embed_inputs: Sequence[str]) -> list[int]:
        """Insert a document and its chunks in one transaction.

        Args:
            embed_inputs: per chunk, the exact text the model embeds for it (the passage, perhaps after a
                title); its hash keys the passage's vectors.

        Returns:
            The chunk ids, which are also their FAISS ids.
        """
        with self.db:
            document_row = self._insert_document(document)
            ids = []
            for chunk, embed_input in zip(chunks, embed_inputs, strict=True):
                key = text_hash(embed_input)
                self._pending.setdefault(key, PendingText(embed_input, len(embed_input) - len(chunk.text), chunk.text))
                self.db.execute(
                    'INSERT INTO chunks (id, document_id, ord, start, "end", line_start, line_end, n_tokens,'
                    " text_hash, text, section, anchor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        self._next_chunk,
                        document_row,
                        chunk.index,
                        chunk.start,
                        chunk.end,
                        chunk.line_start,
                        chunk.line_end,
                        chunk.n_tokens,
                        key,
                        chunk.text,
                        chunk.section,
                        chunk.anchor,
                    ),
                )
                ids.append(self._next_chunk)
                self._next_chunk += 1
        return ids

    def _insert_document(self, document: Document, text_of: PreviousDocument | None = None) -> int:
        """Insert one document row and its page offsets (inside the caller's transaction); returns its rowid.

        Args:
            text_of: the previous document whose stored row this one is (taken from the index, not read): its text
                and metadata are copied from that row.
        """
        if text_of is not None:
            found = self.db.execute(
                f"SELECT text, title, date, author, source, date_source FROM {text_of.schema}.documents WHERE id = ?",
                (text_of.row,),
            ).fetchone()
            document = replace(document, text=found[0], metadata=Metadata(*found[1:6]), stored=None)
        meta = document.metadata
        row = self._next_document
        self._next_document += 1
        self.documents_written += 1
        self.db.execute(
            "INSERT INTO documents (id, doc_id, title, date, author, source, date_source, content_hash, n_chars,"
            " n_lines, text, text_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row,
                document.doc_id,
                meta.title,
                meta.date,
                meta.author,
                meta.source,
                meta.date_source,
                document.content_hash,
                len(document.text),
                line_count(document.text),
                document.text,
                text_hash(document.text),
            ),
        )
        if document.pages is not None:
            self.db.executemany(
                "INSERT INTO pages (document_id, number, start) VALUES (?, ?, ?)",
                [(row, number, start) for number, start in enumerate(document.pages, start=1)],
            )
        self.db.executemany(
            "INSERT INTO aliases (path, document_id) VALUES (?, ?)", [(a, row) for a in document.aliases]
        )
        return row

    def attach_previous(self, stores: Sequence[tuple[Path, Sequence[int], str]]) -> dict[str, PreviousDocument]:
        """Open the stores of the index being replaced (one per segment, with the document rows each hides and its
        checksum in the manifest), read-only, to copy unchanged rows and vectors from.

        Returns:
            Their documents that are not hidden, by every path they had: their ids and their aliases (read from
            the columns before each text, so no text is read: see ``PreviousDocument``).

        Raises:
            IndexCorrupt: one cannot be read or has another schema version.
        """
        known: dict[str, PreviousDocument] = {}
        for number, (path, hidden, checksum) in enumerate(stores):
            schema = f"previous{number}"
            self._attach(schema, Path(path))
            try:
                rows = self.db.execute(
                    "SELECT d.id, p.path, d.content_hash, d.title, d.date, d.author, d.source"
                    f" FROM (SELECT id, doc_id AS path FROM {schema}.documents UNION ALL"
                    f"  SELECT document_id, path FROM {schema}.aliases) p JOIN {schema}.documents d ON d.id = p.id"
                    f" WHERE d.id NOT IN ({','.join(str(int(row)) for row in hidden)})"
                ).fetchall()
            except sqlite3.DatabaseError as exc:
                self.detach_previous()
                raise IndexCorrupt(f"cannot read {path}: {exc}") from exc
            paths: dict[int, set[str]] = {}
            for r in rows:
                paths.setdefault(r[0], set()).add(r[1])
            for r in rows:
                known[r[1]] = PreviousDocument(r[0], r[2], Metadata(*r[3:7]), schema, frozenset(paths[r[0]]), checksum)
        return known

    def previous_stamps(self, documents: Iterable[PreviousDocument]) -> dict[tuple[str, int], PreviousStamp]:
        """The text hash and date source of these previous documents, by ``(schema, row)``: read for these rows
        alone, as reaching them reads each one's text.

        Raises:
            IndexCorrupt: an attached store cannot be read.
        """
        by_schema: dict[str, set[int]] = {}
        for document in documents:
            by_schema.setdefault(document.schema, set()).add(document.row)
        found: dict[tuple[str, int], PreviousStamp] = {}
        for schema, rows in by_schema.items():
            ordered = sorted(rows)
            for first in range(0, len(ordered), _IDS_PER_QUERY):
                batch = ordered[first : first + _IDS_PER_QUERY]
                try:
                    selected = self.db.execute(
                        f"SELECT id, text_hash, date_source FROM {schema}.documents"
                        f" WHERE id IN ({','.join('?' * len(batch))})",
                        batch,
                    ).fetchall()
                except sqlite3.DatabaseError as exc:
                    raise IndexCorrupt(f"cannot read the previous index's documents: {exc}") from exc
                found.update({(schema, row): PreviousStamp(text, source) for row, text, source in selected})
        return found

    def previous_version(self, previous: PreviousDocument) -> tuple[str, str | None, list[Chunk]]:
        """A previous document's text, title and passages (their texts left empty: they are slices of the text),
        for a new version of it to reuse the passages of its unchanged sections (``qa.text.chunking.known_pieces``)."""
        text, title = self.db.execute(
            f"SELECT text, title FROM {previous.schema}.documents WHERE id = ?", (previous.row,)
        ).fetchone()
        rows = self.db.execute(
            f'SELECT ord, start, "end", line_start, line_end, n_tokens FROM {previous.schema}.chunks'
            " WHERE document_id = ? ORDER BY ord",
            (previous.row,),
        )
        return text, title, [Chunk(o, start, end, first, last, "", n) for o, start, end, first, last, n in rows]

    def _attach(self, schema: str, path: Path) -> None:
        """Attach the store at ``path`` read-only as ``schema``.

        Raises:
            IndexCorrupt: it cannot be opened read-only, or has another schema version or lacks a table.
        """
        uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
        try:
            self.db.execute(f"ATTACH DATABASE ? AS {schema}", (uri,))
            attached = {row[1]: row[2] for row in self.db.execute("PRAGMA database_list")}.get(schema)
            if attached != str(path.resolve()):
                # An SQLite built without URI file names would have created a new file named after the URI.
                raise IndexCorrupt(f"cannot open {path} read-only (SQLite without URI file names)")
            version = self.db.execute(f"PRAGMA {schema}.user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                raise IndexCorrupt(f"its store has schema version {version}, not {SCHEMA_VERSION}")
            missing = missing_tables(self.db, schema)
            if missing:
                raise IndexCorrupt(f"its store lacks the table {', '.join(missing)}")
        except sqlite3.DatabaseError as exc:
            self.detach_previous()
            raise IndexCorrupt(f"cannot read {path}: {exc}") from exc
        except IndexCorrupt:
            self.detach_previous()
            raise

    def previous_chunk_counts(self, documents: Sequence[PreviousDocument]) -> dict[int, int]:
        """How many chunks each of these previous documents has, by row."""
        counts: dict[int, int] = {}
        by_schema: dict[str, list[int]] = {}
        for document in documents:
            by_schema.setdefault(document.schema, []).append(document.row)
        for schema, rows in by_schema.items():
            counts.update({row: 0 for row in rows})
            marks = ",".join("?" * len(rows))
            counts.update(
                self.db.execute(
                    f"SELECT document_id, COUNT(*) FROM {schema}.chunks WHERE document_id IN ({marks})"
                    " GROUP BY document_id",
                    rows,
                ).fetchall()
            )
        return counts

    def _previous_schemas(self) -> list[str]:
        """The attached previous stores' schema names, in the order attached."""
        return [schema for schema, _ in self._previous_files()]

    def copy_document(self, document: Document, previous: PreviousDocument) -> int:
        """Insert ``document`` with the chunks it had in its attached previous store (same text, same passages),
        under new ids.

        Returns:
            The number of chunks copied.
        """
        with self.db:
            document_row = self._insert_document(document, previous if document.stored is not None else None)
            cursor = self.db.execute(
                'INSERT INTO chunks (id, document_id, ord, start, "end", line_start, line_end, n_tokens, text_hash,'
                ' text, section, anchor) SELECT ? + ROW_NUMBER() OVER (ORDER BY ord) - 1, ?, ord, start, "end",'
                " line_start, line_end, n_tokens, text_hash, text, section, anchor"
                f" FROM {previous.schema}.chunks WHERE document_id = ? ORDER BY ord",
                (self._next_chunk, document_row, previous.row),
            )
            self._next_chunk += cursor.rowcount
        return cursor.rowcount

    def reusable_inputs(self, keywords: Postings | None = None) -> dict[str, int]:
        """The embed inputs this store needs that an attached previous store had, each with the id of a previous
        chunk that had it: its vectors are that chunk's in the previous index's vector files (ids are unique
        across segments, so the id says which segment's; the lowest id of the first segment that has it).

        Keyed by embed-input hash, so a passage whose text was seen before (in any document) is not embedded again.

        Args:
            keywords: this store's keyword postings, built from its rows. With them, and few passages to look up,
                a previous segment is read only at the chunks holding all of a passage's rarest words (found in that
                segment's postings file, beside its store), not whole: the same ids, for a cost that does not grow
                with the segment (see ``_lookup_candidates``).
        """
        wanted = dict(self.db.execute("SELECT text_hash, MIN(id) FROM main.chunks GROUP BY text_hash").fetchall())
        tokens = None
        if keywords is not None and len(wanted) <= POSTINGS_LOOKUP_MAX:
            tokens = _text_tokens(keywords, set(wanted.values()))
        found: dict[str, int] = {}
        for schema, path in self._previous_files():
            missing = [key for key in wanted if key not in found]
            if not missing:
                break
            ids = None
            if tokens is not None:
                ids = _lookup_candidates(path.parent / KEYWORDS_FILE, missing, wanted, tokens)
            if ids is None:  # read the whole segment's chunks
                rows = self.db.execute(
                    f"SELECT text_hash, MIN(id) FROM {schema}.chunks"
                    " WHERE text_hash IN (SELECT text_hash FROM main.chunks) GROUP BY text_hash"
                ).fetchall()
            else:
                looked_for = set(missing)
                rows = [(key, chunk_id) for key, chunk_id in self._hashes_at(schema, ids) if key in looked_for]
            for key, chunk_id in rows:
                found.setdefault(key, chunk_id)
        return found

    def _previous_files(self) -> list[tuple[str, Path]]:
        """The attached previous stores: schema and file, in the order attached (segment order)."""
        return [
            (row[1], Path(row[2])) for row in self.db.execute("PRAGMA database_list") if row[1].startswith("previous")
        ]

    def _hashes_at(self, schema: str, ids: Sequence[int]) -> list[tuple[str, int]]:
        """``(text_hash, lowest id)`` for each embed input among chunks ``ids`` of ``schema`` (read by id)."""
        lowest: dict[str, int] = {}
        for first in range(0, len(ids), _IDS_PER_QUERY):
            batch = [int(i) for i in ids[first : first + _IDS_PER_QUERY]]
            rows = self.db.execute(
                f"SELECT text_hash, id FROM {schema}.chunks WHERE id IN ({','.join('?' * len(batch))})", batch
            )
            for key, chunk_id in rows:
                if chunk_id < lowest.get(key, chunk_id + 1):
                    lowest[key] = chunk_id
        return list(lowest.items())

    def detach_previous(self) -> None:
        """Let go of the previous stores (a no-op when none is attached)."""
        for schema in self._previous_schemas():
            self.db.execute(f"DETACH DATABASE {schema}")

    def add_skipped(self, skipped: Iterable[Skipped]) -> None:
        """Record files that were not indexed, so `qa info` can say why."""
        with self.db:
            self.db.executemany(
                "INSERT INTO skipped (doc_id, reason) VALUES (?, ?)", [(s.doc_id, s.reason) for s in skipped]
            )

    def add_file_stats(self, stats: Mapping[str, str]) -> None:
        """Record each indexed path's stat line (see ``qa.ingest.corpus.CorpusScan.stats``)."""
        with self.db:
            self.db.executemany("INSERT INTO files (path, stat) VALUES (?, ?)", sorted(stats.items()))

    def missing_embeddings(self, known: Iterable[str] = ()) -> list[tuple[str, PendingText]]:
        """``(hash, pending)`` for each distinct passage input whose vectors are not ``known`` (reusable)."""
        known = set(known)
        return [(key, pending) for key, pending in self._pending.items() if key not in known]

    def chunk_hashes(self) -> tuple[np.ndarray, list[str]]:
        """All chunk ids in id order, and each one's embed-input hash (which says what its vector is)."""
        rows = self.db.execute("SELECT id, text_hash FROM chunks ORDER BY id").fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64), [r[1] for r in rows]

    def keyword_rows(self) -> Iterator[KeywordRow]:
        """Every chunk as the keyword index holds it (context and text in ``fts_form``), in id order."""
        return keyword_rows(self.db)

    def close(self) -> None:
        """Commit and close."""
        self.db.commit()
        self.db.close()


# An update finds vectors to reuse through the previous segments' keyword postings when it has at most this many
# distinct passage inputs to look up; more (a merge copies every passage) are found in one pass over each segment.
POSTINGS_LOOKUP_MAX = 5_000
# A passage's longest words are tried as its rarest: their postings are intersected until this few rows are left.
_LOOKUP_WORDS = 12
_LOOKUP_ENOUGH = 64
# A segment whose candidates come to more than 1/this of its rows (and more than a few) is read whole instead, which
# is as cheap by then.
_LOOKUP_SHARE = 8
_LOOKUP_FEW = 1_000
# Chunk ids bound into one query.
_IDS_PER_QUERY = 10_000


def _text_tokens(keywords: Postings, chunk_ids: set[int]) -> dict[int, list[str]]:
    """The tokens of the text column of chunks ``chunk_ids``, by chunk id, from their keyword postings."""
    tokens: dict[int, list[str]] = {chunk_id: [] for chunk_id in chunk_ids}
    starts = keywords.term_starts
    for number in range(keywords.n_terms):
        first, last = int(starts[number]), int(starts[number + 1])
        rows, text = keywords.posting_rows[first:last], keywords.posting_text[first:last]
        holders = keywords.chunk_ids[rows[text > 0]]
        if len(holders):
            term = keywords.term(number)
            for chunk_id in holders.tolist():
                if chunk_id in tokens:
                    tokens[chunk_id].append(term)
    return tokens


def _lookup_candidates(
    path: Path, missing: Sequence[str], wanted: Mapping[str, int], tokens: Mapping[int, list[str]]
) -> list[int] | None:
    """Ids of the chunks of one previous segment that may have one of the ``missing`` embed inputs: those holding
    all of a few of its passage's words (``tokens`` of the new chunk ``wanted[key]``), in either column of that
    segment's keyword postings at ``path``.

    A chunk with the same embed input holds every word of it: the passage's in its text column, a title's in its
    context column, and FTS5 cuts text the same way at a newline as between two columns, so no such chunk is
    missed. None when that cannot be used (a passage without words, no postings file, or too many candidates):
    the caller reads the whole segment then.
    """
    try:
        postings = Postings.open_path(path)
    except IndexCorrupt:
        return None
    found: set[int] = set()
    for key in missing:
        words = sorted(set(tokens.get(wanted[key], ())), key=len, reverse=True)[:_LOOKUP_WORDS]
        if not words:
            return None
        lists = sorted((postings.postings(word)[0] for word in words), key=len)
        rows = lists[0]
        for other in lists[1:]:
            if len(rows) <= _LOOKUP_ENOUGH:
                break
            rows = _within(rows, other)
        found.update(postings.chunk_ids[rows].tolist())
        if len(found) > _LOOKUP_FEW and len(found) * _LOOKUP_SHARE > postings.n_rows:
            return None
    return sorted(found)


def _within(rows: np.ndarray, other: np.ndarray) -> np.ndarray:
    """The ``rows`` that are also in ``other`` (both ascending): a binary search of each, no sort of both."""
    if not len(rows) or not len(other):
        return rows[:0]
    at = np.minimum(np.searchsorted(other, rows), len(other) - 1)
    return rows[other[at] == rows]


class _Rows(list):
    """Fetched rows with the cursor methods the readers use."""

    def fetchone(self):
        return self[0] if self else None

    def fetchall(self):
        return list(self)


class _SharedConnection:
    """One connection shared by all threads, each statement run and fetched whole under a lock.

    The connection is opened when the index is loaded, never later: a rebuild swaps a new directory in
    under the same path, and a connection opened after that would read the new store beside the old
    vectors. An open file keeps reading the store it was opened on, even once that file is deleted.
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._lock = threading.Lock()

    def execute(self, sql: str, params: Sequence = ()) -> _Rows:
        with self._lock:
            return _Rows(self._db.execute(sql, tuple(params)).fetchall())


class StoreReader:
    """Read-only access to a built store, safe to share between threads.

    ``keywords`` is the keyword postings of the same build when the store was opened as part of a snapshot
    (``qa.index.snapshot``); None for a store opened alone.
    """

    keywords: Postings | None = None

    def __init__(self, path: Path, sentences: SentenceFile | None = None, hidden: Sequence[int] = ()) -> None:
        """Open the store at ``path``; ``sentences`` is the index's mapped sentences file (opened beside ``path``
        when first needed if not given). ``hidden`` are rows of documents a later segment replaced or removed
        (qa.index.segments): the store answers as if they were not there."""
        self.path = path
        self._sentences = sentences
        self.hidden = tuple(sorted(int(row) for row in hidden))
        # Appended to every query that lists documents ("d"): the rows of hidden documents are left out.
        self._shown = f" AND d.id NOT IN ({','.join(map(str, self.hidden))})" if self.hidden else ""
        # immutable=1: an index directory is never changed in place (rebuilds swap whole directories),
        # so no locking is needed and the file may sit on read-only media.
        uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
        try:
            db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            db.execute("SELECT 1 FROM documents LIMIT 1")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            missing = missing_tables(db)
        except sqlite3.DatabaseError as exc:
            raise IndexCorrupt(f"cannot read {path}: {exc}") from exc
        if version != SCHEMA_VERSION:
            raise IndexCorrupt(f"{path} has schema version {version}, expected {SCHEMA_VERSION}")
        if missing:
            raise IndexCorrupt(f"{path} lacks the table {', '.join(missing)} (damaged): rebuild it with `qa index`")
        self._shared = _SharedConnection(db)

    def _connection(self) -> _SharedConnection:
        return self._shared

    def close(self) -> None:
        """Close the SQLite connection (and so the file); later reads fail."""
        self._shared._db.close()

    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        """Chunks by id, with their documents' citation fields."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._connection().execute(
            f"SELECT {_CHUNK_COLUMNS} FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id IN ({marks})",
            [int(i) for i in ids],
        )
        return {row[0]: StoredChunk(*row) for row in rows}

    def section_leads(self, ids: Sequence[int]) -> set[int]:
        """Which of ``ids`` open a headed section: the first passage under a heading (qa.text.sections), not counting
        passages of documents without headings."""
        # Passages under a heading first, by id alone: SQLite would otherwise look up every candidate's previous
        # passage, and a corpus without headings (articles, abstracts) needs no second query at all.
        if not ids:
            return set()
        marks = ",".join("?" * len(ids))
        query = f"SELECT id FROM chunks WHERE id IN ({marks}) AND section IS NOT NULL"
        headed = [row[0] for row in self._connection().execute(query, [int(i) for i in ids])]
        if not headed:
            return set()
        marks = ",".join("?" * len(headed))
        rows = self._connection().execute(
            "SELECT c.id FROM chunks c LEFT JOIN chunks p ON p.document_id = c.document_id AND p.ord = c.ord - 1"
            f" WHERE c.id IN ({marks}) AND (p.id IS NULL OR p.section IS NOT c.section)",
            headed,
        )
        return {row[0] for row in rows}

    def iter_chunks(self) -> Iterator[tuple[StoredChunk, int]]:
        """Every chunk with its token count, in document order."""
        rows = self._connection().execute(
            f"SELECT {_CHUNK_COLUMNS}, c.n_tokens FROM chunks c JOIN documents d ON d.id = c.document_id"
            f" WHERE 1{self._shown} ORDER BY d.doc_id, c.ord"
        )
        for row in rows:
            yield StoredChunk(*row[:-1]), row[-1]

    def document(self, doc_id: str) -> StoredDocument | None:
        """One document by its id or one of its aliases, or None."""
        row = (
            self._connection()
            .execute(
                "SELECT id, doc_id, text, content_hash, n_lines, title, date, author, source, date_source"
                " FROM documents d"
                f" WHERE (doc_id = ? OR id = (SELECT document_id FROM aliases WHERE path = ?)){self._shown}",
                (doc_id, doc_id),
            )
            .fetchone()
        )
        if row is None:
            return None
        starts = self._connection().execute("SELECT start FROM pages WHERE document_id = ? ORDER BY number", (row[0],))
        pages = tuple(r[0] for r in starts) or None
        aliases = self.aliases_of([row[0]]).get(row[0], ())
        return StoredDocument(row[1], row[2], row[3], row[4], Metadata(*row[5:]), pages, aliases)

    def aliases_of(self, document_rows: Sequence[int]) -> dict[int, tuple[str, ...]]:
        """The aliases of documents by row id (sorted), for those that have any."""
        marks = ",".join("?" * len(document_rows))
        rows = self._connection().execute(
            f"SELECT document_id, path FROM aliases WHERE document_id IN ({marks}) ORDER BY path",
            [int(r) for r in document_rows],
        )
        found: dict[int, tuple[str, ...]] = {}
        for document_row, path in rows:
            found[document_row] = (*found.get(document_row, ()), path)
        return found

    def documents(self) -> list[tuple[str, Metadata, int]]:
        """``(doc_id, metadata, chunk count)`` for every document."""
        rows = self._connection().execute(
            "SELECT d.doc_id, d.title, d.date, d.author, d.source, d.date_source, COUNT(c.id) FROM documents d"
            f" LEFT JOIN chunks c ON c.document_id = d.id WHERE 1{self._shown} GROUP BY d.id ORDER BY d.doc_id"
        )
        return [(r[0], Metadata(*r[1:6]), r[6]) for r in rows]

    def file_stats(self) -> dict[str, str]:
        """Each path the build of this store indexed, with its stat line then."""
        return dict(self._connection().execute("SELECT path, stat FROM files"))

    def reusable_files(self, stats: Mapping[str, str] | None = None, store: str = "") -> dict[str, ReusableFile]:
        """Every indexed path with its recorded stat line and the document it gave (its id or alias as ``doc_id``),
        for an update to take instead of reading files that did not change.

        Only the columns before each document's text are read (see ``Document.stored``), so no text is.

        Args:
            stats: the stat lines to use (a segmented index's newest), instead of this store's own.
            store: this store's checksum in its manifest, which each document names as where it is stored.
        """
        stats = self.file_stats() if stats is None else stats
        rows = self._connection().execute(
            f"SELECT id, doc_id, content_hash, title, date, author, source FROM documents d WHERE 1{self._shown}"
        )
        starts: dict[int, list[int]] = {}
        for document_row, start in self._connection().execute("SELECT document_id, start FROM pages ORDER BY number"):
            starts.setdefault(document_row, []).append(start)
        paths: dict[int, list[str]] = {}
        for document_row, path in self._connection().execute("SELECT document_id, path FROM aliases"):
            paths.setdefault(document_row, []).append(path)
        found = {}
        for row in rows:
            pages = tuple(starts[row[0]]) if row[0] in starts else None
            stored = StoredRow(store, row[0])
            document = Document(row[1], "", row[2], Metadata(*row[3:7]), pages=pages, stored=stored)
            for path in (row[1], *paths.get(row[0], ())):
                if path in stats:
                    found[path] = ReusableFile(stats[path], document)
        return found

    def skipped(self) -> list[Skipped]:
        """Files that were not indexed, and why."""
        return [Skipped(*r) for r in self._connection().execute("SELECT doc_id, reason FROM skipped ORDER BY doc_id")]

    def _sentence_file(self) -> SentenceFile:
        """The index's sentences file, mapped by path beside the store the first time when not given."""
        if self._sentences is None:
            self._sentences = SentenceFile.load(Path(self.path).parent / SENTENCES_FILE)
        return self._sentences

    def sentence_vectors_of(self, ids: Sequence[int], dimension: int) -> dict[int, Quantized]:
        """Per-sentence vectors of many chunks at once, by chunk id, as stored: ``(int8 codes, float32 scales)``."""
        return self._sentence_file().of(ids)

    def sentence_vector_bytes(self) -> int:
        """Total stored size of every chunk's sentence vectors."""
        return self._sentence_file().nbytes

    def all_sentence_vectors(self, dimension: int) -> dict[int, Quantized]:
        """Per-sentence vectors of every chunk, by chunk id, as stored: ``(int8 codes, float32 scales)``."""
        return self._sentence_file().all()

    def count_undated(self, search_filter: SearchFilter) -> int:
        """How many documents the filter's source part lets through that have no date: those its date range
        leaves out for want of one."""
        where, params = search_filter.undated_sql()
        row = (
            self._connection()
            .execute(f"SELECT COUNT(*) FROM documents d WHERE {where}{self._shown}", params)
            .fetchone()
        )
        return int(row[0])

    def allowed_chunks(self, search_filter: SearchFilter) -> np.ndarray:
        """Ids of the chunks whose documents the filter lets through (sorted), for the other stores to rank
        among: the filter is data, and this store applies it in SQL (``SearchFilter.sql``)."""
        where, params = search_filter.sql()
        rows = self._connection().execute(
            f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id WHERE {where}{self._shown}"
            " ORDER BY c.id",
            params,
        )
        return np.array([r[0] for r in rows], dtype=np.int64)

    def hidden_chunks(self) -> np.ndarray:
        """Ids of the chunks of hidden documents, sorted."""
        if not self.hidden:
            return np.empty(0, dtype=np.int64)
        rows = self._connection().execute(
            f"SELECT id FROM chunks WHERE document_id IN ({','.join(map(str, self.hidden))}) ORDER BY id"
        )
        return np.array([r[0] for r in rows], dtype=np.int64)
