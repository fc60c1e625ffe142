"""Pseudo-relevance feedback on labelled questions: one row of figures per variant, against no feedback.

    python benchmarks/feedback_quality.py --corpus /tmp/docs-corpus --index DIR [--mode hybrid]
        [--questions benchmarks/data/docs_questions.jsonl] [--variants none rocchio:m=3:beta=0.5 ...]
    python benchmarks/feedback_quality.py --corpus /tmp/docs-corpus --index DIR --latency 5

``--latency ROUNDS`` times instead whole searches (``SearchService.search``, top 5 with supporting sentences,
in-process) with keyword feedback off and at weight 1, alternating question by question for ROUNDS
rounds, and prints each side's median and their ratio.

The index must already be built from the corpus with the default settings (``benchmarks/docs_quality.py
--index DIR`` builds it). Every variant ranks with the same opened index and model, through the search
service's own first stage with one step added, and is scored as ``qa eval`` scores question sets
(``qa.eval.evaluate.run_queries``): passage hit@1/3/5, MRR@10 and page hit@5, then how many questions' passage rank
moved up and down against the first variant. The variants (m: how many of the first ranking's best
passages feed back; the keyword side and the fusion are otherwise as without feedback):

- ``none``: the search without feedback (``QA_KEYWORD_FEEDBACK=0``), which every other variant starts from.
- ``rocchio:m=M:beta=B``: dense Rocchio feedback. The question's vector becomes
  ``normalise(q + B * mean(vectors of the first ranking's top M))``; the dense side is searched again with it,
  and fused with the unchanged keyword candidates as before.
- ``rocchio-mix:m=M:beta=B``: the same second ranking, its fused scores averaged with the first ranking's
  (a candidate missing from one ranking takes that ranking's lowest score there).
- ``rm3:m=M:t=T:lam=L[:idf=0]``: keyword feedback in the manner of RM3. The T stems weighted highest over
  the first ranking's top M passages (term frequency over passage length, times the corpus IDF unless idf=0,
  times the passage's fused score), other than the question's own, are a second BM25 query; its scores,
  scaled so its best equals L times the question's best BM25 score, are added to the keyword side, which is
  fused again.
- ``qa``: the search service as configured (``QA_KEYWORD_FEEDBACK``, 1 by default), to check the shipped
  keyword feedback against the variant it came from (``rm3:m=1:t=5:lam=1.0:idf=0``), which it equals wherever
  the best passage is under a heading (the shipped feedback reads no other passage).
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "benchmarks" / "data" / "docs_questions.jsonl"
_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)


@dataclass(frozen=True)
class Variant:
    """A feedback variant: its kind and parameters, parsed from ``kind:key=value:...``."""

    name: str
    kind: str
    m: int = 3
    beta: float = 0.5
    t: int = 5
    lam: float = 0.3
    idf: int = 1

    @classmethod
    def parse(cls, text: str) -> "Variant":
        """A variant from its command-line form."""
        kind, *pairs = text.split(":")
        if kind not in ("none", "qa", "rocchio", "rocchio-mix", "rm3"):
            raise SystemExit(f"unknown variant kind {kind!r}")
        values = dict(pair.split("=", 1) for pair in pairs)
        kinds = {"m": int, "beta": float, "t": int, "lam": float, "idf": int}
        return cls(text, kind, **{key: kinds[key](value) for key, value in values.items()})


def unit(vector: np.ndarray) -> np.ndarray:
    """``vector`` scaled to length 1."""
    return vector / np.linalg.norm(vector)


def rocchio_query(service, query: np.ndarray, ranked: list[tuple[int, float]], m: int, beta: float) -> np.ndarray:
    """The question's vector moved towards the mean vector of the ``m`` best passages of ``ranked``."""
    top = [chunk_id for chunk_id, _ in ranked[:m]]
    if not top:
        return query
    centroid = np.asarray(service.dense.vectors.reconstruct(top), dtype=np.float32).mean(axis=0)
    return unit(query + beta * centroid).astype(np.float32)


