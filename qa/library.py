"""The Python API: build or open an index and ask it questions, with the objects the CLI and HTTP layers use."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

from qa.config import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CORPUS,
    DEFAULT_INDEX_DIR,
    Settings,
    build_precision,
)
from qa.embed.encoder import DEFAULT_MODEL, Encoder, load_encoder
from qa.index.indexer import BuildDefaults, BuildReport, build_index, ensure_index, recorded_precision
from qa.index.store import StoredDocument
from qa.search.filters import SearchFilter
from qa.search.service import Answer, SearchService

if TYPE_CHECKING:
    from qa.index.indexer import Progress
    from qa.search.verify import Verification


class Index:
    """An opened index and its model, ready for questions; made by ``Index.open`` or ``Index.build``.

    Example::

        from qa import Index
        index = Index.build("docs/", "docs-index")
        answer = index.search("how do I rotate the logs?", top_k=5, source="ops/*", after="2024")
        for hit in answer.results:
            print(hit.citation.source, hit.citation.line_start, hit.text)

    Every failure a caller can cause raises a ``qa.QAError`` subclass.
    """

    def __init__(self, service: SearchService, report: BuildReport | None = None) -> None:
        self.service = service
        # What the build did, when this object came from ``Index.build``; None after ``Index.open``.
        self.report = report

    @classmethod
    def open(
        cls, index_dir: str | Path = DEFAULT_INDEX_DIR, *, encoder: str = "auto", settings: Settings | None = None
    ) -> "Index":
        """Open the index in ``index_dir`` with the model it was built with.

        Args:
            encoder: "auto" (ONNX when the model allows it: no PyTorch), "onnx" or "torch".
            settings: every other knob (top_k default, fusion, limits); its ``index_dir`` and ``encoder`` are
                replaced by the arguments.

        Raises:
            IndexNotFound, IndexIncompatible, IndexCorrupt, ModelError: the index cannot be used.
        """
        settings = dataclasses.replace(settings or Settings(), index_dir=Path(index_dir), encoder=encoder)
        settings.check()
        return cls(SearchService.open(settings))

    @classmethod
    def build(
        cls,
        corpus: str | Path,
        index_dir: str | Path = DEFAULT_INDEX_DIR,
        *,
        model: str = DEFAULT_MODEL,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
        embed_title: bool = True,
        encoder: str = "auto",
        precision: str | None = None,
        full: bool = False,
    ) -> "Index":
        """Index the .txt, .md, .rst, .html, .pdf and .docx files under ``corpus`` into ``index_dir``, then open it.

        An existing index built the same way is updated (unchanged files are not embedded again), exactly as
        `qa index` does; ``full`` rebuilds from scratch.

        Args:
            precision: "int8" or "fp32"; None keeps an existing index's own, or int8 for a new one.

        Raises:
            CorpusError: the corpus is missing or holds nothing indexable.
            ConfigError: a parameter cannot work (for example a chunk size over the model's limit).
            BuildInProgress: another process is building the same index.
            ModelError: the model cannot be loaded.
        """
        index_dir = Path(index_dir)
        settings = Settings(
            index_dir=index_dir,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            embed_title=embed_title,
            encoder=encoder,
        )
        settings = dataclasses.replace(settings, precision=build_precision(precision, recorded_precision(index_dir)))
        settings.check()
        # Every core for embedding the corpus; the same loaded model then answers the questions.
        loaded: Encoder = load_encoder(
            model,
            settings.encoder,
            precision=settings.precision,
            threads=os.cpu_count() or 1,
            cache_dir=settings.cache_dir,
        )
        report = build_index(
            Path(corpus),
            index_dir,
            loaded,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            embed_title=embed_title,
            full=full,
        )
        return cls(SearchService.open(settings, encoder=loaded), report)

    def search(
        self,
        question: str,
        top_k: int | None = None,
        *,
        mode: str | None = None,
        source: str | None = None,
        after: str | None = None,
        before: str | None = None,
    ) -> Answer:
        """The passages that best answer ``question``, best first, each with its ``Citation``.

        Args:
            top_k: passages to return (default 5).
            mode: "hybrid" (default), "dense" (meaning only) or "keyword" (BM25 only).
            source: only documents whose id matches this glob, e.g. "ops/*.md".
            after, before: only documents dated on or after / on or before this ISO date ("2024", "2024-03",
                "2024-03-29"); undated documents never pass a date filter.

        Returns:
            An ``Answer``; ``answer.as_dict()`` is the JSON that POST /search answers with.

        Raises:
            InvalidRequest: an empty question, ``top_k`` out of range, an unknown mode or a malformed date.
        """
        search_filter = SearchFilter.of(source=source, after=after, before=before)
        return self.service.search(question, top_k, mode=mode, search_filter=search_filter)

    def verify(
        self,
        text: str,
        *,
        source: str | None = None,
        start: int | None = None,
        end: int | None = None,
        page: int | None = None,
    ) -> Verification:
        """Whether ``text`` (a quote, or each sentence of a paragraph) is in the documents, and where.

        Args:
            source, start, end, page: the citation the text came with (a document id, and a span or a page), checked
                against where the text is found.

        Returns:
            A ``Verification``: a verdict per piece (exact, approximate, supported, not_found) with its citations;
            ``as_dict()`` is the JSON that POST /verify answers with.

        Raises:
            InvalidRequest: empty or over-long text, or a malformed citation (a span or page without a source).
        """
        from qa.errors import InvalidRequest
        from qa.search.verify import GivenCitation, Verifier

        if source is None and (start is not None or end is not None or page is not None):
            raise InvalidRequest("start, end and page name a place in the document given by source")
        citation = GivenCitation.of(source, start, end, page) if source is not None else None
        return Verifier(self.service).verify(text, citation)

    def document(self, doc_id: str) -> StoredDocument:
        """A document exactly as indexed: ``document(c.source).text[c.start:c.end]`` is the passage a citation cites.

        Raises:
            DocumentNotFound: no document with that id in the index.
        """
        return self.service.document(doc_id)

    def info(self) -> dict:
        """The index's directory, model, chunking, corpus, counts and build time (what `qa info --json` starts with)."""
        return self.service.info()

    def __repr__(self) -> str:
        counts = self.service.manifest.counts
        return (
            f"Index({str(self.service.settings.index_dir)!r}: {counts.get('documents')} documents, "
            f"{counts.get('chunks')} passages, {self.service.manifest.model})"
        )


def ensure_served_index(
    settings: Settings,
    *,
    corpus: Path | None,
    precision: str | None,
    html_content: str | None,
    progress: Progress | None = None,
) -> tuple[BuildReport | None, str | None]:
    """What `qa serve` does before serving: build the index if it is missing, update it if its corpus changed.

    The policy of a serve-time build: the corpus is ``corpus``, else the index's own, else ./seeds when it is here;
    model, chunking and precision are the index's own when it has them (``settings.model`` and ``precision``, when
    given, win), else the settings' for a new index; the model is loaded on one thread, like the queries that
    follow, so the same loaded model then serves them.

    Args:
        precision: the precision asked for (an option or ``QA_PRECISION``), None to keep the index's own.
        html_content: what an HTML page contributes when it was asked for; None keeps the index's own, so an index
            built with the whole pages keeps them.

    Returns:
        ``(report, reason)`` after a build, ``(None, None)`` when nothing needed doing.
    """
    return ensure_index(
        settings.index_dir,
        corpus=corpus,
        default_corpus=DEFAULT_CORPUS if DEFAULT_CORPUS.is_dir() else None,
        model=settings.model,
        chunk_size=None,
        chunk_overlap=None,
        defaults=BuildDefaults(
            model=DEFAULT_MODEL,
            chunk_size=settings.chunk_size,
            chunk_overlap=settings.chunk_overlap,
            embed_title=settings.embed_title,
            precision=settings.precision,
        ),
        load_model=lambda name, precision: load_encoder(
            name, settings.encoder, precision=precision, cache_dir=settings.cache_dir
        ),
        precision=precision,
        progress=progress,
        html_content=html_content,
    )
