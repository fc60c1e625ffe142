"""How keyword search scales: FTS5's bm25() in SQLite against qa's keyword postings, side by side, as N grows.

    python benchmarks/keyword_scale.py --index DIR --dataset ../shared/eval/public/scifact --split train \\
        --n 18000,100000,1000000
Real passages, repeated: the keyword rows (context and text, as ``qa.index.store.keyword_rows`` gives them) of the
index at DIR are written over and over until there are N, once into an FTS5 table with the schema the store had
before the postings (``chunks_fts``), once into a postings file (``qa.index.postings.build_postings``), so every term
keeps the share of passages it has in real text. The questions of the labelled set are asked of both, one after
the other for each question, at the depth a hybrid search fetches (``QA_CANDIDATES``, 100) on one thread; FTS5 as
the store's keyword search asked it, the postings as ``qa.search.keyword.KeywordRetriever`` does. Prints per N: build
seconds and megabytes of each, median / p95 milliseconds per question, the ratio of the medians (same run), how
many questions got the same scores from both, and the resident memory of a fresh process that opens only the
postings and asks every question (what serving adds: before opening and after the questions, anonymous and
file-backed, since the postings are memory-mapped and the pages the questions touched count as file-backed);
then one JSON object. Repeating passages makes ties, not extra vocabulary; a real corpus of N passages has more
distinct terms, which makes each posting list shorter, so these times lean pessimistic.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.eval.datasets import load_dataset
from qa.index.manifest import DATABASE_FILE
from qa.index.postings import TOKENIZER, KeywordRow, Postings, QueryTokenizer, build_postings
from qa.index.store import keyword_rows
from qa.search.keyword import match_expression, query_terms


def source_rows(store: Path) -> list[KeywordRow]:
    """The keyword rows of a built store, in chunk id order."""
    db = sqlite3.connect(f"{store.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        return list(keyword_rows(db))
    finally:
        db.close()


def grown_rows(rows: list[KeywordRow], n: int):
    """``n`` keyword rows with ids 1..n, cycling through ``rows``."""
    return (KeywordRow(i + 1, rows[i % len(rows)].context, rows[i % len(rows)].text) for i in range(n))


def grown_fts5(rows: list[KeywordRow], target: Path, n: int, batch: int = 50_000) -> float:
    """Write ``n`` rows into a new FTS5 table ``chunks_fts`` at ``target`` (the store's old schema); seconds."""
    started = time.perf_counter()
    db = sqlite3.connect(target)
    db.execute("PRAGMA journal_mode = DELETE")
    db.execute("PRAGMA synchronous = OFF")
    db.execute(f"CREATE VIRTUAL TABLE chunks_fts USING fts5(context, text, tokenize = '{TOKENIZER}')")
    grown = grown_rows(rows, n)
    for _ in range(0, n, batch):
        with db:
            db.executemany(
                "INSERT INTO chunks_fts (rowid, context, text) VALUES (?, ?, ?)",
                ((r.chunk_id, r.context, r.text) for _, r in zip(range(batch), grown)),
            )
    db.close()
    return time.perf_counter() - started


def grown_postings(rows: list[KeywordRow], target: Path, n: int) -> float:
    """Write the postings file of ``n`` rows at ``target``; seconds."""
    started = time.perf_counter()
    build_postings(grown_rows(rows, n), target)
    return time.perf_counter() - started


class Fts5Side:
    """Keyword search as the store answered it before the postings: ``-bm25()`` over ``chunks_fts``."""

    def __init__(self, path: Path, weights: tuple[float, float]) -> None:
        self.db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
        self.sql = (
            f"SELECT rowid, -bm25(chunks_fts, {float(weights[0])}, {float(weights[1])}) AS score FROM chunks_fts"
            " WHERE chunks_fts MATCH ? ORDER BY score DESC LIMIT ?"
        )

    def retrieve(self, question: str, k: int) -> list[tuple[int, float]]:
        """Best ``k`` ``(rowid, score)``."""
        expression = match_expression(question)
        return self.db.execute(self.sql, (expression, k)).fetchall() if expression else []


class PostingsSide:
    """Keyword search as ``qa.search.keyword.KeywordRetriever`` answers it: terms, FTS5's tokens, the mapped
    postings."""

    def __init__(self, path: Path, weights: tuple[float, float]) -> None:
        self.postings = Postings.open_path(path)
        self.tokenizer = QueryTokenizer()
        self.weights = weights

    def retrieve(self, question: str, k: int) -> list[tuple[int, float]]:
        """Best ``k`` ``(chunk id, score)``."""
        terms = query_terms(question)
        if not terms:
            return []
        return self.postings.search(self.tokenizer.tokens(terms), k, weights=self.weights)


def side_by_side(fts5: Fts5Side, postings: PostingsSide, questions: list[str], depth: int) -> dict:
    """Both sides timed question by question (so load on the machine hits both alike), and their agreement."""
    for question in questions[:10]:
        fts5.retrieve(question, depth), postings.retrieve(question, depth)
    fts_ms, postings_ms, same = [], [], 0
    for question in questions:
        started = time.perf_counter()
        expected = fts5.retrieve(question, depth)
        middle = time.perf_counter()
        found = postings.retrieve(question, depth)
        fts_ms.append((middle - started) * 1000)
        postings_ms.append((time.perf_counter() - middle) * 1000)
        same += len(expected) == len(found) and all(abs(a[1] - b[1]) <= 1e-5 for a, b in zip(expected, found))
    return {
        "fts5_median_ms": round(statistics.median(fts_ms), 3),
        "fts5_p95_ms": round(float(np.percentile(fts_ms, 95)), 3),
        "postings_median_ms": round(statistics.median(postings_ms), 3),
        "postings_p95_ms": round(float(np.percentile(postings_ms, 95)), 3),
        "speedup": round(statistics.median(fts_ms) / statistics.median(postings_ms), 1),
        "same_scores": same,
    }


def resident_megabytes() -> dict[str, float]:
    """This process's resident memory: total, anonymous and file-backed (mapped files), in MB (Linux)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile"):
            fields[name] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mb": fields.get("VmRSS"), "anon_mb": fields.get("RssAnon"), "file_mb": fields.get("RssFile")}


def serving_memory(postings_path: Path, args: argparse.Namespace) -> dict:
    """Resident memory of a fresh process (this script with ``--serve``) before and after asking every question."""
    command = [
        sys.executable,
        __file__,
        "--index",
        str(args.index),
        "--dataset",
        str(args.dataset),
        "--split",
        args.split,
        "--questions",
        str(args.questions),
        "--serve",
        str(postings_path),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def serve(postings_path: Path, questions: list[str], depth: int, weights: tuple[float, float]) -> None:
    """Print this process's resident memory before opening the postings and after asking every question."""
    before = resident_megabytes()
    postings = PostingsSide(postings_path, weights)
    for question in questions:
        postings.retrieve(question, depth)
    after = resident_megabytes()
    print(
        json.dumps(
            {
                "serving_rss_before_mb": before["rss_mb"],
                "serving_rss_mb": after["rss_mb"],
                "serving_anon_mb": after["anon_mb"],
                "serving_file_mb": after["file_mb"],
                "serving_file_before_mb": before["file_mb"],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="a built index whose passages are repeated")
    parser.add_argument("--dataset", type=Path, required=True, help="labelled set whose questions are asked")
    parser.add_argument("--split", default="train")
    parser.add_argument("--n", default="18000,100000,1000000", help="sizes, comma-separated")
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--workdir", type=Path, help="where the grown files go (default: a temporary folder)")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # the fresh process of serving_memory
    args = parser.parse_args()
    questions = [q.text for q in load_dataset(args.dataset, split=args.split).queries][: args.questions]
    settings = Settings()
    depth, weights = settings.candidates, (settings.context_weight, settings.text_weight)
    if args.serve:
        serve(args.serve, questions, depth, weights)
        return
    rows = source_rows(args.index / DATABASE_FILE)
    results = []
    print(f"{len(questions)} questions, {depth} passages each, one thread; {len(rows):,} passages repeated")
    print(
        f"{'passages':>10s} {'build s fts5/post':>18s} {'MB fts5/post':>14s} {'median ms fts5/post':>20s} "
        f"{'p95 ms fts5/post':>17s} {'ratio':>6s} {'same':>5s} {'serving RSS MB before/after (file)':>35s}"
    )
    with tempfile.TemporaryDirectory(prefix="qa-keyword-scale-", dir=args.workdir) as scratch:
        for n in (int(x) for x in args.n.split(",")):
            fts_path, postings_path = Path(scratch) / f"fts5-{n}.sqlite3", Path(scratch) / f"keywords-{n}.bin"
            row = {
                "passages": n,
                "fts5_build_s": round(grown_fts5(rows, fts_path, n), 1),
                "postings_build_s": round(grown_postings(rows, postings_path, n), 1),
                "fts5_mb": round(fts_path.stat().st_size / 1e6, 1),
                "postings_mb": round(postings_path.stat().st_size / 1e6, 1),
            }
            postings = PostingsSide(postings_path, weights)
            row.update(side_by_side(Fts5Side(fts_path, weights), postings, questions, depth))
            row.update(serving_memory(postings_path, args))
            del postings
            fts_path.unlink()
            postings_path.unlink()
            results.append(row)
            print(
                f"{n:10,d} {row['fts5_build_s']:8.1f} / {row['postings_build_s']:7.1f} "
                f"{row['fts5_mb']:6.1f} / {row['postings_mb']:6.1f} "
                f"{row['fts5_median_ms']:9.2f} / {row['postings_median_ms']:8.2f} "
                f"{row['fts5_p95_ms']:8.2f} / {row['postings_p95_ms']:6.2f} {row['speedup']:5.1f}x "
                f"{row['same_scores']:5d} {row['serving_rss_before_mb']:14.0f} / {row['serving_rss_mb']:5.0f} "
                f"({row['serving_file_before_mb']:.0f} -> {row['serving_file_mb']:.0f})",
                flush=True,
            )
    print(json.dumps({"depth": depth, "questions": len(questions), "results": results}))


if __name__ == "__main__":
    main()
