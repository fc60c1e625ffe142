"""Copy the rustdoc API reference Debian's cargo-doc ships (syn, quote, proc-macro2 ...) into a corpus folder, whole.

    python benchmarks/rustdoc_corpus.py --out DIR [--replace]

The fourth documentation corpus (benchmarks/data/rustdoc_questions.jsonl asks questions over it): an API reference
as rustdoc writes it, the way a Rust user finds one under ``target/doc``: item pages whose sections are signatures,
the highlighted source under ``src/``, the crate list, the search and settings pages, scripts, fonts and style
sheets, and a few compressed licence files. All of it is copied, symbolic links followed. Standard library only.
Prints what it took; exits 1 naming the package to install when the reference is missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from celery_corpus import build_corpus  # run from benchmarks/, like the other scripts
from docs_corpus import fresh_folder

PACKAGE = "cargo-doc"
REFERENCE = Path("/usr/share/doc/cargo/doc")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the corpus folder to create")
    parser.add_argument("--replace", action="store_true", help="replace the folder if it exists")
    args = parser.parse_args()
    if not fresh_folder(args.out, replace=args.replace):
        sys.exit(1)
    try:
        counts = build_corpus(args.out, REFERENCE)
    except FileNotFoundError as exc:
        sys.exit(f"{exc}: install it with `apt-get install {PACKAGE}`")
    for suffix, count in counts.most_common():
        print(f"{count:5d}  {suffix}")
    print(f"{sum(counts.values())} files in {args.out}")


if __name__ == "__main__":
    main()