def mixed(first: list[tuple[int, float]], second: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """The mean of two rankings' scores per candidate (a missing one takes that ranking's lowest), best first."""
    a, b = dict(first), dict(second)
    floor_a, floor_b = min(a.values(), default=0.0), min(b.values(), default=0.0)
    scores = {i: (a.get(i, floor_a) + b.get(i, floor_b)) / 2 for i in set(a) | set(b)}
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


def expansion_words(
    service, question: str, ranked: list[tuple[int, float]], m: int, t: int, use_idf: bool = True
) -> list[str]:
    """The ``t`` words (one surface form per stem) weighted highest over the ``m`` best passages, RM3-style
    (without ``use_idf``, by term frequency alone, as RM3 proper weighs them)."""
    from qa.search.keyword import STOPWORDS, query_terms

    top = ranked[:m]
    if not top:
        return []
    postings = service.keyword.postings
    tokenizer = service.keyword.tokenizer
    asked = {token for tokens in tokenizer.tokens(query_terms(question)) for token in tokens}
    chunks = service.store.chunks([chunk_id for chunk_id, _ in top])
    weights: Counter = Counter()
    surface: dict[str, str] = {}
    for chunk_id, score in top:
        words = [w.lower() for w in _WORD.findall(chunks[chunk_id].text) if w.lower() not in STOPWORDS]
        if not words:
            continue
        stems = [tokens[0] for tokens in tokenizer.tokens(words) if tokens]
        counts = Counter(stems)
        for word, stem in zip(words, stems):
            surface.setdefault(stem, word)
        for stem, count in counts.items():
            if stem in asked:
                continue
            idf = 1.0
            if use_idf:
                frequency = len(postings.postings(stem)[0])
                idf = math.log((postings.n_rows - frequency + 0.5) / (frequency + 0.5)) if frequency else 0.0
            weights[stem] += max(score, 0.0) * count / len(stems) * max(idf, 0.0)
    return [surface[stem] for stem, _ in weights.most_common(t)]


def with_expansion(
    keyword: list[tuple[int, float]], expanded: list[tuple[int, float]], lam: float
) -> list[tuple[int, float]]:
    """The keyword candidates with the expansion query's scores added, scaled to ``lam`` of the question's best."""
    if not expanded:
        return keyword
    best = keyword[0][1] if keyword else expanded[0][1]
    scale = lam * best / expanded[0][1]
    scores = dict(keyword)
    for chunk_id, score in expanded:
        scores[chunk_id] = scores.get(chunk_id, 0.0) + scale * score
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


def variant_first_stage(variant: Variant, original):
    """A replacement for ``SearchService._first_stage`` that adds ``variant``'s feedback step."""
    from qa.search.service import Ranking

    def first_stage(self, question, top_k, mode, allowed, query=None):
        if variant.kind in ("none", "qa") or mode == "keyword":
            return original(self, question, top_k, mode, allowed, query)
        depth = self._depth(mode, top_k)
        if query is None:
            query = self.dense.embed(question)
        dense = self.dense.retrieve(query, depth, allowed)
        keyword = self.keyword.retrieve(question, depth, allowed) if mode == "hybrid" else []
        fused, cosines = self._fuse(query, dense, keyword, {}) if mode == "hybrid" else (dense, dict(dense))
        if variant.kind == "rm3":
            if mode != "hybrid":
                return Ranking(fused, query, cosines)
            words = expansion_words(self, question, fused, variant.m, variant.t, bool(variant.idf))
            expanded = self.keyword.retrieve(" ".join(words), depth, allowed) if words else []
            again, _ = self._fuse(query, dense, with_expansion(keyword, expanded, variant.lam), {})
            return Ranking(again, query, cosines)
        moved = rocchio_query(self, query, fused, variant.m, variant.beta)
        dense2 = self.dense.retrieve(moved, depth, allowed)
        again = self._fuse(moved, dense2, keyword, {})[0] if mode == "hybrid" else dense2
        if variant.kind == "rocchio-mix":
            again = mixed(fused, again)
        # Confidence stays calibrated on the question's own vector and cosines.
        return Ranking(again, query, cosines)

    return first_stage


def passage_ranks(report) -> dict[str, int | None]:
    """Each question's first answering passage rank (None: not in the ranking)."""
    from qa.eval.evaluate import PHRASE_MATCH

    return {
        qid: next((rank for rank, entry in enumerate(run, 1) if entry == PHRASE_MATCH), None)
        for qid, run in report.runs.items()
    }


def moved(before: dict[str, int | None], after: dict[str, int | None]) -> tuple[int, int, int, int]:
    """(questions ranked better, ranked worse, come into the top 5, gone out of it) from ``before`` to ``after``."""
    missing = float("inf")
    better = sum(1 for q in before if (after[q] or missing) < (before[q] or missing))
    worse = sum(1 for q in before if (after[q] or missing) > (before[q] or missing))
    came = sum(1 for q in before if (after[q] or missing) <= 5 < (before[q] or missing))
    went = sum(1 for q in before if (before[q] or missing) <= 5 < (after[q] or missing))
    return better, worse, came, went


def alternating_medians(
    service, questions: list[str], rounds: int, sides: dict[str, Callable[[], None]]
) -> dict[str, float]:
    """Median ms of ``service.search`` (top 5) under each of ``sides`` (name -> a call that sets the service up so),
    taking turns question by question so that every side meets the same load."""
    timings: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for question in questions:
            for name, set_up in sides.items():
                set_up()
                started = time.perf_counter()
                service.search(question, 5)
                timings[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(times) for name, times in timings.items()}


def latency(service, questions: list[str], rounds: int) -> tuple[float, float]:
    """Median ms of ``service.search`` (top 5) without and with keyword feedback, the two alternating per question."""
    settings = {weight: replace(service.settings, keyword_feedback=weight) for weight in (0.0, 1.0)}
    medians = alternating_medians(
        service,
        questions,
        rounds,
        {
            "off": lambda: setattr(service, "settings", settings[0.0]),
            "on": lambda: setattr(service, "settings", settings[1.0]),
        },
    )
    return medians["off"], medians["on"]


def open_labelled(index: Path, questions: Path, corpus: Path):
    """The search service over ``index`` (settings from the environment, results as deep as `qa eval` scores) and
    the labelled questions over ``corpus``."""
    from qa.config import Settings
    from qa.eval.datasets import load_dataset
    from qa.eval.evaluate import BEIR_PASSAGES
    from qa.search.service import SearchService

    service = SearchService.open(replace(Settings.from_env(), index_dir=index, max_top_k=BEIR_PASSAGES))
    return service, load_dataset(questions, corpus=corpus)


def scored(report, baseline: dict[str, int | None] | None) -> tuple[dict[str, int | None], str]:
    """A run's passage ranks, and its figures as a table row: hit@1/3/5, MRR@10, page hit@5, and the questions
    ranked better/worse and come into/gone out of the top 5 against ``baseline`` (the first run's ranks if None)."""
    ranks = passage_ranks(report)
    better, worse, came, went = moved(baseline or ranks, ranks)
    figures = report.questions
    return ranks, (
        f"{figures.hit_at_1:.3f}  {figures.hit_at_3:.3f}  {report.metrics.hit_at_5:.3f}  "
        f"{report.metrics.mrr_at_10:.3f}   {figures.doc_hit_at_5:.3f}   {better:>3} / {worse:<3}     "
        f"{came:>2} / {went:<2}"
    )


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: score each variant on one opened index and print a row for each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--index", type=Path, required=True, help="an index of the corpus, default settings")
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--mode", default="hybrid", choices=["hybrid", "dense"])
    parser.add_argument("--variants", nargs="+", default=["none", "rocchio:m=3:beta=0.5"])
    parser.add_argument("--latency", type=int, default=0, metavar="ROUNDS", help="time searches off and on instead")
    args = parser.parse_args(argv)
    from qa.eval.evaluate import run_queries
    from qa.search.service import SearchService

    service, dataset = open_labelled(args.index, args.questions, args.corpus)
    settings = service.settings
    if args.latency:
        off, on = latency(service, [query.text for query in dataset.queries], args.latency)
        print(
            f"{len(dataset.queries)} questions x {args.latency} rounds: search median without feedback {off:.2f} ms, "
            f"with {on:.2f} ms, ratio {on / off:.3f}"
        )
        return 0
    original = SearchService._first_stage
    baseline = None
    print("variant                     hit@1  hit@3  hit@5  MRR@10  page@5  better/worse  top 5 +/-  median ms")
    without_feedback = replace(service.settings, keyword_feedback=0.0)
    for text in args.variants:
        variant = Variant.parse(text)
        service.settings = settings if variant.kind == "qa" else without_feedback
        SearchService._first_stage = variant_first_stage(variant, original)
        started = time.perf_counter()
        report = run_queries(dataset, service, args.mode)
        elapsed = time.perf_counter() - started
        ranks, row = scored(report, baseline)
        baseline = baseline or ranks
        print(f"{variant.name:26}  {row}     {report.latency_median_ms:.1f}  ({elapsed:.0f} s)", flush=True)
    SearchService._first_stage = original
    return 0


if __name__ == "__main__":
    sys.exit(main())
