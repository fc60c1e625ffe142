"""The default search over flat codes against inverted codes of the same index: answers, time, open and memory.

    python benchmarks/ivf_search_ab.py --index DIR --dataset ../shared/eval/public/scifact --work /tmp/ivf-ab \
        [--rounds 3] [--questions 300]

DIR is an approximate index with flat codes, such as the 1,000,000 passages benchmarks/hybrid_scale.py grows from
SciFact with the code before inverted files. Its copy at WORK/inverted shares every file with it (hard links)
except the codes, rebuilt here by ``VectorIndex.build`` (its seconds are printed: training, adding, and its check
of the lists), and the manifest, whose checksum of them changes. Then one process opens both as
``qa serve`` does and asks each the labelled set's questions (default search: hybrid, top 5, with highlights):
first how many top-5 answers are identical (the same passages in the same order), printing those that are not,
then ``--rounds`` passes, question by question one side right after the other (taking turns to go first), each
pass giving each side's median and p99 ms and their ratio. Last, each side in a fresh process of its own
(benchmarks/hybrid_scale.py's ``--ask``, twice each, alternating): the time to open and the memory after the
questions. Prints tables, then one JSON object.
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

import numpy as np

from qa.index.manifest import CODES_FILE, MANIFEST_FILE, VECTORS_FILE, Manifest, file_checksum

HYBRID_SCALE = Path(__file__).resolve().parent / "hybrid_scale.py"


def with_inverted_codes(source: Path, target: Path) -> dict:
    """``source`` at ``target`` with the codes ``VectorIndex.build`` makes at its size; their build figures."""
    import qa.index.vectors as vectors_module

    target.mkdir(parents=True)
    for path in source.iterdir():
        if path.name not in (CODES_FILE, MANIFEST_FILE):
            os.link(path, target / path.name)
    stored = vectors_module.VectorIndex.load(source / VECTORS_FILE)
    started = time.perf_counter()
    index = vectors_module.VectorIndex.build(stored.ids, stored._rows)  # the rows are not copied: no float work
    seconds = time.perf_counter() - started
    assert index.lists, "flat codes: below IVF_MIN_VECTORS, or the build's check refused the lists"
    lists = index.lists
    vectors_module._faiss().write_index(index._codes, str(target / CODES_FILE))
    manifest = Manifest.read(source)
    manifest.checksums[CODES_FILE] = file_checksum(target / CODES_FILE)
    manifest.write(target)
    return {
        "lists": lists,
        "build_s": round(seconds, 1),
        "threads": os.cpu_count(),
        "codes_mb": round((target / CODES_FILE).stat().st_size / 1e6, 1),
        "flat_codes_mb": round((source / CODES_FILE).stat().st_size / 1e6, 1),
    }


def passages(answer) -> list[tuple[str, int, int]]:
    """An answer's passages, in order, by citation."""
    return [(hit.citation.source, hit.citation.start, hit.citation.end) for hit in answer.results]


def compared(services: dict, questions: list[str]) -> dict:
    """How many top-5 answers both sides give alike; the questions where they differ, with both answers."""
    differing = []
    for number, question in enumerate(questions):
        answers = {side: passages(service.search(question, 5)) for side, service in services.items()}
        if answers["flat"] != answers["inverted"]:
            same_first = answers["flat"][:1] == answers["inverted"][:1]
            shared = len(set(answers["flat"]) & set(answers["inverted"]))
            differing.append({"question": number, "same_first": same_first, "shared_of_5": shared})
    return {"identical": len(questions) - len(differing), "of": len(questions), "differing": differing}


def timed_passes(services: dict, questions: list[str], rounds: int) -> list[dict]:
    """Each pass: each side's median and p99 ms, asked question by question in turn, and flat / inverted."""
    passes = []
    for round_number in range(rounds):
        times: dict[str, list[float]] = {side: [] for side in services}
        for number, question in enumerate(questions):
            order = list(services) if (number + round_number) % 2 == 0 else list(reversed(services))
            for side in order:
                started = time.perf_counter()
                services[side].search(question, 5)
                times[side].append((time.perf_counter() - started) * 1000)
        row = {
            side: {
                "median_ms": round(statistics.median(values), 2),
                "p99_ms": round(float(np.percentile(values, 99)), 2),
            }
            for side, values in times.items()
        }
        row["ratio"] = round(row["flat"]["median_ms"] / row["inverted"]["median_ms"], 3)
        passes.append(row)
        print(
            f"pass {round_number + 1}: flat median {row['flat']['median_ms']} ms (p99 {row['flat']['p99_ms']}), "
            f"inverted {row['inverted']['median_ms']} ms (p99 {row['inverted']['p99_ms']}); "
            f"flat / inverted {row['ratio']}",
            flush=True,
        )
    return passes


def fresh_processes(directories: dict[str, Path], questions_file: Path, runs: int) -> dict:
    """Each side opened in a fresh process ``runs`` times, alternating: median open seconds and memory (MB)."""
    found: dict[str, list[dict]] = {side: [] for side in directories}
    for _ in range(runs):
        for side, directory in directories.items():
            run = subprocess.run(
                [sys.executable, str(HYBRID_SCALE), "--ask", str(directory), "--questions-file", str(questions_file)],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "HF_HUB_OFFLINE": "1"},
            )
            found[side].append(json.loads(run.stdout.splitlines()[-1]))
    keys = ("open_s", "median_ms", "p99_ms", "VmRSS", "RssAnon", "RssFile", "VmHWM")
    return {side: {key: statistics.median(run[key] for run in runs_) for key in keys} for side, runs_ in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="An approximate index with flat codes.")
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--work", type=Path, required=True, help="Where the inverted copy is made (kept).")
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--process-runs", type=int, default=2, help="Fresh-process runs per side (0: none).")
    args = parser.parse_args()
    from qa.config import Settings
    from qa.eval.datasets import load_dataset
    from qa.search.service import SearchService

    questions = [q.text for q in load_dataset(args.dataset, split=args.split).queries][: args.questions]
    inverted_dir = args.work / "inverted"
    built = {}
    if not (inverted_dir / MANIFEST_FILE).exists():
        built = with_inverted_codes(args.index, inverted_dir)
        print(f"inverted codes: {built}", flush=True)
    directories = {"flat": args.index, "inverted": inverted_dir}
    services = {side: SearchService.open(Settings(index_dir=path)) for side, path in directories.items()}
    assert services["flat"].dense.vectors.lists == 0 and services["inverted"].dense.vectors.lists > 0
    for question in questions[:20]:
        for service in services.values():
            service.search(question, 5)
    answers = compared(services, questions)
    print(
        f"identical top-5 answers: {answers['identical']} of {answers['of']}; differing: {answers['differing']}",
        flush=True,
    )
    passes = timed_passes(services, questions, args.rounds)
    del services
    questions_file = args.work / "questions.json"
    questions_file.write_text(json.dumps(questions), encoding="utf-8")
    processes = fresh_processes(directories, questions_file, args.process_runs) if args.process_runs else {}
    for side, figures in processes.items():
        print(f"{side} in a fresh process: {figures}", flush=True)
    print(
        json.dumps(
            {
                "load_average": os.getloadavg(),
                "built": built,
                "answers": answers,
                "passes": passes,
                "ratio_median": statistics.median(p["ratio"] for p in passes),
                "processes": processes,
            }
        )
    )


if __name__ == "__main__":
    main()
