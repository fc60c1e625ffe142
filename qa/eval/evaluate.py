"""`qa eval`: score retrieval on a labelled set (BEIR folder or phrase-labelled questions over a corpus)."""

from __future__ import annotations

import hashlib
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from qa.config import Settings
from qa.embed.encoder import Encoder
from qa.errors import InvalidRequest
from qa.eval.datasets import Dataset, beir_document_text, iter_beir_corpus
from qa.eval.metrics import MetricSummary, mean_hit_at_k, percentile, summarise
from qa.index.indexer import Progress, build_index, staleness
from qa.ingest.corpus import CorpusScan, Document, scan_corpus
from qa.ingest.metadata import Metadata
from qa.search.service import Answer, Hit, SearchService

# Passages fetched per query: enough distinct documents for Recall@100 after passages are merged.
BEIR_PASSAGES = 400
QUESTION_PASSAGES = 100
PHRASE_MATCH = "\0match"


@dataclass(frozen=True)
class QuestionFigures:
    """Question sets only: passage-level hit@1 and hit@3, and page-level hit@5 (a passage from the answering
    document in the top 5, whether or not it holds the phrase)."""

    hit_at_1: float
    hit_at_3: float
    doc_hit_at_5: float

    def as_dict(self) -> dict[str, float]:
        """The figures rounded for JSON."""
        return {
            "hit_at_1": round(self.hit_at_1, 4),
            "hit_at_3": round(self.hit_at_3, 4),
            "doc_hit_at_5": round(self.doc_hit_at_5, 4),
        }


@dataclass
class EvalReport:
    """Figures for one dataset and one retrieval mode."""

    dataset: str
    mode: str
    metrics: MetricSummary
    latency_median_ms: float
    latency_p95_ms: float
    mean_passage_chars: float
    # Phrase-labelled sets only: of the top-5 passages holding the answer phrase, the share whose
    # supporting sentences contain it too.
    highlight_accuracy: float | None = None
    # None for BEIR, whose output stays as it was.
    questions: QuestionFigures | None = None
    # What the metrics were computed from (not in ``as_dict``): each question's ranking and its judgements,
    # for per-question comparisons (benchmarks/tune_retrieval.py).
    runs: dict[str, list[str]] = field(default_factory=dict, repr=False)
    qrels: dict[str, dict[str, int]] = field(default_factory=dict, repr=False)
    # Question sets only: each question's ranking of source documents (one entry per passage, best first).
    document_runs: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict:
        """Plain data for JSON; question sets add hit_at_1, hit_at_3 and doc_hit_at_5."""
        return {
            "dataset": self.dataset,
            "mode": self.mode,
            **{k: round(v, 4) if isinstance(v, float) else v for k, v in self.metrics.as_dict().items()},
            **(self.questions.as_dict() if self.questions is not None else {}),
            "latency_median_ms": round(self.latency_median_ms, 2),
            "latency_p95_ms": round(self.latency_p95_ms, 2),
            "mean_passage_chars": round(self.mean_passage_chars, 1),
            "highlight_accuracy": None if self.highlight_accuracy is None else round(self.highlight_accuracy, 4),
        }


def beir_scan(corpus_jsonl: Path) -> CorpusScan:
    """A BEIR corpus as documents: id ``_id``, text title and text joined, title as metadata."""
    digest = hashlib.sha256()
    with corpus_jsonl.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    scan = CorpusScan(root=corpus_jsonl.resolve(), fingerprint="beir:" + digest.hexdigest())
    for doc_id, title, text in iter_beir_corpus(corpus_jsonl):
        body = beir_document_text(title, text)
        if body.strip():
            content_hash = hashlib.sha256(body.encode("utf-8")).hexdigest()
            scan.documents.append(Document(doc_id, body, content_hash, Metadata(title=title.strip() or None)))
    return scan


def _places(hit: Hit) -> list[str]:
    """Every document a result cites, in order: its own, that document's other paths (identical files), and the
    documents of the near-identical passages folded into it (a user sees all of them named)."""
    return [hit.citation.source, *hit.citation.aliases, *(place.source for place in hit.duplicates)]


def _ranking(dataset: Dataset, answer: Answer, phrase: str | None, relevant_doc: str | None) -> list[str]:
    """What the metrics rank: documents for BEIR (best passage per document); for phrase-labelled questions,
    a passage counts as the answer when it is cited at the right document and contains the phrase."""
    if dataset.kind == "beir":
        return [source for hit in answer.results for source in _places(hit)]
    return [
        PHRASE_MATCH if relevant_doc in _places(hit) and (phrase is None or phrase in hit.text) else f"{hit.rank}"
        for hit in answer.results
    ]


