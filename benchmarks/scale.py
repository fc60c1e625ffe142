"""How the vector index scales: exact and approximate search over N random unit vectors, and what serving costs.

    python benchmarks/scale.py [--n 1000000] [--queries 300] [--rerank 4000,12000] [--serve-runs 3]
Generates N random unit 384-dimensional vectors (the hard case: no clusters or neighbourhoods for an
index to exploit) and random unit queries, builds the exact and the approximate ``VectorIndex``, saves and
reloads each, and times single-query searches at one thread (k=10). Recall@10 is measured against the
exact index. ``--rerank`` also tries other re-ranking depths for the approximate index (candidates
re-ranked exactly per query).

Then the serving comparison: the approximate index as an index directory opened by the real loader
(``qa.index.snapshot.open_snapshot``: checksums, the vector file mapped, the codes read), against the FAISS file of
the format before it (``IndexIDMap2(IndexRefineFlat(IndexPQFastScan))``, every float vector in memory, the same
codes and re-ranking depth), each in a fresh process that loads it, runs ``--serve-queries`` single-query
searches and reads its memory from /proc/self/status: VmRSS (resident), VmHWM (peak resident), RssAnon (the
process's own memory) and RssFile (pages of mapped files: the page cache, shared and dropped by the kernel under
pressure). The two kinds alternate, ``--serve-runs`` times each; medians are printed, with their ratio.

Prints tables, then one JSON object. At 1,000,000 vectors it needs about 6 GB of memory and 15-25 minutes on 2
cores; run it on an idle machine for figures worth quoting.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import qa.index.vectors as vectors_module
from qa.index.manifest import (
    CODES_FILE,
    DATABASE_FILE,
    FORMAT_VERSION,
    SENTENCES_FILE,
    VECTORS_FILE,
    Manifest,
    file_checksum,
)
from qa.index.sentence_vectors import SentenceFileWriter
from qa.index.store import StoreWriter
from qa.index.vectors import VectorIndex


def unit_vectors(n: int, dimension: int, rng: np.random.Generator, block: int = 100_000) -> np.ndarray:
    """``n`` random unit vectors (uniform on the sphere), generated in blocks to bound temporary memory."""
    out = np.empty((n, dimension), dtype=np.float32)
    for first in range(0, n, block):
        rows = rng.standard_normal((min(block, n - first), dimension), dtype=np.float32)
        out[first : first + len(rows)] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out


def timed_searches(index: VectorIndex, queries: np.ndarray, k: int, allowed=None) -> tuple[list[float], np.ndarray]:
    """Milliseconds of each single-query search, and the ids found (one row per query)."""
    index.search(queries[:1], k, allowed)  # warm up
    times, found = [], []
    for query in queries:
        started = time.perf_counter()
        _, ids = index.search(query[None, :], k, allowed)
        times.append((time.perf_counter() - started) * 1000)
        found.append(ids[0])
    return times, np.array(found)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's true top k that was found."""
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / len(t) for f, t in zip(found, truth)]))


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


def p99(values: list[float]) -> float:
    return float(np.percentile(values, 99))


def measure(kind: str, n: int, ids, vectors, queries, k, workdir: Path, exact_max: int) -> tuple[dict, VectorIndex]:
    """Build, save and reload one index; its build time, size (vector file plus codes) and search times."""
    started = time.perf_counter()
    built = VectorIndex.build(ids, vectors, exact_max=exact_max)
    build_s = time.perf_counter() - started
    rows, codes = workdir / f"{kind}.f32", (workdir / f"{kind}.codes" if kind == "approximate" else None)
    built.save(rows, codes)
    del built
    index = VectorIndex.load(rows, codes)
    assert index.kind == kind, (index.kind, kind)
    size = rows.stat().st_size + (codes.stat().st_size if codes else 0)
    return {
        "kind": kind,
        "build_s": round(build_s, 2),
        "bytes_per_vector": round(size / n, 1),
        "file_mb": round(size / 1e6, 1),
    }, index


