"""How the vector index scales: exact and approximate search over N random unit vectors.

    python benchmarks/scale.py [--n 1000000] [--queries 300] [--rerank 4000,12000]
Generates N random unit 384-dimensional vectors (the hard case: no clusters or neighbourhoods for an
index to exploit) and random unit queries, builds the exact and the approximate ``VectorIndex``, saves and
reloads each, and times single-query searches at one thread (k=10). Recall@10 is measured against the
exact index. ``--rerank`` also tries other re-ranking depths for the approximate index (candidates
re-ranked exactly per query). Prints a table, then one JSON object. At 1,000,000 vectors it needs about
6 GB of memory and 10-20 minutes on 2 cores; run it on an idle machine for figures worth quoting.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import qa.vectors as vectors_module
from qa.vectors import VectorIndex


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


def measure(kind: str, n: int, ids, vectors, queries, k, workdir: Path, exact_max: int) -> tuple[dict, VectorIndex]:
    """Build, save and reload one index; its build time, size and search times."""
    started = time.perf_counter()
    built = VectorIndex.build(ids, vectors, exact_max=exact_max)
    build_s = time.perf_counter() - started
    path = workdir / f"{kind}.faiss"
    built.save(path)
    del built
    index = VectorIndex.load(path)
    assert index.kind == kind, (index.kind, kind)
    return {
        "kind": kind,
        "build_s": round(build_s, 2),
        "bytes_per_vector": round(path.stat().st_size / n, 1),
        "file_mb": round(path.stat().st_size / 1e6, 1),
    }, index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="vectors in the index")
    parser.add_argument("--queries", type=int, default=300, help="single-query searches timed per setting")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--dimension", type=int, default=384)
    parser.add_argument("--rerank", default="", help="extra re-ranking depths to try, comma-separated")
    parser.add_argument("--filter-queries", type=int, default=50, help="searches timed per filter selectivity")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    vectors = unit_vectors(args.n, args.dimension, rng)
    queries = unit_vectors(args.queries, args.dimension, rng)
    # Ids are not positions, as with real chunk rowids after deletions.
    ids = np.arange(args.n, dtype=np.int64) * 3 + 1
    print(f"generated {args.n:,} vectors in {time.perf_counter() - started:.1f} s; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)

    rows = []
    with tempfile.TemporaryDirectory(prefix="qa-scale-") as tmp:
        exact_row, exact = measure("exact", args.n, ids, vectors, queries, args.k, Path(tmp), args.n + 1)
        times, truth = timed_searches(exact, queries, args.k)
        exact_row.update(median_ms=round(statistics.median(times), 3), p95_ms=round(p95(times), 3), recall_at_k=1.0)
        rows.append(exact_row)
        print(f"exact: {exact_row}", flush=True)
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
            row = dict(approx_row, rerank=depth, configured=depth == depths[0],
                       median_ms=round(statistics.median(times), 3), p95_ms=round(p95(times), 3),
                       recall_at_k=round(recall(found, truth), 4))
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
            filtered.append({"allowed_share": share, "median_ms": round(statistics.median(times), 3),
                             "p95_ms": round(p95(times), 3), "recall_at_k": round(recall(found, truth_f), 4)})
            print(f"approximate, filter keeping {share:.0%}: {filtered[-1]}", flush=True)

    exact_ms = rows[0]["median_ms"]
    print()
    print(f"{args.n:,} random unit {args.dimension}-d vectors, {args.queries} queries, k={args.k}, 1 search thread")
    print(f"{'index':<12} {'rerank':>7} {'build s':>8} {'B/vector':>9} {'median ms':>10} {'p95 ms':>8} "
          f"{'recall@' + str(args.k):>9} {'speed-up':>9}")
    for row in rows:
        print(f"{row['kind']:<12} {row.get('rerank', '-'):>7} {row['build_s']:>8} {row['bytes_per_vector']:>9} "
              f"{row['median_ms']:>10} {row['p95_ms']:>8} {row['recall_at_k']:>9} "
              f"{exact_ms / row['median_ms']:>8.1f}x")
    for row in filtered:
        print(f"approximate, filter keeping {row['allowed_share']:.0%} of ids: median {row['median_ms']} ms, "
              f"p95 {row['p95_ms']} ms, recall@{args.k} {row['recall_at_k']}")
    print(json.dumps({"n": args.n, "dimension": args.dimension, "queries": args.queries, "k": args.k,
                      "exact_max_vectors": vectors_module.EXACT_MAX_VECTORS, "indexes": rows, "filtered": filtered,
                      "load_average": round(os.getloadavg()[0], 1), "cores": os.cpu_count()}))


if __name__ == "__main__":
    main()
