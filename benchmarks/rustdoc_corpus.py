"""Copy the rustdoc API reference Debian's cargo-doc ships (syn, quote, proc-macro2 ...) into a corpus folder, whole.

    python benchmarks/rustdoc_corpus.py --out DIR [--replace]

The fourth documentation corpus (benchmarks/data/rustdoc_questions.jsonl asks questions over it): an API reference
as rustdoc writes it, the way a Rust user finds one under ``target/doc``: item pages whose sections are signatures,
the highlighted source under ``src/``, the crate list, the search and settings pages, scripts, fonts and style
sheets, and a few compressed licence files. All of it is copied, symbolic links followed. Standard library only.
Prints what it took; exits 1 naming the package to install when the reference is missing.
"""

from __future__ import annotations

from pathlib import Path

from celery_corpus import copy_build  # run from benchmarks/, like the other scripts

PACKAGE = "cargo-doc"
REFERENCE = Path("/usr/share/doc/cargo/doc")


def main() -> None:
    copy_build(__doc__.splitlines()[0], REFERENCE, PACKAGE)


if __name__ == "__main__":
    main()
