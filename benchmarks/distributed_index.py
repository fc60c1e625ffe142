"""Passages per second of a full build here against the same build on a local Ray cluster with 1 and 2 workers,
reading and chunking on the cluster or on the driver, and where the time goes (the steps that stay on one machine
against the work the cluster takes).

    python benchmarks/distributed_index.py [--chunks 1500] [--rounds 3] [--precision int8]

Generates the synthetic corpus of benchmarks/update.py (about ``--chunks`` passages), starts one local Ray
cluster with 2 CPUs, then in each round builds the corpus from scratch five ways, interleaved so that the
machine's noise falls on all of them alike: locally (one process, the encoder on every core, as `qa index` does);
with `--ray` and 1 and 2 workers (one CPU each), reading and chunking on the cluster (`qa index --ray` now); and the
same reading and chunking on the driver, embedding only on the cluster (`--ray` before, "driver-chunked").
Each build's stages are timed from its progress reports: before embedding (scan, chunking and the store, then the
keyword postings), embedding, and after (the vector and sentence files, the manifest, the swap). Before embedding,
the driver's own CPU time is taken too (this process's, so a cluster's actors are not in it): the work that stays
on one machine however many nodes the cluster has. Prints medians over the rounds, ratios taken within each round
(then their median), the 2-worker scaling efficiency (rate with 2 / (2 x rate with 1)), and one JSON line.
The cluster's start is timed once and left out of the builds; each Ray build starts its actor pools (each actor
loads the model), which is counted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from update import generate

from qa.config import Settings
from qa.distributed.ray_indexing import EmbeddingCache, RayEmbedder, build_on_cluster, cache_dir_for, ray_session
from qa.embed.encoder import DEFAULT_MODEL, load_encoder
from qa.index.indexer import build_index

METHODS = ("local", "ray-1", "ray-2", "ray-1-driver", "ray-2-driver")


class StageClock:
    """A build's progress callback that notes when each stage is first and last reported, and this process's CPU
    time when embedding begins."""

    def __init__(self) -> None:
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.cpu_at_embedding: float | None = None
        # The first embedded batch: when it arrived and its size (before it, a Ray build starts its actors).
        self.first_batch: tuple[float, int] | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if stage == "embedding" and self.cpu_at_embedding is None:
            self.cpu_at_embedding = time.process_time()
        self.first.setdefault(stage, now)
        self.last[stage] = now
        if stage == "embedding" and done > 0 and self.first_batch is None:
            self.first_batch = (now, done)


def driver_chunked_build(corpus: Path, index_dir: Path, encoder, workers: int, **options):
    """A Ray build as `qa index --ray` made it before reading and chunking moved to the cluster: all of it here, only
    the embedding on the cluster (through ``build_index``'s ``embed_batches`` alone)."""
    identity = {
        "model": encoder.model_id,
        "backend": encoder.backend,
        "precision": encoder.precision,
        "dimension": encoder.dimension,
    }
    cache = EmbeddingCache(cache_dir_for(index_dir), identity)
    embedder = RayEmbedder(
        model=DEFAULT_MODEL,
        backend=encoder.backend,
        precision=encoder.precision,
        dimension=encoder.dimension,
        cache=cache,
        workers=workers,
    )
    report = build_index(corpus, index_dir, encoder, embed_batches=embedder, **options)
    cache.remove()
    return report, embedder.stats


def timed_build(method: str, corpus: Path, index_dir: Path, encoder, build: dict) -> dict:
    """One full build by ``method``; its passages, seconds, and seconds before, during and after embedding."""
    shutil.rmtree(index_dir, ignore_errors=True)
    clock = StageClock()
    started, cpu_started = time.perf_counter(), time.process_time()
    documents_sent = 0
    if method == "local":
        report = build_index(corpus, index_dir, encoder, progress=clock, full=True, **build)
    else:
        workers = int(method.split("-")[1])
        if method.endswith("-driver"):
            report, stats = driver_chunked_build(
                corpus, index_dir, encoder, workers, progress=clock, full=True, **build
            )
        else:
            report, stats = build_on_cluster(
                corpus,
                index_dir,
                encoder,
                address="local",
                model=DEFAULT_MODEL,
                workers=workers,
                progress=clock,
                full=True,
                **build,
            )
            assert stats.documents_sent == report.documents and stats.documents_chunked_here == 0, stats
        assert stats.passages_sent == report.chunks and stats.workers == workers, stats
        documents_sent = stats.documents_sent
    ended = time.perf_counter()
    embed_start, embed_end = clock.first["embedding"], clock.last["embedding"]
    return {
        "passages": report.chunks,
        "documents_chunked_on_cluster": documents_sent,
        "seconds": ended - started,
        "before_embedding": embed_start - started,
        # Until the chunking stage's first report: the scan (with a cluster's reading and chunking in it).
        "scan": clock.first["chunking"] - started,
        "driver_cpu_before_embedding": clock.cpu_at_embedding - cpu_started,
        "embedding": embed_end - embed_start,
        "after_embedding": ended - embed_end,
        # Until the first batch is back: starting the actors (each loads the model) and embedding one batch.
        "first_batch": clock.first_batch[0] - embed_start,
        # Passages per second after the first batch: the pool's steady rate.
        "steady_rate": (report.chunks - clock.first_batch[1]) / max(embed_end - clock.first_batch[0], 1e-9),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=1500, help="passages to aim for (default 1500)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three builds (default 3)")
    parser.add_argument("--precision", choices=("fp32", "int8"), default=Settings().precision)
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--work", type=Path, default=Path("/tmp/qa-bench-distributed"))
    args = parser.parse_args()
    corpus = args.work / f"corpus-{args.chunks}-{args.seed}"
    shutil.rmtree(corpus, ignore_errors=True)
    generate(corpus, args.chunks, args.seed)
    defaults = Settings()
    build = {
        "chunk_size": defaults.chunk_size,
        "chunk_overlap": defaults.chunk_overlap,
        "embed_title": defaults.embed_title,
    }
    # As `qa index` loads it: every core for a local build; a Ray build's driver uses it to count tokens only.
    encoder = load_encoder(DEFAULT_MODEL, precision=args.precision, threads=os.cpu_count() or 1)
    started = time.perf_counter()
    results: dict[str, list[dict]] = {method: [] for method in METHODS}
    with ray_session("local", num_cpus=2):
        cluster_start = time.perf_counter() - started
        print(f"local Ray cluster started in {cluster_start:.1f} s", file=sys.stderr)
        for round_number in range(args.rounds):
            for method in METHODS:
                result = timed_build(method, corpus, args.work / f"index-{method}", encoder, build)
                results[method].append(result)
                print(
                    f"round {round_number + 1} {method}: {result['passages']} passages in {result['seconds']:.1f} s "
                    f"(embedding {result['embedding']:.1f} s)",
                    file=sys.stderr,
                )
    report(results, args, cluster_start)


def report(results: dict[str, list[dict]], args, cluster_start: float) -> None:
    """Print the table of medians and ratios, then one JSON line."""
    passages = results["local"][0]["passages"]

    def rate(result: dict, key: str = "seconds") -> float:
        return result["passages"] / result[key]

    def within_rounds(method: str, other: str, value) -> float:
        """The median over rounds of value(method's run) / value(other's run in the same round)."""
        pairs = zip(results[method], results[other], strict=True)
        return statistics.median(value(mine) / value(theirs) for mine, theirs in pairs)

    figures = {
        "date": time.strftime("%Y-%m-%d"),
        "passages": passages,
        "rounds": args.rounds,
        "precision": args.precision,
        "cluster_start_s": round(cluster_start, 1),
        "methods": {},
    }
    print(f"\n{passages} passages, {args.rounds} rounds, {args.precision}; medians")
    print(
        f"{'method':13} {'build s':>8} {'passages/s':>11} {'embed p/s':>10} {'steady p/s':>11} {'1st batch s':>12} "
        f"{'scan s':>7} {'before s':>9} {'driver cpu s':>13} {'ms/passage':>11} {'after s':>8} {'x local':>8}"
    )
    for method in METHODS:
        runs = results[method]
        row = {
            "build_s": statistics.median(r["seconds"] for r in runs),
            "passages_per_s": statistics.median(rate(r) for r in runs),
            "embedding_passages_per_s": statistics.median(rate(r, "embedding") for r in runs),
            "steady_passages_per_s": statistics.median(r["steady_rate"] for r in runs),
            "first_batch_s": statistics.median(r["first_batch"] for r in runs),
            "scan_s": statistics.median(r["scan"] for r in runs),
            "before_embedding_s": statistics.median(r["before_embedding"] for r in runs),
            "driver_cpu_before_embedding_s": statistics.median(r["driver_cpu_before_embedding"] for r in runs),
            "driver_cpu_ms_per_passage": statistics.median(
                1000 * r["driver_cpu_before_embedding"] / r["passages"] for r in runs
            ),
            "after_embedding_s": statistics.median(r["after_embedding"] for r in runs),
            "ratio_to_local": within_rounds(method, "local", rate),
        }
        figures["methods"][method] = {key: round(value, 3) for key, value in row.items()}
        print(
            f"{method:13} {row['build_s']:8.1f} {row['passages_per_s']:11.1f} {row['embedding_passages_per_s']:10.1f} "
            f"{row['steady_passages_per_s']:11.1f} {row['first_batch_s']:12.1f} {row['scan_s']:7.1f} "
            f"{row['before_embedding_s']:9.1f} {row['driver_cpu_before_embedding_s']:13.2f} "
            f"{row['driver_cpu_ms_per_passage']:11.3f} {row['after_embedding_s']:8.1f} {row['ratio_to_local']:8.2f}"
        )
    for suffix, label in (("", "reading and chunking on the cluster"), ("-driver", "reading and chunking here")):
        one, two = f"ray-1{suffix}", f"ray-2{suffix}"
        efficiency = 1 / (2 * within_rounds(one, two, lambda r: rate(r, "embedding")))
        whole = 1 / (2 * within_rounds(one, two, rate))
        figures[f"scaling_efficiency_2_workers{suffix.replace('-', '_')}"] = round(efficiency, 3)
        figures[f"whole_build_scaling_efficiency_2_workers{suffix.replace('-', '_')}"] = round(whole, 3)
        print(f"2-worker scaling efficiency, {label}: embedding stage {efficiency:.2f}, whole build {whole:.2f}")
    for workers in (1, 2):
        mine, theirs = f"ray-{workers}", f"ray-{workers}-driver"
        cpu = within_rounds(mine, theirs, lambda r: r["driver_cpu_before_embedding"])
        wall = within_rounds(mine, theirs, lambda r: r["before_embedding"])
        speed = within_rounds(mine, theirs, rate)
        figures[f"cluster_chunking_vs_driver_{workers}"] = {
            "driver_cpu_before_embedding": round(cpu, 3),
            "before_embedding": round(wall, 3),
            "passages_per_s": round(speed, 3),
        }
        print(
            f"{workers} worker(s), chunking on the cluster / on the driver (within rounds): driver CPU before "
            f"embedding x{cpu:.2f}, wall time before embedding x{wall:.2f}, whole-build passages/s x{speed:.2f}"
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
