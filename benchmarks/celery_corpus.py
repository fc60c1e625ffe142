"""Copy the Celery 5.2 manual, a Sphinx build as Debian installs it, into a corpus folder, whole.

    python benchmarks/celery_corpus.py --out DIR [--replace]

The third documentation corpus (benchmarks/data/celery_questions.jsonl asks questions over it): Debian's
``python-celery-doc`` installs the HTML build of Celery's documentation the way a user finds one on disk or
downloads one, with everything Sphinx writes beside the pages: the pages' reStructuredText sources
(``_sources/**/*.rst.txt``), highlighted module source (``_modules/``), the general index, the search page,
scripts, style sheets and images. All of it is copied, symbolic links followed (Debian links the scripts to
``/usr/share/javascript``), so that indexing the folder is what a user pointing qa at the build gets. Standard
library only. Prints what it took; exits 1 naming the package to install when the manual is missing.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections import Counter
from pathlib import Path

from docs_corpus import fresh_folder  # run from benchmarks/, like the other scripts

PACKAGE = "python-celery-doc"
MANUAL = Path("/usr/share/doc/python-celery-doc/html")


def build_corpus(out: Path, root: Path = MANUAL) -> Counter:
    """Copy the build at ``root`` into ``out``, following symbolic links.

    Returns:
        Files copied per suffix.

    Raises:
        FileNotFoundError: ``root`` holds no HTML page.
    """
    if not any(root.glob("*.html")):
        raise FileNotFoundError(f"no HTML pages under {root}")
    shutil.copytree(root, out, symlinks=False, dirs_exist_ok=True)
    return Counter(path.suffix or path.name for path in out.rglob("*") if path.is_file())


def copy_build(description: str, root: Path, package: str) -> None:
    """The command line of a script that copies a build folder whole (this one, rustdoc_corpus.py): ``--out DIR
    [--replace]``; exits 1 naming ``package`` when ``root`` holds no page."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, required=True, help="the corpus folder to create")
    parser.add_argument("--replace", action="store_true", help="replace the folder if it exists")
    args = parser.parse_args()
    if not fresh_folder(args.out, replace=args.replace):
        sys.exit(1)
    try:
        counts = build_corpus(args.out, root)
    except FileNotFoundError as exc:
        sys.exit(f"{exc}: install it with `apt-get install {package}`")
    for suffix, count in counts.most_common():
        print(f"{count:5d}  {suffix}")
    print(f"{sum(counts.values())} files in {args.out}")


def main() -> None:
    copy_build(__doc__.splitlines()[0], MANUAL, PACKAGE)


if __name__ == "__main__":
    main()
