"""The default search on a big index inside a memory limit: what serving needs resident, not what it maps.

    python benchmarks/memory_cap.py --index /tmp/hs/index-1000000 --dataset ../shared/eval/public/scifact \
        --caps none,600 [--runs 3] [--questions 300] [--warm-passes 1] [--baseline OTHER_TREE] \
        [--baseline-index OTHER_INDEX]

An index's vector, sentence and postings files are mapped, so a process's VmRSS counts every page of them it
has touched, although those pages are page cache: shared, and dropped by the kernel when memory is short. What
a server needs is the memory it cannot do without. This script measures that directly: each run starts a fresh
process (``hybrid_scale.py``'s asking step: open the index as ``qa serve`` does, ask the questions, default
hybrid search, top 5, with highlights) inside a memory control group limited to the cap, which charges the
process for its own memory and for every page of the index files it brings into the page cache; the files are
first evicted from the page cache, so nothing read before the run is free. The process asks every question
``--warm-passes`` times before the timed pass, so the timed pass finds in memory what the cap let it keep (0:
a cold start). Caps alternate run by run, and with ``--baseline`` (another code tree, exported with ``git
archive``) the two trees alternate under each cap, so both sides of a comparison see the same load; with
``--baseline-index`` the baseline side (another tree, or this one when ``--baseline`` is not given) asks that
index instead (for example the same index without a compact copy of its vectors: benchmarks/compact_rerank.py).
It prints,
per tree and cap, the median over runs of the search median, p95 and p99, the index's open time, the process's
VmRSS split (anonymous / file), the group's peak charge and how often it hit the limit, then one JSON object.

Needs a writable memory controller (cgroup v2 with ``memory`` enabled, or v1's ``memory`` hierarchy), as root
in most containers; without one it says so and stops.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
V1_ROOT = Path("/sys/fs/cgroup/memory")
V2_ROOTS = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"))


class MemoryGroup:
    """A memory control group of its own with a limit, v2 or v1, removed on ``close``."""

    def __init__(self, cap_mb: int | None) -> None:
        name = f"qa-memory-cap-{os.getpid()}-{time.monotonic_ns()}"
        v2 = next((root for root in V2_ROOTS if "memory" in _read(root / "cgroup.subtree_control").split()), None)
        if v2 is not None:
            self.path, self.v2 = v2 / name, True
        elif (V1_ROOT / "memory.limit_in_bytes").exists():
            self.path, self.v2 = V1_ROOT / name, False
        else:
            raise SystemExit("no writable memory control group here (cgroup v2 memory controller or v1 memory)")
        try:
            self.path.mkdir()
            if cap_mb is not None:
                limit = str(cap_mb * 1024 * 1024)
                (self.path / ("memory.max" if self.v2 else "memory.limit_in_bytes")).write_text(limit)
                if not self.v2 and (self.path / "memory.memsw.limit_in_bytes").exists():
                    # No swapping out of the limit either: the cap is on memory and swap together.
                    (self.path / "memory.memsw.limit_in_bytes").write_text(limit)
        except OSError as exc:
            raise SystemExit(f"cannot create a memory control group at {self.path}: {exc}") from exc

    def enter(self) -> None:
        """Move the calling process into the group (called in the child between fork and exec)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def peak_mb(self) -> float:
        """The most the group was charged, in MB (v2 kernels before 5.19 keep no peak: the current charge)."""
        name = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        if not (self.path / name).exists():
            name = "memory.current"
        return int(_read(self.path / name) or 0) / 2**20

    def limit_hits(self) -> int:
        """How many times a charge met the limit and memory had to be reclaimed first."""
        if not self.v2:
            return int(_read(self.path / "memory.failcnt") or 0)
        for line in _read(self.path / "memory.events").splitlines():
            if line.startswith("max "):
                return int(line.split()[1])
        return 0

    def close(self) -> None:
        try:
            self.path.rmdir()
        except OSError:
            pass


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def evict(index_dir: Path) -> int:
    """Drop the index's files from the page cache (no process maps them now); bytes still cached after."""
    cached = 0
    for path in sorted(index_dir.rglob("*")):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
    probe = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", *map(str, index_dir.rglob("*.*"))],
        capture_output=True,
        text=True,
    )
    if probe.returncode == 0:
        cached = sum(int(line.split()[0]) for line in probe.stdout.splitlines() if line.strip())
    return cached


