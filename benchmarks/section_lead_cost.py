"""What the section lead costs a search: the store query over the fused candidates, and whole searches with and
without it, interleaved in one run so the ratio is taken on the same cores.

    python benchmarks/section_lead_cost.py --index /tmp/docs-index [--questions benchmarks/data/docs_questions.jsonl]
        [--rounds 3]

The index must exist (benchmarks/docs_quality.py --index builds one of the documentation corpus).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from qa.config import Settings  # noqa: E402
from qa.embed.encoder import load_encoder  # noqa: E402
from qa.index.manifest import Manifest  # noqa: E402
from qa.search.service import SearchService  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BONUS = Settings().section_lead


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def main(argv: list[str] | None = None) -> int:
    """Print the store query's median and p95, and the search medians with the lead off and on, with their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=Path, default=ROOT / "benchmarks" / "data" / "docs_questions.jsonl")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    manifest = Manifest.read(args.index)
    encoder = load_encoder(manifest.model, "auto", precision=manifest.precision)
    questions = [json.loads(line)["question"] for line in args.questions.open(encoding="utf-8") if line.strip()]
    services = {
        lead: SearchService.open(replace(Settings(), index_dir=args.index, section_lead=lead), encoder=encoder)
        for lead in (0.0, BONUS)
    }
    query_ms, candidates = [], []
    for question in questions:
        # Every fused candidate of a top-5 search, as the search itself hands them to the store query.
        fused = [chunk_id for chunk_id, _ in services[0.0]._first_stage(question, 5, "hybrid", None).ranked]
        started = time.perf_counter()
        services[BONUS].store.section_leads(fused)
        query_ms.append(_ms(started))
        candidates.append(len(fused))
    search_ms: dict[float, list[float]] = {0.0: [], BONUS: []}
    for _ in range(args.rounds):
        for lead, service in services.items():
            for question in questions:
                started = time.perf_counter()
                service.search(question, 5)
                search_ms[lead].append(_ms(started))
    off, on = statistics.median(search_ms[0.0]), statistics.median(search_ms[BONUS])
    print(f"index: {manifest.counts.get('chunks')} passages; {len(questions)} questions x {args.rounds} rounds")
    print(
        f"section_leads over a median of {statistics.median(candidates):.0f} candidates: median "
        f"{statistics.median(query_ms):.3f} ms, p95 {sorted(query_ms)[int(0.95 * len(query_ms))]:.3f} ms"
    )
    print(f"search median: lead off {off:.2f} ms, lead {BONUS} {on:.2f} ms, ratio {on / off:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
