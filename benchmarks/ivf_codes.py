"""Flat fast-scan PQ codes against an inverted file over them: recall, candidate-step time and build cost.

    python benchmarks/ivf_codes.py --index DIR --dataset ../shared/eval/public/scifact [--lists 1,2,4]
    python benchmarks/ivf_codes.py --random 1000000 [--queries 300] [--residual 0,1] [--probes 16,32,64,128]

With ``--index``, the vectors are that index's passage rows (for example the 1,000,000 passages
benchmarks/hybrid_scale.py grows from SciFact) and the queries the labelled set's questions, embedded by the
index's model (``--first N``: its first N rows, for a grown index the size it had at N passages). With
``--random N``, N random unit 384-dimensional vectors and random unit queries (no clusters for the lists to follow:
the hard case).

Builds the flat codes ``VectorIndex.build`` makes below ``IVF_MIN_VECTORS`` and inverted codes of LISTS * sqrt(N)
lists (``--lists``; by residual or not: ``--residual``; spherical k-means or not: ``--spherical``) over the same
rows, and prints each one's training and adding seconds and size. Then, for each number of lists probed
(``--probes``, and the rule ``VectorIndex.probes`` applies, ``rule``), the full unfiltered search (candidates by the
codes, ``rerank_depth(k)`` of them re-ranked exactly on the rows) at k=10 and k=100: recall@10 and recall@100
against exact search, and the median milliseconds of the candidate step alone (the codes' search at k=100's depth),
single queries on one thread, every variant timed on the same query one after the other, so their ratio to the flat
codes' time is measured in the same conditions.
Prints a table, then one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path

import numpy as np
from scale import unit_vectors  # run from benchmarks/, like the other scripts

import qa.index.vectors as vectors_module
from qa.index.manifest import VECTORS_FILE, Manifest
from qa.index.vectors import VectorIndex


def question_vectors(index: Path, dataset: Path, split: str, count: int) -> np.ndarray:
    """The labelled set's first ``count`` questions, embedded as the index's searches embed them."""
    from qa.embed.encoder import load_encoder
    from qa.eval.datasets import load_dataset

    manifest = Manifest.read(index)
    encoder = load_encoder(manifest.model, precision=(manifest.encoder or {}).get("precision", "fp32"))
    questions = [q.text for q in load_dataset(dataset, split=split).queries][:count]
    return np.stack([encoder.encode([question])[0] for question in questions]).astype(np.float32)


def built_codes(rows: np.ndarray, lists: int, by_residual: bool, spherical: bool = False) -> tuple[object, dict]:
    """Codes of ``rows`` as ``VectorIndex.build`` trains them (flat when ``lists`` is 0); their build figures."""
    subquantizers = rows.shape[1] // vectors_module.DIMENSIONS_PER_SUBQUANTIZER
    started = time.perf_counter()
    codes = vectors_module._train_codes(rows, subquantizers, lists, by_residual, spherical)
    seconds = time.perf_counter() - started
    faiss = vectors_module._faiss()
    size = len(faiss.serialize_index(codes))
    return codes, {"build_s": round(seconds, 1), "codes_mb": round(size / 1e6, 1)}


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's true ids that were found."""
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / len(t) for f, t in zip(found, truth)]))


def searched(index: VectorIndex, queries: np.ndarray, k: int) -> np.ndarray:
    """Each query's top ``k`` ids, searched one at a time as a server does."""
    return np.stack([index.search(query[None, :], k)[1][0] for query in queries])


