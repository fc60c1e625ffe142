"""Checking quotes (qa/search/verify.py): a labelled set, thresholds tuned on one half, precision and recall on the
other, and the time per quote and per 10-sentence paragraph.

The labelled set is made at run time from the indexes themselves (through the service core, as qa.search.verify reads
them) and from two files:
  true quotes     random spans of 1-3 whole sentences of indexed documents            -> exact, that span
  dressed quotes  the same with curly quotes, line breaks, extra spaces, lower first letter -> exact, that span
  altered quotes  the same with 1-3 words changed, dropped or mistyped                  -> approximate, that span
  paraphrases     benchmarks/data/verify_seeds.jsonl, written by hand for the seeds    -> supported
  fabricated      the same file: claims the seeds do not make, about their people and institutions (on topic)
                  and about anything else (off topic)                                  -> not_found
  other documents sentences of documents in another index (--other-index)              -> not_found
  SciFact claims  BEIR SciFact claims with judged evidence documents (supported or contradicted: BEIR keeps no
                  label) -> supported; claims without any judged document -> not_found (generated here from
                  --scifact; nothing of SciFact is stored in the repository)
Items alternate between the tuning half (even positions in each group) and the reported half (odd). The support
model is a logistic regression over qa.search.verify.SUPPORT_FEATURES; --tune-only fits it and shows the verdicts on the
tuning half alone, for choosing features without looking at the reported half.

    python benchmarks/verify_quotes.py --seeds-index /tmp/verify-seeds --scifact-index /tmp/m-sf \\
        --other-index /tmp/m-docs2 [--big-index /tmp/hs/index-1000000] [--tune-only | --timing-only]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from qa.config import Settings
from qa.search import verify
from qa.search.service import SearchService
from qa.search.verify import APPROXIMATE_MIN_SIMILARITY, SUPPORT_FEATURES, SUPPORT_MODEL, SupportModel, Verifier
from qa.text.chunking import split_sentences
from qa.text.quotes import clean_quote

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "eval" / "public" / "scifact"
LABELLED = ROOT / "benchmarks" / "data" / "verify_seeds.jsonl"
FOUND = ("exact", "approximate")
WRAPPING = " \"'\u201c\u201d\u2018\u2019"


@dataclass
class Item:
    """One labelled text: what it should be judged, and for quotes the document span it was cut from."""

    group: str
    text: str
    expected: str
    source: str | None = None
    span: tuple[int, int] | None = None
    features: dict = field(default_factory=dict)
    original: str | None = None  # the document's text at ``span``


def sentence_spans_of(service: SearchService, rng: random.Random, count: int, min_words: int = 6) -> list[Item]:
    """``count`` random spans of 1-3 consecutive whole sentences from the index's passages."""
    chunk_count = service.manifest.counts["chunks"]
    items = []
    while len(items) < count:
        chunk = service.store.chunks([rng.randrange(1, chunk_count + 1)])
        if not chunk:
            continue
        chunk = next(iter(chunk.values()))
        sentences = split_sentences(chunk.text)
        long_enough = [i for i, s in enumerate(sentences) if len(chunk.text[s.start : s.end].split()) >= min_words]
        if not long_enough:
            continue
        first = rng.choice(long_enough)
        last = min(len(sentences) - 1, first + rng.randrange(3))
        start, end = chunk.start + sentences[first].start, chunk.start + sentences[last].end
        text = service.document(chunk.doc_id).text[start:end]
        if "\n\n" in text:
            continue
        items.append(Item("true quotes", text, "exact", chunk.doc_id, (start, end), original=text))
    return items


def dressed(item: Item, rng: random.Random) -> Item:
    """The quote as people paste it: typographic quotes, a line break or two, doubled spaces, lower first letter."""
    text = item.text.replace('"', "\u201d").replace("'", "\u2019").replace(" - ", " \u2014 ")
    words = text.split(" ")
    for _ in range(2):
        at = rng.randrange(len(words))
        words[at] = words[at] + rng.choice(["\n", "  "])
    text = " ".join(words)
    text = "\u201c" + (text[0].lower() + text[1:] if rng.random() < 0.5 else text) + "\u201d"
    return Item("dressed quotes", text, "exact", item.source, item.span, original=item.original)


