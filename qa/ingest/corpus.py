"""Read a corpus folder: extract each document's text (see qa.ingest.formats), pull its metadata, and say why anything
was skipped."""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import os
import re
import stat
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Mapping, cast

from qa.errors import CorpusError
from qa.ingest.formats import SUFFIXES, Extracted, Heading, Unreadable, extract
from qa.ingest.metadata import Metadata, extract_metadata, parse_date

SUPPORTED_SUFFIXES = SUFFIXES
MAX_FILE_BYTES = 50 * 1024 * 1024
# Folders deeper than this under the corpus root are reported, not walked: paths this long are rarely documents.
MAX_FOLDER_DEPTH = 100


@dataclass(frozen=True)
class Document:
    """A document's extracted text: ``doc_id`` is its POSIX path relative to the corpus root.

    ``text`` is what citations index and ``GET /documents/{id}`` serves; ``pages`` holds the offset in it where
    each page starts (page 1 first) for paged formats (PDF), None for the others. ``headings``, ``code`` and
    ``anchors`` are as the format reader found them (see :class:`qa.ingest.formats.Extracted`). ``aliases`` are the
    other paths in the corpus whose bytes are identical (copies, symbolic links), sorted; ``doc_id`` sorts first.

    ``stored`` is set on a document taken from an index instead of read (``ReusableFile``): its text is then left
    in the index (``text`` is empty), and so is its metadata's ``date_source`` (None here; it comes after the text
    in the row, so reading it would read the text): an update trusts the row it names as it stands.
    """

    doc_id: str
    text: str
    content_hash: str
    metadata: Metadata
    pages: tuple[int, ...] | None = None
    headings: tuple[Heading, ...] = ()
    code: tuple[tuple[int, int], ...] = ()
    anchors: tuple[tuple[int, str], ...] = ()
    aliases: tuple[str, ...] = ()
    stored: StoredRow | None = None


@dataclass(frozen=True)
class StoredRow:
    """Where an index holds a document taken from it instead of read: the store of its segment, named by the store
    file's checksum in the manifest (equal checksums, equal rows), and the document's row there."""

    store: str
    row: int


@dataclass(frozen=True)
class Skipped:
    """A file that was not indexed, and why."""

    doc_id: str
    reason: str


@dataclass
class CorpusScan:
    """Everything found under a corpus root; a file whose bytes repeat another's is one of its document's aliases."""

    root: Path
    documents: list[Document] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    fingerprint: str = ""
    # What the file system said about the corpus before any file was read (see ``corpus_stamp``).
    stamp: str = ""
    # Each indexed path's stat line (``_stat_line``) as taken before it was read: an update re-reads only the
    # files whose line differs (see ``ReusableFile``).
    stats: dict[str, str] = field(default_factory=dict)
    # How many documents came from the previous index instead of being read again.
    reused: int = 0
    # Seconds spent reading and extracting files (the rest of a scan is the walk and the comparison with ``reuse``).
    read_seconds: float = 0.0

    @property
    def duplicates(self) -> int:
        """How many files were folded into another file's document because their bytes are identical."""
        return sum(len(document.aliases) for document in self.documents)


def _display_name(name: str) -> str:
    """``name`` as valid text: bytes that are not UTF-8 (surrogate escapes from the file system) become ``\\xNN``.

    An ASCII name, what most corpora have, is valid as it is (no encoding per file of a walk)."""
    return name if name.isascii() else os.fsencode(name).decode("utf-8", errors="backslashreplace")


