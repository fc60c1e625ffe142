"""The default search end to end at N passages: a generated index, opened and asked as `qa serve` does.

    python benchmarks/hybrid_scale.py --index DIR --dataset ../shared/eval/public/scifact --n 100000,1000000

Grows the index at DIR (for example SciFact's 17,897 passages) to N passages by writing its documents and
passages over and over under new paths and ids (`copy3/12345`), into a new index directory of the current
format: the store, the keyword postings built from it, each passage vector with a little noise (so copies
are near, not equal, neighbours) and its sentence vectors as they are. Then, in a fresh process that opens
the directory through the real loader, asks the labelled set's questions (default hybrid search, top 5,
with highlights, one thread) and prints the median, p95 and p99 milliseconds, the first stage alone
(`SearchService.rank`), and the process's memory (VmRSS, VmHWM, RssAnon, RssFile), then one JSON object.

Repeated passages are a pessimistic corpus: every passage has N / len(DIR) copies with the same words, so
keyword candidates tie in groups and the top results are near-identical passages that search folds into one
(qa.search.duplicates), ranking a second time deeper to fill the places. A real corpus of N passages has neither.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from qa.index.manifest import (
    CODES_FILE,
    DATABASE_FILE,
    KEYWORDS_FILE,
    SENTENCES_FILE,
    VECTORS_FILE,
    Manifest,
    file_checksum,
)
from qa.index.postings import build_postings
from qa.index.sentence_vectors import SentenceFile, SentenceFileWriter
from qa.index.store import StoreWriter, keyword_rows
from qa.index.vectors import APPROXIMATE, VectorIndex

_DOCUMENT_COLUMNS = "id, doc_id, title, date, author, source, date_source, content_hash, n_chars, n_lines, text"
_CHUNK_COLUMNS = 'id, document_id, ord, start, "end", line_start, line_end, n_tokens, text_hash, text, section, anchor'


def grow(source: Path, target: Path, n: int, noise: float = 0.05) -> dict:
    """Write an index of ``n`` passages at ``target`` from the one at ``source``; seconds per step."""
    target.mkdir(parents=True)
    seconds = {}
    started = time.perf_counter()
    with sqlite3.connect(f"{source.resolve().as_uri()}/{DATABASE_FILE}?mode=ro", uri=True) as db:
        documents = db.execute(f"SELECT {_DOCUMENT_COLUMNS} FROM documents ORDER BY id").fetchall()
        chunks = db.execute(f"SELECT {_CHUNK_COLUMNS} FROM chunks ORDER BY id").fetchall()
    document_step, chunk_step = max(d[0] for d in documents), max(c[0] for c in chunks)
    writer = StoreWriter(target / DATABASE_FILE)
    marks = lambda count: ",".join("?" * count)  # noqa: E731
    ids = []
    for copy in range(math.ceil(n / len(chunks))):
        taken = chunks[: n - copy * len(chunks)]
        wanted = {c[1] for c in taken}
        with writer.db:
            writer.db.executemany(
                f"INSERT INTO documents ({_DOCUMENT_COLUMNS}) VALUES ({marks(11)})",
                [(d[0] + copy * document_step, f"copy{copy}/{d[1]}", *d[2:]) for d in documents if d[0] in wanted],
            )
            writer.db.executemany(
                f"INSERT INTO chunks ({_CHUNK_COLUMNS}) VALUES ({marks(12)})",
                [(c[0] + copy * chunk_step, c[1] + copy * document_step, *c[2:]) for c in taken],
            )
        ids.extend(c[0] + copy * chunk_step for c in taken)
    writer.close()
    seconds["store"] = time.perf_counter() - started

    started = time.perf_counter()
    with sqlite3.connect(target / DATABASE_FILE) as db:
        build_postings(keyword_rows(db), target / KEYWORDS_FILE)
    seconds["postings"] = time.perf_counter() - started

    started = time.perf_counter()
    base = VectorIndex.load(source / VECTORS_FILE)
    rows = base.rows_at(np.arange(len(base)))
    rng = np.random.default_rng(0)
    vectors = np.empty((len(ids), rows.shape[1]), dtype=np.float32)
    for first in range(0, len(ids), len(rows)):
        block = rows[: len(ids) - first] + rng.standard_normal(rows[: len(ids) - first].shape, dtype=np.float32) * (
            noise / math.sqrt(rows.shape[1])
        )
        vectors[first : first + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    index = VectorIndex.build(np.asarray(ids, dtype=np.int64), vectors)
    del vectors
    codes = target / CODES_FILE if index.kind == APPROXIMATE else None
    index.save(target / VECTORS_FILE, codes)
    seconds["vectors"] = time.perf_counter() - started

    started = time.perf_counter()
    sentences = SentenceFile.load(source / SENTENCES_FILE)
    writer = SentenceFileWriter(target / SENTENCES_FILE, sentences.dimension)
    for position, chunk_id in enumerate(ids):
        writer.add(chunk_id, *sentences.at(position % len(chunks)))
    writer.close()
    seconds["sentences"] = time.perf_counter() - started

    manifest = Manifest.read(source)
    files = {"vectors": VECTORS_FILE, "sentences": SENTENCES_FILE, "database": DATABASE_FILE, "keywords": KEYWORDS_FILE}
    if index.kind == APPROXIMATE:
        files["codes"] = CODES_FILE
    manifest.files, manifest.vectors = files, {"kind": index.kind}
    # One segment of the top files, described by the fields above (not the source's segments and file states).
    manifest.segments, manifest.written = [], {}
    manifest.counts = {**manifest.counts, "documents": -1, "chunks": len(ids)}
    with sqlite3.connect(target / DATABASE_FILE) as db:
        manifest.counts["documents"] = db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
    manifest.corpus = {"root": f"generated from {source}", "fingerprint": f"grown:{n}"}
    manifest.checksums = {name: file_checksum(target / name) for name in files.values()}
    manifest.write(target)
    return seconds


def memory() -> dict[str, float]:
    """This process's resident memory in MB, from /proc/self/status."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            found[key] = int(line.split()[1]) / 1024
    return found


