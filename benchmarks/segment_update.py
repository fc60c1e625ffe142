"""Whether a one-file update costs what changed, whatever the index size: the update time at three index sizes.

    python benchmarks/segment_update.py [--chunks 20000] [--scale 10] [--updates 5] [--root /tmp/qa-bench-segments]

Generates the corpus of ``benchmarks/update.py`` (about ``--chunks`` passages) as Markdown, each file's first line
a heading, and builds it ("small"). Then it grows it ``--scale`` times in two ways:

- "files": each file copied ``--scale - 1`` times, each copy with one closing line of its own (so every copy is its
  own document and only its last passage is new): ``--scale`` times the files and the passages;
- "passages": the same number of files as "small", each holding its original and its copies one after another
  (each copy opens with its heading, and no passage runs across a heading, so every passage is one of "files"):
  ``--scale`` times the passages in as many files as "small".

The larger indexes are built as updates of a copy of a smaller one (merged into one segment, as a full build
writes), so their passages reuse its vectors instead of being embedded. At each size it edits one paragraph of one
file and times the update ``--updates`` times (in-process, model loaded), with where each update's time went
(``BuildReport.phases``, when the code measured has them), and prints a table, the ratio of each larger median to
the small one (1.0 means the update time does not grow with the index), and one JSON line. Indexes are kept under
``--root`` and reused when they still hold the generated corpus.

With ``--against TREE`` (the folder holding another ``qa`` package, such as a checkout of an earlier commit) it
times, instead, the same rounds (``--from-merged``) by this code and by that tree's in a worker process, one after
the other round by round, so that both meet the same load on the cores, and prints each size's two medians and
their ratio.

Then (unless ``--no-check``) it checks the segmented answers at size: the "files" index, left with its segments,
against a copy of it merged into one segment (what a clean build writes, reusing the vectors), on ``--questions``
questions of seed words in every mode: the passages, their order and their scores (within 1e-5) must be the same.
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

from update import (  # noqa: E402
    edit_one_paragraph,
    generate,
    vocabulary,  # noqa: E402
)

from qa.config import Settings  # noqa: E402
from qa.embed.encoder import load_encoder  # noqa: E402
from qa.index.indexer import build_index  # noqa: E402
from qa.index.manifest import Manifest  # noqa: E402
from qa.ingest.corpus import extractor_version  # noqa: E402
from qa.search.service import SearchService  # noqa: E402

# The phases of one update, in the order they run (see qa.index.indexer.BuildReport.phases).
PHASES = ("walk", "read", "compare", "chunk", "write", "lookup", "embed", "swap")


def markdown_corpus(corpus: Path, chunks: int, seed: int) -> None:
    """``corpus``: the generated corpus of ``benchmarks/update.py`` as Markdown files whose first line is a heading."""
    plain = corpus.parent / f"{corpus.name}-plain"
    generate(plain, chunks, seed)
    wanted = {}
    for path in sorted(plain.rglob("*.txt")):
        wanted[path.relative_to(plain).with_suffix(".md")] = "# " + path.read_text(encoding="utf-8")
    _write_tree(corpus, wanted)


def _write_tree(corpus: Path, files: dict[Path, str]) -> None:
    """Make ``corpus`` hold exactly ``files`` (relative path -> text), leaving files with the right text untouched,
    so a kept index of it stays up to date."""
    present = {path.relative_to(corpus) for path in corpus.rglob("*.md")} if corpus.exists() else set()
    for relative in present - files.keys():
        (corpus / relative).unlink()
    for relative, text in files.items():
        target = corpus / relative
        if target.exists() and target.read_text(encoding="utf-8") == text:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def copies_of(small: Path, copies: int) -> dict[Path, list[str]]:
    """Per file of ``small``, its text and ``copies - 1`` copies, each copy with a closing line of its own."""
    found = {}
    for path in sorted(small.rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        found[path.relative_to(small)] = [text] + [f"{text}\n\nCopy {n} of this report.\n" for n in range(1, copies)]
    return found


def grow_files(small: Path, large: Path, copies: int) -> None:
    """``large``: every file of ``small`` and its copies (``copies_of``), each copy a file of its own."""
    files = {}
    for relative, texts in copies_of(small, copies).items():
        files[relative] = texts[0]
        for number, text in enumerate(texts[1:], start=1):
            files[relative.parent / f"{relative.stem}-copy{number}.md"] = text
    _write_tree(large, files)


def grow_passages(small: Path, deep: Path, copies: int) -> None:
    """``deep``: as many files as ``small``, each its original followed by its copies (``copies_of``)."""
    _write_tree(deep, {relative: "\n\n".join(texts) for relative, texts in copies_of(small, copies).items()})


def timed_updates(
    corpus: Path, index_dir: Path, encoder, build: dict, updates: int, from_merged: bool = False
) -> tuple[list, dict]:
    """Edit one file and update, ``updates`` times; then put the file back (untimed update).

    Args:
        from_merged: update, each time, a copy of the index as it was (one segment; the copy is hard links, as index
            files are never changed in place) with that round's edit alone, instead of the index each update leaves:
            every round then starts from the same state, whatever code ran the round before.

    Returns:
        Per update ``(seconds, phases)``, and facts about the index.
    """
    files = sorted(corpus.rglob("*.md"))
    target = files[len(files) // 2]
    original = target.read_text(encoding="utf-8")
    timings = []
    for round_number in range(updates):
        updated = index_dir
        if from_merged:
            target.write_text(original, encoding="utf-8")
            updated = index_dir.parent / f"{index_dir.name}-round"
            if updated.exists():
                shutil.rmtree(updated)
            shutil.copytree(index_dir, updated, copy_function=os.link)
        edit_one_paragraph(target, round_number)
        report = build_index(corpus, updated, encoder, **build)
        assert report.update and report.changed == 1, report
        phases = getattr(report, "phases", {})
        timings.append((report.seconds, phases))
        split = ", ".join(f"{name} {phases[name]:.3f}" for name in PHASES if name in phases)
        print(
            f"  {report.chunks} passages: update {round_number + 1} took {report.seconds:.2f} s ({split}), "
            f"{report.passages_embedded} embedded, {report.segments} segments",
            file=sys.stderr,
        )
    target.write_text(original, encoding="utf-8")
    build_index(corpus, index_dir, encoder, **build)
    if from_merged:
        shutil.rmtree(index_dir.parent / f"{index_dir.name}-round")
    return timings, {"passages": report.chunks, "files": len(files), "segments_after": report.segments}


def one_round(corpus: Path, index_dir: Path, encoder, build: dict, round_number: int) -> tuple[float, dict]:
    """Round ``round_number`` of ``timed_updates(from_merged=True)`` alone, on a hard-linked copy of ``index_dir``
    recorded as written by this code's extraction (both trees extract alike; only their source digests differ),
    leaving the corpus and ``index_dir`` as they were. Returns the update's seconds and phases."""
    files = sorted(corpus.rglob("*.md"))
    target = files[len(files) // 2]
    original = target.read_text(encoding="utf-8")
    copy = index_dir.parent / f"{index_dir.name}-round"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(index_dir, copy, copy_function=os.link)
    manifest = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    manifest["corpus"]["extractor"] = extractor_version()
    (copy / "manifest.json").unlink()  # a hard link: write a file of its own
    (copy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    try:
        edit_one_paragraph(target, round_number)
        report = build_index(corpus, copy, encoder, **build)
        assert report.update and report.changed == 1 and report.files_reused == len(files) - 1, report
    finally:
        target.write_text(original, encoding="utf-8")
        shutil.rmtree(copy)
    return report.seconds, getattr(report, "phases", {})


def worker() -> None:
    """Serve ``one_round`` requests, one JSON line each on stdin, with this process's code (``--against``)."""
    defaults = Settings()
    build = dict(chunk_size=defaults.chunk_size, chunk_overlap=defaults.chunk_overlap, embed_title=defaults.embed_title)
    encoder = load_encoder(precision=defaults.precision)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        ask = json.loads(line)
        seconds, _ = one_round(Path(ask["corpus"]), Path(ask["index"]), encoder, build, ask["round"])
        print(json.dumps({"seconds": seconds}), flush=True)


def against(tree: Path, layout: dict, sizes: list[str], encoder, build: dict, updates: int) -> dict:
    """The same rounds by this code and by the code tree at ``tree`` (a worker process), interleaved round by round
    (who goes first alternating), so that both meet the same load; medians and their ratio per size."""
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(tree)}
    other = subprocess.Popen(
        [sys.executable, __file__, "--worker"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert json.loads(other.stdout.readline())["ready"]

    def theirs(corpus: Path, index_dir: Path, round_number: int) -> float:
        ask = {"corpus": str(corpus), "index": str(index_dir), "round": round_number}
        other.stdin.write(json.dumps(ask) + "\n")
        other.stdin.flush()
        return json.loads(other.stdout.readline())["seconds"]

    found = {}
    try:
        for name in sizes:
            corpus, index_dir = layout[name]
            mine, other_seconds = [], []
            for round_number in range(updates):
                if round_number % 2:
                    other_seconds.append(theirs(corpus, index_dir, round_number))
                mine.append(one_round(corpus, index_dir, encoder, build, round_number)[0])
                if not round_number % 2:
                    other_seconds.append(theirs(corpus, index_dir, round_number))
                print(
                    f"  {name} round {round_number + 1}: this code {mine[-1]:.3f} s, {tree} {other_seconds[-1]:.3f} s",
                    file=sys.stderr,
                )
            found[name] = {
                "this": round(statistics.median(mine), 3),
                "other": round(statistics.median(other_seconds), 3),
                "this_seconds": [round(s, 3) for s in mine],
                "other_seconds": [round(s, 3) for s in other_seconds],
            }
            found[name]["other_over_this"] = round(found[name]["other"] / found[name]["this"], 2)
    finally:
        other.stdin.close()
        other.wait()
    return found


def answers(index_dir: Path, encoder, questions: list[str]) -> dict:
    """Per question and mode, the top 10 as (source, start, end, score)."""
    service = SearchService.open(Settings(index_dir=index_dir), encoder=encoder)
    try:
        return {
            (question, mode): [
                (h.citation.source, h.citation.start, h.citation.end, h.score)
                for h in service.search(question, top_k=10, mode=mode).results
            ]
            for question in questions
            for mode in ("hybrid", "dense", "keyword")
        }
    finally:
        service.close()


def same(ours: list, theirs: list) -> bool:
    """The same passages in the same order, scores within 1e-5."""
    return [h[:3] for h in ours] == [h[:3] for h in theirs] and all(
        abs(a[3] - b[3]) <= 1e-5 for a, b in zip(ours, theirs)
    )


def compare_with_merged(index_dir: Path, corpus: Path, encoder, build: dict, count: int) -> dict:
    """Answers of the segmented index against those of a copy merged into one segment."""
    import random

    import qa.index.indexer

    merged = index_dir.parent / "index-merged"
    if merged.exists():
        shutil.rmtree(merged)
    shutil.copytree(index_dir, merged)
    # Some change, so the update runs, and a segment limit of 1, so it merges everything.
    extra = corpus / "merge-probe.md"
    extra.write_text("A probe document so that the merge has something to add.\n", encoding="utf-8")
    limit, qa.index.indexer.MAX_SEGMENTS = qa.index.indexer.MAX_SEGMENTS, 1
    try:
        build_index(corpus, merged, encoder, **build)
    finally:
        qa.index.indexer.MAX_SEGMENTS = limit
    build_index(corpus, index_dir, encoder, **build)  # the segmented one gets the probe too, as a segment
    extra.unlink()
    rng = random.Random(7)
    words = vocabulary()
    questions = [" ".join(rng.choice(words) for _ in range(rng.randint(2, 6))) for _ in range(count)]
    ours, theirs = answers(index_dir, encoder, questions), answers(merged, encoder, questions)
    agreeing = sum(same(ours[key], theirs[key]) for key in ours)
    build_index(corpus, index_dir, encoder, **build)  # the probe removed again
    return {"segments": len(Manifest.read(index_dir).segments), "answers": len(ours), "identical": agreeing}


def _record_this_extractor(corpus: Path, index_dir: Path, encoder, build: dict) -> None:
    """Make the index at ``index_dir`` one written by this code's extraction (``qa.ingest.corpus.extractor_version``,
    which other code, such as another tree's, does not share), so that its updates take unchanged files from it: an
    update with a probe file added reads every file and records this extraction; the probe then goes in a merge."""
    probe = corpus / "extractor-probe.md"
    probe.write_text("# Probe\n\nA probe document, so that the update writes.\n", encoding="utf-8")
    build_index(corpus, index_dir, encoder, **build)
    probe.unlink()


def prepare(args: argparse.Namespace, encoder, build: dict) -> dict[str, tuple[Path, Path]]:
    """Generate the three corpora and build (or bring up to date) their indexes; returns them by size name."""
    root = args.root
    layout = {name: (root / f"corpus-{name}", root / f"index-{name}") for name in ("small", "files", "passages")}
    markdown_corpus(layout["small"][0], args.chunks, args.seed)
    grow_files(layout["small"][0], layout["files"][0], args.scale)
    grow_passages(layout["small"][0], layout["passages"][0], args.scale)
    # Each grown from a copy of the index before it, so its passages reuse that one's vectors instead of being
    # embedded; merged into one segment, as a full build of its corpus would write it.
    seed_of = {"small": None, "files": "small", "passages": "files"}
    for name, (corpus, index_dir) in layout.items():
        seed = seed_of[name]
        if not index_dir.exists() and seed is not None:
            shutil.copytree(layout[seed][1], index_dir)
        started = time.perf_counter()
        if index_dir.exists() and Manifest.read(index_dir).corpus.get("extractor") != extractor_version():
            _record_this_extractor(corpus, index_dir, encoder, build)
        report = build_index(corpus, index_dir, encoder, **build, merge=True)
        print(
            f"{name} index ready in {time.perf_counter() - started:.0f} s ({report.chunks} passages, "
            f"{report.passages_embedded} embedded)",
            file=sys.stderr,
        )
    return layout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=20000, help="passages of the smaller index (default 20000)")
    parser.add_argument("--scale", type=int, default=10, help="how many times larger the larger indexes are")
    parser.add_argument("--updates", type=int, default=5, help="updates to time at each size (default 5)")
    parser.add_argument("--root", type=Path, default=Path("/tmp/qa-bench-segments"))
    parser.add_argument("--seed", type=int, default=20261121)
    parser.add_argument("--questions", type=int, default=100, help="questions for the segmented-vs-merged check")
    parser.add_argument("--no-check", action="store_true", help="skip the segmented-vs-merged answer check")
    parser.add_argument("--sizes", default="small,files,passages", help="which sizes to time (comma-separated)")
    parser.add_argument(
        "--from-merged",
        action="store_true",
        help="time each update on a fresh copy of the merged index (see timed_updates)",
    )
    parser.add_argument(
        "--against",
        type=Path,
        default=None,
        help="another code tree (its qa package's parent): time its updates and ours interleaved",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker()
        return
    defaults = Settings()
    build = dict(chunk_size=defaults.chunk_size, chunk_overlap=defaults.chunk_overlap, embed_title=defaults.embed_title)
    encoder = load_encoder(precision=defaults.precision)
    layout = prepare(args, encoder, build)
    if args.against is not None:
        compared = against(args.against, layout, args.sizes.split(","), encoder, build, args.updates)
        print(f"{'size':<9}{'passages':>10}{'this code':>11}{'other':>9}{'other/this':>12}")
        for name, row in compared.items():
            passages = Manifest.read(layout[name][1]).counts["chunks"]
            print(f"{name:<9}{passages:>10}{row['this']:>11.3f}{row['other']:>9.3f}{row['other_over_this']:>12.2f}")
        print(json.dumps({"against": str(args.against), **compared, "cores": os.cpu_count()}))
        return
    figures = {}
    for name in args.sizes.split(","):
        corpus, index_dir = layout[name]
        timings, facts = timed_updates(corpus, index_dir, encoder, build, args.updates, args.from_merged)
        seconds = [s for s, _ in timings]
        phases = {
            phase: round(statistics.median(p.get(phase, 0.0) for _, p in timings), 3)
            for phase in PHASES
            if any(phase in p for _, p in timings)
        }
        figures[name] = {
            **facts,
            "median_seconds": round(statistics.median(seconds), 3),
            "seconds": [round(s, 3) for s in seconds],
            "phases_median": phases,
        }
    if not args.no_check:
        figures["check"] = compare_with_merged(*reversed(layout["files"]), encoder, build, args.questions)
    print(f"{'size':<9}{'files':>7}{'passages':>10}{'update s':>10}" + "".join(f"{p:>8}" for p in PHASES))
    for name in args.sizes.split(","):
        row = figures[name]
        medians = row["phases_median"]
        split = "".join(f"{medians[p]:>8.3f}" if p in medians else f"{'-':>8}" for p in PHASES)
        print(f"{name:<9}{row['files']:>7}{row['passages']:>10}{row['median_seconds']:>10.3f}{split}")
    for name in ("files", "passages"):
        if name in figures and "small" in figures:
            ratio = figures[name]["median_seconds"] / figures["small"]["median_seconds"]
            growth = figures[name]["passages"] / figures["small"]["passages"]
            figures[name]["ratio_to_small"] = round(ratio, 2)
            print(f"{name} / small update time: {ratio:.2f}x for {growth:.1f}x the passages")
    if "check" in figures:
        check = figures["check"]
        print(
            f"segmented ({check['segments']} segments) vs merged: {check['identical']} of {check['answers']} "
            "answers identical (passages, order, scores within 1e-5)"
        )
    print(json.dumps({**figures, "cores": os.cpu_count(), "format": Manifest.read(layout["small"][1]).format_version}))


if __name__ == "__main__":
    main()
