"""Deterministic synthetic corpus: N plain-text documents of varied, prose-like sentences.

    python benchmarks/corpus.py OUT_DIR --chunks 20000 [--seed 7] [--chunk-tokens 128 --overlap 24]
    python benchmarks/corpus.py OUT_DIR --documents 200 [--words 1400]

Standard library only, so the peer's interpreter can run it too. The same seed and sizes give the same
files byte for byte. Each document opens with a metadata line (date, author, source) and a title, then
paragraphs of sentences assembled from templates and word lists (civic and technical vocabulary, names,
places, numbers), so passages differ in wording and length the way news prose does.

``--chunks N`` sizes the corpus so that `qa index` with ``--chunk-tokens``/``--overlap`` (the defaults are
qa's) cuts it into about N passages (within a few per cent). The exact count is whatever `qa index` reports.
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import date, timedelta
from pathlib import Path

# The all-MiniLM-L6-v2 tokenizer counts 1.18 tokens per word of this prose; passages end at sentence
# boundaries, so each adds fewer new tokens than chunk size minus overlap. 1.3 absorbs both: --chunks 2000
# gives 1,932 passages with qa's defaults.
TOKENS_PER_WORD = 1.3
WORDS_PER_DOCUMENT = 1400

SUBJECTS = [
    "The provincial court",
    "The city council",
    "A regional planning office",
    "The national statistics bureau",
    "The harbour authority",
    "A group of university researchers",
    "The water utility",
    "The school board",
    "The procurement committee",
    "An independent auditor",
    "The transport ministry",
    "The public health agency",
    "A coalition of farmers",
    "The energy regulator",
    "The museum trustees",
    "The fire service",
    "The railway operator",
    "A panel of judges",
    "The housing cooperative",
    "The customs office",
]
VERBS = [
    "approved",
    "reviewed",
    "published",
    "postponed",
    "questioned",
    "extended",
    "revised",
    "announced",
    "funded",
    "suspended",
    "examined",
    "endorsed",
    "rejected",
    "simplified",
    "expanded",
    "audited",
]
OBJECTS = [
    "a plan to rebuild the northern bridge",
    "new rules for seasonal workers",
    "the budget for rural clinics",
    "a report on groundwater quality",
    "the tender for electric buses",
    "guidelines on data retention",
    "a pilot programme for flood warnings",
    "the schedule of the coastal ferry",
    "a survey of small businesses",
    "the contract for street lighting",
    "measures against late payments",
    "a review of school meals",
    "the pension reform proposal",
    "standards for wooden buildings",
    "a fund for vocational training",
    "limits on night-time freight",
    "the catalogue of protected wetlands",
    "a study of commuter habits",
]
REASONS = [
    "after months of public consultation",
    "because costs rose faster than expected",
    "following complaints from residents",
    "to meet the deadline set by parliament",
    "once the engineers had finished their inspection",
    "despite objections from two members",
    "as part of a wider modernisation effort",
    "after an audit found gaps in the records",
    "in response to the drought of the previous summer",
    "to reduce waiting times at the border",
]
CONNECTIVES = [
    "Meanwhile",
    "However",
    "In addition",
    "As a result",
    "By contrast",
    "Earlier this year",
    "According to the minutes",
    "At the same time",
    "In practice",
    "For the first time",
]
FIRST = ["Anna", "Tomas", "Li Wei", "Fatima", "Jonas", "Maria", "Kenji", "Amara", "Pavel", "Sofia", "Diego", "Ingrid"]
LAST = ["Keller", "Novak", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Haddad", "Costa", "Brennan", "Zhou", "Ivanova"]
PLACES = ["Riverton", "Kestrel Bay", "Old Harbour", "Millbrook", "Stonefield", "Ashgrove", "Northgate", "Lowmoor"]
UNITS = ["per cent", "million euros", "kilometres", "households", "hectares", "tonnes", "days", "applications"]
ADJECTIVES = ["modest", "sharp", "steady", "unexpected", "gradual", "significant", "temporary", "lasting"]
CHANGES = ["increase", "decline", "improvement", "delay", "shift", "reduction", "recovery", "surge"]
SOURCES = ["Civic Gazette", "Regional Review", "Harbour Times", "Open Records Office", "Evening Ledger"]


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def sentence(rng: random.Random) -> str:
    """One sentence from one of several templates."""
    kind = rng.randrange(6)
    if kind == 0:
        return f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(REASONS)}."
    if kind == 1:
        return (
            f"{rng.choice(CONNECTIVES)}, officials in {rng.choice(PLACES)} reported a {rng.choice(ADJECTIVES)} "
            f"{rng.choice(CHANGES)} of {rng.randint(2, 950)} {rng.choice(UNITS)} "
            f"compared with {rng.randint(2015, 2025)}."
        )
    if kind == 2:
        return (
            f'"We {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(REASONS)}," said {person(rng)}, '
            f"who has worked on the file since {rng.randint(2008, 2024)}."
        )
    if kind == 3:
        return (
            f"{rng.choice(SUBJECTS)} said that {rng.choice(OBJECTS)} would take effect in {rng.choice(PLACES)} "
            f"within {rng.randint(2, 36)} months, and that a {rng.choice(ADJECTIVES)} {rng.choice(CHANGES)} was likely."
        )
    if kind == 4:
        return (
            f"{rng.choice(CONNECTIVES)}, {person(rng)} asked whether {rng.choice(OBJECTS)} had been "
            f"{rng.choice(VERBS)} {rng.choice(REASONS)}."
        )
    return (
        f"The figures show {rng.randint(2, 99)} {rng.choice(UNITS)} in {rng.choice(PLACES)} and "
        f"{rng.randint(2, 99)} in {rng.choice(PLACES)}, a {rng.choice(ADJECTIVES)} {rng.choice(CHANGES)}."
    )


def document(rng: random.Random, number: int, words: int) -> str:
    """One document of about ``words`` words: metadata line, title, paragraphs."""
    day = date(2015, 1, 1) + timedelta(days=rng.randrange(3650))
    title = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} ({number})"
    lines = [f"Time: {day.isoformat()} Author: {person(rng)} Source: {rng.choice(SOURCES)}", title, ""]
    count = 0
    while count < words:
        paragraph = " ".join(sentence(rng) for _ in range(rng.randint(3, 8)))
        count += len(paragraph.split())
        lines += [paragraph, ""]
    return "\n".join(lines)


def documents_for(chunks: int, chunk_tokens: int, overlap: int, words_per_document: int) -> int:
    """How many documents of ``words_per_document`` words make about ``chunks`` passages."""
    per_document = words_per_document * TOKENS_PER_WORD / max(1, chunk_tokens - overlap)
    return max(1, round(chunks / per_document))


def generate(out: Path, *, documents: int, words: int, seed: int) -> list[Path]:
    """Write ``documents`` files into ``out``, replacing any ``doc_*.txt`` already there."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("doc_*.txt"):  # a smaller corpus must not keep a larger one's extra files
        stale.unlink()
    rng = random.Random(seed)
    paths = []
    for number in range(documents):
        path = out / f"doc_{number:06d}.txt"
        path.write_text(document(rng, number, words), encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--chunks", type=int, help="Target number of passages at --chunk-tokens/--overlap.")
    size.add_argument("--documents", type=int, help="Exact number of documents.")
    parser.add_argument("--words", type=int, default=WORDS_PER_DOCUMENT, help="Words per document (about).")
    parser.add_argument("--chunk-tokens", type=int, default=128)
    parser.add_argument("--overlap", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    n = args.documents or documents_for(args.chunks, args.chunk_tokens, args.overlap, args.words)
    paths = generate(args.out, documents=n, words=args.words, seed=args.seed)
    total = sum(len(p.read_text(encoding="utf-8").split()) for p in paths)
    print(f"wrote {len(paths)} documents, {total} words, to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