def ask(index_dir: Path, questions: list[str], warm_passes: int = 0) -> dict:
    """Runs in a fresh process: open the index as qa serve does, then time each question's search.

    Args:
        warm_passes: ask every question this many times before timing (0: the first ten once), so that the
            timed pass finds in memory whatever the process could keep of what the questions read.
    """
    from qa.config import Settings
    from qa.search.service import SearchService

    started = time.perf_counter()
    service = SearchService.open(Settings(index_dir=index_dir))
    opened = time.perf_counter() - started
    for question in questions * warm_passes if warm_passes else questions[:10]:
        service.search(question)
    whole, first_stage = [], []
    for question in questions:
        started = time.perf_counter()
        service.search(question)
        whole.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        service.rank(question, service.settings.top_k)
        first_stage.append((time.perf_counter() - started) * 1000)
    ordered = sorted(whole)
    return {
        "open_s": round(opened, 2),
        "median_ms": round(statistics.median(whole), 2),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 2),
        "rank_median_ms": round(statistics.median(first_stage), 2),
        **{k: round(v) for k, v in memory().items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, help="The index to grow (any size; its passages are repeated).")
    parser.add_argument("--dataset", type=Path, help="Labelled set whose questions are asked (qa.eval.datasets).")
    parser.add_argument("--split", default="test")
    parser.add_argument("--n", default="100000,1000000", help="Comma-separated passage counts.")
    parser.add_argument("--questions", type=int, default=300, help="How many of the set's questions to ask.")
    parser.add_argument("--work", type=Path, help="Build here and keep (default: a temporary folder).")
    parser.add_argument("--ask", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--questions-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--warm-passes", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ask:
        asked = json.loads(args.questions_file.read_text(encoding="utf-8"))
        print(json.dumps(ask(args.ask, asked, args.warm_passes)))
        return
    from qa.eval.datasets import load_dataset

    questions = [q.text for q in load_dataset(args.dataset, split=args.split).queries][: args.questions]
    work = args.work or Path(tempfile.mkdtemp(prefix="qa-hybrid-scale-"))
    asked = work / "questions.json"
    work.mkdir(parents=True, exist_ok=True)
    asked.write_text(json.dumps(questions), encoding="utf-8")
    results = {}
    for n in (int(x) for x in args.n.split(",")):
        target = work / f"index-{n}"
        built = grow(args.index, target, n) if not (target / "manifest.json").exists() else {}
        run = subprocess.run(
            [sys.executable, __file__, "--ask", str(target), "--questions-file", str(asked)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        size = sum(path.stat().st_size for path in target.iterdir())
        results[n] = {
            "build_s": {k: round(v, 1) for k, v in built.items()},
            "bytes_per_passage": round(size / n),
            **json.loads(run.stdout.splitlines()[-1]),
        }
        r = results[n]
        print(
            f"{n:>9} passages: search median {r['median_ms']} ms, p95 {r['p95_ms']}, p99 {r['p99_ms']}; first stage "
            f"{r['rank_median_ms']} ms; open {r['open_s']} s; VmRSS {r['VmRSS']} MB (RssAnon {r['RssAnon']}, "
            f"RssFile {r['RssFile']}), VmHWM {r['VmHWM']} MB",
            flush=True,
        )
    print(json.dumps({"load_average": os.getloadavg(), "results": results}))


if __name__ == "__main__":
    main()