def one_run(index_dir: Path, questions_file: Path, cap_mb: int | None, tree: Path, warm_passes: int) -> dict:
    """A fresh asking process, running the code of ``tree``, in a new group capped at ``cap_mb``; its figures
    and the group's."""
    still_cached = evict(index_dir)
    group = MemoryGroup(cap_mb)
    try:
        run = subprocess.run(
            [
                sys.executable,
                str(tree / "benchmarks" / "hybrid_scale.py"),
                "--ask",
                str(index_dir),
                "--questions-file",
                str(questions_file),
                "--warm-passes",
                str(warm_passes),
            ],
            capture_output=True,
            text=True,
            preexec_fn=group.enter,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(tree)},
        )
        if run.returncode != 0:
            killed = " (killed: the limit left too little memory)" if run.returncode < 0 else ""
            return {"failed": f"exit {run.returncode}{killed}: {run.stderr.strip().splitlines()[-1:]}"}
        figures = json.loads(run.stdout.splitlines()[-1])
        return {
            **figures,
            "group_peak_mb": round(group.peak_mb()),
            "limit_hits": group.limit_hits(),
            "cached_before_mb": round(still_cached / 2**20),
        }
    finally:
        group.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="An index directory (for example a grown one).")
    parser.add_argument("--dataset", type=Path, required=True, help="Labelled set whose questions are asked.")
    parser.add_argument("--split", default="test")
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--caps", default="none,600", help="Comma-separated limits in MB; 'none' for no limit.")
    parser.add_argument("--runs", type=int, default=3, help="Runs per cap, alternating between caps.")
    parser.add_argument(
        "--warm-passes",
        type=int,
        default=1,
        help="Passes over the questions before the timed one (0: cold, bar ten questions).",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="Another code tree (e.g. `git archive REV | tar -x -C DIR`) run alternately with this "
        "one under the same caps.",
    )
    parser.add_argument(
        "--baseline-index",
        type=Path,
        help="The index the baseline side asks (default --index); without --baseline, this tree asks it.",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent))
    from qa.eval.datasets import load_dataset

    questions = [q.text for q in load_dataset(args.dataset, split=args.split).queries][: args.questions]
    caps = [None if cap == "none" else int(cap) for cap in args.caps.split(",")]
    with tempfile.TemporaryDirectory() as work:
        questions_file = Path(work) / "questions.json"
        questions_file.write_text(json.dumps(questions), encoding="utf-8")
        trees = {"this tree": HERE.parent, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
        if args.baseline_index and not args.baseline:
            trees["baseline"] = HERE.parent
        indexes = {"this tree": args.index, "baseline": args.baseline_index or args.index}
        runs: dict[str, list[dict]] = {f"{name}, cap {cap or 'none'} MB": [] for cap in caps for name in trees}
        for round_number in range(args.runs):
            for cap in caps:
                for name, tree in trees.items():
                    result = one_run(indexes[name], questions_file, cap, tree, args.warm_passes)
                    runs[f"{name}, cap {cap or 'none'} MB"].append(result)
                    print(f"round {round_number + 1}, {name}, cap {cap or 'none'} MB: {json.dumps(result)}", flush=True)
    summary = {}
    for cap, results in runs.items():
        done = [r for r in results if "failed" not in r]
        if not done:
            summary[cap] = {"failed": [r["failed"] for r in results]}
            continue
        keys = (
            "median_ms",
            "p95_ms",
            "p99_ms",
            "open_s",
            "VmRSS",
            "RssAnon",
            "RssFile",
            "VmHWM",
            "group_peak_mb",
            "limit_hits",
        )
        summary[cap] = {key: statistics.median(r[key] for r in done) for key in keys}
        summary[cap]["runs"] = f"{len(done)} of {len(results)}"
        s = summary[cap]
        print(
            f"{cap} ({s['runs']} runs, medians): search {s['median_ms']} ms, "
            f"p95 {s['p95_ms']}, p99 {s['p99_ms']}; open {s['open_s']} s; VmRSS {s['VmRSS']} MB (anonymous "
            f"{s['RssAnon']}, file {s['RssFile']}); group peak {s['group_peak_mb']} MB, limit hit "
            f"{s['limit_hits']} times",
            flush=True,
        )
    print(
        json.dumps(
            {
                "index": str(args.index),
                "baseline_index": str(args.baseline_index or args.index),
                "warm_passes": args.warm_passes,
                "load_average": os.getloadavg(),
                "summary": summary,
            }
        )
    )


if __name__ == "__main__":
    main()