def altered(item: Item, rng: random.Random, vocabulary: list[str]) -> Item:
    """1-3 words changed (replaced by another word, dropped, or mistyped); never the quote itself again."""
    while True:
        changed = _changed_words(item.text, rng, vocabulary)
        if clean_quote(changed).lower() != clean_quote(item.text).lower():
            return Item("altered quotes", changed, "approximate", item.source, item.span, original=item.original)


def _changed_words(text: str, rng: random.Random, vocabulary: list[str]) -> str:
    """``text`` with 1-3 words replaced, dropped or mistyped (letters swapped)."""
    words = text.split(" ")
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(words))
        kind = rng.choice(["replace", "drop", "typo"])
        if kind == "replace":
            words[at] = rng.choice(vocabulary)
        elif kind == "drop" and len(words) > 6:
            del words[at]
        elif len(words[at]) > 3:
            letters = list(words[at])
            i = rng.randrange(len(letters) - 1)
            letters[i], letters[i + 1] = letters[i + 1], letters[i]
            words[at] = "".join(letters)
        else:
            words[at] = words[at] + "s"
    return " ".join(words)


def quote_groups(service: SearchService, rng: random.Random, count: int) -> list[Item]:
    """True, dressed and altered quotes of one index's documents."""
    true = sentence_spans_of(service, rng, count)
    vocabulary = sorted({w for item in true for w in item.text.split() if w.isalpha() and len(w) > 3})
    return true + [dressed(item, rng) for item in true] + [altered(item, rng, vocabulary) for item in true]


def other_document_sentences(other: SearchService, rng: random.Random, count: int) -> list[Item]:
    """Sentences of documents in another index: statements the checked index does not hold."""
    items = sentence_spans_of(other, rng, count * 2, min_words=8)
    return [Item("other documents", item.text, "not_found") for item in items if "\n" not in item.text][:count]


def scifact_claims(count: int, rng: random.Random) -> list[Item]:
    """BEIR SciFact claims: with judged evidence documents (-> supported) and without any (-> not_found)."""
    judged = set()
    for name in ("qrels.tsv", "qrels_train.tsv"):
        for line in (SCIFACT / name).read_text().splitlines()[1:]:
            judged.add(line.split("\t")[0])
    claims = [json.loads(line) for line in (SCIFACT / "queries_all.jsonl").read_text().splitlines() if line.strip()]
    with_evidence = [c["text"] for c in claims if c["_id"] in judged]
    without = [c["text"] for c in claims if c["_id"] not in judged]
    rng.shuffle(with_evidence)
    rng.shuffle(without)
    return [Item("scifact claims with evidence", t, "supported") for t in with_evidence[:count]] + [
        Item("scifact claims without evidence", t, "not_found") for t in without[:count]
    ]


def handwritten() -> list[Item]:
    """The paraphrases and fabricated claims written for the seeds."""
    rows = [json.loads(line) for line in LABELLED.read_text().splitlines() if line.strip()]
    items = []
    for row in rows:
        if row["kind"] == "paraphrase":
            items.append(Item("paraphrases", row["text"], "supported"))
        else:
            items.append(Item(f"fabricated ({row['topic']} topic)", row["text"], "not_found"))
    return items


def halves(items: list[Item]) -> tuple[list[Item], list[Item]]:
    """Even positions within each group to tune on, odd ones to report on."""
    tune, report, seen = [], [], {}
    for item in items:
        position = seen.get(item.group, 0)
        seen[item.group] = position + 1
        (tune if position % 2 == 0 else report).append(item)
    return tune, report


