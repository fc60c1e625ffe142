"""Sharded against unsharded search latency: one index of a synthetic corpus against the same corpus as N shards.

    python benchmarks/shards.py [--chunks 3000] [--shards 2] [--rounds 3] [--modes hybrid,keyword,dense]

Generates the deterministic corpus of benchmarks/update.py (sentences drawn from the seeds' vocabulary), builds it
once as one index and once as ``--shards`` shards (`qa index --shards N`; both are updates that change nothing on
later runs), then asks the seeds' questions (tests/data/seeds_questions.jsonl) four ways, interleaved in each
round:

- ``one``: the unsharded index, in this process (``SearchService``);
- ``sharded``: the shards, in this process (``qa.distributed.shard_router.open_sharded``): what the router's code adds;
- ``one-serve``: the unsharded index as one Ray Serve replica, over HTTP through Serve's proxy;
- ``shards-serve``: a Ray Serve deployment per shard plus the router, over HTTP through the same proxy.

Latency is per question (top 5, highlights on); each round gives each method's median, and the ratio of the
sharded to the unsharded median is taken within the round (the machine is shared and noisy); the figures printed
are medians over rounds. The answers of the sharded methods are checked against the unsharded ones as the tests
check them (same passages and order, ties aside; scores within 1e-5). Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import httpx  # noqa: E402
from update import generate  # noqa: E402

from qa.config import Settings  # noqa: E402
from qa.distributed.shard_router import open_sharded  # noqa: E402
from qa.distributed.shards import build_shards  # noqa: E402
from qa.embed.encoder import load_encoder  # noqa: E402
from qa.index.indexer import build_index  # noqa: E402
from qa.search.service import SearchService  # noqa: E402

METHODS = ("one", "sharded", "one-serve", "shards-serve")
TOP_K = 5


def questions() -> list[str]:
    """The seeds' evaluation questions (the corpus is drawn from the seeds' words, so keywords match)."""
    path = ROOT / "tests" / "data" / "seeds_questions.jsonl"
    return [json.loads(line)["question"] for line in path.open(encoding="utf-8")]


def same(expected: dict, got: dict) -> bool:
    """Same passages in the same order (runs of equal scores in any order) and scores within 1e-5."""

    def places(answer: dict) -> list[tuple]:
        return sorted(
            (round(hit["score"], 5), hit["citation"]["source"], hit["citation"]["start"]) for hit in answer["results"]
        )

    scores = [(a["score"], b["score"]) for a, b in zip(expected["results"], got["results"])]
    return (
        len(expected["results"]) == len(got["results"])
        and places(expected) == places(got)
        and all(abs(a - b) <= 1e-5 for a, b in scores)
        and expected["answerable"] == got["answerable"]
    )


def build(corpus: Path, work: Path, shards: int, encoder) -> tuple[Path, Path]:
    """The corpus as one index and as ``shards`` shards (updated in place: nothing to do when unchanged)."""
    defaults = Settings()
    options = dict(
        chunk_size=defaults.chunk_size, chunk_overlap=defaults.chunk_overlap, embed_title=defaults.embed_title
    )
    one, sharded = work / "one", work / f"shards-{shards}"
    report = build_index(corpus, one, encoder, **options)
    print(f"one index: {report.chunks} passages ({report.seconds:.1f} s)", file=sys.stderr)
    reports = build_shards(corpus, sharded, encoder, shards=shards, **options)
    print(
        f"{shards} shards: {[r.chunks for r in reports]} passages ({sum(r.seconds for r in reports):.1f} s)",
        file=sys.stderr,
    )
    return one, sharded


def deploy(one: Path, sharded: Path, port: int) -> dict[str, str]:
    """Both indexes on Ray Serve behind one proxy: their base URLs."""
    from ray import serve

    from qa.distributed.replicas import deployment
    from qa.distributed.shard_serving import sharded_deployment

    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(
        deployment(Settings(index_dir=one, reload_interval=0), 1, cpus_per_replica=0.5), name="one", route_prefix="/one"
    )
    settings = Settings(index_dir=sharded, reload_interval=0)
    serve.run(
        sharded_deployment(settings, app_name="shards", router_cpus=0.5, shard_cpus=0.25),
        name="shards",
        route_prefix="/shards",
    )
    return {"one-serve": f"http://127.0.0.1:{port}/one", "shards-serve": f"http://127.0.0.1:{port}/shards"}


def timed(ask, asked: list[tuple[str, str]]) -> tuple[list[float], list[dict]]:
    """Seconds per question and the answers, asking each ``(question, mode)`` once."""
    seconds, answers = [], []
    for question, mode in asked:
        started = time.perf_counter()
        answers.append(ask(question, mode))
        seconds.append(time.perf_counter() - started)
    return seconds, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=3000, help="passages to aim for (default 3000)")
    parser.add_argument("--shards", type=int, default=2, help="shards (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the four methods (default 3)")
    parser.add_argument("--modes", default="hybrid", help="comma-separated modes to ask in (default hybrid)")
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--work", type=Path, default=Path("/tmp/qa-bench-shards"))
    parser.add_argument("--port", type=int, default=8791)
    args = parser.parse_args()
    corpus = args.work / f"corpus-{args.chunks}-{args.seed}"
    generate(corpus, args.chunks, args.seed)
    encoder = load_encoder(precision=Settings().precision)
    one_dir, sharded_dir = build(corpus, args.work, args.shards, encoder)
    one = SearchService.open(Settings(index_dir=one_dir), encoder=encoder)
    sharded = open_sharded(Settings(index_dir=sharded_dir), encoder)
    asked = [(question, mode) for mode in args.modes.split(",") for question in questions()]

    from qa.distributed.ray_indexing import ray_session

    with ray_session("local", num_cpus=2), httpx.Client(timeout=120) as client:
        urls = deploy(one_dir, sharded_dir, args.port)

        def over_http(name):
            return lambda question, mode: client.post(
                f"{urls[name]}/search", json={"question": question, "top_k": TOP_K, "mode": mode}
            ).json()

        asks = {
            "one": lambda question, mode: one.search(question, TOP_K, mode=mode).as_dict(),
            "sharded": lambda question, mode: sharded.search(question, TOP_K, mode=mode).as_dict(),
            "one-serve": over_http("one-serve"),
            "shards-serve": over_http("shards-serve"),
        }
        timed(asks["shards-serve"], asked[:5])  # warm both Serve paths (first calls open connections)
        timed(asks["one-serve"], asked[:5])
        rounds = []
        for number in range(args.rounds):
            medians, answers = {}, {}
            for method in METHODS:
                seconds, answers[method] = timed(asks[method], asked)
                medians[method] = statistics.median(seconds) * 1000
            differing = {m: sum(not same(a, b) for a, b in zip(answers["one"], answers[m])) for m in METHODS[1:]}
            rounds.append(
                {
                    "medians_ms": medians,
                    "differing": differing,
                    "ratio_in_process": medians["sharded"] / medians["one"],
                    "ratio_serve": medians["shards-serve"] / medians["one-serve"],
                }
            )
            print(
                f"round {number + 1}: "
                + ", ".join(f"{m} {v:.1f} ms" for m, v in medians.items())
                + f"; answers differing from one: {differing}",
                file=sys.stderr,
            )
    report(rounds, args, len(one.dense.vectors), len(asked))


def report(rounds: list[dict], args, passages: int, asked: int) -> None:
    """The table and the JSON line: medians over rounds."""
    median = {m: statistics.median(r["medians_ms"][m] for r in rounds) for m in METHODS}
    in_process = statistics.median(r["ratio_in_process"] for r in rounds)
    serve = statistics.median(r["ratio_serve"] for r in rounds)
    differing = {m: max(r["differing"][m] for r in rounds) for m in METHODS[1:]}
    print(
        f"\n{passages} passages, {args.shards} shards, {asked} questions ({args.modes}) a round, "
        f"{args.rounds} rounds; median per-question latency, medians over rounds"
    )
    print("| method | ms / question | x unsharded (same round) |")
    print("|---|---|---|")
    print(f"| one index, in process | {median['one']:.1f} | 1.00 |")
    print(f"| {args.shards} shards, in process | {median['sharded']:.1f} | {in_process:.2f} |")
    print(f"| one index, Ray Serve over HTTP | {median['one-serve']:.1f} | 1.00 |")
    print(f"| {args.shards} shards + router, Ray Serve over HTTP | {median['shards-serve']:.1f} | {serve:.2f} |")
    print(f"answers differing from the unsharded index's (worst round): {differing}")
    print(
        json.dumps(
            {
                "passages": passages,
                "shards": args.shards,
                "questions": asked,
                "modes": args.modes,
                "rounds": args.rounds,
                "median_ms": median,
                "ratio_in_process": round(in_process, 3),
                "ratio_serve": round(serve, 3),
                "differing": differing,
            }
        )
    )


if __name__ == "__main__":
    main()
