"""PDF text extractors compared on real PDFs: words run together, words split apart, pages/s and failures.

    python benchmarks/pdf_extraction.py [--max-pages 40] [--rounds 3] [--damaged 120] [PDF ...]

With no files given it reads the PDFs listed in SAMPLE that are installed under /usr/share/doc. A word is
*run together* when it is not in the dictionary (/usr/share/dict/words, from the ``wamerican`` package) but
splits into two or more dictionary words of three letters or more ("relatedcallbacks"); *split apart* when it
and the next token are not dictionary words but their concatenation is ("docu ment"); *hyphen-broken* when a
line-end hyphen leaves a word in two parts that are not words ("improve- ments"). Each is counted per 1,000
words over every page read. Compound words and jargon missing from the dictionary give every extractor the
same floor; the differences between extractors are what the figures show. Pages/s is the median over rounds.
With ``--damaged N`` it also makes N damaged copies of the sample (1 or 10 random bytes changed, or cut short;
seeded) and counts, per extractor, the copies it still gets words out of.
"""

from __future__ import annotations

import argparse
import io
import logging
import random
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from qa.ingest.formats.pdf import pdfium_page_texts

DICTIONARY = Path("/usr/share/dict/words")
# Varied producers: pdfTeX, LuaTeX, dvipdfm(x), Ghostscript, Acrobat Distiller, Skia (Chrome), WeasyPrint, cairo,
# Quartz and gropdf; manuals, a specification, a man page, a scanned letter.
_DOC = "/usr/share/doc/"
_TEX = _DOC + "texlive-doc/"
SAMPLE = [
    _DOC + "libtasn1-doc/libtasn1.pdf",
    _DOC + "gnuplot/gnuplot.pdf",
    _DOC + "lmodern/lm-info.pdf",
    _DOC + "shared-mime-info/shared-mime-info-spec.pdf",
    _DOC + "sqlite3/copyright-release.pdf",
    _TEX + "bibtex/base/btxdoc.pdf",
    _TEX + "support/texcount/doc/TeXcount.pdf",
    _TEX + "support/checkcites/checkcites-doc.pdf",
    _TEX + "bibtex/abstyles/abstdok.pdf",
    _TEX + "luatex/base/luatex.pdf",
    _TEX + "support/arara/arara-manual.pdf",
    _TEX + "luatex/barracuda/doc/manual/barracuda-manual.pdf",
    _TEX + "dvipdfmx/dvipdfmx-special.pdf",
    _TEX + "support/ltximg/ltximg.man1.pdf",
    _TEX + "etex/base/etex_man.pdf",
    _TEX + "generic/ofs/eurotex2003-ofs.pdf",
    _TEX + "generic/tex-ps/cmyk-hax/cmyk-doc.pdf",
    _TEX + "plain/transparent-io/Transparent-IO-doc.pdf",
]
_WORD_EDGES = re.compile(r"^[^\w]+|[^\w]+$")
_LETTERS = re.compile(r"[A-Za-z]+")