def write_index_directory(index: VectorIndex, directory: Path) -> None:
    """``index`` as an index directory the real loader opens: its vector files, a sentences file of passages
    without sentences (this measures passage vectors), an empty store, a manifest."""
    directory.mkdir()
    approximate = index.kind == "approximate"
    index.save(directory / VECTORS_FILE, directory / CODES_FILE if approximate else None)
    sentences = SentenceFileWriter(directory / SENTENCES_FILE, index.dimension)
    no_sentences = np.zeros((0, index.dimension), dtype=np.int8), np.zeros(0, dtype=np.float32)
    for chunk_id in index.ids.tolist():
        sentences.add(chunk_id, *no_sentences)
    sentences.close()
    StoreWriter(directory / DATABASE_FILE).close()
    files = {
        "vectors": VECTORS_FILE,
        "sentences": SENTENCES_FILE,
        "database": DATABASE_FILE,
        **({"codes": CODES_FILE} if approximate else {}),
    }
    Manifest(
        format_version=FORMAT_VERSION,
        model="random",
        dimension=index.dimension,
        max_tokens=256,
        chunking={"size": 128, "overlap": 0, "splitter": "none"},
        corpus={},
        vectors={"kind": index.kind},
        counts={"documents": 0, "chunks": len(index)},
        checksums={name: file_checksum(directory / name) for name in files.values()},
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        files=files,
    ).write(directory)


