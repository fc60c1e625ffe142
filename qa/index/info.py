"""What `qa info` tells about an index: how it was built, what it holds and which files it skipped."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.index.manifest import Manifest, verify_checksums
from qa.index.segments import open_store

if TYPE_CHECKING:
    from qa.ingest.corpus import Skipped
    from qa.ingest.metadata import Metadata


@dataclass(frozen=True)
class IndexInfo:
    """An index's manifest, its documents (``(doc_id, metadata, passages)`` by id) and the files its build skipped."""

    index_dir: Path
    manifest: Manifest
    documents: list[tuple[str, Metadata, int]]
    skipped: list[Skipped]

    def as_dict(self) -> dict[str, Any]:
        """The JSON object `qa info --json` prints."""
        manifest = self.manifest
        return {
            "index_dir": str(self.index_dir),
            "model": manifest.model,
            "dimension": manifest.dimension,
            "encoder": manifest.encoder,
            "vectors": manifest.vectors,
            "format_version": manifest.format_version,
            "chunking": manifest.chunking,
            "corpus": manifest.corpus,
            "counts": manifest.counts,
            "created": manifest.created,
            "segments": len(manifest.segments) or 1,
            "documents": [
                {
                    "source": doc_id,
                    "title": meta.title,
                    "date": meta.date,
                    "author": meta.author,
                    "source_name": meta.source,
                    "chunks": passages,
                }
                for doc_id, meta, passages in self.documents
            ],
            "skipped": [{"source": s.doc_id, "reason": s.reason} for s in self.skipped],
        }


def index_info(index_dir: Path) -> IndexInfo:
    """Read the index in ``index_dir`` (its manifest and checksums checked first) and describe it.

    Raises:
        IndexNotFound, IndexIncompatible, IndexCorrupt: no usable index there.
    """
    manifest = Manifest.read(index_dir)
    verify_checksums(index_dir, manifest)
    store = open_store(index_dir, manifest)
    try:
        documents = store.documents()
        skipped = store.skipped()
    finally:
        store.close()
    return IndexInfo(Path(index_dir).absolute(), manifest, documents, skipped)
