"""Assemble a real documentation corpus from Debian doc packages, the same files every time.

    python benchmarks/docs_corpus.py --out DIR [--replace]

Four HTML sites (PostgreSQL 15, Git, Sphinx, SQLite; the pages are copied as installed, keeping their
paths relative to each site's root), four PDF manuals (Asymptote, TeX Live, Kpathsea, Dvips) and a few
plain-text files. The Python documentation is left out on purpose: held-out evaluation uses it.

Real corpora hold duplicates, so a few files are also copied to a second path and one symlink points at
a file inside the corpus. The file list is fixed below (no globbing over what happens to be installed
beyond the named patterns, which are sorted), so the same packages give the same corpus. Standard
library only. Prints what it took; exits 1 naming the packages to install when sources are missing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

DOC = Path("/usr/share/doc")


@dataclass(frozen=True)
class Source:
    """A set of files from one installed package, copied under ``dest`` keeping paths relative to ``root``."""

    package: str
    root: Path
    dest: str
    patterns: tuple[str, ...]


PG_SQL_COMMANDS = (
    "sql-altertable",
    "sql-analyze",
    "sql-begin",
    "sql-cluster",
    "sql-commit",
    "sql-copy",
    "sql-createindex",
    "sql-creatematerializedview",
    "sql-createrole",
    "sql-createsequence",
    "sql-createview",
    "sql-delete",
    "sql-explain",
    "sql-grant",
    "sql-insert",
    "sql-listen",
    "sql-notify",
    "sql-refreshmaterializedview",
    "sql-reindex",
    "sql-rollback",
    "sql-savepoint",
    "sql-truncate",
    "sql-update",
    "sql-vacuum",
)
PG_FUNCTIONS = (
    "functions-aggregate",
    "functions-conditional",
    "functions-datetime",
    "functions-json",
    "functions-math",
    "functions-string",
    "functions-window",
)
GIT_PAGES = (
    "git-add",
    "git-bisect",
    "git-blame",
    "git-branch",
    "git-checkout",
    "git-cherry-pick",
    "git-clean",
    "git-clone",
    "git-commit",
    "git-diff",
    "git-fetch",
    "git-grep",
    "git-init",
    "git-log",
    "git-merge",
    "git-mv",
    "git-pull",
    "git-push",
    "git-rebase",
    "git-reflog",
    "git-remote",
    "git-reset",
    "git-restore",
    "git-revert",
    "git-rm",
    "git-show",
    "git-sparse-checkout",
    "git-stash",
    "git-status",
    "git-submodule",
    "git-switch",
    "git-tag",
    "git-worktree",
    "gitattributes",
    "gitcli",
    "giteveryday",
    "githooks",
    "gitignore",
    "gitrevisions",
    "gittutorial",
    "gittutorial-2",
    "gitworkflows",
    "gitcredentials",
    "git-credential-store",
    "git-archive",
    "git-gc",
    "git-format-patch",
    "git-am",
)
SQLITE_PAGES = (
    "autoinc",
    "datatype3",
    "faq",
    "foreignkeys",
    "lang_altertable",
    "lang_analyze",
    "lang_attach",
    "lang_conflict",
    "lang_createindex",
    "lang_createtable",
    "lang_createtrigger",
    "lang_createview",
    "lang_datefunc",
    "lang_delete",
    "lang_insert",
    "lang_select",
    "lang_transaction",
    "lang_update",
    "lang_upsert",
    "lang_vacuum",
    "lang_with",
    "lockingv3",
    "quirks",
    "wal",
    "whentouse",
    "withoutrowid",
    "lang_expr",
    "lang_corefunc",
    "lang_aggfunc",
    "pragma",
    "cli",
    "backup",
    "limits",
    "isolation",
)

SOURCES = (
    Source(
        "postgresql-doc-15",
        DOC / "postgresql-doc-15/html",
        "postgresql",
        (
            "tutorial-*.html",
            "datatype-*.html",
            "ddl-*.html",
            "indexes-*.html",
            "mvcc-intro.html",
            "transaction-iso.html",
            "explicit-locking.html",
            "backup-dump.html",
            "app-pgdump.html",
            "app-pgrestore.html",
            "routine-vacuuming.html",
            "textsearch-intro.html",
            "textsearch-controls.html",
            *(f"{name}.html" for name in PG_SQL_COMMANDS + PG_FUNCTIONS),
        ),
    ),
    Source("git-doc", DOC / "git-doc", "git", tuple(f"{name}.html" for name in GIT_PAGES)),
    Source(
        "sphinx-doc",
        DOC / "sphinx-doc/html",
        "sphinx",
        ("usage/*.html", "usage/*/*.html", "tutorial/*.html", "faq.html", "glossary.html", "templating.html"),
    ),
    Source("sqlite3-doc", DOC / "sqlite3", "sqlite", tuple(f"{name}.html" for name in SQLITE_PAGES)),
    Source(
        "asymptote-doc",
        DOC / "asymptote",
        "manuals/asymptote",
        ("asymptote.pdf", "README"),
    ),
    Source(
        "texlive-doc",
        DOC / "texlive-doc",
        "manuals/texlive",
        ("texlive/texlive-en/texlive-en.pdf", "kpathsea/kpathsea.pdf", "dvips/dvips.pdf"),
    ),
    Source("docutils-doc", DOC / "docutils-doc", "docutils", ("FAQ.txt", "BUGS.txt")),
)
# Files renamed on the way in: a README without a suffix would not be read.
RENAMES = {"manuals/asymptote/README": "manuals/asymptote/README.txt"}
# Second copies at other paths (corpus-relative source -> copy), and one symlink (link -> target).
DUPLICATES = {
    "git/git-reset.html": "git/mirror/git-reset.html",
    "postgresql/tutorial-join.html": "postgresql-old/tutorial-join.html",
    "sqlite/autoinc.html": "sqlite/archive/autoinc-copy.html",
}
SYMLINK = ("sphinx/latest-quickstart.html", "usage/quickstart.html")


def selected_files(source: Source) -> list[Path]:
    """The files a source contributes, in sorted order; a pattern that matches nothing is an error.

    Raises:
        FileNotFoundError: a pattern matched no file (the package changed or is incomplete).
    """
    found: dict[Path, None] = {}
    for pattern in source.patterns:
        matches = sorted(path for path in source.root.glob(pattern) if path.is_file())
        if not matches:
            raise FileNotFoundError(f"{source.root / pattern} matched nothing")
        found.update(dict.fromkeys(matches))
    return sorted(found)


def missing_packages(sources: tuple[Source, ...] = SOURCES) -> list[str]:
    """Packages whose documentation folder is not installed."""
    return sorted({source.package for source in sources if not source.root.is_dir()})


def build_corpus(out: Path) -> dict[str, int]:
    """Copy every selected file into ``out``, then the duplicates and the symlink.

    Returns:
        Files copied per destination folder, plus "duplicates" and "symlinks".
    """
    counts: dict[str, int] = {}
    for source in SOURCES:
        for path in selected_files(source):
            relative = f"{source.dest}/{path.relative_to(source.root).as_posix()}"
            target = out / RENAMES.get(relative, relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            counts[source.dest] = counts.get(source.dest, 0) + 1
    for original, copy in DUPLICATES.items():
        (out / copy).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / original, out / copy)
    link, target = SYMLINK
    os.symlink(target, out / link)
    counts["duplicates"] = len(DUPLICATES)
    counts["symlinks"] = 1
    return counts


def fresh_folder(out: Path, replace: bool) -> bool:
    """Make ``out`` a new, empty folder, deleting what is there only with ``replace``; False (after saying why on
    standard error) when it exists and ``replace`` is not given."""
    if out.exists():
        if not replace:
            print(f"error: {out} exists; pass --replace to rebuild it", file=sys.stderr)
            return False
        shutil.rmtree(out)
    out.mkdir(parents=True)
    return True


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: build the corpus and print what it took."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to create (must not exist, or --replace)")
    parser.add_argument("--replace", action="store_true", help="delete OUT first if it exists")
    args = parser.parse_args(argv)
    missing = missing_packages()
    if missing:
        print(f"error: missing documentation; install with: apt-get install -y {' '.join(missing)}", file=sys.stderr)
        return 1
    if not fresh_folder(args.out, args.replace):
        return 1
    counts = build_corpus(args.out)
    for folder, count in counts.items():
        print(f"{folder:24} {count:5d}")
    files = sum(1 for path in args.out.rglob("*") if path.is_file() or path.is_symlink())
    size = sum(path.stat().st_size for path in args.out.rglob("*") if path.is_file() and not path.is_symlink())
    print(f"{'total':24} {files:5d} files, {size / 1e6:.1f} MB in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
