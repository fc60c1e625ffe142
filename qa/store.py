"""SQLite store: documents, chunks and embeddings (the source of truth the FAISS file is rebuilt from)."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from qa.chunking import Chunk
from qa.errors import IndexCorrupt
from qa.ingest import Document, Skipped
from qa.metadata import Metadata


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


MIGRATIONS = [m001_create_tables]
SCHEMA_VERSION = len(MIGRATIONS)


def text_hash(text: str) -> str:
    """The key for a passage's embedding."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StoredChunk:
    """A chunk joined with its document's citation fields."""

    id: int
    doc_id: str
    title: str | None
    date: str | None
    start: int
    end: int
    line_start: int
    line_end: int
    text: str


@dataclass(frozen=True)
class StoredDocument:
    """A document as served to clients."""

    doc_id: str
    text: str
    content_hash: str
    n_lines: int
    metadata: Metadata


def _chunk_vectors(db: sqlite3.Connection, dimension: int) -> tuple[np.ndarray, np.ndarray]:
    """All chunk ids and their vectors (float32), in id order."""
    rows = db.execute("SELECT c.id, e.vector FROM chunks c JOIN embeddings e USING (text_hash) ORDER BY c.id").fetchall()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), dimension)
    return ids, vectors.astype(np.float32)


def migrate(db: sqlite3.Connection) -> None:
    """Apply the migrations this database has not seen yet."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
        with db:
            migration(db)
            db.execute(f"PRAGMA user_version = {number}")


class StoreWriter:
    """Writes a new store file; used only while an index is being built."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute("PRAGMA foreign_keys = ON")
        # A built index is one self-contained file: no -wal/-shm companions to forget when copying it.
        self.db.execute("PRAGMA journal_mode = DELETE")
        migrate(self.db)

    def add_document(self, document: Document, chunks: Sequence[Chunk]) -> list[int]:
        """Insert a document and its chunks in one transaction; returns the chunk ids (FAISS ids)."""
        meta = document.metadata
        with self.db:
            cursor = self.db.execute(
                "INSERT INTO documents (doc_id, title, date, author, source, content_hash, n_chars, n_lines, text)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    document.doc_id,
                    meta.title,
                    meta.date,
                    meta.author,
                    meta.source,
                    document.content_hash,
                    len(document.text),
                    document.text.count("\n") + 1,
                    document.text,
                ),
            )
            document_row = cursor.lastrowid
            ids = []
            for chunk in chunks:
                cursor = self.db.execute(
                    'INSERT INTO chunks (document_id, ord, start, "end", line_start, line_end, n_tokens,'
                    " text_hash, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        document_row,
                        chunk.index,
                        chunk.start,
                        chunk.end,
                        chunk.line_start,
                        chunk.line_end,
                        chunk.n_tokens,
                        text_hash(chunk.text),
                        chunk.text,
                    ),
                )
                ids.append(cursor.lastrowid)
        return ids

    def add_skipped(self, skipped: Iterable[Skipped]) -> None:
        """Record files that were not indexed, so `qa info` can say why."""
        with self.db:
            self.db.executemany("INSERT INTO skipped (doc_id, reason) VALUES (?, ?)", [(s.doc_id, s.reason) for s in skipped])

    def missing_embeddings(self) -> list[tuple[str, str]]:
        """``(text_hash, text)`` for each distinct chunk text that has no vector yet."""
        return self.db.execute(
            "SELECT text_hash, MIN(text) FROM chunks WHERE text_hash NOT IN (SELECT text_hash FROM embeddings)"
            " GROUP BY text_hash ORDER BY MIN(id)"
        ).fetchall()

    def add_embeddings(self, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Store float32 vectors keyed by passage-text hash."""
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO embeddings (text_hash, vector) VALUES (?, ?)",
                [(h, np.asarray(v, dtype="<f4").tobytes()) for h, v in zip(hashes, vectors)],
            )

    def chunk_vectors(self, dimension: int) -> tuple[np.ndarray, np.ndarray]:
        """All chunk ids and their vectors, in id order."""
        return _chunk_vectors(self.db, dimension)

    def close(self) -> None:
        """Commit and close."""
        self.db.commit()
        self.db.close()


class StoreReader:
    """Read-only access to a built store, safe to share between threads (one connection per thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        version = self._connection().execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            raise IndexCorrupt(f"{path} has schema version {version}, expected {SCHEMA_VERSION}")

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            # immutable=1: an index directory is never changed in place (rebuilds swap whole directories),
            # so no locking is needed and the file may sit on read-only media.
            uri = f"{self.path.resolve().as_uri()}?mode=ro&immutable=1"
            try:
                db = sqlite3.connect(uri, uri=True, check_same_thread=False)
                db.execute("SELECT 1 FROM documents LIMIT 1")
            except sqlite3.DatabaseError as exc:
                raise IndexCorrupt(f"cannot read {self.path}: {exc}") from exc
            self._local.db = db
        return db

    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        """Chunks by id, with their documents' citation fields."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._connection().execute(
            'SELECT c.id, d.doc_id, d.title, d.date, c.start, c."end", c.line_start, c.line_end, c.text'
            f" FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id IN ({marks})",
            [int(i) for i in ids],
        )
        return {row[0]: StoredChunk(*row) for row in rows}

    def iter_chunks(self) -> Iterator[tuple[StoredChunk, int]]:
        """Every chunk with its token count, in document order."""
        rows = self._connection().execute(
            'SELECT c.id, d.doc_id, d.title, d.date, c.start, c."end", c.line_start, c.line_end, c.text, c.n_tokens'
            " FROM chunks c JOIN documents d ON d.id = c.document_id ORDER BY d.doc_id, c.ord"
        )
        for row in rows:
            yield StoredChunk(*row[:-1]), row[-1]

    def document(self, doc_id: str) -> StoredDocument | None:
        """One document by its id, or None."""
        row = self._connection().execute(
            "SELECT doc_id, text, content_hash, n_lines, title, date, author, source FROM documents WHERE doc_id = ?",
            (doc_id,),
        ).fetchone()
        if row is None:
            return None
        return StoredDocument(row[0], row[1], row[2], row[3], Metadata(*row[4:]))

    def documents(self) -> list[tuple[str, Metadata, int]]:
        """``(doc_id, metadata, chunk count)`` for every document."""
        rows = self._connection().execute(
            "SELECT d.doc_id, d.title, d.date, d.author, d.source, COUNT(c.id) FROM documents d"
            " LEFT JOIN chunks c ON c.document_id = d.id GROUP BY d.id ORDER BY d.doc_id"
        )
        return [(r[0], Metadata(*r[1:5]), r[5]) for r in rows]

    def skipped(self) -> list[Skipped]:
        """Files that were not indexed, and why."""
        return [Skipped(*r) for r in self._connection().execute("SELECT doc_id, reason FROM skipped ORDER BY doc_id")]

    def chunk_vectors(self, dimension: int) -> tuple[np.ndarray, np.ndarray]:
        """All chunk ids and their stored vectors, in id order (to rebuild or verify the FAISS file)."""
        return _chunk_vectors(self._connection(), dimension)