def is_valid_text(value: str) -> bool:
    """Whether text can be stored, compared and sent as UTF-8: no unpaired surrogates (from file-system
    surrogate escapes, or JSON's ``"\\ud800"``), which SQLite, JSON and terminals cannot take."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _candidate_files(root: Path) -> tuple[list[tuple[str, str]], list[Skipped]]:
    """Supported files under ``root``, as sorted ``(doc_id, path)`` pairs (``path`` as a string: the walk makes no
    ``Path`` per file), and everything passed over: hidden files and folders, symbolic links to folders, folders
    that could not be listed or are nested too deep (each a :class:`Skipped`; a folder's id ends with ``/``).

    Symbolic links to folders are never followed, so a link back up the tree cannot loop. The walk keeps its own
    stack rather than recursing, so no depth of folders can overflow Python's call stack.
    """
    found: list[tuple[str, str]] = []
    passed_over: list[Skipped] = []
    # (folder, its doc_id prefix: "" for the root, else its relative POSIX path and "/", depth)
    pending: list[tuple[str, str, int]] = [(str(root), "", 0)]
    while pending:
        directory, prefix, depth = pending.pop()
        try:
            with os.scandir(directory) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as exc:
            reason = f"folder cannot be read: {exc.strerror or exc}"
            passed_over.append(Skipped(_folder_id(prefix), reason))
            continue
        for entry in entries:
            name = entry.name
            supported = is_supported_name(name)
            try:
                is_folder = entry.is_dir(follow_symlinks=False)
                is_link_to_folder = not is_folder and entry.is_symlink() and entry.is_dir(follow_symlinks=True)
            except OSError:  # vanished or unreadable meanwhile: as a file, read_document says why
                is_folder = is_link_to_folder = False
            folder_like = is_folder or is_link_to_folder
            if name.startswith("."):
                # Hidden folders (.git, .cache) and hidden documents are reported; other hidden files are not ours.
                if folder_like or supported:
                    passed_over.append(Skipped(_display_name(prefix + name) + ("/" if folder_like else ""), "hidden"))
            elif is_link_to_folder:
                reason = "symbolic link to a folder (not followed)"
                passed_over.append(Skipped(_folder_id(prefix + name + "/"), reason))
            elif is_folder and depth >= MAX_FOLDER_DEPTH:
                reason = f"nested deeper than {MAX_FOLDER_DEPTH} folders"
                passed_over.append(Skipped(_folder_id(prefix + name + "/"), reason))
            elif is_folder:
                pending.append((entry.path, prefix + name + "/", depth + 1))
            elif supported:
                found.append((prefix + name, entry.path))
    found, built_from = _without_page_sources(sorted(found))
    return found, sorted(passed_over + built_from, key=lambda s: s.doc_id)


def _without_page_sources(found: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[Skipped]]:
    """``found`` without the sources a Sphinx build publishes beside its pages (``_sources/a/b.rst.txt`` next to
    ``a/b.html``) when that page is in the corpus too: the same text in another markup, which would take a second
    place in every result list. Each is reported as skipped, naming its page; a source without its page is kept."""
    ids = {doc_id for doc_id, _ in found}
    kept: list[tuple[str, str]] = []
    skipped: list[Skipped] = []
    for doc_id, path in found:
        match = _PAGE_SOURCE.fullmatch(doc_id)
        page = f"{match.group(1)}{match.group(2)}.html" if match else None
        if page in ids:
            skipped.append(Skipped(_display_name(doc_id), f"the source of {_display_name(page)}, which is indexed"))
        else:
            kept.append((doc_id, path))
    return kept, skipped


# Files that projects name without an extension and write as plain text: read as .txt files are.
TEXT_FILE_NAMES = frozenset(
    {
        "README",
        "INSTALL",
        "NEWS",
        "CHANGES",
        "CHANGELOG",
        "HISTORY",
        "CONTRIBUTING",
        "AUTHORS",
        "THANKS",
        "FAQ",
        "TODO",
        "BUGS",
        "USAGE",
        "LICENSE",
        "LICENCE",
        "COPYING",
        "NOTICE",
    }
)
# A file compressed with gzip is read as the file it holds (named by the rest of its name): Debian ships documentation
# so under /usr/share/doc. Its text may be at most this large once decompressed (as an uncompressed file may be), so
# a small file that inflates to gigabytes (a decompression bomb) is skipped after reading no more than that.
COMPRESSED_SUFFIX = ".gz"
MAX_DECOMPRESSED_BYTES = MAX_FILE_BYTES
# Text formats whose sources sites publish with ".txt" appended, so that browsers show them as text.
_PUBLISHED_AS_TEXT = (".rst", ".md")
# A Sphinx build's copy of a page's source: "<build>/_sources/<page>.rst.txt" (or .md.txt, or .txt before Sphinx 1.5).
_PAGE_SOURCE = re.compile(
    r"((?:.*/)?)_sources/(.+?)(?:" + "|".join(re.escape(suffix) for suffix in _PUBLISHED_AS_TEXT) + r")?\.txt"
)


def is_supported_name(name: str) -> bool:
    """Whether a file of this name is offered to a reader: a supported suffix, a text file known by its name alone
    (``README``), or either compressed with gzip (``README.md.gz``, ``changelog.gz``, as Debian ships them)."""
    inner = name[: -len(COMPRESSED_SUFFIX)] if name.lower().endswith(COMPRESSED_SUFFIX) else name
    return bool(inner) and (inner.lower().endswith(SUPPORTED_SUFFIXES) or inner.upper() in TEXT_FILE_NAMES)


def _folder_id(prefix: str) -> str:
    """A folder's printable id from its doc_id prefix (``"a/b/"``; the root's, ``""``, is ``./``)."""
    return _display_name(prefix or "./")


def format_suffix(doc_id: str) -> str:
    """The suffix that picks a file's reader: its last one, lower-cased (``"a/b.html"`` -> ``".html"``), except for a
    text format's source published as text (Sphinx's ``_sources/page.rst.txt``, ``page.md.txt``), read as that
    format, and ``.txt`` for a text file known by its name alone (``README``, ``LICENSE``: ``TEXT_FILE_NAMES``). A
    gzip file's is that of the name inside it (``"README.md.gz"`` -> ``".md"``, ``"a/b.tar.gz"`` -> ``".tar"``)."""
    name = doc_id[doc_id.rfind("/") + 1 :].lower()
    if name.endswith(COMPRESSED_SUFFIX) and len(name) > len(COMPRESSED_SUFFIX):
        name = name[: -len(COMPRESSED_SUFFIX)]  # a compressed file is read as what it holds
    if name.upper() in TEXT_FILE_NAMES:
        return ".txt"
    for inner in _PUBLISHED_AS_TEXT:
        if name.endswith(inner + ".txt") and len(name) > len(inner) + 4:
            return inner
    dot = name.rfind(".")
    return name[dot:] if 0 < dot < len(name) - 1 else ""


