"""qa: semantic question answering over your own documents, every answer a cited passage.

The Python API::

    from qa import Index
    index = Index.open("embeddings")                  # or Index.build("docs/", "docs-index")
    answer = index.search("how do I rotate the logs?", top_k=5, source="ops/*", after="2024")
    for hit in answer.results:
        print(hit.citation.source, hit.citation.line_start, hit.citation.line_end, hit.text)

``import qa`` is cheap: the index, model and search code load on first use of ``Index`` and friends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qa.errors import (
    BuildInProgress,
    ConfigError,
    CorpusError,
    DocumentNotFound,
    EncoderUnavailable,
    IndexCorrupt,
    IndexIncompatible,
    IndexNotFound,
    IndexWriteError,
    InvalidRequest,
    ModelError,
    QAError,
)

__version__ = "0.1.0"

# Public name -> the module that defines it, imported when the name is first used.
_LAZY = {
    "Index": "qa.library",
    "Answer": "qa.search.service",
    "Hit": "qa.search.service",
    "Citation": "qa.search.service",
    "Highlight": "qa.search.service",
    "StoredDocument": "qa.index.store",
    "BuildReport": "qa.index.indexer",
    "Settings": "qa.config",
}

__all__ = [
    "__version__",
    *_LAZY,
    "QAError",
    "InvalidRequest",
    "ConfigError",
    "CorpusError",
    "IndexNotFound",
    "IndexIncompatible",
    "IndexCorrupt",
    "IndexWriteError",
    "ModelError",
    "EncoderUnavailable",
    "DocumentNotFound",
    "BuildInProgress",
]

if TYPE_CHECKING:
    from qa.config import Settings as Settings
    from qa.index.indexer import BuildReport as BuildReport
    from qa.index.store import StoredDocument as StoredDocument
    from qa.library import Index as Index
    from qa.search.service import Answer as Answer
    from qa.search.service import Citation as Citation
    from qa.search.service import Highlight as Highlight
    from qa.search.service import Hit as Hit


def __getattr__(name: str):
    """Import ``Index``, ``Answer`` and the other public classes on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'qa' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
