"""Read a corpus folder: decode each text file, pull its metadata, and say why anything was skipped."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import CorpusError
from qa.metadata import Metadata, extract_metadata

SUPPORTED_SUFFIXES = (".txt", ".md")
MAX_FILE_BYTES = 50 * 1024 * 1024
# Bytes that never occur in text; one in the first block marks a binary file.
_BINARY_SNIFF_BYTES = 8192


@dataclass(frozen=True)
class Document:
    """A decoded document: ``doc_id`` is its POSIX path relative to the corpus root."""

    doc_id: str
    text: str
    content_hash: str
    metadata: Metadata


@dataclass(frozen=True)
class Skipped:
    """A file that was not indexed, and why."""

    doc_id: str
    reason: str


@dataclass
class CorpusScan:
    """Everything found under a corpus root."""

    root: Path
    documents: list[Document] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    fingerprint: str = ""


def _candidate_files(root: Path) -> list[tuple[str, Path]]:
    """Supported files under ``root`` (hidden entries excluded), as sorted ``(doc_id, path)`` pairs."""
    found = []
    for directory, subdirs, files in os.walk(root, followlinks=False, onerror=None):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in files:
            if name.startswith(".") or not name.lower().endswith(SUPPORTED_SUFFIXES):
                continue
            path = Path(directory) / name
            found.append((path.relative_to(root).as_posix(), path))
    return sorted(found)


def read_document(root: Path, doc_id: str, path: Path) -> tuple[Document | None, Skipped | None, str]:
    """Read one file.

    Returns:
        ``(document, None, hash)`` when it can be indexed, otherwise ``(None, skipped, hash)``; the hash is
        of the raw bytes ("" when unreadable) and feeds the corpus fingerprint either way.
    """
    if path.is_symlink():
        target = path.resolve()
        if not target.is_relative_to(root):
            return None, Skipped(doc_id, "symbolic link points outside the corpus"), ""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return None, Skipped(doc_id, f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB"), ""
        raw = path.read_bytes()
    except OSError as exc:
        return None, Skipped(doc_id, f"cannot be read: {exc.strerror or exc}"), ""
    digest = hashlib.sha256(raw).hexdigest()
    if b"\x00" in raw[:_BINARY_SNIFF_BYTES]:
        return None, Skipped(doc_id, "not a text file (binary content)"), digest
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, Skipped(doc_id, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"), digest
    # A byte-order mark is not content; offsets count from the first real character.
    text = text.removeprefix("\ufeff")
    if not text.strip():
        return None, Skipped(doc_id, "empty"), digest
    metadata = extract_metadata(text, suffix=path.suffix.lower())
    return Document(doc_id=doc_id, text=text, content_hash=digest, metadata=metadata), None, digest


def scan_corpus(root: str | os.PathLike[str]) -> CorpusScan:
    """Read every supported file under ``root`` recursively.

    Raises:
        CorpusError: the folder is missing or unreadable.
    """
    root_path = Path(root).expanduser()
    if not root_path.exists():
        raise CorpusError(f"corpus folder not found: {root_path}")
    if not root_path.is_dir():
        raise CorpusError(f"corpus is not a folder: {root_path}")
    if not os.access(root_path, os.R_OK | os.X_OK):
        raise CorpusError(f"corpus folder cannot be read: {root_path}")
    root_path = root_path.resolve()
    scan = CorpusScan(root=root_path)
    fingerprint = hashlib.sha256()
    for doc_id, path in _candidate_files(root_path):
        document, skipped, digest = read_document(root_path, doc_id, path)
        fingerprint.update(f"{doc_id}\0{digest}\n".encode())
        if document is not None:
            scan.documents.append(document)
        else:
            scan.skipped.append(skipped)
    scan.fingerprint = fingerprint.hexdigest()
    return scan