def tune_similarity(items: list[Item]) -> float:
    """The lowest similarity that tells altered quotes from statements that are not quotes best (balanced)."""
    quotes = np.array([i.features["similarity"] for i in items if i.expected == "approximate"])
    others = np.array([i.features["similarity"] for i in items if i.expected in ("supported", "not_found")])
    best = max(
        np.arange(0.60, 0.96, 0.01),
        key=lambda t: (np.mean(quotes >= t) + np.mean(others < t), -t),
    )
    return round(float(best), 2)


def fit_support(
    items: list[Item], steps: int = 20000, rate: float = 0.5, l2: float = 1e-3, names: tuple = SUPPORT_FEATURES
) -> SupportModel:
    """Logistic regression of supported against not_found over the support features (``names``, by default
    ``SUPPORT_FEATURES``), groups balanced."""
    groups: dict[str, list[Item]] = {}
    for item in items:
        if item.expected in ("supported", "not_found"):
            groups.setdefault(item.group, []).append(item)
    largest = max(len(g) for g in groups.values())
    xs, ys = [], []
    for members in groups.values():
        x = np.array([[m.features[name] for name in names] for m in members])
        repeats = int(np.ceil(largest / len(x)))
        xs.append(np.tile(x, (repeats, 1))[:largest])
        ys.append(np.full(largest, 1.0 if members[0].expected == "supported" else 0.0))
    x, y = np.vstack(xs), np.concatenate(ys)
    design = np.hstack([x, np.ones((len(x), 1))])
    weights = np.zeros(design.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-design @ weights))
        weights -= rate * (design.T @ (p - y) / len(y) + l2 * np.r_[weights[:-1], 0])
    return SupportModel(tuple(round(float(w), 3) for w in weights[:-1]), round(float(weights[-1]), 3))


def verdict_of(features: dict, similarity: float, support: SupportModel) -> str:
    """The verdict on one piece from its features alone (what ``Verifier`` decides for a single sentence)."""
    if features["exact"]:
        return "exact"
    if features["similarity"] >= similarity:
        return "approximate"
    return "supported" if support.supports(support.confidence(features)) else "not_found"


def tuning_report(name: str, items: list[Item], similarity: float, support: SupportModel) -> None:
    """Verdicts from the features of the tuning half itself: for choosing features without the reported half."""
    print(f"\n{name}: tuning half, verdicts from features ({len(items)} items)")
    for group in dict.fromkeys(item.group for item in items):
        members = [i for i in items if i.group == group]
        hits = sum(verdict_of(i.features, similarity, support) == i.expected for i in members)
        print(f"{group:34s} {len(members):4d}  {members[0].expected:12s} {hits / len(members):11.3f}")


def right_span(item: Item, piece) -> bool:
    """Whether a quote was placed at the span it was cut from (exactly for exact; 90% overlap both ways for
    approximate, whose ends may differ by a changed word)."""
    start, end = item.span
    cut = item.original
    # Quotation marks around the whole quote are not part of what is quoted (qa.text.quotes.clean_quote).
    start += len(cut) - len(cut.lstrip(WRAPPING))
    end -= len(cut) - len(cut.rstrip(WRAPPING))
    for match in piece.matches:
        c = match.citation
        if c.source != item.source:
            continue
        if piece.verdict == "exact" and (c.start, c.end) == (start, end):
            return True
        # An altered quote that dropped its first or last word is an exact quote of the rest.
        if piece.verdict == "exact" and item.group == "altered quotes" and start <= c.start < c.end <= end:
            return True
        overlap = min(c.end, item.span[1]) - max(c.start, item.span[0])
        if piece.verdict == "approximate" and overlap >= 0.9 * max(c.end - c.start, item.span[1] - item.span[0]):
            return True
    return False


