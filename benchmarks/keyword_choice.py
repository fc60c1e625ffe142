"""Keyword search, measured: qa's BM25 (FTS5's bm25(), now served from the keyword postings) against bm25s over
the very passages qa cut.

Usage (bm25s and PyStemmer live in a scratch environment that also sees qa's packages; never a qa dependency):
    PY=/tmp/bm25-venv/bin/python
    $PY benchmarks/keyword_choice.py ../shared/eval/public/scifact --split train --index /tmp/scifact-int8
    $PY benchmarks/keyword_choice.py tests/data/seeds_questions.jsonl --corpus seeds --index /tmp/bm25-seeds
The index must already be built from the dataset's corpus (`qa eval ... --index DIR` or `qa index`); it is
only read. Both sides rank the same strings: each passage's keyword row (``qa.index.store.keyword_rows``), its document
context (title, date in words, author, source) and its text. qa's side is its own KeywordRetriever, whose postings
give FTS5's bm25() scores (tests/test_postings.py); FTS5's build time and size are those of the same rows written
into an FTS5 table as the store held them before the postings (``chunks_fts``); bm25s gets the
context and text joined by a newline, its English stemmer and stop words, and its own query tokenisation.
Quality comes from qa.eval.evaluate.run_queries with the keyword retriever swapped, so documents (or answer
passages) are ranked and scored exactly as `qa eval` does, in keyword mode and as the keyword side of
hybrid fusion. Latency is the keyword retriever alone, the two sides interleaved query by query.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sqlite3
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

try:
    import bm25s
    import Stemmer
except ImportError as exc:  # pragma: no cover - a scratch environment, not qa's
    raise SystemExit(
        f"{exc}: run this with an interpreter that has `pip install bm25s PyStemmer` (see the docstring)"
    ) from exc

from tune_retrieval import add_dataset_arguments, memoised_encoder, paired_difference, scored  # noqa: E402  (run from benchmarks/)

from qa.config import Settings  # noqa: E402
from qa.eval.datasets import Dataset, beir_document_text, iter_beir_corpus, load_dataset  # noqa: E402
from qa.eval.evaluate import BEIR_PASSAGES  # noqa: E402
from qa.eval.metrics import percentile, summarise  # noqa: E402
from qa.index.manifest import DATABASE_FILE  # noqa: E402
from qa.index.postings import TOKENIZER  # noqa: E402
from qa.index.store import StoreReader, document_context, keyword_rows  # noqa: E402
from qa.ingest.metadata import Metadata  # noqa: E402
from qa.search.keyword import KeywordRetriever, match_expression  # noqa: E402
from qa.search.service import SearchService  # noqa: E402

# bm25s settings compared, fixed before any run: its defaults (Lucene's BM25, k1 1.5, b 0.75), the classic
# Robertson formula, and Lucene's formula with FTS5's k1 of 1.2.
VARIANTS = {
    "bm25s": {"method": "lucene", "k1": 1.5, "b": 0.75},
    "bm25s robertson": {"method": "robertson", "k1": 1.5, "b": 0.75},
    "bm25s k1=1.2": {"method": "lucene", "k1": 1.2, "b": 0.75},
}


def read_passages(store: Path) -> tuple[list[int], list[str], list[str], list[int]]:
    """Chunk ids, keyword context and text, and document rows, exactly as the keyword index holds them.

    Raises:
        SystemExit: a context or text differs from its chunk (the comparison would be unfair).
    """
    db = sqlite3.connect(f"{store.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    chunks = {
        r[0]: r[1:]
        for r in db.execute(
            "SELECT c.id, c.text, c.document_id, d.title, d.date, d.author, d.source FROM chunks c"
            " JOIN documents d ON d.id = c.document_id"
        )
    }
    rows = list(keyword_rows(db))
    db.close()
    bad = [
        r.chunk_id
        for r in rows
        if r.text != chunks[r.chunk_id][0] or r.context != document_context(Metadata(*chunks[r.chunk_id][2:6]))
    ]
    if bad:
        raise SystemExit(f"{store}: {len(bad)} keyword rows differ from their chunks, e.g. chunk {bad[0]}")
    return (
        [r.chunk_id for r in rows],
        [r.context for r in rows],
        [r.text for r in rows],
        [chunks[r.chunk_id][1] for r in rows],
    )


def fts5_size(fts: Path) -> tuple[int, int]:
    """Bytes of an FTS5 file's pages that hold its index, and bytes of its own copy of the rows' context and text."""
    db = sqlite3.connect(f"{fts.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    sizes = dict(db.execute("SELECT name, SUM(pgsize) FROM dbstat WHERE name LIKE 'chunks_fts%' GROUP BY name"))
    db.close()
    content = sizes.pop("chunks_fts_content", 0)
    return sum(sizes.values()), content


def build_fts5(ids, contexts, texts, documents, out: Path) -> float:
    """Seconds to write the rows into a new FTS5 file, one transaction per document as qa's indexer used to."""
    by_document: dict[int, list[tuple[int, str, str]]] = {}
    for row in zip(ids, contexts, texts, documents):
        by_document.setdefault(row[3], []).append(row[:3])
    out.unlink(missing_ok=True)
    started = time.perf_counter()
    db = sqlite3.connect(out)
    db.execute("PRAGMA journal_mode = DELETE")
    db.execute("PRAGMA synchronous = OFF")
    db.execute(f"CREATE VIRTUAL TABLE chunks_fts USING fts5(context, text, tokenize = '{TOKENIZER}')")
    for rows in by_document.values():
        with db:
            db.executemany("INSERT INTO chunks_fts (rowid, context, text) VALUES (?, ?, ?)", rows)
    db.close()
    return time.perf_counter() - started


