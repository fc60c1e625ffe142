"""Open an index directory as one consistent snapshot: manifest, vectors and store all from the same build.

A build swaps a whole new directory in under the index path (``qa.index.atomic``). Opening its files by path one by one
in separate steps could pair one build's vectors with another's store if a swap lands in between. Here the
directory itself is opened first and every file is opened through that handle, in one quick pass, so all of them
come from the one directory it names, whatever happens to the path meanwhile. SQLite can only be opened by path:
it is opened in the same pass, while the pinned directory is still at the path, and the path is looked at again
afterwards. A directory that a build swaps out is deleted, never put back, and its inode number cannot be reused
while we hold it open, so "the same directory before and after" means SQLite read that directory's store too. If
the path moved on during that pass, it is taken again; the slow part (hashing, reading codes) comes after it,
from the open descriptors, and is never redone because of a swap.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from qa.errors import IndexCorrupt, IndexNotFound, QAError
from qa.index.atomic import missing_index
from qa.index.manifest import (
    CODES_FILE,
    DATABASE_FILE,
    KEYWORDS_FILE,
    MANIFEST_FILE,
    SENTENCES_FILE,
    VECTORS_FILE,
    Manifest,
    required_checksums,
)
from qa.index.postings import Postings
from qa.index.segments import Segment, SegmentedPostings, SegmentedStore, SegmentedVectors, segment_file, segments_of
from qa.index.sentence_vectors import SentenceFile
from qa.index.store import StoreReader
from qa.index.vectors import APPROXIMATE, VectorIndex, _faiss, checked_codes, map_rows

# A swap takes microseconds, builds take seconds and the exposed pass well under a millisecond, so a few tries
# always find a quiet moment.
OPEN_ATTEMPTS = 20
FIRST_RETRY_WAIT = 0.0005  # seconds
MAX_RETRY_WAIT = 0.1
# Files this process has hashed and found as their manifest says, by (device, inode, size, mtime, checksum).
_VERIFIED: set[tuple] = set()
_VERIFIED_LOCK = threading.Lock()
_VERIFIED_MAX = 100_000


class _Moved(Exception):
    """The index path named another directory before the snapshot was complete."""


@dataclass
class Snapshot:
    """One build's manifest, vectors and store (which carries the build's keyword postings as ``store.keywords``),
    and the identity of the directory they came from."""

    manifest: Manifest
    vectors: VectorIndex | SegmentedVectors
    store: "ClosableStore | SegmentedStore"
    identity: tuple


class ClosableStore(StoreReader):
    """A store reader whose connection can be closed when its service is retired (see ``qa.search.reload``)."""

    def close(self) -> None:
        """Close the SQLite connection (and so the file); later reads fail. The keyword postings are let go: their
        mapping is unmapped once no search still holds it."""
        super().close()
        self.keywords = None

    def attach_sentences(self, sentences: SentenceFile) -> None:
        """Give the store its segment's mapped sentences file (opened after the store, from its descriptor)."""
        self._sentences = sentences


def directory_identity(directory_stat: os.stat_result, manifest_stat: os.stat_result) -> tuple:
    """What changes when a build swaps a new index in: the directory's inode and the manifest's stamp."""
    return directory_stat.st_ino, manifest_stat.st_ino, manifest_stat.st_mtime_ns, manifest_stat.st_size


def open_snapshot(index_dir: Path, *, attempts: int = OPEN_ATTEMPTS) -> Snapshot:
    """Open the index at ``index_dir`` with every file from the same build, checked against its manifest.

    Raises:
        IndexNotFound: no index there.
        IndexIncompatible: another format version.
        IndexCorrupt: a file is missing, damaged or not the one the manifest lists; or the directory was
            replaced on every one of ``attempts`` tries.
    """
    index_dir = Path(index_dir)
    for attempt in range(attempts):
        try:
            return _open_once(index_dir)
        except _Moved:
            # A random wait, growing with each try, so a reader never falls into step with a writer that swaps
            # again and again; the first retry waits at most half a millisecond, all twenty together at most 1.3 s.
            time.sleep(random.uniform(0, min(MAX_RETRY_WAIT, FIRST_RETRY_WAIT * 2**attempt)))
        except OSError as exc:  # unreadable (permissions, I/O): an error the service can report, not a crash
            raise IndexCorrupt(f"cannot read the index at {index_dir}: {exc}") from exc
    raise IndexCorrupt(f"index at {index_dir} was replaced {attempts} times while being opened: try again")


