"""Performance of qa, and of the peer (txtai) side by side in the same run: a table of figures and ratios.

    python benchmarks/perf.py [--peer-python /work/peer-venv/bin/python] [--encoder torch|onnx]
                              [--precision int8|fp32]
                              [--sections index,query,cli,http] [--chunks 2000] [--runs 3]
                              [--requests 200] [--duration 10] [--clients 8] [--json out.json] [--scale]

Sections (all by default):
  index   indexing throughput on a synthetic corpus of about --chunks passages (benchmarks/corpus.py):
          `qa index` in a subprocess, timed by its own report (scan, chunk, embed, store, FAISS; model load
          excluded); the peer indexes the very passages qa cut (read from qa's store) with txtai
          `Embeddings(content=True)`, timed from index() to save(), model load excluded. Tokens are the
          passages' model tokens, so tokens/s and passages/s give the same ratio. qa embeds each passage
          with its document title (a few more tokens than the peer embeds), and also builds BM25 and
          sentence vectors: the comparison is conservative for qa.
  query   in-process latency of one search (top 5) over the seeds index, every question of
          tests/data/seeds_questions.jsonl, --rounds times: qa hybrid search with supporting sentences;
          txtai `Embeddings.search` as installed, and with FAISS on one thread (as qa runs it).
  cli     cold one-shot: wall time of a fresh `qa ask "..."` process, and of a fresh peer process that
          loads its index and answers once; --runs times each, interleaved, medians.
  http    `qa serve` and txtai's own API (`txtai.api:app` under uvicorn), each on a free loopback port:
          start -> first successful answer (--runs starts each, median); then on the last start: sequential
          GET /search median over --requests; --clients concurrent keep-alive connections for --duration
          seconds (wrk when installed, else Python threads): req/s, p50, p99; the same load on a trivial
          endpoint (/health; txtai: /count) shows what the client itself can do; and the server's
          peak (VmHWM) and current (VmRSS) resident memory after the load.

Both sides run in subprocesses of this script, interleaved, so every ratio comes from one run on the same
machine state. With --encoder, QA_ENCODER is set for every qa process (ignored by versions without it);
with --precision, QA_PRECISION likewise (the index qa builds is embedded at it, and so are its questions).
The peer runs from its own virtual environment (see docs/performance.md); without --peer-python only
qa's figures are printed. --scale also runs benchmarks/scale.py when it exists.

At real size: `--index DIR` uses an index qa already built (for example of SciFact's 17,897 passages:
`qa eval ../shared/eval/public/scifact --index DIR` builds one) instead of the seeds index, served with
`--no-build`; the peer indexes the same passages (read from its store). `--dataset PATH [--split test]`
asks that labelled set's questions (qa.eval.datasets: a BEIR folder or a question file) instead of the seeds
questions. With `--keep DIR`, the peer's index of those passages is kept there and reused by the next run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEER_SCRIPT = ROOT / "benchmarks" / "peer_txtai.py"
# The questions asked (``--dataset`` replaces them), and the one a cold start or one-shot run answers.
QUESTIONS = [json.loads(line)["question"] for line in (ROOT / "tests/data/seeds_questions.jsonl").open()]
ONE_SHOT_QUESTION = "Which railway cases does the Guizhou procuratorate handle?"
# Run in this order: the long indexing section last, so a bounded session still gets the rest.
SECTIONS = ("query", "cli", "http", "index")
# Set by --index: qa's side serves that index as it is instead of building the seeds index.
GIVEN_INDEX = False

# What issue 4 asks for: (key, text, check on (ours, peer)).
TARGETS = {
    "index_tokens_per_s": (">= 2x peer", lambda o, p: p is not None and o >= 2 * p),
    "http_seq_median_ms": ("<= 5 ms", lambda o, p: o <= 5),
    "http_conc_req_per_s": (">= 300 req/s", lambda o, p: o >= 300),
    "cli_one_shot_s": ("<= 1.0 s", lambda o, p: o <= 1.0),
    "serve_first_answer_s": ("<= 2 s", lambda o, p: o <= 2),
    "serve_rss_peak_mb": ("<= 400 MB", lambda o, p: o <= 400),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


def memory_mb(pid: int) -> dict[str, float]:
    """Peak (VmHWM) and current (VmRSS) resident memory of a process and every process under it, from /proc.

    A server with worker processes (qa serve --workers) is a supervisor whose workers hold the index: their
    figures are added to its own (the peaks summed, an upper bound of the tree's peak).
    """
    found = {"VmHWM": 0.0, "VmRSS": 0.0}
    for member in _process_tree(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:  # ended meanwhile
            continue
        for line in lines:
            key = line.split(":")[0]
            if key in found:
                found[key] += int(line.split()[1]) / 1024
    return found


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc/PID/task/*/children)."""
    tree, pending = [], [pid]
    while pending:
        member = pending.pop()
        tree.append(member)
        for task in Path(f"/proc/{member}/task").glob("*"):
            try:
                pending.extend(int(child) for child in (task / "children").read_text().split())
            except OSError:
                continue
    return tree


class Side:
    """How to run one side's commands: qa from this checkout, or the peer from its interpreter."""

    def __init__(self, name: str, python: str, env: dict[str, str]) -> None:
        self.name, self.python, self.env = name, python, env

    def run(self, args: list[str], *, capture: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([self.python, *args], env=self.env, capture_output=capture, text=True, check=True)

    def json(self, args: list[str]) -> dict:
        out = self.run(args).stdout.strip().splitlines()
        return json.loads(out[-1])


def passages_of(index_dir: Path, out: Path) -> int:
    """Write qa's passages (store order) as JSON lines for the peer; return their model-token total."""
    db = sqlite3.connect(index_dir / "store.sqlite3")
    tokens = 0
    with out.open("w", encoding="utf-8") as f:
        for text, n_tokens in db.execute("SELECT text, n_tokens FROM chunks ORDER BY id"):
            f.write(json.dumps({"text": text}) + "\n")
            tokens += n_tokens
    db.close()
    return tokens


# ---------------------------------------------------------------- sections


def section_index(ours: Side, peer: Side | None, work: Path, args, log) -> dict:
    corpus = work / "corpus"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks/corpus.py"),
            str(corpus),
            "--chunks",
            str(args.chunks),
            "--seed",
            str(args.seed),
        ],
        check=True,
        capture_output=True,
    )
    result: dict = {"ours": [], "peer": []}
    for run in range(args.index_runs):
        index_dir = work / "corpus-index"
        shutil.rmtree(index_dir, ignore_errors=True)
        log(f"index: qa index of the synthetic corpus (run {run + 1}/{args.index_runs})")
        started = time.perf_counter()
        report = ours.json(["-m", "qa", "index", str(corpus), "--index", str(index_dir), "--json"])
        wall = time.perf_counter() - started
        passages = work / "corpus-passages.jsonl"
        tokens = passages_of(index_dir, passages)
        result["chunks"], result["tokens"] = report["chunks"], tokens
        result["ours"].append({"seconds": report["seconds"], "wall": wall})
        if peer is not None:
            log(f"index: txtai over the same {report['chunks']} passages")
            peer_dir = work / "peer-corpus-index"
            shutil.rmtree(peer_dir, ignore_errors=True)
            result["peer"].append(
                peer.json([str(PEER_SCRIPT), "index", "--passages", str(passages), "--out", str(peer_dir)])
            )
    for side in ("ours", "peer"):
        if result[side]:
            seconds = statistics.median(r["seconds"] for r in result[side])
            result[f"{side}_tokens_per_s"] = result["tokens"] / seconds
            result[f"{side}_chunks_per_s"] = result["chunks"] / seconds
    return result


