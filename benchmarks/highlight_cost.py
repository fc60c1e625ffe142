"""What supporting sentences add to query latency: the same searches with and without them, interleaved.

    python benchmarks/highlight_cost.py --index embeddings [--rounds 5]
Prints medians over all questions and rounds, and their difference; run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from qa.config import Settings  # noqa: E402
from qa.search.service import SearchService  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, default=ROOT / "embeddings")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--top-k", type=int, default=5)
    args = parser.parse_args()
    service = SearchService.open(Settings(index_dir=args.index))
    questions = [json.loads(line)["question"] for line in (ROOT / "tests/data/seeds_questions.jsonl").open()]
    timings: dict[bool, list[float]] = {True: [], False: []}
    service.search(questions[0], args.top_k)  # warm up
    for _ in range(args.rounds):
        for question in questions:
            for highlights in (True, False):
                started = time.perf_counter()
                service.search(question, args.top_k, highlights=highlights)
                timings[highlights].append((time.perf_counter() - started) * 1000)
    with_h, without = statistics.median(timings[True]), statistics.median(timings[False])
    print(f"searches per setting: {len(timings[True])} (top_k={args.top_k})")
    print(f"median with supporting sentences:    {with_h:.2f} ms")
    print(f"median without supporting sentences: {without:.2f} ms")
    print(f"added by supporting sentences:       {with_h - without:.2f} ms (ratio {with_h / without:.3f})")


if __name__ == "__main__":
    main()