def report(name: str, verifier: Verifier, items: list[Item]) -> None:
    """Verdicts on the reported half: per group, and precision and recall of each verdict."""
    rows = []
    for item in items:
        result = verifier.verify(item.text)
        [piece] = result.pieces if len(result.pieces) == 1 else [min(result.pieces, key=lambda p: p.score)]
        rows.append((item, piece.verdict, item.span is not None and right_span(item, piece)))
    print(f"\n{name}: reported half ({len(items)} items)")
    print(f"{'group':34s} {'n':>4s}  {'expected':12s} {'as expected':>11s}  {'found, right span':>17s}  verdicts")
    for group in dict.fromkeys(item.group for item in items):
        members = [r for r in rows if r[0].group == group]
        expected = members[0][0].expected
        hits = sum(v == expected for _, v, _ in members)
        spans = sum(s for _, _, s in members)
        counts = {
            v: sum(1 for _, got, _ in members if got == v) for v in ("exact", "approximate", "supported", "not_found")
        }
        span_text = f"{spans / len(members):.3f}" if members[0][0].span else "-"
        print(f"{group:34s} {len(members):4d}  {expected:12s} {hits / len(members):11.3f}  {span_text:>17s}  {counts}")
    print(f"{'verdict':12s} {'precision':>9s} {'recall':>7s} {'n':>5s}")
    for verdict in ("exact", "approximate", "supported", "not_found"):
        said = [r for r in rows if r[1] == verdict]
        truth = [r for r in rows if r[0].expected == verdict]
        precision = sum(r[0].expected == verdict for r in said) / len(said) if said else float("nan")
        recall = sum(r[1] == verdict for r in truth) / len(truth) if truth else float("nan")
        print(f"{verdict:12s} {precision:9.3f} {recall:7.3f} {len(truth):5d}")
    quotes = [r for r in rows if r[0].span is not None]
    found = sum(r[1] in FOUND and r[2] for r in quotes)
    print(
        f"quotes (true, dressed, altered) found exact or approximate at the right span: {found}/{len(quotes)} "
        f"= {found / len(quotes):.3f}"
    )


def median_ms(call, texts: list[str], runs: int) -> float:
    """Median wall time of ``call(text)`` in milliseconds over ``runs`` passes over ``texts`` (first pass warms)."""
    for text in texts[:3]:
        call(text)
    times = []
    for _ in range(runs):
        for text in texts:
            started = time.perf_counter()
            call(text)
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def timings(name: str, service: SearchService, verifier: Verifier, runs: int) -> None:
    """Time per exact one-sentence quote and per 10-sentence paragraph (mixed verdicts)."""
    rng = random.Random(5)
    quotes = [i.text for i in sentence_spans_of(service, rng, 40) if len(split_sentences(i.text)) == 1][:20]
    print(
        f"\n{name}: exact one-sentence quote, median of {runs} x {len(quotes)}: "
        f"{median_ms(verifier.verify, quotes, runs):.1f} ms"
    )
    paragraphs = []
    for _ in range(5):
        pool = [i.text for i in sentence_spans_of(service, rng, 30) if len(split_sentences(i.text)) == 1]
        vocabulary = [w for t in pool for w in t.split() if w.isalpha()]
        sentences = pool[:6] + [altered(Item("", t, ""), rng, vocabulary).text for t in pool[6:8]]
        sentences += [i.text for i in handwritten() if i.group.startswith("fabricated")][:2]
        paragraphs.append(" ".join(s.rstrip(".") + "." for s in sentences))
    print(
        f"{name}: 10-sentence paragraph (6 exact, 2 altered, 2 fabricated), median of {runs} x 5: "
        f"{median_ms(verifier.verify, paragraphs, runs):.1f} ms"
    )


