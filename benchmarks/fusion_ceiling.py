"""How far any fusion setting could take this index's two rankers: an oracle that picks, for every question
separately, the best of many retrieval settings (keyword only, meaning only, score fusion over a grid of dense
and best-sentence weights, reciprocal rank fusion). No real system can choose per question with the labels,
so its figures are an upper bound on what tuning fusion can reach; a target above them needs better rankers.

Usage:
    python benchmarks/fusion_ceiling.py tests/data/seeds_questions.jsonl --corpus seeds --index /tmp/seeds-idx
The index must already be built from the dataset's corpus (`qa index seeds --index DIR`).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tune_retrieval import add_dataset_arguments, memoised_encoder  # noqa: E402

from qa.config import Settings  # noqa: E402
from qa.eval.datasets import load_dataset  # noqa: E402
from qa.eval.evaluate import BEIR_PASSAGES, run_queries  # noqa: E402
from qa.eval.metrics import hit_at_k, mrr_at_k, ndcg_at_k  # noqa: E402
from qa.search.service import SearchService  # noqa: E402

METRICS = {
    "nDCG@10": lambda run, rel: ndcg_at_k(run, rel, 10),
    "MRR@10": lambda run, rel: mrr_at_k(run, rel, 10),
    "hit@5": lambda run, rel: hit_at_k(run, rel, 5),
}


def settings_grid(dense_steps: int) -> list[dict]:
    """Every setting the oracle may pick from."""
    grid: list[dict] = [{"mode": "keyword"}, {"mode": "dense"}]
    grid += [{"mode": "hybrid", "fusion": "rrf", "rrf_k": k} for k in (10, 60)]
    grid += [
        {"mode": "hybrid", "fusion": "score", "dense_weight": round(step / dense_steps, 4), "sentence_weight": s}
        for step in range(dense_steps + 1)
        for s in (0.0, 0.4, 0.8, 1.0)
    ]
    return grid


def ceiling(dataset, index_dir, *, dense_steps: int = 20, encoder=None) -> tuple[dict, dict, list[str]]:
    """Per metric, the mean under the default settings and the oracle's mean (each question's best setting),
    and the questions no setting answers within the top 5."""
    encoder = encoder or memoised_encoder(index_dir)
    base = Settings(index_dir=index_dir, max_top_k=BEIR_PASSAGES)
    default: dict[str, dict[str, float]] = {}
    best: dict[str, dict[str, float]] = {name: {} for name in METRICS}
    for number, overrides in enumerate([{}] + settings_grid(dense_steps)):
        settings = replace(base, **overrides)
        report = run_queries(dataset, SearchService.open(settings, encoder=encoder), settings.mode)
        for name, metric in METRICS.items():
            scores = {q: metric(report.runs[q], report.qrels[q]) for q in report.qrels}
            if number == 0:
                default[name] = scores
            for q, value in scores.items():
                best[name][q] = max(best[name].get(q, 0.0), value)
    n = len(dataset.queries)
    means = lambda per_question: sum(per_question.values()) / n  # noqa: E731
    missed = sorted(q for q, value in best["hit@5"].items() if value == 0)
    return {name: means(default[name]) for name in METRICS}, {name: means(best[name]) for name in METRICS}, missed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_arguments(parser)
    parser.add_argument("--dense-steps", type=int, default=20, help="dense weights 0, 1/N, ..., 1 (default 20)")
    args = parser.parse_args()
    dataset = load_dataset(args.dataset, split=args.split, corpus=args.corpus)
    default, oracle, missed = ceiling(dataset, args.index, dense_steps=args.dense_steps)
    print(
        f"dataset {dataset.name}: {len(dataset.queries)} questions; "
        f"oracle over {len(settings_grid(args.dense_steps))} settings per question"
    )
    for name in METRICS:
        print(f"{name:8s} default settings {default[name]:.4f}   best setting per question (oracle) {oracle[name]:.4f}")
    print(f"no setting puts the answer in the top 5 for {len(missed)} questions: {' '.join(missed)}")


if __name__ == "__main__":
    main()