def _open_once(index_dir: Path) -> Snapshot:
    """One try at a snapshot; raises ``_Moved`` when the directory was swapped during its short first pass."""
    try:
        directory = os.open(index_dir, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        raise missing_index(index_dir) from None
    except NotADirectoryError:
        raise IndexNotFound(f"no index at {index_dir} (not a directory)") from None
    files = databases = None
    try:
        pinned = os.fstat(directory)
        try:
            manifest, manifest_stat = _read_manifest(index_dir, directory)
            files = _Opened(index_dir, directory, required_checksums(manifest, index_dir))
            databases = _connect_segments(index_dir, manifest)
        except QAError:
            try:
                if not _still_at(index_dir, pinned):
                    raise _Moved from None  # what failed was a directory being taken apart after a swap
                if files is not None:  # a store SQLite cannot read: a file that fails its checksum says why
                    _check_files(files, manifest)
                raise
            finally:
                if files is not None:
                    files.close()
        except BaseException:  # an OSError or an interrupt: nothing opened so far outlives this try
            if files is not None:
                files.close()
            raise
        if not _still_at(index_dir, pinned):
            files.close()
            _close_all(databases)
            raise _Moved
    finally:
        os.close(directory)
    # Every file is open now, and SQLite has read the pinned directory's stores: whatever happens to the path from
    # here on (another swap, the old directory deleted) cannot reach this snapshot, so the slow part (hashing
    # files never seen before, reading codes) is never thrown away and redone.
    try:
        _check_files(files, manifest)
        vectors, store = _open_segments(files, manifest, databases)
    except BaseException:
        _close_all(databases)
        raise
    finally:
        files.close()
    return Snapshot(manifest, vectors, store, directory_identity(pinned, manifest_stat))


class _Opened:
    """Read-only descriptors of an index's files, opened through the pinned directory in one quick pass."""

    def __init__(self, index_dir: Path, directory: int, names: tuple[str, ...]) -> None:
        self.index_dir = index_dir
        self.descriptors: dict[str, int] = {}
        try:
            for name in names:
                try:
                    self.descriptors[name] = os.open(name, os.O_RDONLY, dir_fd=directory)
                except FileNotFoundError:
                    raise IndexCorrupt(f"index at {index_dir} is missing {name}: rebuild it with `qa index`") from None
        except BaseException:
            self.close()
            raise

    def label(self, name: str) -> Path:
        """The file's path, for messages only."""
        return self.index_dir / name

    def close(self) -> None:
        """Close every descriptor (maps made from them stay valid)."""
        for fd in self.descriptors.values():
            os.close(fd)
        self.descriptors = {}


def _connect_segments(index_dir: Path, manifest: Manifest) -> list["ClosableStore"]:
    """Each segment's store, opened by path (SQLite opens nothing else) while the pinned directory is at the path."""
    stores: list[ClosableStore] = []
    try:
        for segment in segments_of(manifest):
            stores.append(ClosableStore(index_dir / segment_file(segment, DATABASE_FILE), hidden=segment.hidden))
    except BaseException:
        _close_all(stores)
        raise
    return stores


def _close_all(stores: list["ClosableStore"] | None) -> None:
    for store in stores or ():
        store.close()


def _open_segments(
    files: _Opened, manifest: Manifest, stores: list["ClosableStore"]
) -> tuple[VectorIndex | SegmentedVectors, "ClosableStore | SegmentedStore"]:
    """Every segment's files, from their descriptors, joined with its store into one vector index and one store
    (an index of one segment that hides nothing is read as it is)."""
    segments = segments_of(manifest)
    parts: list[VectorIndex] = []
    postings: list[Postings] = []
    for segment, store in zip(segments, stores):
        parts.append(_load_vectors(files, segment))
        store.keywords = _load_keywords(files, segment)
        postings.append(store.keywords)
        store.attach_sentences(_load_sentences(files, segment))
    if len(parts) == 1 and not segments[0].hidden:
        return parts[0], stores[0]
    hidden = [store.hidden_chunks() for store in stores]
    joined = SegmentedStore(stores, segments)
    joined.keywords = SegmentedPostings(postings, hidden)
    return SegmentedVectors(parts, hidden, manifest.dimension), joined


def _still_at(index_dir: Path, pinned: os.stat_result) -> bool:
    """Whether ``index_dir`` still names the pinned directory."""
    try:
        now = os.stat(index_dir)
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (pinned.st_dev, pinned.st_ino)


def _read_manifest(index_dir: Path, directory: int) -> tuple[Manifest, os.stat_result]:
    """The pinned directory's manifest, validated, with its stat (for the identity)."""
    try:
        fd = os.open(MANIFEST_FILE, os.O_RDONLY, dir_fd=directory)
    except FileNotFoundError:
        raise IndexNotFound(
            f"no index at {index_dir} (no {MANIFEST_FILE}): run `qa index CORPUS --index {index_dir}` first"
        ) from None
    with os.fdopen(fd, "rb") as handle:
        stat = os.fstat(handle.fileno())
        raw = handle.read()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorrupt(f"unreadable manifest {index_dir / MANIFEST_FILE}: {exc}") from exc
    return Manifest.from_data(data, index_dir), stat


def _check_files(files: _Opened, manifest: Manifest) -> None:
    """Refuse the index if any of its files is not the one its manifest lists."""
    for name, fd in files.descriptors.items():
        _check_file(files.label(name), fd, manifest.checksums[name])


def _check_file(label: Path, fd: int, expected: str) -> None:
    """Refuse a file whose sha256 is not the manifest's.

    A file this process has already hashed, and that the file system shows untouched since (same device, inode,
    size and modification time), is not hashed again: index files are never changed once written, so a reload
    after an update that added a segment hashes the new segment's files only.
    """
    stat = os.fstat(fd)
    seen = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, expected)
    if seen in _VERIFIED:
        return
    digest = hashlib.sha256()
    with os.fdopen(fd, "rb", closefd=False) as handle:
        handle.seek(0)
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() == expected:
        with _VERIFIED_LOCK:
            if len(_VERIFIED) >= _VERIFIED_MAX:
                _VERIFIED.clear()
            _VERIFIED.add(seen)
        return
    raise IndexCorrupt(
        f"index file {label} does not match its manifest checksum (damaged or modified): "
        "rebuild it with `qa index --full`"
    )