def labelled_sets(
    seeds_index: Path, scifact_index: Path, other_index: Path, per_group: int
) -> dict[str, tuple[SearchService, list[Item]]]:
    """The labelled items of each index, ``{"seeds": (service, items), "scifact": (service, items)}``, made the
    same way on every call (one seeded random generator, the groups in a fixed order)."""
    rng = random.Random(19)
    seeds = SearchService.open(Settings(index_dir=seeds_index))
    scifact = SearchService.open(Settings(index_dir=scifact_index), encoder=seeds.dense.encoder)
    other = SearchService.open(Settings(index_dir=other_index), encoder=seeds.dense.encoder)
    others = other_document_sentences(other, rng, per_group)
    return {
        "seeds": (seeds, quote_groups(seeds, rng, min(per_group, 100)) + handwritten() + others),
        "scifact": (
            scifact,
            quote_groups(scifact, rng, per_group)
            + scifact_claims(per_group, rng)
            + [i for i in handwritten() if i.group.startswith("fabricated")]
            + others,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds-index", type=Path, required=True)
    parser.add_argument("--scifact-index", type=Path, required=True)
    parser.add_argument("--other-index", type=Path, required=True, help="documents that are in neither index")
    parser.add_argument("--big-index", type=Path, default=None, help="an index to time exact quotes on (1M passages)")
    parser.add_argument("--per-group", type=int, default=200, help="generated items per group")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--big-only", action="store_true", help="only time exact quotes on --big-index")
    parser.add_argument(
        "--tune-only", action="store_true", help="fit, and show verdicts on the tuning half only (choosing features)"
    )
    parser.add_argument("--timing-only", action="store_true", help="only time quotes and paragraphs on --scifact-index")
    parser.add_argument(
        "--query-words", type=int, default=None, help="words of a quote asked of the keyword index (default: qa's)"
    )
    args = parser.parse_args()
    if args.query_words is not None:
        verify.KEYWORD_QUERY_WORDS = args.query_words
    if args.big_only:
        time_big_index(args.big_index, None, APPROXIMATE_MIN_SIMILARITY, SUPPORT_MODEL, args.runs)
        return
    if args.timing_only:
        scifact = SearchService.open(Settings(index_dir=args.scifact_index))
        timings("scifact (17,897 passages)", scifact, Verifier(scifact), args.runs)
        return
    sets = labelled_sets(args.seeds_index, args.scifact_index, args.other_index, args.per_group)
    seeds, scifact = sets["seeds"][0], sets["scifact"][0]
    tune_items = []
    for name, (service, items) in sets.items():
        probe = Verifier(service)
        for item in items:
            item.features = probe.features(item.text)
        tune, _ = halves(items)
        tune_items += [dataclass_copy(i, f"{name}: {i.group}") for i in tune]
    similarity = tune_similarity(tune_items)
    support = fit_support(tune_items)
    print(f"tuned on {len(tune_items)} items: APPROXIMATE_MIN_SIMILARITY = {similarity}; SUPPORT_MODEL = {support}")
    if args.tune_only:
        for name, (_, items) in sets.items():
            tuning_report(name, halves(items)[0], similarity, support)
        return
    for name, (service, items) in sets.items():
        _, held_out = halves(items)
        report(name, Verifier(service, min_similarity=similarity, support=support), held_out)
    timings(
        "scifact (17,897 passages)", scifact, Verifier(scifact, min_similarity=similarity, support=support), args.runs
    )
    if args.big_index is not None:
        time_big_index(args.big_index, seeds.dense.encoder, similarity, support, args.runs)


def time_big_index(index_dir: Path, encoder, similarity: float, support: SupportModel, runs: int) -> None:
    """Time exact one-sentence quotes on a big index (opening one of 1M passages takes a while and ~3 GB)."""
    big = SearchService.open(Settings(index_dir=index_dir), encoder=encoder)
    rng = random.Random(6)
    quotes = [i.text for i in sentence_spans_of(big, rng, 40) if len(split_sentences(i.text)) == 1][:20]
    verifier = Verifier(big, min_similarity=similarity, support=support)
    exact = [verifier.verify(q).verdict for q in quotes].count("exact")
    print(
        f"\n{index_dir} ({big.manifest.counts['chunks']:,} passages): exact one-sentence quote, median of {runs} x "
        f"{len(quotes)}: {median_ms(verifier.verify, quotes, runs):.1f} ms; {exact}/{len(quotes)} exact"
    )


def dataclass_copy(item: Item, group: str) -> Item:
    """The item under another group name (groups are balanced per index in the fit)."""
    return Item(group, item.text, item.expected, item.source, item.span, item.features, item.original)


if __name__ == "__main__":
    main()