def _pypdf(raw: bytes, max_pages: int, **options) -> list[str]:
    """Page texts from pypdf with these ``extract_text`` options."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(raw))
    return [page.extract_text(**options) or "" for page in reader.pages[:max_pages]]


def _pdfium(raw: bytes, max_pages: int) -> list[str]:
    """Page texts as ``read_pdf`` gets them from pdfium."""
    return pdfium_page_texts(raw, max_pages=max_pages)


EXTRACTORS: dict[str, Callable[[bytes, int], list[str]]] = {
    "pypdf plain": lambda raw, n: _pypdf(raw, n),
    "pypdf plain space_width=100": lambda raw, n: _pypdf(raw, n, space_width=100.0),
    "pypdf layout": lambda raw, n: _pypdf(raw, n, extraction_mode="layout"),
    "pypdfium2 (read_pdf)": _pdfium,
}


def load_dictionary() -> set[str]:
    """Lower-cased dictionary words (possessives dropped)."""
    return {w.strip().lower() for w in DICTIONARY.read_text(encoding="utf-8").splitlines() if "'" not in w}


def segments(word: str, words: set[str]) -> bool:
    """True when ``word`` is two or more dictionary words of three letters or more, run together."""
    reachable = [True] + [False] * len(word)
    for end in range(3, len(word) + 1):
        reachable[end] = any(reachable[cut] and word[cut:end] in words for cut in range(0, end - 2))
    return reachable[-1] and word not in words


def spacing_errors(text: str, words: set[str]) -> tuple[int, int, int, int]:
    """(words, run together, split apart, left broken at a line-end hyphen) in one extracted text."""
    tokens = [_WORD_EDGES.sub("", token) for token in text.split()]
    raw_tokens = [token for token, clean in zip(text.split(), tokens) if clean]
    tokens = [token for token in tokens if token]
    run_together = split_apart = hyphen_broken = 0
    for index, token in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else ""
        lower = token.lower()
        if raw_tokens[index].endswith("-") and _LETTERS.fullmatch(token) and _LETTERS.fullmatch(following):
            hyphen_broken += lower not in words and (lower + following.lower()) in words
            continue
        if not _LETTERS.fullmatch(token) or lower in words:
            continue
        if len(lower) >= 6 and segments(lower, words):
            run_together += 1
        elif _LETTERS.fullmatch(following) and following.lower() not in words and (lower + following.lower()) in words:
            split_apart += 1
    return len(tokens), run_together, split_apart, hyphen_broken


def damaged_copies(files: list[bytes], count: int, seed: int = 7) -> list[bytes]:
    """``count`` copies of the files with random bytes changed or the end cut off, reproducible by ``seed``."""
    rng = random.Random(seed)
    copies = []
    for number in range(count):
        raw = bytearray(files[number % len(files)])
        damage = number % 3
        if damage == 2:
            raw = raw[: rng.randrange(len(raw) // 10, len(raw))]
        for _ in range(0 if damage == 2 else 1 if damage == 0 else 10):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        copies.append(bytes(raw))
    return copies


def reads_words(extractor: Callable[[bytes, int], list[str]], raw: bytes, max_pages: int) -> bool:
    """True when the extractor gets at least one word out of the file."""
    try:
        return any(text.split() for text in extractor(raw, max_pages))
    except Exception:  # refusing a damaged file is an outcome here, not an error
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pdfs", nargs="*", type=Path)
    parser.add_argument("--max-pages", type=int, default=40, help="pages read from each file")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--damaged", type=int, default=0, help="damaged copies to try reading")
    args = parser.parse_args()
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    paths = args.pdfs or [Path(p) for p in SAMPLE if Path(p).exists()]
    if not DICTIONARY.exists():
        raise SystemExit(f"{DICTIONARY} is missing: apt-get install wamerican")
    words = load_dictionary()
    files = {path: path.read_bytes() for path in paths}
    print(f"{len(files)} PDFs, up to {args.max_pages} pages each, {args.rounds} rounds")
    print(
        f"{'extractor':28} {'words':>7} {'run together/1k':>15} {'split apart/1k':>14} {'hyphen-broken/1k':>16}"
        f" {'pages/s':>8} failures"
    )
    for name, extractor in EXTRACTORS.items():
        rates, failures, counts = [], [], [0, 0, 0, 0]
        for round_number in range(args.rounds):
            pages, started = 0, time.perf_counter()
            for path, raw in files.items():
                try:
                    texts = extractor(raw, args.max_pages)
                except Exception as exc:  # a failure is a result here, reported per file
                    if round_number == 0:
                        failures.append(f"{path.name}: {type(exc).__name__}")
                    continue
                pages += len(texts)
                if round_number == 0:
                    for text in texts:
                        counts = [a + b for a, b in zip(counts, spacing_errors(text, words))]
            rates.append(pages / (time.perf_counter() - started))
        total, joined, split, broken = (counts[0], *(1000 * n / max(counts[0], 1) for n in counts[1:]))
        print(
            f"{name:28} {total:7d} {joined:15.2f} {split:14.2f} {broken:16.2f}"
            f" {statistics.median(rates):8.1f} {len(failures)} {' '.join(failures)}"
        )
    if args.damaged:
        copies = damaged_copies(list(files.values()), args.damaged)
        print(f"damaged copies read (words out of {len(copies)}):")
        for name, extractor in EXTRACTORS.items():
            print(f"{name:28} {sum(reads_words(extractor, raw, args.max_pages) for raw in copies):7d}")


if __name__ == "__main__":
    main()
