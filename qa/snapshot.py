"""Open an index directory as one consistent snapshot: manifest, vectors and store all from the same build.

A build swaps a whole new directory in under the index path (``qa.atomic``). Opening its files by path one by one
in separate steps could pair one build's vectors with another's store if a swap lands in between. Here the
directory itself is opened first and every file is opened through that handle, so all of them come from the
one directory it names, whatever happens to the path meanwhile. SQLite can only be opened by path: it is
opened while the pinned directory is still at the path, and the path is looked at again afterwards. A
directory that a build swaps out is deleted, never put back, and its inode number cannot be reused while
we hold it open, so "the same directory before and after" means SQLite read that directory's store too. If
the path moved on during the open, the snapshot is thrown away and taken again.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from qa.errors import IndexCorrupt, IndexNotFound, QAError
from qa.manifest import (
    CODES_FILE,
    DATABASE_FILE,
    KEYWORDS_FILE,
    MANIFEST_FILE,
    SENTENCES_FILE,
    VECTORS_FILE,
    Manifest,
    required_checksums,
)
from qa.postings import Postings
from qa.segments import TOP, Segment, SegmentedPostings, SegmentedStore, SegmentedVectors, segments_of
from qa.sentences import SentenceFile
from qa.store import StoreReader
from qa.vectors import APPROXIMATE, VectorIndex, _faiss, checked_codes, map_rows

# A swap takes microseconds and builds take seconds, so a few tries always find a quiet moment.
OPEN_ATTEMPTS = 20
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
    """A store reader whose connection can be closed when its service is retired (see ``qa.reload``)."""

    def close(self) -> None:
        """Close the SQLite connection (and so the file); later reads fail. The keyword postings are let go: their
        mapping is unmapped once no search still holds it."""
        super().close()
        self.keywords = None


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
    for _ in range(attempts):
        try:
            return _open_once(index_dir)
        except _Moved:
            continue
        except OSError as exc:  # unreadable (permissions, I/O): an error the service can report, not a crash
            raise IndexCorrupt(f"cannot read the index at {index_dir}: {exc}") from exc
    raise IndexCorrupt(f"index at {index_dir} was replaced {attempts} times while being opened: try again")


def _open_once(index_dir: Path) -> Snapshot:
    """One try at a snapshot; raises ``_Moved`` when the directory was swapped during it."""
    try:
        directory = os.open(index_dir, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        raise IndexNotFound(f"no index at {index_dir}: run `qa index CORPUS --index {index_dir}` first") from None
    except NotADirectoryError:
        raise IndexNotFound(f"no index at {index_dir} (not a directory)") from None
    store = None
    try:
        pinned = os.fstat(directory)
        try:
            manifest, manifest_stat = _read_manifest(index_dir, directory)
            for name in required_checksums(manifest, index_dir):
                _check_file(index_dir, directory, name, manifest.checksums[name])
            vectors, store = _open_segments(index_dir, directory, manifest)
        except QAError:
            if _still_at(index_dir, pinned):
                raise
            raise _Moved from None  # what failed was a directory being taken apart after a swap
        if not _still_at(index_dir, pinned):
            store.close()
            raise _Moved
    finally:
        os.close(directory)
    return Snapshot(manifest, vectors, store, directory_identity(pinned, manifest_stat))


def _open_segments(
    index_dir: Path, directory: int, manifest: Manifest
) -> tuple[VectorIndex | SegmentedVectors, "ClosableStore | SegmentedStore"]:
    """Every segment's files, through the pinned directory, joined into one vector index and one store (an index
    of one segment that hides nothing is read as it is)."""
    segments = segments_of(manifest)
    parts: list[tuple[VectorIndex, ClosableStore]] = []
    try:
        for segment in segments:
            parts.append(_open_segment(index_dir, directory, segment))
    except BaseException:
        for _, store in parts:
            store.close()
        raise
    if len(parts) == 1 and not segments[0].hidden:
        return parts[0]
    stores = [store for _, store in parts]
    hidden = [store.hidden_chunks() for store in stores]
    joined = SegmentedStore(stores, segments)
    joined.keywords = SegmentedPostings([store.keywords for store in stores], hidden)
    return SegmentedVectors([vectors for vectors, _ in parts], hidden, manifest.dimension), joined


def _open_segment(index_dir: Path, directory: int, segment: Segment) -> tuple[VectorIndex, "ClosableStore"]:
    """One segment's vectors and store (carrying its keyword postings), opened through the pinned directory."""
    prefix = "" if segment.dir == TOP else f"{segment.dir}/"
    vectors = _load_vectors(index_dir, directory, prefix, segment.kind)
    keywords = _load_keywords(index_dir, directory, prefix)
    path = index_dir / prefix / DATABASE_FILE
    store = ClosableStore(path, _load_sentences(index_dir, directory, prefix), hidden=segment.hidden)
    store.keywords = keywords
    return vectors, store


