"""Whether a one-file update costs what changed, whatever the index size: the update time at two index sizes.

    python benchmarks/segment_update.py [--chunks 20000] [--scale 10] [--updates 5] [--root /tmp/qa-bench-segments]

Generates the corpus of ``benchmarks/update.py`` (about ``--chunks`` passages), builds it, then makes it
``--scale`` times larger by copying each file with one closing line added (so every copy is its own document
and only its last passage is new: the larger index is built as an update that embeds only those). At each
size it edits one paragraph of one file and times the update ``--updates`` times (in-process, model loaded),
and prints a table, the ratio of the two medians (1.0 means the update time does not grow with the index), and
one JSON line. Indexes are kept under ``--root`` and reused when they still hold the generated corpus.

Then it checks the segmented answers at size: the larger index, left with its segments, against a copy of it
merged into one segment (what a clean build writes, reusing the vectors), on ``--questions`` questions of
seed words in every mode: the passages, their order and their scores (within 1e-5) must be the same.
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

from update import edit_one_paragraph, generate  # noqa: E402

from qa.config import Settings  # noqa: E402
from qa.encoder import load_encoder  # noqa: E402
from qa.indexer import build_index  # noqa: E402
from qa.manifest import Manifest  # noqa: E402
from qa.search import SearchService  # noqa: E402
from update import vocabulary  # noqa: E402


def grow(small: Path, large: Path, copies: int) -> None:
    """``large``: ``small`` and ``copies - 1`` copies of each of its files, each copy with a closing line of its own."""
    if large.exists():
        shutil.rmtree(large)
    shutil.copytree(small, large)
    for path in sorted(small.rglob("*.txt")):
        text = path.read_text(encoding="utf-8")
        for copy in range(1, copies):
            target = large / path.relative_to(small).parent / f"{path.stem}-copy{copy}.txt"
            target.write_text(f"{text}\n\nCopy {copy} of this report.\n", encoding="utf-8")


def timed_updates(corpus: Path, index_dir: Path, encoder, build: dict, updates: int) -> tuple[list[float], dict]:
    """Edit one file and update, ``updates`` times; then put the file back (untimed update)."""
    target = sorted(corpus.rglob("*.txt"))[len(list(corpus.rglob("*.txt"))) // 2]
    original = target.read_text(encoding="utf-8")
    seconds = []
    for round_number in range(updates):
        edit_one_paragraph(target, round_number)
        report = build_index(corpus, index_dir, encoder, **build)
        assert report.update and report.changed == 1, report
        seconds.append(report.seconds)
        print(f"  {report.chunks} passages: update {round_number + 1} took {report.seconds:.2f} s, "
              f"{report.passages_embedded} embedded, {report.segments} segments", file=sys.stderr)
    target.write_text(original, encoding="utf-8")
    build_index(corpus, index_dir, encoder, **build)
    return seconds, {"passages": report.chunks, "segments_after": report.segments}


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

    import qa.indexer

    merged = index_dir.parent / "index-merged"
    if merged.exists():
        shutil.rmtree(merged)
    shutil.copytree(index_dir, merged)
    # Some change, so the update runs, and a segment limit of 1, so it merges everything.
    extra = corpus / "merge-probe.txt"
    extra.write_text("A probe document so that the merge has something to add.\n", encoding="utf-8")
    limit, qa.indexer.MAX_SEGMENTS = qa.indexer.MAX_SEGMENTS, 1
    try:
        build_index(corpus, merged, encoder, **build)
    finally:
        qa.indexer.MAX_SEGMENTS = limit
    build_index(corpus, index_dir, encoder, **build)  # the segmented one gets the probe too, as a segment
    extra.unlink()
    rng = random.Random(7)
    words = vocabulary()
    questions = [" ".join(rng.choice(words) for _ in range(rng.randint(2, 6))) for _ in range(count)]
    ours, theirs = answers(index_dir, encoder, questions), answers(merged, encoder, questions)
    agreeing = sum(same(ours[key], theirs[key]) for key in ours)
    build_index(corpus, index_dir, encoder, **build)  # the probe removed again
    return {"segments": len(Manifest.read(index_dir).segments), "answers": len(ours), "identical": agreeing}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=20000, help="passages of the smaller index (default 20000)")
    parser.add_argument("--scale", type=int, default=10, help="how many times larger the larger index is")
    parser.add_argument("--updates", type=int, default=5, help="updates to time at each size (default 5)")
    parser.add_argument("--root", type=Path, default=Path("/tmp/qa-bench-segments"))
    parser.add_argument("--seed", type=int, default=20261121)
    parser.add_argument("--questions", type=int, default=100, help="questions for the segmented-vs-merged check")
    args = parser.parse_args()
    defaults = Settings()
    build = dict(chunk_size=defaults.chunk_size, chunk_overlap=defaults.chunk_overlap, embed_title=defaults.embed_title)
    encoder = load_encoder(precision=defaults.precision)
    small_corpus, large_corpus = args.root / "corpus-small", args.root / "corpus-large"
    small_index, large_index = args.root / "index-small", args.root / "index-large"
    generate(small_corpus, args.chunks, args.seed)
    started = time.perf_counter()
    build_index(small_corpus, small_index, encoder, **build, merge=True)  # one segment, as a full build writes
    print(f"small index ready in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    grow(small_corpus, large_corpus, args.scale)
    if not large_index.exists():
        # Grown from a copy of the small index, so the copies' passages reuse its vectors instead of being embedded.
        shutil.copytree(small_index, large_index)
    started = time.perf_counter()
    # Merged into one segment, as a full build of that corpus would write it.
    build_index(large_corpus, large_index, encoder, **build, merge=True)
    print(f"large index ready in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    figures = {}
    for name, corpus, index_dir in (("small", small_corpus, small_index), ("large", large_corpus, large_index)):
        seconds, facts = timed_updates(corpus, index_dir, encoder, build, args.updates)
        figures[name] = {**facts, "median_seconds": round(statistics.median(seconds), 3),
                         "seconds": [round(s, 3) for s in seconds]}
    ratio = figures["large"]["median_seconds"] / figures["small"]["median_seconds"]
    figures["check"] = compare_with_merged(large_index, large_corpus, encoder, build, args.questions)
    for name in ("small", "large"):
        print(f"{figures[name]['passages']:>9} passages: one-file update {figures[name]['median_seconds']:.2f} s "
              f"(median of {args.updates})")
    growth = figures["large"]["passages"] / figures["small"]["passages"]
    print(f"large / small update time: {ratio:.2f}x for {growth:.1f}x the passages")
    check = figures["check"]
    print(f"segmented ({check['segments']} segments) vs merged: {check['identical']} of {check['answers']} answers "
          "identical (passages, order, scores within 1e-5)")
    print(json.dumps({**figures, "ratio": round(ratio, 2), "cores": os.cpu_count(),
                      "format": Manifest.read(small_index).format_version}))


if __name__ == "__main__":
    main()