def write_previous_format(ids: np.ndarray, vectors: np.ndarray, path: Path) -> None:
    """The approximate index as the format before the vector file stored it (one FAISS file holding the codes and
    every float vector), trained on the same sample."""
    import faiss

    dimension = vectors.shape[1]
    codes = faiss.IndexPQFastScan(dimension, dimension // 2, 4, faiss.METRIC_INNER_PRODUCT)
    index = faiss.IndexIDMap2(faiss.IndexRefineFlat(codes))
    sample = vectors
    if len(vectors) > vectors_module.TRAIN_SAMPLE:
        rows = np.random.default_rng(0).choice(len(vectors), vectors_module.TRAIN_SAMPLE, replace=False)
        sample = vectors[np.sort(rows)]
    faiss.omp_set_num_threads(1)
    index.train(sample)
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    index.add_with_ids(vectors, ids)
    faiss.write_index(index, str(path))


def memory_status() -> dict:
    """This process's VmRSS, VmHWM, RssAnon and RssFile in MB."""
    wanted = {"VmRSS", "VmHWM", "RssAnon", "RssFile"}
    found = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in wanted:
                found[name] = round(int(value.split()[0]) / 1024, 1)
    return found


def serve_child(kind: str, path: Path, queries_path: Path, k: int, depth: int) -> None:
    """In a fresh process: load one kind of index as a server would, search, print times and memory as JSON."""
    before = memory_status()
    queries = np.load(queries_path)
    started = time.perf_counter()
    if kind == "mapped":
        from qa.index.snapshot import open_snapshot

        index = open_snapshot(path).vectors
        assert index.kind == "approximate" and index.rerank_depth(k) == depth

        def search(query):
            return index.search(query, k)[1]
    else:
        import faiss

        index = faiss.read_index(str(path))
        faiss.omp_set_num_threads(1)
        params = faiss.IndexRefineSearchParameters(k_factor=depth / k)

        def search(query):
            return index.search(query, k, params=params)[1]

    load_s = time.perf_counter() - started
    loaded = memory_status()
    search(queries[:1])  # warm up
    times, found = [], []
    for query in queries:
        begun = time.perf_counter()
        found.append(search(query[None, :])[0])
        times.append((time.perf_counter() - begun) * 1000)
    np.save(queries_path.with_name(f"found-{kind}.npy"), np.array(found))
    print(
        json.dumps(
            {
                "kind": kind,
                "load_s": round(load_s, 2),
                "before_load": before,
                "after_load": loaded,
                "after_searches": memory_status(),
                "median_ms": round(statistics.median(times), 3),
                "p99_ms": round(p99(times), 3),
            }
        )
    )


def serving_comparison(approx: VectorIndex, ids, vectors, truth_of, k: int, workdir: Path, args) -> list[dict]:
    """Both kinds served from fresh processes, alternating, ``args.serve_runs`` times each."""
    mapped_dir, previous_file = workdir / "mapped-index", workdir / "previous.faiss"
    write_index_directory(approx, mapped_dir)
    write_previous_format(ids, vectors, previous_file)
    queries = unit_vectors(args.serve_queries, args.dimension, np.random.default_rng(args.seed + 1))
    queries_path = workdir / "serve-queries.npy"
    np.save(queries_path, queries)
    truth = truth_of(queries)
    runs: list[dict] = []
    for run in range(args.serve_runs):
        for kind, path in (("previous", previous_file), ("mapped", mapped_dir)):
            command = [
                sys.executable,
                __file__,
                "--child",
                kind,
                str(path),
                str(queries_path),
                str(args.k),
                str(approx.rerank_depth(args.k)),
            ]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            row = json.loads(output.strip().splitlines()[-1])
            row["recall_at_k"] = round(recall(np.load(queries_path.with_name(f"found-{kind}.npy")), truth), 4)
            row["run"] = run
            runs.append(row)
            print(f"serving {kind} (run {run + 1}): {row}", flush=True)
    return runs


def serving_summary(runs: list[dict]) -> dict:
    """Per kind, the median of each figure over the runs."""
    summary = {}
    for kind in ("previous", "mapped"):
        rows = [r for r in runs if r["kind"] == kind]
        summary[kind] = {
            "load_s": statistics.median(r["load_s"] for r in rows),
            "median_ms": statistics.median(r["median_ms"] for r in rows),
            "p99_ms": statistics.median(r["p99_ms"] for r in rows),
            "recall_at_k": statistics.median(r["recall_at_k"] for r in rows),
            **{
                f"{name}_mb": statistics.median(r["after_searches"][name] for r in rows)
                for name in ("VmRSS", "VmHWM", "RssAnon", "RssFile")
            },
            "VmRSS_before_load_mb": statistics.median(r["before_load"]["VmRSS"] for r in rows),
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="vectors in the index")
    parser.add_argument("--queries", type=int, default=300, help="single-query searches timed per setting")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--dimension", type=int, default=384)
    parser.add_argument("--rerank", default="", help="extra re-ranking depths to try, comma-separated")
    parser.add_argument("--filter-queries", type=int, default=50, help="searches timed per filter selectivity")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--serve-runs", type=int, default=3, help="fresh serving processes per kind (0: none)")
    parser.add_argument("--serve-queries", type=int, default=1000, help="searches timed per serving process")
    parser.add_argument("--child", nargs=5, metavar=("KIND", "PATH", "QUERIES", "K", "DEPTH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, path, queries_path, k, depth = args.child
        serve_child(kind, Path(path), Path(queries_path), int(k), int(depth))
        return

    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    vectors = unit_vectors(args.n, args.dimension, rng)
    queries = unit_vectors(args.queries, args.dimension, rng)
    # Ids are not positions, as with real chunk rowids after deletions.
    ids = np.arange(args.n, dtype=np.int64) * 3 + 1
    print(
        f"generated {args.n:,} vectors in {time.perf_counter() - started:.1f} s; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        flush=True,
    )

    rows = []
    with tempfile.TemporaryDirectory(prefix="qa-scale-") as tmp:
        exact_row, exact = measure("exact", args.n, ids, vectors, queries, args.k, Path(tmp), args.n + 1)
        times, truth = timed_searches(exact, queries, args.k)
        exact_row.update(median_ms=round(statistics.median(times), 3), p95_ms=round(p95(times), 3), recall_at_k=1.0)
        rows.append(exact_row)
        print(f"exact: {exact_row}", flush=True)
        serve_queries = unit_vectors(args.serve_queries, args.dimension, np.random.default_rng(args.seed + 1))
        serve_truth = exact.search(serve_queries, args.k)[1] if args.serve_runs > 0 else None
        del exact

        approx_row, approx = measure("approximate", args.n, ids, vectors, queries, args.k, Path(tmp), 0)
        print(f"approximate built: {approx_row}", flush=True)
        depths = [approx.rerank_depth(args.k)] + [int(d) for d in args.rerank.split(",") if d.strip()]
        for depth in dict.fromkeys(depths):
            # A sweep overrides the index's depth; the first depth is the configured one.
            saved = approx.rerank_scale, approx.rerank_per_result
            approx.rerank_scale, approx.rerank_per_result = depth / math.sqrt(args.n), 0
            try:
                times, found = timed_searches(approx, queries, args.k)
            finally:
                approx.rerank_scale, approx.rerank_per_result = saved
            row = dict(
                approx_row,
                rerank=depth,
                configured=depth == depths[0],
                median_ms=round(statistics.median(times), 3),
                p95_ms=round(p95(times), 3),
                recall_at_k=round(recall(found, truth), 4),
            )
            rows.append(row)
            print(f"approximate: {row}", flush=True)

        filtered = []
        for share in (0.01, 0.1, 0.3, 0.5) if args.filter_queries > 0 else ():
            allowed = np.sort(rng.choice(ids, max(1, math.ceil(share * args.n)), replace=False))
            subset = queries[: args.filter_queries]
            times, found = timed_searches(approx, subset, args.k, allowed)
            allowed_set = set(allowed.tolist())
            assert all(set(f.tolist()) <= allowed_set and len(f) == args.k for f in found)
            # Exact truth for the filter: cosine over the allowed vectors only.
            keep = np.isin(ids, allowed)
            truth_f = ids[keep][np.argsort(-(subset @ vectors[keep].T), axis=1)[:, : args.k]]
            filtered.append(
                {
                    "allowed_share": share,
                    "median_ms": round(statistics.median(times), 3),
                    "p95_ms": round(p95(times), 3),
                    "recall_at_k": round(recall(found, truth_f), 4),
                }
            )
            print(f"approximate, filter keeping {share:.0%}: {filtered[-1]}", flush=True)

        serving = []
        if args.serve_runs > 0:
            serving = serving_comparison(approx, ids, vectors, lambda _: serve_truth, args.k, Path(tmp), args)

    exact_ms = rows[0]["median_ms"]
    print()
    print(f"{args.n:,} random unit {args.dimension}-d vectors, {args.queries} queries, k={args.k}, 1 search thread")
    print(
        f"{'index':<12} {'rerank':>7} {'build s':>8} {'B/vector':>9} {'median ms':>10} {'p95 ms':>8} "
        f"{'recall@' + str(args.k):>9} {'speed-up':>9}"
    )
    for row in rows:
        print(
            f"{row['kind']:<12} {row.get('rerank', '-'):>7} {row['build_s']:>8} {row['bytes_per_vector']:>9} "
            f"{row['median_ms']:>10} {row['p95_ms']:>8} {row['recall_at_k']:>9} "
            f"{exact_ms / row['median_ms']:>8.1f}x"
        )
    for row in filtered:
        print(
            f"approximate, filter keeping {row['allowed_share']:.0%} of ids: median {row['median_ms']} ms, "
            f"p95 {row['p95_ms']} ms, recall@{args.k} {row['recall_at_k']}"
        )
    summary = serving_summary(serving) if serving else {}
    if summary:
        previous, mapped = summary["previous"], summary["mapped"]
        print()
        print(
            f"serving the approximate index, fresh process per run, medians of {args.serve_runs} runs of "
            f"{args.serve_queries} searches (MB from /proc/self/status after the searches)"
        )
        print(
            f"{'kind':<10} {'load s':>7} {'median ms':>10} {'p99 ms':>8} {'recall':>7} {'VmRSS':>7} {'VmHWM':>7} "
            f"{'RssAnon':>8} {'RssFile':>8}"
        )
        for kind, row in summary.items():
            print(
                f"{kind:<10} {row['load_s']:>7} {row['median_ms']:>10} {row['p99_ms']:>8} {row['recall_at_k']:>7} "
                f"{row['VmRSS_mb']:>7} {row['VmHWM_mb']:>7} {row['RssAnon_mb']:>8} {row['RssFile_mb']:>8}"
            )
        ratios = {
            name: round(mapped[name] / previous[name], 3)
            for name in ("median_ms", "p99_ms", "VmRSS_mb", "VmHWM_mb", "RssAnon_mb")
        }
        print(f"mapped / previous: {ratios}")
        summary["ratios"] = ratios
    print(
        json.dumps(
            {
                "n": args.n,
                "dimension": args.dimension,
                "queries": args.queries,
                "k": args.k,
                "exact_max_vectors": vectors_module.EXACT_MAX_VECTORS,
                "indexes": rows,
                "filtered": filtered,
                "serving": summary,
                "serving_runs": serving,
                "load_average": round(os.getloadavg()[0], 1),
                "cores": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