def query_worker(index_dir: Path, questions: Path, rounds: int, top_k: int) -> dict:
    """Runs in a qa subprocess: in-process search latency (what the HTTP layer adds nothing to)."""
    from qa.config import Settings
    from qa.search.service import SearchService

    service = SearchService.open(Settings(index_dir=index_dir))
    asked = [q for q in questions.read_text(encoding="utf-8").splitlines() if q.strip()]
    service.search(asked[0], top_k)  # warm up
    timings = []
    for _ in range(rounds):
        for question in asked:
            started = time.perf_counter()
            service.search(question, top_k)
            timings.append((time.perf_counter() - started) * 1000)
    return {"ms": timings, "median_ms": statistics.median(timings)}


def section_query(ours: Side, peer: Side | None, seeds: dict[str, Path], questions: Path, args, log) -> dict:
    log("query: in-process search latency")
    result = {
        "ours": ours.json(
            [
                __file__,
                "--worker-query",
                str(seeds["ours"]),
                "--questions",
                str(questions),
                "--rounds",
                str(args.rounds),
            ]
        )
    }
    if peer is not None:
        common = [
            str(PEER_SCRIPT),
            "query",
            "--index",
            str(seeds["peer"]),
            "--questions",
            str(questions),
            "--rounds",
            str(args.rounds),
        ]
        result["peer"] = peer.json(common)
        result["peer_1thread"] = peer.json([*common, "--faiss-threads", "1"])
    for key in ("ours", "peer", "peer_1thread"):
        if key in result:
            result[key]["p95_ms"] = percentile(result[key]["ms"], 0.95)
            del result[key]["ms"]
    return result


