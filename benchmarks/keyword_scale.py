"""How keyword search scales: qa's FTS5 BM25 retrieval over a store grown to N passages.

    python benchmarks/keyword_scale.py --index DIR --dataset ../shared/eval/public/scifact --split train \\
        --n 100000,1000000
Real passages, repeated: the passages (context and text) of the index at DIR are written over and over into
a new store of N passages, with the schema qa builds, so every term keeps the share of passages it has in
real text and the postings grow with N as they would for a corpus of that kind. The questions of the
labelled set are asked through qa's own ``KeywordRetriever`` at the depth a hybrid search fetches
(``QA_CANDIDATES``, 100) on one thread. Prints the build time, the store's size and the median / p95
milliseconds per question for each N, then one JSON object. Repeating passages makes ties, not extra
vocabulary; a real corpus of N passages has more distinct terms, which makes each posting list shorter, so
these times lean pessimistic.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.datasets import load_dataset
from qa.keyword import KeywordRetriever
from qa.manifest import DATABASE_FILE
from qa.store import StoreReader, StoreWriter


def grown_store(source: Path, target: Path, n: int, batch: int = 50_000) -> float:
    """Write ``n`` keyword rows into a new store at ``target``, cycling through those of ``source``; seconds."""
    rows = StoreReader(source)._connection().execute("SELECT context, text FROM chunks_fts ORDER BY rowid")
    started = time.perf_counter()
    writer = StoreWriter(target)
    for first in range(0, n, batch):
        with writer.db:
            writer.db.executemany(
                "INSERT INTO chunks_fts (rowid, context, text) VALUES (?, ?, ?)",
                ((i + 1, *rows[i % len(rows)]) for i in range(first, min(first + batch, n))),
            )
    writer.close()
    return time.perf_counter() - started


def timed(retriever: KeywordRetriever, questions: list[str], depth: int) -> list[float]:
    """Milliseconds per question, each asked once after one warm-up pass over the first ten."""
    for question in questions[:10]:
        retriever.retrieve(question, depth)
    times = []
    for question in questions:
        started = time.perf_counter()
        retriever.retrieve(question, depth)
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="a built index whose passages are repeated")
    parser.add_argument("--dataset", type=Path, required=True, help="labelled set whose questions are asked")
    parser.add_argument("--split", default="train")
    parser.add_argument("--n", default="100000,1000000", help="store sizes, comma-separated")
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--workdir", type=Path, help="where the grown stores go (default: a temporary folder)")
    args = parser.parse_args()
    questions = [q.text for q in load_dataset(args.dataset, split=args.split).queries][: args.questions]
    depth = Settings().candidates
    source = args.index / DATABASE_FILE
    results = []
    with tempfile.TemporaryDirectory(prefix="qa-keyword-scale-", dir=args.workdir) as scratch:
        base = StoreReader(source)
        own = base._connection().execute("SELECT count(*) FROM chunks_fts")[0][0]
        sizes = [("index itself", own, source, 0.0)]
        for n in (int(x) for x in args.n.split(",")):
            target = Path(scratch) / f"store-{n}.sqlite3"
            sizes.append((f"grown to {n:,}", n, target, grown_store(source, target, n)))
        print(f"{len(questions)} questions, {depth} passages each, one thread")
        print(f"{'store':24s} {'passages':>10s} {'build s':>8s} {'MB':>8s} {'median ms':>10s} {'p95 ms':>8s}")
        for label, n, path, build in sizes:
            times = timed(KeywordRetriever(StoreReader(path)), questions, depth)
            row = {
                "store": label, "passages": n, "build_s": round(build, 1),
                "megabytes": round(path.stat().st_size / 1e6, 1),
                "median_ms": round(statistics.median(times), 2), "p95_ms": round(float(np.percentile(times, 95)), 2),
            }
            results.append(row)
            print(f"{label:24s} {n:10,d} {row['build_s']:8.1f} {row['megabytes']:8.1f} "
                  f"{row['median_ms']:10.2f} {row['p95_ms']:8.2f}", flush=True)
    print(json.dumps({"depth": depth, "questions": len(questions), "results": results}))


if __name__ == "__main__":
    main()
