"""Where a search's time goes besides the model: the model call, the in-process search, and HTTP /search.

    python benchmarks/search_overhead.py --index /tmp/idx [--baseline DIR ...] [--rounds 3] [--passes 5]
                                         [--clients 8] [--duration 5] [--json out.json]
                                         [--baseline-index IDX ... --no-http]

For each code tree (this checkout, then each ``--baseline`` tree, e.g. an older commit exported with
``git archive``), in subprocesses run with that tree on PYTHONPATH:

  model        the question embedding alone (``service.dense.embed``), per question
  search       ``SearchService.search`` in-process (the configured mode, top 5, supporting sentences)
  search_nomodel  the same search with the question vectors precomputed: everything but the model
  http_get / http_post  /search through a real ``qa serve`` on loopback, one keep-alive connection
               (http.client), one request after another
  http_conc    req/s and p50 with --clients keep-alive connections for --duration seconds (wrk, one thread)

Each pass times every question of tests/data/seeds_questions.jsonl once; a figure is the median over the
passes of each pass's median. Trees run alternately, --rounds times, so ratios come from one machine state:
the in-process workers one after another, the HTTP servers all up at once with their passes interleaved.
The index should be built with the encoder precision being measured (``qa index seeds --precision int8``).
A baseline whose index format differs gets its own index of the same corpus with ``--baseline-index`` (one per
``--baseline``, in order; in-process figures only).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS_FILE = ROOT / "tests/data/seeds_questions.jsonl"
TOP_K = 5

from perf import concurrent as perf_concurrent  # noqa: E402  (run from benchmarks/, like the other scripts)
from perf import stop_process  # noqa: E402


def questions() -> list[str]:
    """The benchmark's questions, in file order."""
    return [json.loads(line)["question"] for line in QUESTIONS_FILE.open(encoding="utf-8")]


def pass_median(call, items) -> float:
    """Median milliseconds of ``call(item)`` over ``items``, each timed alone."""
    timings = []
    for item in items:
        started = time.perf_counter()
        call(item)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


# ---------------------------------------------------------------- in-process (runs inside the tree's subprocess)


def inprocess_worker(index_dir: Path, passes: int) -> dict:
    """Per-pass medians (ms) of the model call, the search, and the search with precomputed question vectors."""
    from qa.config import Settings
    from qa.search.service import SearchService

    service = SearchService.open(Settings.from_env(index_dir=index_dir))
    asked = questions()
    for question in asked:  # warm up caches, the model and numpy
        service.search(question, TOP_K)
    vectors = {question: service.dense.embed(question) for question in asked}
    embed = service.dense.embed
    figures: dict[str, list[float]] = {"model": [], "search": [], "search_nomodel": []}
    for _ in range(passes):
        figures["model"].append(pass_median(embed, asked))
        figures["search"].append(pass_median(lambda q: service.search(q, TOP_K), asked))
        service.dense.embed = vectors.__getitem__  # type: ignore[method-assign]
        try:
            figures["search_nomodel"].append(pass_median(lambda q: service.search(q, TOP_K), asked))
        finally:
            service.dense.embed = embed  # type: ignore[method-assign]
    return figures


# ---------------------------------------------------------------- HTTP (driven from this process)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``qa serve`` from one code tree on a free loopback port."""

    def __init__(self, tree: Path, index_dir: Path, log: Path) -> None:
        self.tree, self.index_dir, self.log = tree, index_dir, log
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Server":
        env = {**os.environ, "PYTHONPATH": str(self.tree), "HF_HUB_OFFLINE": "1", "QA_LOG_FORMAT": "json"}
        command = [
            sys.executable,
            "-m",
            "qa",
            "serve",
            "--index",
            str(self.index_dir),
            "--no-build",
            "--port",
            str(self.port),
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, env=env, cwd=self.tree, stdout=log, stderr=log)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"qa serve from {self.tree} exited with {self.process.returncode}; see {self.log}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                connection.request("GET", "/health")
                if connection.getresponse().status == 200:
                    connection.close()
                    return self
                connection.close()
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"qa serve from {self.tree} did not answer within 120 s")

    def __exit__(self, *exc) -> None:
        stop_process(self.process)


