"""Copy the Apache HTTP Server 2.4 manual (English HTML pages) into a corpus folder, the same files every time.

    python benchmarks/apache_corpus.py --out DIR [--replace]

The second, held-out documentation corpus (benchmarks/data/apache_questions.jsonl asks questions over it):
Debian's ``apache2-doc`` installs the manual with its language variants side by side; only the English pages
(``manual/en/**/*.html``, and ``.html.gz`` decompressed should a packaging compress them) are taken, with
their folder structure kept under ``DIR/httpd/``. One top-level folder makes the manual one site for the
boilerplate judge of benchmarks/docs_quality.py, which calls a corpus' top-level folders its sites. Images,
style sheets and scripts are left out. Standard library only. Prints what it took; exits 1 naming the
package to install when the manual is missing.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sys
from collections import Counter
from pathlib import Path

from docs_corpus import fresh_folder  # run from benchmarks/, like the other scripts

PACKAGE = "apache2-doc"
MANUAL = Path("/usr/share/doc/apache2-doc/manual/en")
SITE = "httpd"
PAGE_SUFFIXES = (".html", ".html.gz")


def manual_pages(root: Path = MANUAL) -> list[Path]:
    """The English manual's HTML pages under ``root``, sorted by their path relative to it.

    Raises:
        FileNotFoundError: the folder holds no HTML page (the package changed or is incomplete).
    """
    pages = sorted(
        (path for path in root.rglob("*") if path.is_file() and path.name.endswith(PAGE_SUFFIXES)),
        key=lambda path: path.relative_to(root).as_posix(),
    )
    if not pages:
        raise FileNotFoundError(f"no HTML pages under {root}")
    return pages


def corpus_path(page: Path, root: Path = MANUAL) -> str:
    """Where a page of the manual lands, relative to the corpus root (``.gz`` dropped: it is decompressed)."""
    relative = page.relative_to(root).as_posix().removesuffix(".gz")
    return f"{SITE}/{relative}"


def build_corpus(out: Path, root: Path = MANUAL) -> Counter:
    """Copy every page into ``out`` (decompressing ``.html.gz``).

    Returns:
        Pages copied per folder of the manual ("." for its top level).
    """
    counts: Counter = Counter()
    for page in manual_pages(root):
        target = out / corpus_path(page, root)
        target.parent.mkdir(parents=True, exist_ok=True)
        if page.name.endswith(".gz"):
            target.write_bytes(gzip.decompress(page.read_bytes()))
        else:
            shutil.copyfile(page, target)
        folder = page.parent.relative_to(root).as_posix()
        counts[folder] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: build the corpus and print what it took."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to create (must not exist, or --replace)")
    parser.add_argument("--replace", action="store_true", help="delete OUT first if it exists")
    parser.add_argument("--manual", type=Path, default=MANUAL, help="the English manual's folder")
    args = parser.parse_args(argv)
    if not args.manual.is_dir():
        print(f"error: {args.manual} is missing; install with: apt-get install -y {PACKAGE}", file=sys.stderr)
        return 1
    if not fresh_folder(args.out, args.replace):
        return 1
    counts = build_corpus(args.out, args.manual)
    for folder, count in sorted(counts.items()):
        print(f"{SITE}/{folder:20} {count:5d}")
    files = [path for path in args.out.rglob("*") if path.is_file()]
    size = sum(path.stat().st_size for path in files)
    print(f"{'total':26} {len(files):5d} pages, {size / 1e6:.1f} MB in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