def _as_path(document: Document, doc_id: str) -> Document:
    """``document`` under ``doc_id`` (a copy only when that is another path: most files are their own document)."""
    return document if document.doc_id == doc_id else replace(document, doc_id=doc_id)


def _with_aliases(document: Document, aliases: tuple[str, ...]) -> Document:
    """``document`` with ``aliases`` (a copy only when they differ: most documents have none)."""
    return document if document.aliases == aliases else replace(document, aliases=aliases)


def _size_label(n_bytes: int) -> str:
    """``52428800`` -> ``50 MB``; limits that are not whole megabytes in KB or bytes."""
    for unit, factor in (("MB", 1024 * 1024), ("KB", 1024)):
        if n_bytes >= factor and n_bytes % factor == 0:
            return f"{n_bytes // factor} {unit}"
    return f"{n_bytes} bytes"


def _read_unchanged(path: Path, before: os.stat_result) -> tuple[os.stat_result, bytes] | None:
    """The bytes of ``path`` and its status, if it stood still while read (``before``: its status just before).

    Returns:
        None when its size or modification time moved, or the bytes read are not the size it has: a file being
        written meanwhile, whose half-written text must not be indexed.

    Raises:
        OSError: it cannot be read.
    """
    raw = path.read_bytes()
    after = path.stat()
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) or len(raw) != after.st_size:
        return None
    return after, raw


@dataclass(frozen=True)
class RawFile:
    """A file's bytes as read for indexing, with what extraction needs besides them: its suffix (the reader) and its
    modification time (a date's last resort). ``digest`` is the sha256 of ``raw``."""

    doc_id: str
    raw: bytes
    digest: str
    suffix: str
    modified: float