def http_pass(port: int, method: str, asked: list[str]) -> float:
    """Median ms of one /search per question, one after another on one keep-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def ask(question: str) -> None:
        if method == "GET":
            connection.request("GET", "/search?" + urllib.parse.urlencode({"q": question, "top_k": TOP_K}))
        else:
            body = json.dumps({"question": question, "top_k": TOP_K})
            connection.request("POST", "/search", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} /search answered {response.status}")

    try:
        return pass_median(ask, asked)
    finally:
        connection.close()


def concurrent(port: int, asked: list[str], clients: int, seconds: float, work: Path) -> dict:
    """req/s and p50 of ``clients`` keep-alive connections asking GET /search for ``seconds`` (perf.py's load)."""
    paths = ["/search?" + urllib.parse.urlencode({"q": q, "top_k": TOP_K}) for q in asked]
    figures = perf_concurrent(port, paths, clients, seconds, work)
    return {"req_per_s": figures["req_per_s"], "p50_ms": figures["p50_ms"], "errors": figures["errors"]}


def http_figures(trees: list[Path], index_dir: Path, passes: int, clients: int, seconds: float, work: Path) -> dict:
    """Per-pass medians of GET and POST /search and one concurrent load per tree, servers up side by side.

    Every tree's server runs at once and the passes alternate between them, so a burst of load elsewhere on
    the machine touches each tree alike.
    """
    asked = questions()
    figures: dict = {
        str(tree): {"http_get": [], "http_post": [], "http_conc_req_per_s": [], "http_conc_p50_ms": []}
        for tree in trees
    }
    with contextlib.ExitStack() as stack:
        servers = {
            str(tree): stack.enter_context(Server(tree, index_dir, work / f"serve-{n}.log"))
            for n, tree in enumerate(trees)
        }
        for server in servers.values():
            http_pass(server.port, "GET", asked)  # warm up
        for _ in range(passes):
            for name, server in servers.items():
                figures[name]["http_get"].append(http_pass(server.port, "GET", asked))
                figures[name]["http_post"].append(http_pass(server.port, "POST", asked))
        if clients > 0 and seconds > 0:
            for name, server in servers.items():
                load = concurrent(server.port, asked, clients, seconds, work)
                if load:
                    figures[name]["http_conc_req_per_s"].append(load["req_per_s"])
                    figures[name]["http_conc_p50_ms"].append(load["p50_ms"])
    return figures


# ---------------------------------------------------------------- report

ROWS = (
    ("model", "model call (embed) ms"),
    ("search", "search in-process ms"),
    ("search_nomodel", "search, question vector given ms"),
    ("search_minus_model", "search - model ms"),
    ("http_get", "HTTP GET /search ms"),
    ("http_post", "HTTP POST /search ms"),
    ("http_minus_search", "HTTP GET - in-process search ms"),
    ("http_conc_req_per_s", "HTTP GET req/s, concurrent"),
    ("http_conc_p50_ms", "HTTP GET p50 ms, concurrent"),
)


def summarise(samples: dict[str, list[float]]) -> dict[str, float | None]:
    """Medians of every figure, plus the differences the report is about."""
    medians = {key: statistics.median(values) if values else None for key, values in samples.items()}
    if medians.get("search") is not None and medians.get("model") is not None:
        medians["search_minus_model"] = medians["search"] - medians["model"]
    if medians.get("http_get") is not None and medians.get("search") is not None:
        medians["http_minus_search"] = medians["http_get"] - medians["search"]
    return medians


def table(trees: list[Path], results: dict[str, dict]) -> str:
    """One column per tree; with a baseline, the ratio of the first tree to the first baseline."""
    names = [str(tree) for tree in trees]
    header = f"{'figure':<36}" + "".join(f"{tree.name[:18]:>20}" for tree in trees)
    if len(trees) > 1:
        header += f"{'ratio':>9}"
    lines = [header, "-" * len(header)]
    for key, label in ROWS:
        values = [results[name].get(key) for name in names]
        if all(v is None for v in values):
            continue
        line = f"{label:<36}" + "".join(f"{v:>20.3f}" if v is not None else f"{'-':>20}" for v in values)
        if len(trees) > 1 and values[0] is not None and values[1]:
            line += f"{values[0] / values[1]:>9.2f}"
        lines.append(line)
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="A built index (qa index ... --precision int8).")
    parser.add_argument(
        "--baseline",
        type=Path,
        action="append",
        default=[],
        help="Another code tree to measure alternately (a directory holding qa/).",
    )
    parser.add_argument("--rounds", type=int, default=3, help="Alternations of the trees.")
    parser.add_argument("--passes", type=int, default=5, help="Passes over the questions per round.")
    parser.add_argument("--clients", type=int, default=8, help="Concurrent connections (0: no concurrent load).")
    parser.add_argument("--duration", type=float, default=5.0, help="Seconds of concurrent load per round.")
    parser.add_argument("--no-http", action="store_true", help="Only the in-process figures.")
    parser.add_argument(
        "--baseline-index",
        type=Path,
        action="append",
        default=[],
        help="The index each --baseline reads, in order (another format's build of the same corpus).",
    )
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures as JSON here.")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(inprocess_worker(args.index, args.passes)))
        return 0

    trees = [ROOT] + [tree.resolve() for tree in args.baseline]
    if args.baseline_index and (len(args.baseline_index) != len(args.baseline) or not args.no_http):
        parser.error("--baseline-index needs one index per --baseline, and --no-http")
    indexes = {tree: args.index for tree in trees} | dict(zip(trees[1:], args.baseline_index))
    samples: dict[str, dict[str, list[float]]] = {str(tree): {} for tree in trees}
    with tempfile.TemporaryDirectory(prefix="qa-overhead-") as scratch:
        work = Path(scratch)
        for round_number in range(args.rounds):
            for tree in trees:
                print(f"round {round_number + 1}/{args.rounds}: in-process, {tree}", file=sys.stderr)
                env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
                out = subprocess.run(
                    [
                        sys.executable,
                        str(Path(__file__).resolve()),
                        "--worker",
                        "--index",
                        str(indexes[tree].resolve()),
                        "--passes",
                        str(args.passes),
                    ],
                    env=env,
                    cwd=tree,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                for key, values in json.loads(out.strip().splitlines()[-1]).items():
                    samples[str(tree)].setdefault(key, []).extend(values)
            if not args.no_http:
                print(f"round {round_number + 1}/{args.rounds}: HTTP", file=sys.stderr)
                by_tree = http_figures(trees, args.index.resolve(), args.passes, args.clients, args.duration, work)
                for name, figures in by_tree.items():
                    for key, values in figures.items():
                        samples[name].setdefault(key, []).extend(values)
    results = {name: summarise(values) for name, values in samples.items()}
    print(table(trees, results))
    if args.json:
        args.json.write_text(json.dumps({"results": results, "samples": samples}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
