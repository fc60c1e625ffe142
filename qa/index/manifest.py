"""manifest.json: how an index was built, checked before anything in the index is trusted."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qa.errors import IndexCorrupt, IndexIncompatible, IndexNotFound
from qa.index.atomic import missing_index

# 2: keyword index (FTS5) and sentence spans in the store; passage embedding input recorded.
# 3: page start offsets of paged documents (PDF) in the store (migration m003_pages); HTML, PDF, DOCX read.
# 4: passages know their section path and anchor, documents where their date came from (migration m004_sections).
# 5: keyword postings in keywords.bin (no FTS5 in the store), passage vectors once in vectors.f32 (PQ codes in
#    codes.faiss above 25,000), 8-bit sentence vectors in sentences.i8, each indexed file's stat line in the store.
# 6: segments: an update adds a directory of the new and changed documents' files (a format-5 file set) and hides
#    the documents it replaces, listed in the manifest's "segments" (qa.index.segments), instead of rewriting the index.
FORMAT_VERSION = 6
MANIFEST_FILE = "manifest.json"
# Every passage vector, float32, memory-mapped (qa.index.vectors); an approximate index adds its fast-scan codes.
VECTORS_FILE = "vectors.f32"
CODES_FILE = "codes.faiss"
# Every passage's sentence vectors at 8 bits, memory-mapped (qa.index.sentence_vectors).
SENTENCES_FILE = "sentences.i8"
DATABASE_FILE = "store.sqlite3"
# The keyword postings (qa.index.postings), memory-mapped by readers; FTS5 no longer lives in the store.
KEYWORDS_FILE = "keywords.bin"
# Bumped when the sentence splitter or packing changes, so an old index counts as stale.
# 2: a short sentence that could only stand alone joins the passage before; no passage of overlap alone.
# 3: passages do not run across a heading; a code block that fits in one passage is never cut.
CHUNKER_VERSION = 3


@dataclass
class Manifest:
    """What was built, from what, and with which model: the contract between a build and its readers."""

    format_version: int
    model: str
    dimension: int
    max_tokens: int
    chunking: dict
    corpus: dict
    counts: dict
    checksums: dict
    created: str
    # The backend and precision that embedded the passages; ONNX fp32 and PyTorch fp32 give the same vectors.
    encoder: dict = field(default_factory=lambda: {"backend": "torch", "precision": "fp32"})
    # The vector search: "exact" (over the rows) or "approximate" (PQ fast-scan codes, exact re-ranking), by size.
    vectors: dict = field(default_factory=dict)
    normalized: bool = True
    metric: str = "cosine (inner product of unit vectors)"
    files: dict = field(
        default_factory=lambda: {
            "vectors": VECTORS_FILE,
            "sentences": SENTENCES_FILE,
            "database": DATABASE_FILE,
            "keywords": KEYWORDS_FILE,
        }
    )
    # The segments the index is made of, oldest first (qa.index.segments.Segment): the first is the files at the top of
    # the directory, each later one a sub-directory an update added; empty means the top files alone.
    segments: list = field(default_factory=list)
    # Each file's size, modification time (ns) and inode when its checksum was last taken (``file_state``): a
    # build need not hash again a file the file system shows untouched since (``verify_checksums``).
    written: dict = field(default_factory=dict)

    @property
    def precision(self) -> str:
        """The precision the passages were embedded at ("fp32" for indexes that predate the field)."""
        return self.encoder.get("precision", "fp32")

    def write(self, directory: Path) -> None:
        """Write ``manifest.json`` into ``directory``."""
        (directory / MANIFEST_FILE).write_text(
            json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )

    @classmethod
    def read(cls, directory: Path) -> "Manifest":
        """Read and validate the manifest of the index at ``directory``.

        Raises:
            IndexNotFound: no index there.
            IndexIncompatible: another format version.
            IndexCorrupt: the manifest is unreadable or incomplete.
        """
        path = directory / MANIFEST_FILE
        if not directory.is_dir():
            raise missing_index(directory)
        if not path.is_file():
            raise IndexNotFound(
                f"no index at {directory} (no {MANIFEST_FILE}): run `qa index CORPUS --index {directory}` first"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IndexCorrupt(f"unreadable manifest {path}: {exc}") from exc
        return cls.from_data(data, directory)

    @classmethod
    def from_data(cls, data: object, directory: Path) -> "Manifest":
        """Validate the parsed ``manifest.json`` of the index at ``directory``.

        Raises:
            IndexIncompatible: another format version.
            IndexCorrupt: not a JSON object, incomplete, or a field of the wrong JSON type.
        """
        path = directory / MANIFEST_FILE
        if not isinstance(data, dict):
            raise IndexCorrupt(f"unreadable manifest {path}: not a JSON object")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise IndexIncompatible(
                f"index at {directory} has format version {version!r}; this version of qa reads format "
                f"{FORMAT_VERSION}: rebuild it with `qa index CORPUS --index {directory}`"
            )
        try:
            manifest = cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except TypeError as exc:
            raise IndexCorrupt(f"incomplete manifest {path}: {exc}") from exc
        wrong = _wrong_types(manifest)
        if wrong:
            raise IndexCorrupt(f"malformed manifest {path}: {wrong}: rebuild it with `qa index`")
        return manifest


# What each field of a manifest must hold, beyond its dataclass annotation: the entries readers look up.
_JSON_TYPES = {"int": int, "str": str, "dict": dict, "bool": bool, "list": list}
_REQUIRED_ENTRIES: dict[str, dict[str, type]] = {
    "chunking": {"size": int, "overlap": int, "splitter": str},
    "counts": {"documents": int, "chunks": int},
}


def _type_name(kind: type) -> str:
    return {int: "an integer", str: "a string", dict: "an object", bool: "true or false", list: "a list"}[kind]


def _wrong_types(manifest: Manifest) -> str | None:
    """What in ``manifest`` has the wrong JSON type (a number as text, a list for an object); None when all is
    well. JSON's true is no integer here, though Python counts it as one."""
    for name, annotation in Manifest.__annotations__.items():
        kind, value = _JSON_TYPES[annotation], getattr(manifest, name)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            return f"{name} is not {_type_name(kind)}"
    for name, entries in _REQUIRED_ENTRIES.items():
        for key, kind in entries.items():
            value = getattr(manifest, name).get(key)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                return f"{name}.{key} is missing or not {_type_name(kind)}"
    for name in ("root", "fingerprint"):
        if not isinstance(manifest.corpus.get(name, ""), str):
            return f"corpus.{name} is not a string"
    return None