def candidate_ms(variants: dict[str, VectorIndex], queries: np.ndarray, depth: int, rounds: int) -> dict[str, float]:
    """Median milliseconds of each variant's candidate step for ``depth`` candidates, alternating per query."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for query in queries:
            for name, index in variants.items():
                started = time.perf_counter()
                index._candidates(query[None, :], depth)
                times[name].append((time.perf_counter() - started) * 1000)
    return {name: round(statistics.median(values), 3) for name, values in times.items()}


def with_probes(ids: np.ndarray, rows: np.ndarray, codes, probes: int | None) -> VectorIndex:
    """An approximate index over ``codes`` that probes ``probes`` lists (None: ``VectorIndex.probes``' rule)."""
    index = VectorIndex(ids, rows, codes)
    if probes is not None and index.lists:
        index.probe_per_candidate, index.min_probes = 0, probes
    return index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, help="An index whose passage rows are the vectors.")
    parser.add_argument("--dataset", type=Path, help="Labelled set whose questions are the queries (with --index).")
    parser.add_argument("--split", default="test")
    parser.add_argument("--random", type=int, help="Use this many random unit vectors instead of an index.")
    parser.add_argument("--first", type=int, help="With --index: its first this many rows only.")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--lists", default="2", help="Comma-separated list counts, in units of sqrt(N).")
    parser.add_argument("--residual", default="0", help="Comma-separated by_residual settings (0, 1).")
    parser.add_argument("--spherical", default="1", help="Comma-separated spherical k-means settings (0, 1).")
    parser.add_argument("--probes", default="16,32,64,128", help="Comma-separated lists probed.")
    parser.add_argument("--rounds", type=int, default=3, help="Timed passes over the queries.")
    args = parser.parse_args()
    vectors_module._one_search_thread()
    if args.random:
        rng = np.random.default_rng(0)
        rows = unit_vectors(args.random, 384, rng)
        queries = unit_vectors(args.queries, 384, rng)
        ids = np.arange(len(rows), dtype=np.int64)
    else:
        loaded = VectorIndex.load(args.index / VECTORS_FILE)
        ids, rows = loaded.ids[: args.first], loaded._rows[: args.first]
        queries = question_vectors(args.index, args.dataset, args.split, args.queries)
    exact = VectorIndex(ids, rows)
    truth = {k: searched(exact, queries, k) for k in (10, 100)}
    flat_codes, flat_built = built_codes(rows, 0, False)
    variants = {"flat": VectorIndex(ids, rows, flat_codes)}
    built = {"flat": flat_built}
    for scale in (float(x) for x in args.lists.split(",")):
        lists = max(1, round(scale * math.sqrt(len(rows))))
        for by_residual, spherical in (
            (bool(int(r)), bool(int(s))) for r in args.residual.split(",") for s in args.spherical.split(",")
        ):
            codes, figures = built_codes(rows, lists, by_residual, spherical)
            prefix = f"ivf{lists}{'r' if by_residual else ''}{'s' if spherical else ''}"
            built[prefix] = {**figures, "lists": lists, "by_residual": by_residual, "spherical": spherical}
            print(f"{prefix}: built in {figures['build_s']} s, {figures['codes_mb']} MB", flush=True)
            # What the build's check measures on these codes (below IVF_CHECK_RECALL it would keep flat codes).
            built[prefix]["check_recall"] = round(VectorIndex(ids, rows, codes).check_recall(), 4)
            print(f"{prefix}: check recall {built[prefix]['check_recall']}", flush=True)
            for probes in [None, *(int(x) for x in args.probes.split(",") if x)]:
                variants[f"{prefix}/{'rule' if probes is None else probes}"] = with_probes(ids, rows, codes, probes)
    depth = variants["flat"].rerank_depth(100)
    timed = candidate_ms(variants, queries, depth, args.rounds)
    results = {}
    print(f"N={len(rows)}, {len(queries)} queries; candidate step for {depth} candidates")
    print(f"{'variant':>16} {'probes@100':>10} {'recall@10':>9} {'recall@100':>10} {'cand ms':>8} {'vs flat':>7}")
    for name, index in variants.items():
        found = {k: searched(index, queries, k) for k in (10, 100)}
        row = {
            "probes_k100": index.probes(depth),
            "recall_at_10": round(recall(found[10], truth[10]), 4),
            "recall_at_100": round(recall(found[100], truth[100]), 4),
            "candidate_ms": timed[name],
            "ratio_to_flat": round(timed[name] / timed["flat"], 3),
        }
        results[name] = row
        print(
            f"{name:>16} {row['probes_k100']:>10} {row['recall_at_10']:>9} {row['recall_at_100']:>10} "
            f"{row['candidate_ms']:>8} {row['ratio_to_flat']:>7}",
            flush=True,
        )
    print(
        json.dumps(
            {
                "n": len(rows),
                "queries": len(queries),
                "load_average": os.getloadavg(),
                "built": built,
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