def section_cli(ours: Side, peer: Side | None, seeds: dict[str, Path], args, log) -> dict:
    log(f"cli: {args.runs} cold one-shot answers each")
    result: dict = {"ours": [], "peer": []}
    for _ in range(args.runs):
        started = time.perf_counter()
        ours.run(["-m", "qa", "ask", ONE_SHOT_QUESTION, "--index", str(seeds["ours"])])
        result["ours"].append(time.perf_counter() - started)
        if peer is not None:
            started = time.perf_counter()
            peer.run([str(PEER_SCRIPT), "ask", ONE_SHOT_QUESTION, "--index", str(seeds["peer"])])
            result["peer"].append(time.perf_counter() - started)
    return {side: {"runs": runs, "median_s": statistics.median(runs)} for side, runs in result.items() if runs}


class Server:
    """One side's HTTP service on a free loopback port."""

    def __init__(self, side: Side, kind: str, index_dir: Path) -> None:
        self.side, self.kind, self.index_dir = side, kind, index_dir
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def search_path(self, question: str) -> str:
        if self.kind == "ours":
            return "/search?" + urllib.parse.urlencode({"q": question, "top_k": 5})
        return "/search?" + urllib.parse.urlencode({"query": question, "limit": 5})

    @property
    def trivial_path(self) -> str:
        return "/health" if self.kind == "ours" else "/count"

    def start(self) -> float:
        """Start the server; seconds from launch to the first 200 answer to a search."""
        if self.kind == "ours":
            source = ["--no-build"] if GIVEN_INDEX else ["--corpus", str(ROOT / "seeds")]
            command = ["-m", "qa", "serve", "--index", str(self.index_dir), *source, "--port", str(self.port)]
        else:
            command = [
                str(PEER_SCRIPT),
                "serve",
                "--index",
                str(self.index_dir),
                "--port",
                str(self.port),
                "--config",
                str(self.index_dir.parent / "peer-api.yml"),
            ]
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [self.side.python, *command], env=self.side.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        path = self.search_path(ONE_SHOT_QUESTION)
        deadline = started + 300
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} server exited with {self.process.returncode}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                connection.request("GET", path)
                if connection.getresponse().status == 200:
                    connection.close()
                    return time.perf_counter() - started
                connection.close()
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"{self.kind} server gave no answer within 300 s")

    def stop(self) -> None:
        stop_process(self.process)


def stop_process(process: subprocess.Popen | None) -> None:
    """Terminate a server process if it still runs; kill it when it does not stop within 30 s."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def sequential(port: int, paths: list[str], requests: int) -> list[float]:
    """Latencies (ms) of ``requests`` GETs one after another on one keep-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    timings = []
    for i in range(requests):
        started = time.perf_counter()
        connection.request("GET", paths[i % len(paths)])
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {paths[i % len(paths)]}: {response.status}")
        timings.append((time.perf_counter() - started) * 1000)
    connection.close()
    return timings