def _still_at(index_dir: Path, pinned: os.stat_result) -> bool:
    """Whether ``index_dir`` still names the pinned directory."""
    try:
        now = os.stat(index_dir)
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (pinned.st_dev, pinned.st_ino)


def _open_in(directory: int, index_dir: Path, name: str) -> int:
    """A read-only descriptor of ``name`` inside the pinned directory."""
    try:
        return os.open(name, os.O_RDONLY, dir_fd=directory)
    except FileNotFoundError:
        raise IndexCorrupt(f"index at {index_dir} is missing {name}: rebuild it with `qa index`") from None


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


def _check_file(index_dir: Path, directory: int, name: str, expected: str) -> None:
    """Refuse a file of the pinned directory whose sha256 is not the manifest's.

    A file this process has already hashed, and that the file system shows untouched since (same device, inode,
    size and modification time), is not hashed again: index files are never changed once written, so a reload
    after an update that added a segment hashes the new segment's files only.
    """
    with os.fdopen(_open_in(directory, index_dir, name), "rb") as handle:
        stat = os.fstat(handle.fileno())
        seen = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, expected)
        if seen in _VERIFIED:
            return
        digest = hashlib.sha256()
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() == expected:
        with _VERIFIED_LOCK:
            if len(_VERIFIED) >= _VERIFIED_MAX:
                _VERIFIED.clear()
            _VERIFIED.add(seen)
        return
    raise IndexCorrupt(
        f"index file {index_dir / name} does not match its manifest checksum (damaged or modified): "
        "rebuild it with `qa index --full`"
    )


def _load_sentences(index_dir: Path, directory: int, prefix: str) -> SentenceFile:
    """A segment's sentences file, mapped through the pinned directory's descriptor."""
    fd = _open_in(directory, index_dir, prefix + SENTENCES_FILE)
    try:
        return SentenceFile.open(fd, index_dir / prefix / SENTENCES_FILE)
    finally:
        os.close(fd)  # the map lasts as long as the vectors are used, without the descriptor


def _load_vectors(index_dir: Path, directory: int, prefix: str, kind: str) -> VectorIndex:
    """A segment's vectors: the rows file mapped and, for an approximate index, its codes read, both through the
    pinned directory's descriptor (never by path: the path may name another build now)."""
    fd = _open_in(directory, index_dir, prefix + VECTORS_FILE)
    try:
        ids, rows = map_rows(fd, index_dir / prefix / VECTORS_FILE)
    finally:
        os.close(fd)  # the map lasts as long as the rows are used, without the descriptor
    if kind != APPROXIMATE:
        return VectorIndex(ids, rows)
    label = index_dir / prefix / CODES_FILE
    with os.fdopen(_open_in(directory, index_dir, prefix + CODES_FILE), "rb") as handle:
        try:
            codes = _faiss().read_index(_faiss().PyCallbackIOReader(handle.read))
        except RuntimeError as exc:
            raise IndexCorrupt(f"cannot read vector codes file {label}: {str(exc).splitlines()[0]}") from exc
    return VectorIndex(ids, rows, checked_codes(codes, label))


def _load_keywords(index_dir: Path, directory: int, prefix: str) -> Postings:
    """A segment's keyword postings, memory-mapped through the pinned directory's descriptor."""
    fd = _open_in(directory, index_dir, prefix + KEYWORDS_FILE)
    try:
        return Postings.open_fd(fd, str(index_dir / prefix / KEYWORDS_FILE))
    finally:
        os.close(fd)