def read_file(root: Path, doc_id: str, path: str | os.PathLike[str]) -> tuple[RawFile | None, Skipped | None, str]:
    """Read one file's bytes, refusing what cannot be a document (see :func:`read_document`), extracting nothing.

    Returns:
        ``(file, None, hash)`` when its bytes are worth extracting, otherwise ``(None, skipped, hash)``; the hash is
        of the raw bytes ("" when unreadable) and feeds the corpus fingerprint either way.
    """
    path = Path(path)
    if not is_valid_text(doc_id):
        # The id would carry surrogate escapes that SQLite, JSON and terminals cannot take.
        reason = "folder name is not valid UTF-8" if is_valid_text(path.name) else "file name is not valid UTF-8"
        return None, Skipped(_display_name(doc_id), reason), ""
    if path.is_symlink():
        try:
            target = path.resolve(strict=True)
        except RuntimeError:  # Python 3.11 reports a loop this way; later versions raise OSError (ELOOP)
            return None, Skipped(doc_id, "symbolic link cannot be followed: Too many levels of symbolic links"), ""
        except OSError as exc:  # a dangling link, or a loop
            return None, Skipped(doc_id, f"symbolic link cannot be followed: {exc.strerror or exc}"), ""
        if not target.is_relative_to(root):
            return None, Skipped(doc_id, "symbolic link points outside the corpus"), ""
    try:
        info = path.stat()
        # A FIFO or device named like a document would block or never end: read regular files only.
        if not stat.S_ISREG(info.st_mode):
            return None, Skipped(doc_id, "not a regular file"), ""
        if info.st_size > MAX_FILE_BYTES:
            return None, Skipped(doc_id, f"larger than {_size_label(MAX_FILE_BYTES)}"), ""
        read = _read_unchanged(path, info) or _read_unchanged(path, path.stat())
    except OSError as exc:
        return None, Skipped(doc_id, f"cannot be read: {exc.strerror or exc}"), ""
    if read is None:
        return None, Skipped(doc_id, "changed while it was being read"), ""
    info, raw = read
    if len(raw) > MAX_FILE_BYTES:  # grew after it was measured
        return None, Skipped(doc_id, f"larger than {_size_label(MAX_FILE_BYTES)}"), ""
    digest = hashlib.sha256(raw).hexdigest()
    if doc_id.lower().endswith(COMPRESSED_SUFFIX):
        raw, refused = _decompressed(raw)
        if refused:
            return None, Skipped(doc_id, refused), digest
    if not raw.strip():
        return None, Skipped(doc_id, "empty"), digest
    return RawFile(doc_id, raw, digest, format_suffix(doc_id), info.st_mtime), None, digest


def _decompressed(raw: bytes) -> tuple[bytes, str | None]:
    """The bytes a gzip file holds, or ``(b"", reason)`` when it is not gzip, is damaged, or holds more than
    ``MAX_DECOMPRESSED_BYTES`` (no more than that is ever decompressed)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as compressed:
            inner = compressed.read(MAX_DECOMPRESSED_BYTES + 1)
    except (OSError, EOFError, ValueError) as exc:  # gzip.BadGzipFile is an OSError; a cut-off file, EOFError
        return b"", f"not a readable gzip file: {exc}"
    if len(inner) > MAX_DECOMPRESSED_BYTES:
        return b"", f"larger than {_size_label(MAX_DECOMPRESSED_BYTES)} once decompressed"
    return inner, None


def extract_file(file: RawFile, *, main_content: bool = True) -> tuple[Document | None, Skipped | None]:
    """Extract the document in one file's bytes (``main_content``: see :func:`qa.ingest.formats.extract`).

    Returns:
        ``(document, None)``, or ``(None, skipped)`` when the format reader refuses it or finds no text.
    """
    try:
        extracted = extract(file.raw, file.suffix, main_content=main_content)
    except Unreadable as exc:
        return None, Skipped(file.doc_id, str(exc))
    if not extracted.text.strip():
        return None, Skipped(file.doc_id, "empty")
    metadata = _metadata(extracted, file.suffix, file.modified)
    document = Document(
        file.doc_id,
        extracted.text,
        file.digest,
        metadata,
        pages=extracted.pages,
        headings=extracted.headings,
        code=extracted.code,
        anchors=extracted.anchors,
    )
    return document, None


def read_document(
    root: Path,
    doc_id: str,
    path: str | os.PathLike[str],
    *,
    main_content: bool = True,
    seen: dict[str, Document] | None = None,
) -> tuple[Document | None, Skipped | None, str]:
    """Read one file (``main_content``: see :func:`qa.ingest.formats.extract`).

    A file whose size or modification time moves while it is read (someone is writing it) is read once more, and
    skipped as "changed while it was being read" if it moved again: half-written text is never indexed.

    Args:
        seen: documents already read, by :func:`content_key`: a file with the same bytes and suffix is not
            extracted again but returned as that document with its own ``doc_id`` (the caller folds it in).

    Returns:
        ``(document, None, hash)`` when it can be indexed, otherwise ``(None, skipped, hash)``; the hash is
        of the raw bytes ("" when unreadable) and feeds the corpus fingerprint either way.
    """
    file, skipped, digest = read_file(root, doc_id, path)
    if file is None:
        return None, skipped, digest
    if seen is not None and content_key(digest, file.suffix) in seen:
        return replace(seen[content_key(digest, file.suffix)], doc_id=doc_id), None, digest
    document, skipped = extract_file(file, main_content=main_content)
    return document, skipped, digest


def content_key(digest: str, suffix: str) -> str:
    """What makes two files one document: the same bytes read by the same format (the suffix picks the reader and
    the metadata rules, so the same bytes as ``.txt`` and ``.html`` are two different texts)."""
    return f"{digest}{suffix.lower()}"


def _metadata(extracted: Extracted, suffix: str, modified: float) -> Metadata:
    """What the file declares (an HTML ``<title>``, PDF or DOCX properties) first; the rest read from the text.

    The date is the declared one, else one stated in the text, else, as a last resort, the day the file was
    last modified (UTC); ``date_source`` says which.
    """
    found = extract_metadata(extracted.text, suffix=suffix)
    declared = {
        "title": extracted.title if extracted.title and is_valid_text(extracted.title) else None,
        "date": parse_date(extracted.date) if extracted.date else None,
        "author": extracted.author if extracted.author and is_valid_text(extracted.author) else None,
    }
    metadata = replace(found, **{k: v for k, v in declared.items() if v})
    if declared["date"]:
        return replace(metadata, date_source="document")
    if metadata.date:
        return replace(metadata, date_source="text")
    try:
        day = datetime.fromtimestamp(modified, tz=timezone.utc).date().isoformat()
    except (OverflowError, OSError, ValueError):  # a timestamp no calendar holds: no date rather than a wrong one
        return metadata
    return replace(metadata, date=day, date_source="file")


def _checked_root(root: str | os.PathLike[str]) -> Path:
    """``root`` resolved, if it is a readable folder.

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
    return root_path.resolve()


