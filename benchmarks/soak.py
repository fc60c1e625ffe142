"""Bounded soak: `qa serve` under concurrent load while its index is rebuilt and reloaded twice.

    python benchmarks/soak.py [--clients 16] [--requests 10000] [--max-seconds 600]

Loopback only. Copies the seeds index to a temporary folder, serves it with `qa serve` on a free port,
runs N client threads until the request budget is spent (or the time limit), and meanwhile rebuilds the
index twice with `qa index` (to another corpus and back), which the server reloads live. Prints: requests,
errors, torn responses (passages whose text is not the cited slice of the corpus the response came from,
or passages from two corpora in one response), reloads seen, latency p50/p99, and the server's resident
memory and open files after warm-up, every 1,000 requests and at the end. Exits 1 if there was any error or
torn response.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
# Resident memory is sampled every this many requests, to tell a plateau (allocator warm-up) from a leak.
SAMPLE_EVERY = 1000
QUESTIONS = [json.loads(line)["question"] for line in (ROOT / "tests/data/seeds_questions.jsonl").open()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_files(pid: int) -> int:
    """How many files a process holds open, from /proc: a reload that leaks the old index's files shows here."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def texts(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8") for p in root.rglob("*") if p.is_file()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "QA_RELOAD_INTERVAL": "0.5"}
    work = Path(tempfile.mkdtemp(prefix="qa-soak-"))
    try:
        seeds = ROOT / "seeds"
        other = work / "other"
        other.mkdir()
        for path in seeds.glob("*.txt"):  # another corpus: two seeds, renamed
            if path.name < "002":
                shutil.copy(path, other / f"other-{path.name}")
        corpora = {"seeds": texts(seeds), "other": texts(other)}
        index_dir = work / "index"
        shutil.copytree(ROOT / "embeddings", index_dir)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "qa", "serve", "--index", str(index_dir), "--port", str(port), "--no-build"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    print("server did not start", file=sys.stderr)
                    return 1
                time.sleep(0.2)
            for question in QUESTIONS[:20]:  # warm-up, so the first memory figure is the steady state
                httpx.post(f"{url}/search", json={"question": question}, timeout=30)
            rss_start = rss_mb(server.pid)
            files_start = open_files(server.pid)

            lock = threading.Lock()
            latencies: list[float] = []
            problems: list[str] = []
            seen_created: set[str] = set()
            memory: list[tuple[int, float]] = [(0, rss_start)]
            files: list[tuple[int, int]] = [(0, files_start)]
            issued = {"n": 0}
            stop_at = time.monotonic() + args.max_seconds

            def client(number: int) -> None:
                with httpx.Client(base_url=url, timeout=60) as http:
                    while time.monotonic() < stop_at:
                        with lock:
                            if issued["n"] >= args.requests:
                                return
                            issued["n"] += 1
                            question = QUESTIONS[issued["n"] % len(QUESTIONS)]
                            if issued["n"] % SAMPLE_EVERY == 0:
                                memory.append((issued["n"], rss_mb(server.pid)))
                                files.append((issued["n"], open_files(server.pid)))
                        started = time.perf_counter()
                        try:
                            response = http.post("/search", json={"question": question, "top_k": 5})
                        except httpx.HTTPError as exc:
                            with lock:
                                problems.append(f"transport: {exc}")
                            continue
                        elapsed = (time.perf_counter() - started) * 1000
                        problem = check(response, corpora)
                        with lock:
                            latencies.append(elapsed)
                            if problem:
                                problems.append(problem)

            threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
            started = time.monotonic()
            for thread in threads:
                thread.start()
            for corpus in (other, seeds):  # rebuilt twice under load, each picked up live
                time.sleep(3)
                subprocess.run(
                    [sys.executable, "-m", "qa", "index", str(corpus), "--index", str(index_dir)],
                    env=env,
                    check=True,
                    capture_output=True,
                )
                created = json.loads((index_dir / "manifest.json").read_text())["created"]
                wait_until = time.monotonic() + 60
                while time.monotonic() < wait_until:
                    if httpx.get(f"{url}/health", timeout=5).json().get("created") == created:
                        seen_created.add(created)
                        break
                    time.sleep(0.2)
            for thread in threads:
                thread.join()
            seconds = time.monotonic() - started
            rss_end = rss_mb(server.pid)
            time.sleep(1)  # the last requests' leases end; a replaced index closes with its last request
            files_end = open_files(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
        ordered = sorted(latencies)
        p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))] if ordered else float("nan")
        print(
            f"clients {args.clients}, requests {len(latencies)} in {seconds:.1f} s ({len(latencies) / seconds:.1f}/s)"
        )
        print(f"errors and torn responses: {len(problems)}" + (f" (first: {problems[0]})" if problems else ""))
        print(f"index rebuilds reloaded live: {len(seen_created)} of 2")
        print(f"latency p50 {statistics.median(latencies):.1f} ms, p99 {p99:.1f} ms")
        print(
            f"server resident memory: {rss_start:.0f} MB after warm-up, {rss_end:.0f} MB at the end "
            f"({rss_end - rss_start:+.0f} MB)"
        )
        print("resident memory by requests served: " + ", ".join(f"{n}: {mb:.0f} MB" for n, mb in memory))
        print(
            f"open files: {files_start} after warm-up, {files_end} at the end; by requests served: "
            + ", ".join(f"{n}: {count}" for n, count in files)
        )
        half = [mb for n, mb in memory if n >= args.requests // 2]
        if half:
            print(f"growth over the second half of the run: {half[-1] - half[0]:+.0f} MB")
        return 0 if not problems and len(seen_created) == 2 else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check(response: httpx.Response, corpora: dict[str, dict[str, str]]) -> str | None:
    """None when the response is a 200 whose passages all come, exactly, from one corpus."""
    if response.status_code != 200:
        return f"{response.status_code}: {response.text[:120]}"
    return answering_corpus(response.json()["results"], corpora)[1]


def answering_corpus(results: list[dict], corpora: dict[str, dict[str, str]]) -> tuple[str | None, str | None]:
    """``(corpus name, None)`` when every result is a passage of one corpus at its exact offsets there, else
    ``(None, what is wrong)``: one response, one index. ``corpora`` maps a name to {source: document text}.

    tests/test_reload.py holds a live reload to the same rule."""
    sources = {r["citation"]["source"] for r in results}
    owners = [name for name, docs in corpora.items() if sources <= set(docs)]
    if len(owners) != 1:
        return None, f"passages from mixed or unknown sources: {sorted(sources)}"
    docs = corpora[owners[0]]
    for r in results:
        c = r["citation"]
        if docs[c["source"]][c["start"] : c["end"]] != r["text"]:
            return None, f"torn passage from {c['source']}"
    return owners[0], None


if __name__ == "__main__":
    sys.exit(main())
