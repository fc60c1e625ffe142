"""Legacy-encoded .txt files: is the text read back exactly, and what does detection cost next to UTF-8?

    python benchmarks/text_encodings.py [--rounds 200]

Real translated text (the apt and dpkg message catalogues under /usr/share/locale) is converted with ``iconv``
into Latin-1 (French, German), windows-1252 (English with curly quotes and dashes), windows-1250 (Polish),
KOI8-R (Russian), Shift-JIS (Japanese) and GB2312 (Chinese), at a short and a long size, plus two words in
Latin-1. Each file is read by :func:`qa.ingest.formats.text.decode_any` and compared with what ``iconv`` decodes: the
count of characters that differ (0 is a pass; iconv's SHIFT-JIS reads byte 0x5C as a yen sign where Windows'
cp932 reads a backslash). Timings are medians over rounds, beside the same text as UTF-8 read by ``decode_text``
(today's reader) and by ``decode_any``.
"""

from __future__ import annotations

import argparse
import gettext
import statistics
import subprocess
import time
from pathlib import Path

from qa.ingest.formats.base import decode_text
from qa.ingest.formats.text import decode_any

LOCALE = Path("/usr/share/locale")
CATALOGUES = ("apt.mo", "dpkg.mo")
# (language directory, iconv encoding, what the sample shows)
CASES = [
    ("fr", "LATIN1", "French, Latin-1"),
    ("de", "LATIN1", "German, Latin-1"),
    ("en", "CP1252", "English, windows-1252 quotes and dashes"),
    ("pl", "CP1250", "Polish, windows-1250"),
    ("ru", "KOI8-R", "Russian, KOI8-R"),
    ("ja", "SHIFT-JIS", "Japanese, Shift-JIS"),
    ("zh_CN", "GB2312", "Chinese, GB2312"),
]
SIZES = {"short": 300, "long": 20_000}
# English catalogues are the untranslated messages; typographic quotes and dashes make them windows-1252.
_TYPOGRAPHY = str.maketrans({"'": "\u2019", '"': "\u201d", "-": "\u2013"})


def catalogue_text(language: str, chars: int) -> str:
    """About ``chars`` characters of real messages in a language, one message per line."""
    lines: list[str] = []
    for name in CATALOGUES:
        path = LOCALE / ("fr" if language == "en" else language) / "LC_MESSAGES" / name
        if not path.exists():
            continue
        with path.open("rb") as handle:
            catalog = gettext.GNUTranslations(handle)._catalog  # message id -> translation
        for source, translated in catalog.items():
            if not isinstance(source, str) or not source:
                continue
            line = (source.translate(_TYPOGRAPHY) if language == "en" else translated).strip()
            if line and "%" not in line:
                lines.append(" ".join(line.split()))
        if sum(map(len, lines)) >= chars:
            break
    text, total = [], 0
    for line in lines:
        if total >= chars:
            break
        text.append(line)
        total += len(line) + 1
    return "\n".join(text) + "\n"


def iconv(text: str, encoding: str) -> bytes:
    """``text`` converted by iconv into ``encoding``, characters it cannot hold dropped (``-c``)."""
    return subprocess.run(
        ["iconv", "-c", "-f", "UTF-8", "-t", encoding], input=text.encode("utf-8"), capture_output=True, check=False
    ).stdout


def median_us(read, raw: bytes, rounds: int) -> float:
    """Median microseconds of ``read(raw)`` over rounds."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        read(raw)
        times.append((time.perf_counter() - started) * 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    print(f"{'file':52} {'bytes':>6} {'chars wrong':>11} {'detect us':>10} {'utf-8 us':>9} {'utf-8 any us':>12}")
    passed = total = 0
    samples = [
        (f"{label}, {size}", language, encoding, chars)
        for language, encoding, label in CASES
        for size, chars in SIZES.items()
    ]
    samples.append(("French, Latin-1, two words", "", "LATIN1", 0))
    for label, language, encoding, chars in samples:
        text = catalogue_text(language, chars) if chars else "Café crème"
        raw = iconv(text, encoding)
        expected = subprocess.run(
            ["iconv", "-f", encoding, "-t", "UTF-8"], input=raw, capture_output=True, check=True
        ).stdout.decode("utf-8")
        try:
            decoded = decode_any(raw)
            differing = sum(a != b for a, b in zip(decoded, expected)) + abs(len(decoded) - len(expected))
        except Exception:  # a refusal is a failure here, reported in the table
            differing = len(expected)
        ok = differing == 0
        utf8 = expected.encode("utf-8")
        passed, total = passed + ok, total + 1
        print(
            f"{label:52} {len(raw):6d} {differing:11d} {median_us(decode_any, raw, args.rounds):10.0f}"
            f" {median_us(decode_text, utf8, args.rounds):9.1f} {median_us(decode_any, utf8, args.rounds):12.1f}"
        )
    print(f"read back exactly: {passed}/{total}")


if __name__ == "__main__":
    main()