def _load_sentences(files: _Opened, segment: Segment) -> SentenceFile:
    """A segment's sentences file, mapped from its descriptor."""
    name = segment_file(segment, SENTENCES_FILE)
    return SentenceFile.open(files.descriptors[name], files.label(name))


def _load_vectors(files: _Opened, segment: Segment) -> VectorIndex:
    """A segment's vectors: the rows file mapped and, for an approximate index, its codes read, both from their
    descriptors (never by path: the path may name another build now)."""
    name = segment_file(segment, VECTORS_FILE)
    ids, rows = map_rows(files.descriptors[name], files.label(name))
    if segment.kind != APPROXIMATE:
        return VectorIndex(ids, rows)
    name = segment_file(segment, CODES_FILE)
    label = files.label(name)
    with os.fdopen(files.descriptors[name], "rb", closefd=False) as handle:
        handle.seek(0)
        try:
            codes = _faiss().read_index(_faiss().PyCallbackIOReader(handle.read))
        except RuntimeError as exc:
            raise IndexCorrupt(f"cannot read vector codes file {label}: {str(exc).splitlines()[0]}") from exc
    return VectorIndex(ids, rows, checked_codes(codes, label))


def _load_keywords(files: _Opened, segment: Segment) -> Postings:
    """A segment's keyword postings, memory-mapped from its descriptor."""
    name = segment_file(segment, KEYWORDS_FILE)
    return Postings.open_fd(files.descriptors[name], str(files.label(name)))
