"""Which decoding reads legacy HTML pages that declare no charset: windows-1252 (as browsers do) or detection.

    python benchmarks/html_charsets.py [--pages 6] [--lines 12]

Makes pages from the translated manual pages installed under /usr/share/man/<language>/man1 (their prose, as
paragraphs, no <meta charset>), converts each with iconv into its language's legacy encodings, and decodes the
bytes (a) as windows-1252 and (b) as qa.ingest.formats.html.read_html does (UTF-8 when valid, else charset-normalizer's
reading). Prints, per encoding, how many pages' texts come back exactly as written and the median share of
characters that differ; --lines 2 shows short pages, where detection has least to go on.
"""

from __future__ import annotations

import argparse
import gzip
import html
import re
import statistics
import subprocess
from pathlib import Path

from qa.ingest.formats.html import read_html

MAN = Path("/usr/share/man")
ENCODINGS = {
    "de": ["cp1252", "iso-8859-15"],
    "fr": ["cp1252", "iso-8859-15"],
    "es": ["cp1252"],
    "sv": ["cp1252"],
    "pl": ["iso-8859-2", "cp1250"],
    "cs": ["iso-8859-2", "cp1250"],
    "hu": ["iso-8859-2"],
    "ru": ["koi8-r", "cp1251"],
    "tr": ["iso-8859-9"],
    "ja": ["shift_jis", "euc-jp"],
    "ko": ["euc-kr"],
}
_MOJIBAKE = re.compile("[\u00c2\u00c3][\u0080-\u00bf]")
_TROFF = re.compile(r"\\f[BIRP]|\\\(..|\\[-&e ]|\\\*\(..|\\\*.")


def prose(path: Path, lines: int) -> list[str]:
    """The first ``lines`` lines of running text in a gzipped troff manual page."""
    text = gzip.decompress(path.read_bytes()).decode("utf-8", errors="ignore")
    if _MOJIBAKE.search(text):
        return []  # a few translations are themselves UTF-8 read as Latin-1: not a test of anything
    found = [_TROFF.sub("", line).strip() for line in text.splitlines() if line and not line.startswith((".", "'"))]
    return [line for line in found if len(line) > 30][:lines]


def page(lines: list[str]) -> str:
    """An HTML page of these lines with no charset declaration."""
    body = "\n".join(f"<p>{html.escape(line)}</p>" for line in lines)
    return f"<html><head><title>{html.escape(lines[0][:40])}</title></head><body>\n{body}\n</body></html>\n"


def differing_share(got: str, want: str) -> float:
    """Share of characters of ``want`` not matched position by position (1.0 when the lengths differ)."""
    if len(got) != len(want):
        return 1.0
    return sum(a != b for a, b in zip(got, want)) / max(len(want), 1)


def detect(raw: bytes) -> str:
    """The page's text as qa.ingest.formats.html reads undeclared bytes (UTF-8 when valid, else detection)."""
    return read_html(raw).text


def as_cp1252(raw: bytes) -> str:
    """The page's text when the bytes are read as windows-1252, what browsers in Western locales assume."""
    return read_html(raw.decode("cp1252", errors="replace").encode("utf-8")).text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=6, help="manual pages per language")
    parser.add_argument("--lines", type=int, default=12, help="paragraphs per page")
    args = parser.parse_args()
    print(
        f"{'encoding':<12} {'pages':>5} {'cp1252 exact':>12} {'detect exact':>12} {'cp1252 diff':>11} "
        f"{'detect diff':>11}"
    )
    totals = {"pages": 0, "cp1252": 0, "detect": 0}
    for language, encodings in ENCODINGS.items():
        sources = sorted((MAN / language / "man1").glob("*.1.gz"))
        texts = [lines for path in sources if len(lines := prose(path, args.lines)) >= min(3, args.lines)]
        pages = [page(lines) for lines in texts[: args.pages]]
        for encoding in encodings:
            results: dict[str, list[float]] = {"cp1252": [], "detect": []}
            for markup in pages:
                converted = subprocess.run(
                    ["iconv", "-c", "-f", "utf-8", "-t", encoding],
                    input=markup.encode(),
                    capture_output=True,
                    check=False,
                ).stdout
                # What the page says, less what the encoding cannot hold.
                want = read_html(converted.decode(encoding).encode("utf-8")).text
                results["cp1252"].append(differing_share(as_cp1252(converted), want))
                results["detect"].append(differing_share(detect(converted), want))
            exact = {name: sum(share == 0 for share in shares) for name, shares in results.items()}
            for name in exact:
                totals[name] += exact[name]
            totals["pages"] += len(pages)
            print(
                f"{language + ' ' + encoding:<12} {len(pages):>5} {exact['cp1252']:>12} {exact['detect']:>12} "
                f"{statistics.median(results['cp1252']):>11.1%} {statistics.median(results['detect']):>11.1%}"
            )
    print(f"{'all':<12} {totals['pages']:>5} {totals['cp1252']:>12} {totals['detect']:>12}")


if __name__ == "__main__":
    main()
