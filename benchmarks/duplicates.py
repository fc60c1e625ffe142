"""Which rule tells near-identical passages apart from merely similar ones: normalised-text equality, word-shingle
Jaccard or vector cosine, measured on a built index (e.g. of /usr/share/doc/git-doc, where option lists recur).

Prints, for each chunk's nearest neighbours by vector, how many pairs each rule calls duplicates, how the rules
overlap, sample pairs from the bands where they disagree, how many top-5 results each rule would collapse for
questions drawn from the corpus, and what grouping a top 100 costs.

    HF_HUB_OFFLINE=1 PYTHONPATH=. python benchmarks/duplicates.py --index /tmp/git-idx
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qa.config import Settings  # noqa: E402
from qa.index.manifest import DATABASE_FILE, VECTORS_FILE, Manifest  # noqa: E402
from qa.index.store import StoreReader  # noqa: E402
from qa.index.vectors import VectorIndex  # noqa: E402
from qa.search.duplicates import group_duplicates, jaccard, shingles  # noqa: E402
from qa.search.service import SearchService  # noqa: E402

NEIGHBOURS = 10
JACCARDS = (0.5, 0.6, 0.7, 0.8, 0.9)
COSINES = (0.9, 0.95, 0.97, 0.99)


def normalised(text: str) -> str:
    """Words only, case folded: what normalised-text equality compares."""
    return " ".join(re.findall(r"\w+", text.casefold()))


def neighbour_pairs(ids: np.ndarray, vectors: np.ndarray) -> list[tuple[int, int, float]]:
    """``(i, j, cosine)`` for each row and its nearest other rows (positions into ``ids``), each pair once."""
    pairs = {}
    for first in range(0, len(vectors), 1024):
        block = vectors[first : first + 1024] @ vectors.T
        for offset, row in enumerate(block):
            i = first + offset
            row[i] = -2.0
            for j in np.argpartition(-row, NEIGHBOURS)[:NEIGHBOURS]:
                pairs[(min(i, int(j)), max(i, int(j)))] = float(row[j])
    return [(i, j, c) for (i, j), c in pairs.items()]


def pair_figures(texts: list[str], sources: list[str], pairs: list[tuple[int, int, float]]) -> None:
    """How many neighbour pairs each rule calls duplicates, and pairs where the rules disagree."""
    sets = [shingles(t) for t in texts]
    scored = [(i, j, c, jaccard(sets[i], sets[j]), normalised(texts[i]) == normalised(texts[j])) for i, j, c in pairs]
    print(f"neighbour pairs: {len(scored)} ({len(texts)} passages, {NEIGHBOURS} nearest each)")
    print(f"  normalised text equal: {sum(e for *_, e in scored)}")
    for t in JACCARDS:
        hits = [s for s in scored if s[3] >= t]
        cross = sum(sources[i] != sources[j] for i, j, *_ in hits)
        print(f"  shingle Jaccard >= {t}: {len(hits)} ({cross} across documents)")
    for t in COSINES:
        hits = [s for s in scored if s[2] >= t]
        low = sum(s[3] < 0.5 for s in hits)
        print(f"  cosine >= {t}: {len(hits)} ({low} of them share less than half their shingles)")
    rng = random.Random(0)
    bands = {
        "cosine >= 0.95, Jaccard < 0.5 (similar, not the same text?)": [
            s for s in scored if s[2] >= 0.95 and s[3] < 0.5
        ],
        "Jaccard 0.6-0.8": [s for s in scored if 0.6 <= s[3] < 0.8],
        "Jaccard 0.8-0.9": [s for s in scored if 0.8 <= s[3] < 0.9],
    }
    for name, band in bands.items():
        print(f"\n== {name}: {len(band)} pairs; samples")
        for i, j, c, jac, _ in rng.sample(band, min(4, len(band))):
            print(f"-- cosine {c:.3f} Jaccard {jac:.2f}: {sources[i]} | {sources[j]}")
            print(f"   A: {' '.join(texts[i].split())[:240]}")
            print(f"   B: {' '.join(texts[j].split())[:240]}")


def collapsed_in_top5(service: SearchService, questions: list[str]) -> None:
    """Per rule: how many questions' top 5 (hybrid) hold a near-duplicate of a better-ranked result, and how many
    results such duplicates take up."""
    rules = {f"Jaccard >= {t}": ("jaccard", t) for t in JACCARDS}
    rules["normalised equal"] = ("equal", None)
    rules.update({f"cosine >= {t}": ("cosine", t) for t in COSINES})
    counts = {name: [0, 0] for name in rules}
    for question in questions:
        ranked = service.rank(question, 5, mode="hybrid").ranked
        ids = [i for i, _ in ranked]
        chunks = service.store.chunks(ids)
        hit_texts = [chunks[i].text for i in ids]
        vectors = service.dense.vectors.reconstruct(ids)
        sets = [shingles(t) for t in hit_texts]
        for name, (kind, t) in rules.items():
            repeated = 0
            for b in range(1, len(ids)):
                for a in range(b):
                    if kind == "jaccard":
                        same = jaccard(sets[a], sets[b]) >= t
                    elif kind == "equal":
                        same = normalised(hit_texts[a]) == normalised(hit_texts[b])
                    else:
                        same = float(vectors[a] @ vectors[b]) >= t
                    if same:
                        repeated += 1
                        break
            counts[name][0] += repeated > 0
            counts[name][1] += repeated
    print(f"\ntop 5 of {len(questions)} questions (hybrid): questions with a repeat / results that repeat a better one")
    for name, (questions_hit, results) in counts.items():
        print(f"  {name:18} {questions_hit:4} / {results}")


def filled(service: SearchService, questions: list[str]) -> None:
    """How often search still returns top_k distinct results after collapsing (it ranks deeper once when needed),
    and how many places the collapsed results name."""
    for top_k in (5, 10):
        answers = [service.search(question, top_k, highlights=False) for question in questions]
        short = sum(len(a.results) < top_k for a in answers)
        places = sum(len(hit.duplicates) for a in answers for hit in a.results)
        print(
            f"search top {top_k}: {short} of {len(answers)} questions got fewer than {top_k} results; "
            f"{places} duplicate places named"
        )


def grouping_cost(service: SearchService, questions: list[str]) -> None:
    """Median time of ``group_duplicates`` (the rule search uses) over each question's top 5, 10 and 100 passages."""
    for depth in (5, 10, 100):
        times = []
        for question in questions:
            ranked = service.rank(question, depth, mode="hybrid").ranked
            chunks = service.store.chunks([i for i, _ in ranked])
            texts = [chunks[i].text for i, _ in ranked]
            started = time.perf_counter()
            group_duplicates(texts)
            times.append((time.perf_counter() - started) * 1000)
        print(f"group_duplicates over a top {depth}: median {statistics.median(times):.2f} ms ({len(times)} questions)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=int, default=200, help="questions drawn from passage openings")
    args = parser.parse_args()
    Manifest.read(args.index)  # a clear error for a missing or foreign index before anything is read
    store = StoreReader(args.index / DATABASE_FILE)
    rows = list(store.iter_chunks())
    by_id = {chunk.id: chunk for chunk, _ in rows}
    index = VectorIndex.load(args.index / VECTORS_FILE)
    ids, vectors = index.ids, index.rows_at(np.arange(len(index)))
    texts = [by_id[int(i)].text for i in ids]
    sources = [by_id[int(i)].doc_id for i in ids]
    pair_figures(texts, sources, neighbour_pairs(ids, vectors))
    rng = random.Random(1)
    openings = [" ".join(t.split()[:8]) for t in rng.sample(texts, min(args.questions, len(texts)))]
    service = SearchService.open(Settings(index_dir=args.index))
    collapsed_in_top5(service, openings)
    print()
    filled(service, openings)
    grouping_cost(service, openings[:50])


if __name__ == "__main__":
    main()
