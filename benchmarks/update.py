"""What an incremental `qa index` saves: a full build of a synthetic corpus against updates after one file changes.

    python benchmarks/update.py [--chunks 20000] [--index /tmp/qa-bench/idx] [--updates 5]

Generates a deterministic corpus (several hundred files of sentences drawn from the seeds' vocabulary, sized for
about ``--chunks`` passages), builds it from scratch (or reuses ``--index`` when it already holds this corpus, with
the build time recorded beside it), then edits one paragraph of one file and times the update, ``--updates`` times.
Prints a table and one JSON line. Both timings are in-process with the model already loaded; `qa index` adds
the model's start-up (a few seconds) to either.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from qa.config import Settings  # noqa: E402
from qa.embed.encoder import load_encoder  # noqa: E402
from qa.index.indexer import build_index  # noqa: E402
from qa.index.manifest import Manifest  # noqa: E402
from qa.ingest.corpus import scan_corpus  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# Passages per generated file: a few hundred files for 20,000 passages.
CHUNKS_PER_FILE = 50
# Words per passage at 128-token passages with a 24-token overlap (calibrated on this generator's text).
WORDS_PER_CHUNK = 80


def vocabulary() -> list[str]:
    """Every distinct word of the seeds, sorted: realistic tokens, deterministic order."""
    words = set()
    for path in sorted((ROOT / "seeds").glob("*.txt")):
        words.update(w.lower() for w in re.findall(r"[A-Za-z]{2,}", path.read_text(encoding="utf-8")))
    return sorted(words)


def paragraph(rng: random.Random, words: list[str]) -> str:
    """Three to seven sentences of 8 to 24 words."""
    sentences = []
    for _ in range(rng.randint(3, 7)):
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(8, 24)))
        sentences.append(sentence[0].upper() + sentence[1:] + ".")
    return " ".join(sentences)


def document(rng: random.Random, words: list[str], number: int) -> str:
    """A title line, a date line, then paragraphs worth about CHUNKS_PER_FILE passages."""
    title = " ".join(rng.choice(words) for _ in range(6)).capitalize()
    lines = [f"Report {number}: {title}", f"Time: 2024-{number % 12 + 1:02d}-{number % 28 + 1:02d}", ""]
    n_words = 0
    while n_words < CHUNKS_PER_FILE * WORDS_PER_CHUNK:
        lines.append(paragraph(rng, words))
        lines.append("")
        n_words += len(lines[-2].split())
    return "\n".join(lines)


def generate(corpus: Path, chunks: int, seed: int) -> None:
    """Write the corpus (the same bytes for the same arguments)."""
    rng = random.Random(seed)
    words = vocabulary()
    corpus.mkdir(parents=True, exist_ok=True)
    for number in range(max(1, round(chunks / CHUNKS_PER_FILE))):
        folder = corpus / f"part-{number // 100:02d}"
        folder.mkdir(exist_ok=True)
        (folder / f"report-{number:04d}.txt").write_text(document(rng, words, number), encoding="utf-8")


def edit_one_paragraph(path: Path, round_number: int) -> None:
    """Replace one paragraph of ``path`` with new text: a small, real change."""
    rng = random.Random(f"edit-{round_number}")
    paragraphs = path.read_text(encoding="utf-8").split("\n\n")
    where = 1 + round_number % (len(paragraphs) - 2)
    paragraphs[where] = paragraph(rng, vocabulary())
    path.write_text("\n\n".join(paragraphs), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=20000, help="passages to aim for (default 20000)")
    parser.add_argument(
        "--index",
        type=Path,
        default=None,
        help="index directory to build, or reuse if it holds this corpus",
    )
    parser.add_argument("--updates", type=int, default=5, help="updates to time (default 5)")
    parser.add_argument("--seed", type=int, default=20261121)
    args = parser.parse_args()
    index_dir = (args.index or Path(f"/tmp/qa-bench-update-{args.chunks}/idx")).absolute()
    corpus = index_dir.parent / f"corpus-{args.chunks}-{args.seed}"
    timings_file = index_dir.parent / f"{index_dir.name}.full-build.json"
    defaults = Settings()
    build = dict(chunk_size=defaults.chunk_size, chunk_overlap=defaults.chunk_overlap, embed_title=defaults.embed_title)
    encoder = load_encoder(precision=defaults.precision)  # what `qa index` embeds at by default

    # Regenerate from the seed each run, so edits from an earlier run are undone and the index either still
    # holds exactly this corpus (reused) or is rebuilt.
    generate(corpus, args.chunks, args.seed)
    scan = scan_corpus(corpus)
    try:
        manifest = Manifest.read(index_dir)
        recorded = json.loads(timings_file.read_text(encoding="utf-8"))
        reusable = manifest.corpus.get("fingerprint") == recorded["fingerprint"] == scan.fingerprint
    except Exception:  # no index, no record, or a record of something else: build afresh
        reusable = False
    if reusable:
        full_seconds, chunks = recorded["seconds"], manifest.counts["chunks"]
        print(f"reusing {index_dir} ({chunks} passages; full build took {full_seconds:.1f} s)", file=sys.stderr)
    else:
        print(f"building {len(scan.documents)} files into {index_dir} ...", file=sys.stderr)
        report = build_index(corpus, index_dir, encoder, scan=scan, full=True, **build)
        full_seconds, chunks = report.seconds, report.chunks
        record = {"fingerprint": scan.fingerprint, "seconds": full_seconds}
        timings_file.write_text(json.dumps(record), encoding="utf-8")

    target = sorted(corpus.rglob("*.txt"))[len(scan.documents) // 2]
    original = target.read_text(encoding="utf-8")
    update_seconds, embedded = [], []
    for round_number in range(args.updates):
        edit_one_paragraph(target, round_number)
        report = build_index(corpus, index_dir, encoder, **build)
        assert report.update and report.changed == 1 and report.unchanged == len(scan.documents) - 1, report
        update_seconds.append(report.seconds)
        embedded.append(report.passages_embedded)
        print(
            f"update {round_number + 1}: {report.seconds:.2f} s, {report.passages_embedded} passages embedded, "
            f"{report.passages_reused} reused",
            file=sys.stderr,
        )
    # Put the file back and update once more (untimed), so the index holds the generated corpus for the next run.
    target.write_text(original, encoding="utf-8")
    build_index(corpus, index_dir, encoder, **build)

    update = statistics.median(update_seconds)
    figures = {
        "files": len(scan.documents),
        "passages": chunks,
        "full_build_seconds": round(full_seconds, 2),
        "update_seconds_median": round(update, 2),
        "update_seconds": [round(s, 2) for s in update_seconds],
        "passages_embedded_per_update": embedded,
        "speedup": round(full_seconds / update, 1),
        "cores": os.cpu_count(),
    }
    print(f"{'files':<28}{figures['files']}")
    print(f"{'passages':<28}{chunks}")
    print(f"{'full build':<28}{full_seconds:.1f} s")
    print(f"{'update, one file edited':<28}{update:.2f} s (median of {len(update_seconds)})")
    print(f"{'full build / update':<28}{figures['speedup']}x")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