def _stat_line(doc_id: str, path: str) -> str:
    """What the file system says of one candidate file: the link itself and what it names (size, times, inode).

    The change time is in it because no tool can set it back: a file rewritten with the same size and an
    old modification time (``touch -d``, ``cp -p``, an unpacked archive) still changes it.
    """
    itself: os.stat_result | OSError
    try:
        itself = os.lstat(path)
    except OSError as exc:
        itself = exc
    # What a file that is not a link names is the file itself: one system call, not two (a link is stat'ed too).
    named = itself if isinstance(itself, os.stat_result) and not stat.S_ISLNK(itself.st_mode) else _stat_or_error(path)
    return "\0".join((_display_name(doc_id), _stat_part(itself), _stat_part(named)))


def _stat_or_error(path: str) -> os.stat_result | OSError:
    """``os.stat`` of ``path``, or the error it raised."""
    try:
        return os.stat(path)
    except OSError as exc:
        return exc


def _stat_part(info: os.stat_result | OSError) -> str:
    """One status in a stat line: device, inode, mode, size, modification and change times, or the error number."""
    if isinstance(info, OSError):
        return f"error {info.errno}"
    return f"{info.st_dev}:{info.st_ino}:{info.st_mode}:{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}"


def _stat_lines(candidates: list[tuple[str, str]]) -> dict[str, str]:
    """Each candidate's :func:`_stat_line`, by doc_id."""
    return {doc_id: _stat_line(doc_id, path) for doc_id, path in candidates}


def _stamp_of(lines: dict[str, str], passed_over: list[Skipped]) -> str:
    """The stamp of a walk's result: every candidate's stat line and everything passed over."""
    stamp = hashlib.sha256()
    for line in lines.values():
        stamp.update(line.encode() + b"\n")
    for skipped in passed_over:
        stamp.update(f"skipped\0{skipped.doc_id}\0{skipped.reason}\n".encode())
    return stamp.hexdigest()


@dataclass(frozen=True)
class CorpusWalk:
    """A corpus as the file system lists it, before any file is read: the candidate files as sorted ``(doc_id,
    path)`` pairs, what was passed over, each candidate's stat line (``_stat_line``), and the stamp of it all."""

    root: Path
    candidates: list[tuple[str, str]]
    passed_over: list[Skipped]
    lines: dict[str, str]
    stamp: str