WRK_SCRIPT = """
local paths = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %%d, "seconds": %%f, "errors": %%d, "p50_ms": %%f, "p99_ms": %%f}\\n',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def concurrent(port: int, paths: list[str], clients: int, seconds: float, work: Path) -> dict:
    """``clients`` keep-alive connections for ``seconds``: req/s, p50, p99 (wrk if installed, else threads)."""
    wrk = shutil.which("wrk")
    if wrk:
        script = work / "paths.lua"
        script.write_text(WRK_SCRIPT % ", ".join(json.dumps(p) for p in paths), encoding="utf-8")
        # One wrk thread: an event loop drives all connections, leaving the cores to the server.
        out = subprocess.run(
            [
                wrk,
                "-t1",
                f"-c{clients}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "30s",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        figures = json.loads(next(line for line in out.splitlines() if line.startswith("WRKJSON "))[8:])
        figures["req_per_s"] = figures["requests"] / figures["seconds"]
        figures["client"] = "wrk"
        return figures
    timings: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(number: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine, i = [], number
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            connection.request("GET", paths[i % len(paths)])
            response = connection.getresponse()
            response.read()
            mine.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                with lock:
                    errors[0] += 1
            i += clients
        with lock:
            timings.extend(mine)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {
        "requests": len(timings),
        "seconds": elapsed,
        "errors": errors[0],
        "p50_ms": percentile(timings, 0.5),
        "p99_ms": percentile(timings, 0.99),
        "req_per_s": len(timings) / elapsed,
        "client": "python threads",
    }


def section_http(ours: Side, peer: Side | None, seeds: dict[str, Path], work: Path, args, log) -> dict:
    sides = [("ours", ours)] + ([("peer", peer)] if peer is not None else [])
    result: dict = {name: {"first_answer_s": []} for name, _ in sides}
    for run in range(args.runs):
        for name, side in sides:
            log(f"http: {name} server start {run + 1}/{args.runs}")
            server = Server(side, name, seeds[name])
            try:
                result[name]["first_answer_s"].append(server.start())
                if run < args.runs - 1:
                    continue
                figures = result[name]
                paths = [server.search_path(q) for q in QUESTIONS]
                log(f"http: {name} load ({args.requests} sequential, {args.clients} clients for {args.duration} s)")
                sequential(server.port, paths, 20)  # warm up
                timings = sequential(server.port, paths, args.requests)
                figures["seq_median_ms"] = statistics.median(timings)
                figures["seq_p99_ms"] = percentile(timings, 0.99)
                figures["seq_trivial_median_ms"] = statistics.median(
                    sequential(server.port, [server.trivial_path], 100)
                )
                figures["concurrent"] = concurrent(server.port, paths, args.clients, args.duration, work)
                figures["concurrent_trivial"] = concurrent(
                    server.port, [server.trivial_path], args.clients, min(args.duration, 3), work
                )
                figures["memory_mb"] = memory_mb(server.process.pid)
            finally:
                server.stop()
    for name, _ in sides:
        result[name]["first_answer_median_s"] = statistics.median(result[name]["first_answer_s"])
    return result


# ---------------------------------------------------------------- report


def rows(results: dict) -> list[tuple[str, str, float | None, float | None, bool]]:
    """(key, label, ours, peer, higher_is_better) for every figure measured."""
    out = []
    if "index" in results:
        r = results["index"]
        label = f"indexing tokens/s ({r['chunks']} passages, {r['tokens']} tokens)"
        out.append(("index_tokens_per_s", label, r.get("ours_tokens_per_s"), r.get("peer_tokens_per_s"), True))
        out.append(
            ("index_chunks_per_s", "indexing passages/s", r.get("ours_chunks_per_s"), r.get("peer_chunks_per_s"), True)
        )
    if "query" in results:
        r = results["query"]
        peer, peer1 = r.get("peer", {}), r.get("peer_1thread", {})
        out.append(
            ("query_median_ms", "in-process query median ms", r["ours"]["median_ms"], peer.get("median_ms"), False)
        )
        out.append(("query_p95_ms", "in-process query p95 ms", r["ours"]["p95_ms"], peer.get("p95_ms"), False))
        out.append(
            (
                "query_median_ms_peer_1thread",
                "  vs peer with FAISS on 1 thread, median ms",
                r["ours"]["median_ms"],
                peer1.get("median_ms"),
                False,
            )
        )
    if "http" in results:
        r = results["http"]

        def both(*keys):
            values = []
            for side in ("ours", "peer"):
                value = r.get(side)
                for key in keys:
                    value = value.get(key) if isinstance(value, dict) else None
                values.append(value)
            return values

        clients = results["args"]["clients"]
        out.append(("http_seq_median_ms", "HTTP /search sequential median ms", *both("seq_median_ms"), False))
        out.append(("http_seq_p99_ms", "HTTP /search sequential p99 ms", *both("seq_p99_ms"), False))
        out.append(
            ("http_conc_req_per_s", f"HTTP /search {clients} clients req/s", *both("concurrent", "req_per_s"), True)
        )
        out.append(("http_conc_p50_ms", f"HTTP /search {clients} clients p50 ms", *both("concurrent", "p50_ms"), False))
        out.append(("http_conc_p99_ms", f"HTTP /search {clients} clients p99 ms", *both("concurrent", "p99_ms"), False))
        out.append(
            (
                "http_trivial_req_per_s",
                f"client check: trivial endpoint, {clients} clients req/s",
                *both("concurrent_trivial", "req_per_s"),
                True,
            )
        )
        out.append(("serve_first_answer_s", "server start -> first answer s", *both("first_answer_median_s"), False))
        out.append(("serve_rss_peak_mb", "server peak RSS MB (VmHWM)", *both("memory_mb", "VmHWM"), False))
        out.append(("serve_rss_now_mb", "server RSS MB after load (VmRSS)", *both("memory_mb", "VmRSS"), False))
    if "cli" in results:
        r = results["cli"]
        out.append(
            (
                "cli_one_shot_s",
                "cold one-shot ask, wall s",
                r["ours"]["median_s"],
                r.get("peer", {}).get("median_s"),
                False,
            )
        )
    return out


def table(results: dict) -> tuple[str, dict]:
    """The printed table and, per figure, {ours, peer, ratio, target, met} for the JSON."""
    lines = [f"{'figure':<58} {'qa':>10} {'peer':>10} {'x peer':>8}  target"]
    summary = {}
    for key, label, ours, peer, higher in rows(results):
        if ours is None:
            continue
        # "x peer" is how many times better qa is: >1 means qa wins, whichever way the unit points.
        # The client check only shows each server's ceiling for the client; a ratio would mean nothing.
        ratio = None if not peer or key == "http_trivial_req_per_s" else (ours / peer if higher else peer / ours)
        target, check = TARGETS.get(key, ("", None))
        met = check(ours, peer) if check else None
        summary[key] = {
            "label": label,
            "ours": ours,
            "peer": peer,
            "ratio": ratio,
            "target": target or None,
            "met": met,
        }
        mark = "" if met is None else (" met" if met else " MISSED")
        lines.append(
            f"{label:<58} {ours:>10.{fmt(ours)}f} {'' if peer is None else f'{peer:>10.{fmt(peer)}f}':>10} "
            f"{'' if ratio is None else f'{ratio:>7.2f}x':>8}  {target}{mark}"
        )
    return "\n".join(lines), summary


def fmt(value: float) -> int:
    return 0 if abs(value) >= 100 else (1 if abs(value) >= 10 else 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer-python", help="The peer's interpreter (its own venv with txtai); omit for qa only.")
    parser.add_argument("--encoder", choices=["torch", "onnx"], help="Passed to qa as QA_ENCODER.")
    parser.add_argument("--precision", choices=["int8", "fp32"], help="Passed to qa as QA_PRECISION.")
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"Comma-separated subset of {','.join(SECTIONS)}."
    )
    parser.add_argument("--chunks", type=int, default=2000, help="Passages in the indexing corpus (about).")
    parser.add_argument("--seed", type=int, default=7, help="Corpus generator seed.")
    parser.add_argument("--index-runs", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3, help="Cold CLI runs and server starts per side.")
    parser.add_argument("--rounds", type=int, default=3, help="Passes over the questions for in-process latency.")
    parser.add_argument("--requests", type=int, default=200, help="Sequential HTTP requests.")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10, help="Seconds of concurrent load per side.")
    parser.add_argument("--json", type=Path, help="Also write every figure here ('-' for stdout).")
    parser.add_argument("--scale", action="store_true", help="Also run benchmarks/scale.py, if present.")
    parser.add_argument("--keep", type=Path, help="Work here and keep it (default: a temporary folder).")
    parser.add_argument("--worker-query", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--questions", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--index", type=Path, help="An index qa built, used instead of the seeds index.")
    parser.add_argument("--dataset", type=Path, help="Ask this labelled set's questions instead of the seeds'.")
    parser.add_argument("--split", default="test", help="The BEIR split of --dataset (default test).")
    parser.add_argument("--workers", type=int, help="qa serve's worker processes (QA_WORKERS; default 1).")
    args = parser.parse_args()
    if args.worker_query:
        print(json.dumps(query_worker(args.worker_query, args.questions, args.rounds, 5)))
        return 0
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    quiet = {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error"}
    ours_env = {
        **os.environ,
        **quiet,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    if args.encoder:
        ours_env["QA_ENCODER"] = args.encoder
    if args.precision:
        ours_env["QA_PRECISION"] = args.precision
    if args.workers:
        ours_env["QA_WORKERS"] = str(args.workers)
    ours = Side("ours", sys.executable, ours_env)
    peer = None
    if args.peer_python:
        peer_env = {k: v for k, v in os.environ.items() if not k.startswith("QA_") and k != "PYTHONPATH"}
        peer = Side("peer", args.peer_python, {**peer_env, **quiet})

    work = args.keep or Path(tempfile.mkdtemp(prefix="qa-perf-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "args": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if not k.startswith("worker") and k != "questions"
        },
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpus": os.cpu_count(),
        "load_average_start": os.getloadavg(),
    }
    global QUESTIONS, ONE_SHOT_QUESTION, GIVEN_INDEX
    if args.dataset:
        from qa.eval.datasets import load_dataset

        QUESTIONS = [query.text for query in load_dataset(args.dataset, split=args.split).queries]
        ONE_SHOT_QUESTION = QUESTIONS[0]
    try:
        seeds = {"ours": work / "seeds-index", "peer": work / "peer-seeds-index"}
        questions = work / "questions.txt"
        questions.write_text("\n".join(QUESTIONS) + "\n", encoding="utf-8")
        if args.index and set(sections) & {"query", "cli", "http"}:
            GIVEN_INDEX = True
            seeds = {"ours": args.index.absolute(), "peer": work / f"peer-index-{args.index.name}"}
            passages_of(seeds["ours"], work / "given-passages.jsonl")
            if peer is not None and not (seeds["peer"] / "config.json").exists():
                log(f"setup: the peer's index of the {args.index} passages")
                shutil.rmtree(seeds["peer"], ignore_errors=True)
                peer.json(
                    [
                        str(PEER_SCRIPT),
                        "index",
                        "--passages",
                        str(work / "given-passages.jsonl"),
                        "--out",
                        str(seeds["peer"]),
                    ]
                )
        elif set(sections) & {"query", "cli", "http"}:
            log("setup: qa index seeds" + (", and the peer's index of the same passages" if peer else ""))
            shutil.rmtree(seeds["ours"], ignore_errors=True)
            ours.run(["-m", "qa", "index", str(ROOT / "seeds"), "--index", str(seeds["ours"])])
            passages_of(seeds["ours"], work / "seeds-passages.jsonl")
            if peer is not None:
                shutil.rmtree(seeds["peer"], ignore_errors=True)
                peer.json(
                    [
                        str(PEER_SCRIPT),
                        "index",
                        "--passages",
                        str(work / "seeds-passages.jsonl"),
                        "--out",
                        str(seeds["peer"]),
                    ]
                )
        for section in SECTIONS:
            if section not in sections:
                continue
            if section == "index":
                results["index"] = section_index(ours, peer, work, args, log)
            elif section == "query":
                results["query"] = section_query(ours, peer, seeds, questions, args, log)
            elif section == "cli":
                results["cli"] = section_cli(ours, peer, seeds, args, log)
            elif section == "http":
                results["http"] = section_http(ours, peer, seeds, work, args, log)
            if args.json and str(args.json) != "-":  # a long run that fails later keeps what it measured
                args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        if args.scale and (ROOT / "benchmarks/scale.py").exists():
            log("scale: benchmarks/scale.py")
            subprocess.run([sys.executable, str(ROOT / "benchmarks/scale.py")], env=ours_env, check=True)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    results["load_average_end"] = os.getloadavg()
    text, summary = table(results)
    results["summary"] = summary
    encoder = f"{args.encoder or 'default'}, precision {args.precision or 'default'}"
    print(
        f"qa encoder: {encoder}; peer: {'txtai via ' + args.peer_python if peer else 'not run'}; "
        f"{os.cpu_count()} CPUs, load average {results['load_average_start'][0]:.1f} -> "
        f"{results['load_average_end'][0]:.1f}"
    )
    print(text)
    if args.json:
        blob = json.dumps(results, indent=2)
        if str(args.json) == "-":
            print(blob)
        else:
            args.json.write_text(blob + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