# Every file a reader opens; a manifest must vouch for each (an empty "checksums" would turn the check off).
INDEX_FILES = (VECTORS_FILE, SENTENCES_FILE, DATABASE_FILE, KEYWORDS_FILE)


def segment_files(directory: str, kind: str | None) -> tuple[str, ...]:
    """The files of one segment, as paths inside the index: :data:`INDEX_FILES`, and the codes of an approximate
    segment, in ``directory`` ("." for the files at the top)."""
    names = INDEX_FILES + ((CODES_FILE,) if kind == "approximate" else ())
    return names if directory == "." else tuple(f"{directory}/{name}" for name in names)


def index_files(manifest: Manifest) -> tuple[str, ...]:
    """The files a reader of this index opens: each segment's (qa.index.segments), the top ones first."""
    files = segment_files(".", manifest.vectors.get("kind"))
    for entry in manifest.segments[1:]:
        if isinstance(entry, dict) and isinstance(entry.get("dir"), str):
            files += segment_files(entry["dir"], entry.get("kind"))
    return files


def required_checksums(manifest: Manifest, directory: Path) -> tuple[str, ...]:
    """The files whose checksums must be checked before the index at ``directory`` is used.

    Raises:
        IndexCorrupt: the manifest lacks a checksum for one of them.
    """
    needed = index_files(manifest)
    missing = [name for name in needed if not isinstance(manifest.checksums.get(name), str)]
    if missing:
        raise IndexCorrupt(
            f"manifest of the index at {directory} lists no checksum for {', '.join(missing)}, so its files "
            "cannot be trusted: rebuild it with `qa index`"
        )
    return needed


def file_checksum(path: Path) -> str:
    """sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_state(path: Path) -> list[int]:
    """What the file system says of a file that changes when it is written, truncated, replaced or copied: its
    size, modification time (ns) and inode."""
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino]


def verify_checksums(directory: Path, manifest: Manifest, *, trust_untouched: bool = False) -> None:
    """Refuse an index whose files are not the ones the manifest describes (truncated, swapped, edited).

    Args:
        trust_untouched: skip hashing a file whose ``file_state`` is still the one the manifest recorded with its
            checksum (what a build does before reusing an index, so an update does not read every byte of it;
            loading an index for searching always hashes everything).

    Raises:
        IndexCorrupt: a file is missing or its checksum differs, or the manifest lists no checksum for a file
            the index needs.
    """
    for name in required_checksums(manifest, directory):
        path, expected = directory / name, manifest.checksums[name]
        if not path.is_file():
            raise IndexCorrupt(f"index at {directory} is missing {name}: rebuild it with `qa index`")
        if trust_untouched and manifest.written.get(name) == file_state(path):
            continue
        if file_checksum(path) != expected:
            raise IndexCorrupt(
                f"index file {path} does not match its manifest checksum (damaged or modified): "
                "rebuild it with `qa index --full`"
            )