def walk_corpus(root: str | os.PathLike[str]) -> CorpusWalk:
    """List and stat the corpus under ``root``, reading no file (see :func:`corpus_stamp`).

    Raises:
        CorpusError: the folder is missing or unreadable.
    """
    root_path = _checked_root(root)
    candidates, passed_over = _candidate_files(root_path)
    lines = _stat_lines(candidates)
    return CorpusWalk(root_path, candidates, passed_over, lines, _stamp_of(lines, passed_over))


def corpus_stamp(root: str | os.PathLike[str]) -> str:
    """A digest of the corpus as the file system describes it (names, sizes, times, inodes), reading no file.

    Equal stamps mean no supported file was added, removed, renamed, rewritten or touched, so an index built
    from the corpus still reflects it; this is how `qa index` and `qa serve` tell in milliseconds that there is
    nothing to do. A differing stamp proves nothing (a file may only have been touched): the full scan decides.

    Raises:
        CorpusError: the folder is missing or unreadable.
    """
    return walk_corpus(root).stamp


@dataclass(frozen=True)
class ReusableFile:
    """A path as the previous index read it: its stat line then, and the document it gave (``doc_id`` is this
    path; its text, headings, code spans and anchors are not loaded, which only chunking needs, and an unchanged
    document's passages are copied or left in place, not cut again: see ``Document.stored``)."""

    stat: str
    document: Document


# The modules and libraries that turn a file's bytes into a document: when any of them changes, the same bytes
# may give another text, so nothing read by another version is reused without reading the file again.
_EXTRACTION_MODULES = (
    "qa.ingest.corpus",
    "qa.ingest.metadata",
    "qa.ingest.formats",
    "qa.ingest.formats.base",
    "qa.ingest.formats.text",
    "qa.ingest.formats.html",
    "qa.ingest.formats.pdf",
    "qa.ingest.formats.docx",
    "qa.ingest.formats.rst",
)
_EXTRACTION_LIBRARIES = ("pypdfium2", "charset-normalizer", "lxml")


@functools.lru_cache(maxsize=None)
def extractor_version() -> str:
    """A digest of the source of every module that extracts text, and of the versions of the libraries they
    call: equal digests mean the same bytes give the same document."""
    import importlib
    import importlib.metadata

    digest = hashlib.sha256()
    for name in _EXTRACTION_MODULES:
        source = importlib.import_module(name).__file__
        assert source is not None  # qa's own modules, imported from their files
        digest.update(Path(source).read_bytes())
    for library in _EXTRACTION_LIBRARIES:
        try:
            digest.update(f"{library}=={importlib.metadata.version(library)}".encode())
        except importlib.metadata.PackageNotFoundError:
            digest.update(f"{library} missing".encode())
    return digest.hexdigest()


# Extracts the documents of many files elsewhere (a cluster: qa/distributed/ray_indexing.py), yielding one ``(document,
# None)`` or ``(None, skipped)`` per file, in the order given, each as :func:`extract_file` would have returned it here.
FileExtractor = Callable[[list[RawFile]], Iterable[tuple[Document | None, Skipped | None]]]


