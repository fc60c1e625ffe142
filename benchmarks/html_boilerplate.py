"""How much site template (navigation, sidebars, footers) HTML extraction keeps, with and without main content.

    python benchmarks/html_boilerplate.py /usr/share/doc/postgresql-doc-15/html /usr/share/doc/git-doc ...
        [--limit 300] [--share 0.3]

For each folder (one site), over its .html/.htm files (the first --limit, sorted by name): pages, characters
kept with main_content=True and False, and the share of text lines that are template lines, lines that occur on
at least --share of the folder's pages when the whole page is kept. The template share with main content is
what is left of the site's boilerplate; a line of real content that repeats on many pages ("Example", "Note")
counts too, so it is an upper bound.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from pathlib import Path

from qa.ingest.formats import Unreadable, extract


def site_pages(folder: Path, limit: int) -> list[Path]:
    """The folder's HTML pages (not in subfolders whose names start with "_", Sphinx's sources and statics)."""
    pages = [
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in (".html", ".htm")
        and path.is_file()
        and not any(part.startswith("_") for part in path.relative_to(folder).parts)
    ]
    return sorted(pages)[:limit]


def measure(folder: Path, limit: int, share: float) -> dict[str, float]:
    """Pages, characters and template-line shares of one site in both modes; the median time per page."""
    texts: dict[bool, list[str]] = {True: [], False: []}
    seconds: list[float] = []
    for path in site_pages(folder, limit):
        raw = path.read_bytes()
        try:
            started = time.perf_counter()
            main = extract(raw, path.suffix, main_content=True).text
            seconds.append(time.perf_counter() - started)
            whole = extract(raw, path.suffix, main_content=False).text
        except Unreadable:
            continue
        texts[True].append(main)
        texts[False].append(whole)
    pages = len(texts[False])
    on_pages = Counter(line for text in texts[False] for line in {line.strip() for line in text.splitlines()} if line)
    template = {line for line, count in on_pages.items() if count >= share * pages}
    figures: dict[str, float] = {"pages": pages, "ms_per_page": 1000 * statistics.median(seconds) if seconds else 0}
    for mode, label in ((True, "main"), (False, "whole")):
        lines = [line.strip() for text in texts[mode] for line in text.splitlines() if line.strip()]
        figures[f"chars_{label}"] = sum(len(text) for text in texts[mode])
        figures[f"template_{label}"] = sum(line in template for line in lines) / len(lines) if lines else 0.0
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+")
    parser.add_argument("--limit", type=int, default=300, help="pages per site (default 300)")
    parser.add_argument("--share", type=float, default=0.3, help="a template line is on this share of pages")
    args = parser.parse_args()
    print(
        f"{'site':<44} {'pages':>5} {'chars main':>11} {'chars whole':>11} {'kept':>5} "
        f"{'template main':>13} {'template whole':>14} {'ms/page':>7}"
    )
    for folder in args.folders:
        f = measure(folder, args.limit, args.share)
        kept = f["chars_main"] / f["chars_whole"] if f["chars_whole"] else 0.0
        print(
            f"{str(folder)[-44:]:<44} {f['pages']:>5.0f} {f['chars_main']:>11,.0f} {f['chars_whole']:>11,.0f} "
            f"{kept:>5.0%} {f['template_main']:>13.1%} {f['template_whole']:>14.1%} {f['ms_per_page']:>7.1f}"
        )


if __name__ == "__main__":
    main()