def run_queries(dataset: Dataset, service: SearchService, mode: str) -> EvalReport:
    """Ask every question of ``dataset`` and score the rankings. Ranking never sees the labels."""
    depth = BEIR_PASSAGES if dataset.kind == "beir" else QUESTION_PASSAGES
    runs: dict[str, list[str]] = {}
    qrels: dict[str, dict[str, int]] = {}
    document_runs: dict[str, list[str]] = {}
    latencies: list[float] = []
    lengths: list[int] = []
    highlighted: list[bool] = []
    for query in dataset.queries:
        # Latency is timed on what a user asks for (top 10, with supporting sentences) ...
        started = time.perf_counter()
        shown = service.search(query.text, 10, mode=mode)
        latencies.append((time.perf_counter() - started) * 1000)
        lengths.extend(len(hit.text) for hit in shown.results[:5])
        if query.phrase is not None:
            highlighted.extend(
                _phrase_highlighted(hit, query.phrase) for hit in shown.results[:5] if query.phrase in hit.text
            )
        # ... and the metrics on a deep ranking, which needs no highlights.
        answer = service.search(query.text, depth, mode=mode, highlights=False)
        relevant_doc = next(iter(query.relevant)) if dataset.kind != "beir" else None
        runs[query.id] = _ranking(dataset, answer, query.phrase, relevant_doc)
        qrels[query.id] = query.relevant if dataset.kind == "beir" else {PHRASE_MATCH: 1}
        if dataset.kind != "beir":
            document_runs[query.id] = [
                relevant_doc if relevant_doc in _places(hit) else hit.citation.source for hit in answer.results
            ]
    questions = None if dataset.kind == "beir" else _question_figures(runs, qrels, document_runs, dataset.qrels)
    return EvalReport(
        dataset=dataset.name,
        mode=mode,
        metrics=summarise(runs, qrels),
        latency_median_ms=percentile(latencies, 50) if latencies else 0.0,
        latency_p95_ms=percentile(latencies, 95) if latencies else 0.0,
        mean_passage_chars=sum(lengths) / len(lengths) if lengths else 0.0,
        highlight_accuracy=sum(highlighted) / len(highlighted) if highlighted else None,
        questions=questions,
        runs=runs,
        qrels=qrels,
        document_runs=document_runs,
    )


def _question_figures(
    runs: dict[str, list[str]],
    qrels: dict[str, dict[str, int]],
    document_runs: dict[str, list[str]],
    document_qrels: dict[str, dict[str, int]],
) -> QuestionFigures:
    """Passage hit@1/3 from the phrase rankings; page hit@5 counts the top 5 *passages*, as a user sees them,
    not the top 5 distinct documents (which can reach far down the list)."""
    page_runs = {
        qid: [PHRASE_MATCH if source in document_qrels[qid] else f"{rank}" for rank, source in enumerate(sources)]
        for qid, sources in document_runs.items()
    }
    page_qrels = {qid: {PHRASE_MATCH: 1} for qid in document_qrels}
    return QuestionFigures(
        hit_at_1=mean_hit_at_k(runs, qrels, 1),
        hit_at_3=mean_hit_at_k(runs, qrels, 3),
        doc_hit_at_5=mean_hit_at_k(page_runs, page_qrels, 5),
    )


def _phrase_highlighted(hit, phrase: str) -> bool:
    """Whether the answer phrase lies inside one of the passage's supporting sentences."""
    start = hit.citation.start
    return any(phrase in hit.text[m.start - start : m.end - start] for m in hit.citation.highlight)


def evaluate(
    dataset: Dataset,
    settings: Settings,
    encoder: Encoder,
    modes: list[str],
    *,
    index_dir: Path | None = None,
    progress: Progress | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> list[EvalReport]:
    """Index the dataset's corpus (or reuse ``index_dir`` when it is already built from it) and score each mode.

    Raises:
        InvalidRequest: a question set without a corpus folder.
    """
    if dataset.kind == "beir":
        assert dataset.beir_corpus is not None  # a BEIR dataset is loaded with its corpus.jsonl (load_beir)
        scan = beir_scan(dataset.beir_corpus)
    else:
        if dataset.corpus_dir is None:
            raise InvalidRequest(f"{dataset.name}: name the corpus the questions are about with --corpus DIR")
        scan = scan_corpus(dataset.corpus_dir, main_content=settings.html_content == "main")
    with ExitStack() as stack:
        if index_dir is None:
            index_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="qa-eval-"))) / "index"
        reason = staleness(
            index_dir,
            scan,
            model=encoder.model_id,
            chunk_size=settings.chunk_size,
            chunk_overlap=settings.chunk_overlap,
            embed_title=settings.embed_title,
            precision=encoder.precision,
            html_content=settings.html_content,
        )
        if reason is not None:
            log(f"indexing {len(scan.documents)} documents into {index_dir}")
            report = build_index(
                scan.root,
                index_dir,
                encoder,
                chunk_size=settings.chunk_size,
                chunk_overlap=settings.chunk_overlap,
                embed_title=settings.embed_title,
                html_content=settings.html_content,
                scan=scan,
                progress=progress,
            )
            log(f"indexed {report.chunks} passages in {report.seconds:.1f} s")
        else:
            log(f"reusing the index at {index_dir}")
        # Deep rankings are needed for Recall@100 over documents; the service's own limit is for users.
        eval_settings = replace(settings, index_dir=index_dir, max_top_k=max(BEIR_PASSAGES, settings.max_top_k))
        service = SearchService.open(eval_settings, encoder=encoder)
        return [run_queries(dataset, service, mode) for mode in modes]