class Bm25sRetriever:
    """bm25s over passages, with KeywordRetriever's ``retrieve`` so SearchService can use it unchanged."""

    def __init__(self, ids: list[int], documents: list[str], *, method: str, k1: float, b: float) -> None:
        self.ids = ids
        self.stemmer = Stemmer.Stemmer("english")
        tokens = bm25s.tokenize(documents, stopwords="en", stemmer=self.stemmer, show_progress=False)
        self.bm25 = bm25s.BM25(method=method, k1=k1, b=b)
        self.bm25.index(tokens, show_progress=False)

    def retrieve(self, question: str, k: int, allowed=None) -> list[tuple[int, float]]:
        """Best ``k`` ``(chunk id, score)``, best first; passages matching no query term are left out, as in FTS5."""
        if allowed is not None:
            raise NotImplementedError("filters are not part of this comparison")
        terms = bm25s.tokenize([question], stopwords="en", stemmer=self.stemmer, return_ids=False, show_progress=False)
        if not any(t in self.bm25.vocab_dict for t in terms[0]):
            return []
        found, scores = self.bm25.retrieve(terms, k=min(k, len(self.ids)), show_progress=False)
        return [(self.ids[int(i)], float(s)) for i, s in zip(found[0], scores[0]) if s > 0]


class Fts5Documents:
    """FTS5 with qa's tokenizer and query over whole documents (context, then all text), in memory."""

    def __init__(self, names: list[str], contexts: list[str], texts: list[str]) -> None:
        self.names = names
        self.db = sqlite3.connect(":memory:")
        self.db.execute(
            "CREATE VIRTUAL TABLE d USING fts5(context, text, tokenize = 'porter unicode61 remove_diacritics 2')"
        )
        rows = zip(range(len(names)), contexts, texts)
        self.db.executemany("INSERT INTO d (rowid, context, text) VALUES (?, ?, ?)", rows)

    def rank(self, question: str, k: int) -> list[str]:
        expression = match_expression(question)
        if expression is None:
            return []
        sql = "SELECT rowid FROM d WHERE d MATCH ? ORDER BY bm25(d, 1.0, 1.0) LIMIT ?"
        return [self.names[r[0]] for r in self.db.execute(sql, (expression, k))]


def whole_documents(dataset: Dataset) -> dict[str, dict]:
    """Keyword-only scores on whole BEIR documents (no passages): checks bm25s against its published figure."""
    names, titles, bodies = [], [], []
    for doc_id, title, text in iter_beir_corpus(dataset.beir_corpus):
        body = beir_document_text(title, text)
        if body.strip():
            names.append(doc_id)
            titles.append(title.strip())
            bodies.append(body)
    qrels = dataset.qrels
    fts = Fts5Documents(names, titles, bodies)
    results = {"fts5": summarise({q.id: fts.rank(q.text, 100) for q in dataset.queries}, qrels)}
    for name, params in VARIANTS.items():
        retriever = Bm25sRetriever(list(range(len(names))), bodies, **params)
        runs = {q.id: [names[i] for i, _ in retriever.retrieve(q.text, 100)] for q in dataset.queries}
        results[name] = summarise(runs, qrels)
    return {name: m.as_dict() for name, m in results.items()}


def latency(retrievers: dict[str, object], questions: list[str], k: int, rounds: int) -> dict[str, dict]:
    """Median and p95 ms of ``retrieve(question, k)`` per retriever, the retrievers taking turns on each question;
    the median over rounds of each round's figures, and of each round's ratio to the first retriever's median."""
    per_round: dict[str, list[tuple[float, float, float]]] = {name: [] for name in retrievers}
    names = list(retrievers)
    for q in questions[:5]:  # warm up
        for r in retrievers.values():
            r.retrieve(q, k)
    for round_ in range(rounds):
        timings: dict[str, list[float]] = {name: [] for name in names}
        for n, question in enumerate(questions):
            order = names if (n + round_) % 2 == 0 else names[::-1]
            for name in order:
                started = time.perf_counter()
                retrievers[name].retrieve(question, k)
                timings[name].append((time.perf_counter() - started) * 1000)
        base = statistics.median(timings[names[0]])
        for name in names:
            median = statistics.median(timings[name])
            per_round[name].append((median, percentile(timings[name], 95), median / base))
    return {
        name: {
            "median_ms": statistics.median(r[0] for r in rows),
            "p95_ms": statistics.median(r[1] for r in rows),
            "median_ratio": statistics.median(r[2] for r in rows),
        }
        for name, rows in per_round.items()
    }


