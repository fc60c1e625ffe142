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

With ``--http`` the same is done through ``qa serve`` (``--workers N``, QA_WORKERS) instead: both trees' servers
up at once on loopback, each pass asking every question of each (GET /search, one keep-alive connection per
server, question by question in turn), then ``--clients`` connections for ``--duration`` seconds against each
server in turn (wrk, one thread, as ``benchmarks/perf.py`` runs it), for requests per second.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCORE_TOLERANCE = 1e-5

from perf import concurrent  # noqa: E402  (run from benchmarks/, like the other scripts)
from search_overhead import Server  # noqa: E402


def _worker(index_dir: Path, questions: list[str], mode: str, top_k: int) -> None:
    """Runs in a tree's process: answer commands from stdin ("answers", "pass", "quit"), one JSON line each."""
    from qa.config import Settings
    from qa.search.service import SearchService

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


def _get(connection: http.client.HTTPConnection, path: str) -> float:
    """Milliseconds of one GET on a keep-alive connection (the body read whole; anything but 200 fails)."""
    started = time.perf_counter()
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"GET {path} answered {response.status}")
    return (time.perf_counter() - started) * 1000


def http_rounds(args: argparse.Namespace, trees: list[Path], questions: list[str]) -> dict:
    """Sequential medians, p99s and concurrent req/s of both trees' servers, pass by pass (see the docstring)."""
    paths = ["/search?" + urllib.parse.urlencode({"q": q, "top_k": args.top_k, "mode": args.mode}) for q in questions]
    if args.workers:
        os.environ["QA_WORKERS"] = str(args.workers)
    figures: dict = {"median": [[], []], "p99": [[], []], "req_per_s": [[], []], "ratio": [], "throughput_ratio": []}
    with tempfile.TemporaryDirectory(prefix="qa-search-ab-") as scratch, contextlib.ExitStack() as stack:
        work = Path(scratch)
        servers = [
            stack.enter_context(Server(tree, args.index, work / f"serve-{n}.log")) for n, tree in enumerate(trees)
        ]
        for round_number in range(args.rounds):
            # New connections each round: the concurrent load kept the last ones idle past the keep-alive timeout.
            connections = [http.client.HTTPConnection("127.0.0.1", server.port, timeout=60) for server in servers]
            for connection in connections:
                for path in paths[:20]:  # warm up
                    _get(connection, path)
            timings: list[list[float]] = [[], []]
            for number, path in enumerate(paths):
                for side in (0, 1) if (number + round_number) % 2 == 0 else (1, 0):
                    timings[side].append(_get(connections[side], path))
            for connection in connections:
                connection.close()
            for side in (0, 1):
                figures["median"][side].append(statistics.median(timings[side]))
                figures["p99"][side].append(p99(timings[side]))
            figures["ratio"].append(figures["median"][0][-1] / figures["median"][1][-1])
            if args.clients > 0:
                for side in (0, 1) if round_number % 2 == 0 else (1, 0):
                    load = concurrent(servers[side].port, paths, args.clients, args.duration, work)
                    figures["req_per_s"][side].append(load["req_per_s"])
                figures["throughput_ratio"].append(figures["req_per_s"][1][-1] / figures["req_per_s"][0][-1])
            print(
                f"HTTP round {round_number + 1}: baseline {figures['median'][0][-1]:.2f} ms, this tree "
                f"{figures['median'][1][-1]:.2f} ms; req/s {figures['req_per_s'][0][-1:]} -> "
                f"{figures['req_per_s'][1][-1:]}",
                flush=True,
            )
    return figures


def report_http(args: argparse.Namespace, figures: dict) -> None:
    """Print the medians of the HTTP rounds and one JSON line."""

    def med(values: list) -> float | None:
        return round(statistics.median(values), 2) if values else None

    summary = {
        "index": str(args.index),
        "workers": args.workers or 1,
        "clients": args.clients,
        "baseline_median_ms": med(figures["median"][0]),
        "median_ms": med(figures["median"][1]),
        "baseline_p99_ms": med(figures["p99"][0]),
        "p99_ms": med(figures["p99"][1]),
        "latency_ratio": med(figures["ratio"]),
        "baseline_req_per_s": med(figures["req_per_s"][0]),
        "req_per_s": med(figures["req_per_s"][1]),
        "throughput_ratio": med(figures["throughput_ratio"]),
        "load_average": os.getloadavg(),
    }
    print(
        f"HTTP, {summary['workers']} worker(s): median {summary['baseline_median_ms']} -> {summary['median_ms']} ms "
        f"(baseline / this tree {summary['latency_ratio']}x), "
        f"{args.clients} clients {summary['baseline_req_per_s']} -> "
        f"{summary['req_per_s']} req/s (this tree / baseline {summary['throughput_ratio']}x)"
    )
    print(json.dumps(summary))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, help="Labelled set whose questions are asked (qa.eval.datasets).")
    parser.add_argument("--split", default="test")
    parser.add_argument("--baseline", type=Path, help="The code tree to compare with (required unless --worker).")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--mode", default="hybrid")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--http", action="store_true", help="Through qa serve instead of in-process.")
    parser.add_argument("--workers", type=int, help="qa serve's worker processes (with --http).")
    parser.add_argument("--clients", type=int, default=8, help="Concurrent connections (with --http; 0: none).")
    parser.add_argument("--duration", type=float, default=10, help="Seconds of concurrent load per server and round.")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--questions-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, json.loads(args.questions_file.read_text(encoding="utf-8")), args.mode, args.top_k)
        return
    from qa.eval.datasets import load_dataset

    questions = [q.text for q in load_dataset(args.dataset, split=args.split).queries][: args.questions]
    if args.http:
        report_http(args, http_rounds(args, [args.baseline.resolve(), ROOT], questions))
        return
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
