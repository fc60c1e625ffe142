"""Sweep fusion settings over a built index and a labelled set; prints one row per setting.

Usage (tune on SciFact train, never on test):
    python benchmarks/tune_retrieval.py ../shared/eval/public/scifact --split train --index /tmp/scifact-idx
    python benchmarks/tune_retrieval.py tests/data/seeds_questions.jsonl --corpus seeds --index /tmp/seeds-idx
The index must already be built from the dataset's corpus (`qa eval ... --index DIR` builds it).

With ``--grid``, every row after the first also gets its nDCG@10 and MRR@10 difference from the first row,
with a 95% paired bootstrap interval over the questions and the number of questions it ranks better and worse.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from qa.config import Settings  # noqa: E402
from qa.embed.encoder import load_encoder  # noqa: E402
from qa.eval.datasets import load_dataset  # noqa: E402
from qa.eval.evaluate import BEIR_PASSAGES, run_queries  # noqa: E402
from qa.eval.metrics import mrr_at_k, ndcg_at_k  # noqa: E402
from qa.index.manifest import Manifest  # noqa: E402
from qa.search.service import SearchService  # noqa: E402

GRID = [
    {"mode": "dense"},
    {"mode": "keyword"},
    {"mode": "keyword", "context_weight": 2.0},
    {"mode": "keyword", "context_weight": 0.5},
    *({"mode": "hybrid", "fusion": "rrf", "rrf_k": k} for k in (10, 60)),
    *({"mode": "hybrid", "fusion": "score", "dense_weight": w} for w in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)),
]


def memoised_encoder(index_dir: Path):
    """The model of the index at ``index_dir``, at its precision, embedding each distinct input only once."""
    manifest = Manifest.read(index_dir)
    encoder = load_encoder(manifest.model, precision=manifest.precision)
    original, memo = encoder.encode, {}

    def encode(texts, **kwargs):
        key = tuple(texts)
        if key not in memo:
            memo[key] = original(texts, **kwargs)
        return memo[key]

    encoder.encode = encode
    return encoder


def scored(dataset, service: SearchService, mode: str):
    """``run_queries``' report, and each judged question's (nDCG@10, MRR@10) from the very rankings it scored."""
    report = run_queries(dataset, service, mode)
    runs, qrels = report.runs, report.qrels
    judged = sorted(q for q, relevant in qrels.items() if any(g > 0 for g in relevant.values()))
    return report, {
        q: (ndcg_at_k(runs.get(q, []), qrels[q], 10), mrr_at_k(runs.get(q, []), qrels[q], 10)) for q in judged
    }


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """The labelled set and the index built from its corpus, as the sweeps here take them."""
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--split", default="train")
    parser.add_argument("--corpus", type=Path)


def paired_difference(base: dict[str, float], other: dict[str, float], resamples: int = 2000) -> dict:
    """Mean per-question difference (other - base) with a 95% paired bootstrap interval, and questions won and lost."""
    diffs = np.array([other[q] - base[q] for q in sorted(base)])
    draws = np.random.default_rng(0).integers(0, len(diffs), size=(resamples, len(diffs)))
    means = diffs[draws].mean(axis=1)
    return {
        "mean_diff": float(diffs.mean()),
        "ci95": [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))],
        "better": int((diffs > 1e-9).sum()),
        "worse": int((diffs < -1e-9).sum()),
    }


def paired(base: dict[str, tuple], other: dict[str, tuple], column: int) -> str:
    """``paired_difference`` of one per-question column, as ``+0.0012 [-0.0010, +0.0034] +5/-3``."""
    d = paired_difference({q: v[column] for q, v in base.items()}, {q: v[column] for q, v in other.items()})
    low, high = d["ci95"]
    return f"{d['mean_diff']:+.4f} [{low:+.4f}, {high:+.4f}] +{d['better']}/-{d['worse']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_arguments(parser)
    parser.add_argument("--grid", help="JSON list of settings overrides instead of the built-in grid")
    args = parser.parse_args()
    dataset = load_dataset(args.dataset, split=args.split, corpus=args.corpus)
    manifest = Manifest.read(args.index)
    # Each question is embedded once for the whole sweep.
    encoder = memoised_encoder(args.index)
    base = Settings(index_dir=args.index, max_top_k=BEIR_PASSAGES)
    print(f"dataset {dataset.name} split {args.split}: {len(dataset.queries)} queries; index {manifest.chunking}")
    first = None
    for overrides in json.loads(args.grid) if args.grid else GRID:
        settings = replace(base, **overrides)
        service = SearchService.open(settings, encoder=encoder)
        report, per_question = scored(dataset, service, settings.mode)
        m = report.metrics
        versus = ""
        if first is None:
            first = per_question
        elif args.grid:
            versus = f"  vs first: nDCG@10 {paired(first, per_question, 0)}  MRR@10 {paired(first, per_question, 1)}"
        print(
            f"{json.dumps(overrides):70s} nDCG@10 {m.ndcg_at_10:.4f}  R@100 {m.recall_at_100:.4f}  "
            f"MRR@10 {m.mrr_at_10:.4f}  hit@5 {m.hit_at_5:.4f}  median {report.latency_median_ms:.1f} ms{versus}",
            flush=True,
        )


if __name__ == "__main__":
    main()