def bm25s_memory(ids, documents, params) -> tuple[int, int]:
    """Bytes bm25s keeps allocated once its index is built (tokens dropped), and bytes of its saved files."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    retriever = Bm25sRetriever(ids, documents, **params)
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    with tempfile.TemporaryDirectory() as folder:
        retriever.bm25.save(folder)
        disk = sum(p.stat().st_size for p in Path(folder).iterdir())
    return kept, disk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_arguments(parser)
    parser.add_argument("--rounds", type=int, default=5, help="timing rounds (latency and build)")
    parser.add_argument("--latency-k", type=int, default=100, help="passages per timed query (hybrid fetches 100)")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()

    dataset = load_dataset(args.dataset, split=args.split, corpus=args.corpus)
    store = args.index / DATABASE_FILE
    ids, contexts, texts, documents = read_passages(store)
    joined = [f"{c}\n{t}" if c else t for c, t in zip(contexts, texts)]
    print(f"dataset {dataset.name} split {args.split}: {len(dataset.queries)} queries, {len(ids)} passages", flush=True)
    out: dict = {"dataset": dataset.name, "split": args.split, "queries": len(dataset.queries), "passages": len(ids)}

    # Build time: each side's median over rounds, the two taking turns.
    fts_seconds, bm25s_seconds = [], []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            fts_seconds.append(build_fts5(ids, contexts, texts, documents, Path(folder) / "fts.sqlite3"))
            started = time.perf_counter()
            Bm25sRetriever(ids, joined, **VARIANTS["bm25s"])
            bm25s_seconds.append(time.perf_counter() - started)
        fts_index, fts_content = fts5_size(Path(folder) / "fts.sqlite3")
    kept, disk = bm25s_memory(ids, joined, VARIANTS["bm25s"])
    out["build"] = {
        "fts5_s": statistics.median(fts_seconds),
        "bm25s_s": statistics.median(bm25s_seconds),
        "ratio": statistics.median(b / f for b, f in zip(bm25s_seconds, fts_seconds)),
        "fts5_index_bytes": fts_index,
        "fts5_content_copy_bytes": fts_content,
        "bm25s_disk_bytes": disk,
        "bm25s_memory_bytes": kept,
    }
    print(json.dumps(out["build"]), flush=True)

    # Each question is embedded once for all runs, so the systems differ only in their keyword side.
    encoder = memoised_encoder(args.index)
    service = SearchService.open(Settings(index_dir=args.index, max_top_k=BEIR_PASSAGES), encoder=encoder)
    fts = KeywordRetriever(StoreReader(store))
    systems = {"fts5": fts, **{name: Bm25sRetriever(ids, joined, **p) for name, p in VARIANTS.items()}}

    questions = [q.text for q in dataset.queries]
    out["latency"] = latency({"fts5": fts, "bm25s": systems["bm25s"]}, questions, args.latency_k, args.rounds)
    print(json.dumps(out["latency"]), flush=True)

    out["quality"] = {}
    per_query: dict[tuple[str, str], dict[str, float]] = {}
    for name, retriever in systems.items():
        service.keyword = retriever
        for mode in ("keyword", "hybrid"):
            report, per_question = scored(dataset, service, mode)
            per_query[name, mode] = {q: ndcg for q, (ndcg, _) in per_question.items()}
            row = report.metrics.as_dict()
            if name != "fts5":
                row["vs_fts5"] = paired_difference(per_query["fts5", mode], per_query[name, mode])
            out["quality"][f"{name} {mode}"] = row
            versus = ""
            if "vs_fts5" in row:
                v = row["vs_fts5"]
                versus = (
                    f"  vs fts5 {v['mean_diff']:+.4f} [{v['ci95'][0]:+.4f}, {v['ci95'][1]:+.4f}]"
                    f" better {v['better']} worse {v['worse']}"
                )
            print(
                f"{name:18s} {mode:8s} nDCG@10 {row['ndcg_at_10']:.4f}  R@100 {row['recall_at_100']:.4f}  "
                f"MRR@10 {row['mrr_at_10']:.4f}  hit@5 {row['hit_at_5']:.4f}{versus}",
                flush=True,
            )
    if dataset.kind == "beir":
        out["whole_documents"] = whole_documents(dataset)
        for name, row in out["whole_documents"].items():
            print(
                f"{name:18s} whole documents nDCG@10 {row['ndcg_at_10']:.4f}  R@100 {row['recall_at_100']:.4f}",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
