"""Two code trees on one index, in turn: the same answers, and each one's in-process search time.

    python benchmarks/search_ab.py --index /tmp/m-sf --dataset ../shared/eval/public/scifact \
        --baseline /tmp/base-tree [--rounds 5] [--questions 300] [--mode hybrid] [--top-k 5]

Each tree (``--baseline``, an older commit exported with ``git archive``, and this checkout) runs in its own
process with that tree on PYTHONPATH, opens the index as ``qa serve`` does (``SearchService.open``, one thread)
and answers the labelled set's questions (default search: hybrid, top 5, with highlights). First every answer of
both trees is compared (same passages in the same order, same citations, highlights and duplicates, scores
within 1e-5, same confidence); any difference is printed and the run fails. Then the trees take turns,
``--rounds`` passes, one pass asking every question once of each tree, question by question (one tree right
after the other, taking turns to go first); a pass's figure is each tree's median (and p99) in ms. The ratio
(baseline / this tree) is taken pass by pass, so both sides of a ratio saw the same machine, and the median of
those ratios is reported, beside each tree's median of pass medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCORE_TOLERANCE = 1e-5


def _worker(index_dir: Path, questions: list[str], mode: str, top_k: int) -> None:
    """Runs in a tree's process: answer commands from stdin ("answers", "pass", "quit"), one JSON line each."""
    from qa.config import Settings
    from qa.search import SearchService

    service = SearchService.open(Settings(index_dir=index_dir))
    for question in questions[:20]:  # warm up the model, numpy and the page cache
        service.search(question, top_k, mode=mode)
    print(json.dumps({"ready": True}), flush=True)
    for command in sys.stdin:
        command = command.strip()
        if command == "answers":
            answers = []
            for question in questions:
                answer = service.search(question, top_k, mode=mode).as_dict()
                answer.pop("took_ms")
                answers.append(answer)
            print(json.dumps(answers), flush=True)
        elif command.startswith("ask "):
            question = questions[int(command.split()[1])]
            started = time.perf_counter()
            service.search(question, top_k, mode=mode)
            print(json.dumps((time.perf_counter() - started) * 1000), flush=True)
        else:
            return


class Tree:
    """One code tree's worker process."""

    def __init__(self, tree: Path, args: argparse.Namespace, questions_file: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
        command = [
            sys.executable,
            __file__,
            "--index",
            str(args.index),
            "--worker",
            str(args.index),
            "--questions-file",
            str(questions_file),
            "--mode",
            args.mode,
            "--top-k",
            str(args.top_k),
        ]
        self.name = str(tree)
        self.process = subprocess.Popen(
            command, env=env, cwd=tree, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.read()

    def ask(self, command: str):
        """Send one command, return its JSON reply."""
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.read()

    def read(self):
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the worker for {self.name} exited with {self.process.wait()}")
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.write("quit\n")
        self.process.stdin.close()
        self.process.wait(timeout=60)


def differences(old: dict, new: dict) -> list[str]:
    """What differs between two answers beyond score rounding (scores within SCORE_TOLERANCE)."""
    found = []
    for key in ("answerable", "confidence", "excluded_undated", "mode", "question"):
        if old[key] != new[key]:
            found.append(f"{key}: {old[key]!r} -> {new[key]!r}")
    if len(old["results"]) != len(new["results"]):
        return found + [f"{len(old['results'])} results -> {len(new['results'])}"]
    for a, b in zip(old["results"], new["results"]):
        if abs(a["score"] - b["score"]) > SCORE_TOLERANCE:
            found.append(f"rank {a['rank']} score {a['score']} -> {b['score']}")
        for key in ("text", "citation", "duplicates"):
            if a[key] != b[key]:
                found.append(f"rank {a['rank']} {key} differs")
    return found


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(0.99 * (len(ordered) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, help="Labelled set whose questions are asked (qa.datasets).")
    parser.add_argument("--split", default="test")
    parser.add_argument("--baseline", type=Path, help="The code tree to compare with (required unless --worker).")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--mode", default="hybrid")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--questions-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, json.loads(args.questions_file.read_text(encoding="utf-8")), args.mode, args.top_k)
        return
    from qa.datasets import load_dataset

    questions = [q.text for q in load_dataset(args.dataset, split=args.split).queries][: args.questions]
    questions_file = Path(f"/tmp/search-ab-{os.getpid()}.json")
    questions_file.write_text(json.dumps(questions), encoding="utf-8")
    trees = [Tree(args.baseline.resolve(), args, questions_file), Tree(ROOT, args, questions_file)]
    try:
        old, new = (tree.ask("answers") for tree in trees)
        changed = {q: d for q, a, b in zip(questions, old, new) if (d := differences(a, b))}
        for question, found in list(changed.items())[:10]:
            print(f"DIFFERENT: {question!r}: {'; '.join(found[:5])}")
        print(f"answers: {len(questions) - len(changed)} of {len(questions)} the same", flush=True)
        medians: list[list[float]] = [[], []]
        tails: list[list[float]] = [[], []]
        ratios = []
        for round_number in range(args.rounds):
            timings: list[list[float]] = [[], []]
            for number in range(len(questions)):
                # Question by question, the two trees one right after the other (taking turns to go first), so
                # both sides of a pair see the same moment of a machine whose load comes and goes.
                order = (0, 1) if (number + round_number) % 2 == 0 else (1, 0)
                for side in order:
                    timings[side].append(trees[side].ask(f"ask {number}"))
            for side in (0, 1):
                medians[side].append(statistics.median(timings[side]))
                tails[side].append(p99(timings[side]))
            ratios.append(medians[0][-1] / medians[1][-1])
            print(
                f"round {round_number + 1}: baseline {medians[0][-1]:.2f} ms, this tree {medians[1][-1]:.2f} ms, "
                f"ratio {ratios[-1]:.2f}",
                flush=True,
            )
    finally:
        for tree in trees:
            tree.close()
        questions_file.unlink()
    summary = {
        "index": str(args.index),
        "questions": len(questions),
        "mode": args.mode,
        "same_answers": not changed,
        "baseline_median_ms": round(statistics.median(medians[0]), 2),
        "median_ms": round(statistics.median(medians[1]), 2),
        "baseline_p99_ms": round(statistics.median(tails[0]), 2),
        "p99_ms": round(statistics.median(tails[1]), 2),
        "ratio": round(statistics.median(ratios), 3),
        "load_average": os.getloadavg(),
    }
    print(
        f"median of {args.rounds} pass medians: baseline {summary['baseline_median_ms']} ms, this tree "
        f"{summary['median_ms']} ms (p99 {summary['baseline_p99_ms']} -> {summary['p99_ms']}); "
        f"baseline / this tree {summary['ratio']}x"
    )
    print(json.dumps(summary))
    if changed:
        sys.exit(1)


if __name__ == "__main__":
    main()