def scan_corpus(
    root: str | os.PathLike[str],
    *,
    main_content: bool = True,
    reuse: Mapping[str, ReusableFile] | None = None,
    extract_files: FileExtractor | None = None,
    walk: CorpusWalk | None = None,
) -> CorpusScan:
    """Read every supported file under ``root`` recursively (``main_content``: see :func:`qa.ingest.formats.extract`).

    Files with identical bytes and suffix (copies, symbolic links to a file in the corpus) become one document:
    the first path in sorted order is its ``doc_id``, the others its ``aliases``. Whatever is not indexed is in
    ``skipped`` with its reason, hidden files and folders and symbolic links to folders included.

    Args:
        reuse: paths as a previous index read them (with the same extraction, see ``extractor_version``): a file
            whose stat line is still the one recorded there is not read again; its document is taken as it was.
        extract_files: extracts elsewhere, all at once after the walk, the files read here (one per set of
            identical files); None extracts each here as it is read. The scan is the same either way.
        walk: a walk of ``root`` already made (:func:`walk_corpus`, by a stamp check before this scan), taken
            instead of walking again; its stat lines were taken before any file was read, as the scan's must be.

    Raises:
        CorpusError: the folder is missing or unreadable.
    """
    root_path = _checked_root(root)
    if walk is None or walk.root != root_path:
        # Taken before any file is read: a file changed during the scan then differs from the stamp next time.
        walk = walk_corpus(root_path)
    candidates, passed_over, lines = walk.candidates, walk.passed_over, walk.lines
    scan = CorpusScan(root=root_path, stamp=walk.stamp)
    fingerprint = hashlib.sha256()
    # content_key -> the first document (or, to extract elsewhere, file) with those bytes; candidates are sorted,
    # so its id sorts first.
    first_of: dict[str, Document | RawFile] = {}
    aliases: dict[str, list[str]] = {}
    skipped_at: list[tuple[int, Skipped]] = []  # by candidate position, so the order is the walk's either way
    reuse = reuse or {}
    for position, (doc_id, path) in enumerate(candidates):
        document: Document | RawFile | None
        known = reuse.get(doc_id)
        if known is not None and known.stat == lines[doc_id]:
            document, skipped, digest = _as_path(known.document, doc_id), None, known.document.content_hash
            scan.reused += 1
        else:
            reading = time.perf_counter()
            if extract_files is not None:
                document, skipped, digest = read_file(root_path, doc_id, path)
            else:
                # Without extract_files every entry of first_of is a Document (files wait there only for it).
                seen = cast("dict[str, Document]", first_of)
                document, skipped, digest = read_document(root_path, doc_id, path, main_content=main_content, seen=seen)
            scan.read_seconds += time.perf_counter() - reading
        if document is not None:
            scan.stats[doc_id] = lines[doc_id]
        fingerprint.update(f"{_display_name(doc_id)}\0{digest}\n".encode())
        key = content_key(digest, format_suffix(doc_id))
        if document is None:
            assert skipped is not None  # a file that gives no document says why (read_file, read_document)
            skipped_at.append((position, skipped))
        elif key in first_of:
            aliases[key].append(doc_id)
        else:
            first_of[key], aliases[key] = document, []
    if extract_files is not None:
        positions = {doc_id: position for position, (doc_id, _) in enumerate(candidates)}
        reading = time.perf_counter()
        skipped_at += _extract_elsewhere(first_of, aliases, extract_files, scan.stats, positions)
        scan.read_seconds += time.perf_counter() - reading
    scan.documents = [_with_aliases(_extracted(item), tuple(aliases[key])) for key, item in first_of.items()]
    scan.skipped = [skipped for _, skipped in sorted(skipped_at, key=lambda item: item[0])]
    for skipped in passed_over:
        fingerprint.update(f"{skipped.doc_id}\0{skipped.reason}\n".encode())
        scan.skipped.append(skipped)
    scan.fingerprint = fingerprint.hexdigest()
    return scan


def _extracted(item: Document | RawFile) -> Document:
    """A scanned document: by the end of a scan, every file that waited for extraction elsewhere has been replaced
    by its document or dropped (``_extract_elsewhere``)."""
    assert isinstance(item, Document)
    return item


def _extract_elsewhere(
    first_of: dict[str, Document | RawFile],
    aliases: dict[str, list[str]],
    extract_files: FileExtractor,
    stats: dict[str, str],
    positions: dict[str, int],
) -> list[tuple[int, Skipped]]:
    """Put in ``first_of`` the documents ``extract_files`` extracts from the files waiting there; a file it refuses
    is dropped with every identical copy (the same bytes get the same reason), as a scan here would drop them.

    Returns:
        What was refused, by candidate position.
    """
    waiting = [(key, item) for key, item in first_of.items() if isinstance(item, RawFile)]
    refused: list[tuple[int, Skipped]] = []
    results = extract_files([file for _, file in waiting])
    for (key, file), (document, skipped) in zip(waiting, results, strict=True):
        if document is not None:
            first_of[key] = document
            continue
        assert skipped is not None  # an extractor gives a document or the reason it has none (extract_file)
        for doc_id in (file.doc_id, *aliases.pop(key)):
            refused.append((positions[doc_id], Skipped(doc_id, skipped.reason)))
            stats.pop(doc_id, None)
        del first_of[key]
    return refused
