"""Time and peak memory to cut one huge text into passages, with the real tokenizer, one child process per case.

    python benchmarks/big_file.py [--mb 50] [--cases single-line,words,no-spaces,many-lines] [--rounds 1]

Cases: ``single-line`` is sentences of words on one line; ``words`` is words on one line with no sentence end, one
sentence of the whole text; ``no-spaces`` is one "word" of letters with no space at all; ``many-lines`` is short
lines of a few words each. Each round runs in a fresh child process, which builds the
text, loads the encoder, chunks the text with the default passage size and reports its wall time and its peak
resident memory (``ru_maxrss``, which includes the text itself and the loaded model). Prints the median per case.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
CASES = ("single-line", "words", "no-spaces", "many-lines")
_WORDS = (
    "the index keeps every passage with its exact offsets so that a citation can point at the line where an answer "
    "was found and the reader can check it against the source document"
).split()


def build_text(case: str, n_chars: int) -> str:
    """A generated text of about ``n_chars`` characters of the given case (deterministic)."""
    if case == "no-spaces":
        return ("abcdefghijklmnopqrstuvwxyz" * (n_chars // 26 + 1))[:n_chars]
    rng = random.Random(16)
    separator = "\n" if case == "many-lines" else " "
    lowest, highest = (2, 8) if case == "many-lines" else (6, 30)
    sentences = []
    total = 0
    while total < n_chars:
        words = rng.choices(_WORDS, k=rng.randint(lowest, highest))
        sentence = " ".join(words) if case == "words" else " ".join(words).capitalize() + "."
        sentences.append(sentence)
        total += len(sentence) + 1
    return separator.join(sentences)


def run_case(case: str, n_chars: int) -> dict:
    """Chunk one generated text in this process; wall seconds of chunking and peak RSS in MB."""
    from qa.config import Settings
    from qa.embed.encoder import load_encoder
    from qa.text.chunking import chunk_text

    text = build_text(case, n_chars)
    encoder = load_encoder()
    settings = Settings()
    started = time.perf_counter()
    chunks = chunk_text(
        text,
        size=settings.chunk_size,
        overlap=settings.chunk_overlap,
        count_tokens=encoder.count_tokens,
        limit=encoder.max_tokens,
    )
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
    return {
        "case": case,
        "seconds": seconds,
        "peak_mb": peak_mb,
        "chunks": len(chunks),
        "longest_chunk_chars": max(len(c.text) for c in chunks),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=50.0, help="size of each generated text in MB (of characters)")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    n_chars = int(args.mb * 1_000_000)
    if args.child:
        print(json.dumps(run_case(args.child, n_chars)))
        return
    print(f"{'case':<12} {'MB':>6} {'seconds':>9} {'peak MB':>9} {'chunks':>8} {'longest':>8}")
    for case in args.cases.split(","):
        runs = []
        for _ in range(args.rounds):
            output = subprocess.run(
                [sys.executable, __file__, "--mb", str(args.mb), "--child", case],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            runs.append(json.loads(output.splitlines()[-1]))
        seconds = statistics.median(r["seconds"] for r in runs)
        peak = statistics.median(r["peak_mb"] for r in runs)
        print(
            f"{case:<12} {args.mb:>6g} {seconds:>9.1f} {peak:>9.0f} {runs[0]['chunks']:>8} "
            f"{runs[0]['longest_chunk_chars']:>8}",
            flush=True,
        )


if __name__ == "__main__":
    main()
