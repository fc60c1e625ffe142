"""Ranking steps after fusion, replayed on labelled questions: one row of figures per variant, against the first.

    python benchmarks/ranking_replay.py --corpus /tmp/docs-corpus --index DIR
        [--questions benchmarks/data/docs_questions.jsonl] [--variants qa heading:w=0.1 page:agg=sum:w=0.1 ...]
    python benchmarks/ranking_replay.py --corpus /tmp/docs-corpus --index DIR --misses
    python benchmarks/ranking_replay.py --corpus /tmp/docs-corpus --index DIR --latency 5

The index must already be built from the corpus with the default settings (``benchmarks/docs_quality.py
--index DIR`` builds it). The retrievers' answers (the question's vector, the dense and keyword candidates,
cosines and best-sentence cosines) are computed once per question and call, and replayed for every variant, so
a variant costs only its own step, the fusion and the scoring. Each variant is the search service as configured
with one step changed, scored as ``qa eval`` scores question sets (``qa.eval.evaluate.run_queries``): passage
hit@1/3/5, MRR@10, page hit@5, then how many questions' passage rank moved up and down against the first variant,
and came into / went out of its top 5. Variants (``kind:key=value:...``; several kinds joined by ``+`` apply
together, in the order written):

- ``qa``: the search service as configured (today's defaults, or the environment's ``QA_*`` settings).
- ``lead:w=W``: the section lead at weight W instead of the configured one (0 turns it off).
- ``anylead``: the section lead goes to every section's first passage, however short (as before round four).
- ``nofeedback``: keyword feedback off.
- ``dfcap:share=S``: keyword feedback leaves out words found in more than a share S of all passages (the
  corpus' own generic words: "use", "example", "following"), before taking the five most frequent.
- ``feedidf``: keyword feedback takes the five words with the highest term frequency times IDF instead.
- ``heading:w=W[:part=path|last][:idf=1]``: each candidate under a heading gains W times the share of the
  question's terms (by stem; weighted by IDF with idf=1) that its section path (``part=last``: its last
  heading only) contains.
- ``page:agg=sum|max|count:w=W[:top=N]``: each candidate gains W times its document's strength among the first
  N fused candidates (default 20): the sum of their positive fused scores, their best, or how many there are,
  scaled so the strongest document's is 1.
- ``early:w=W[:top=N][:decay=first|harmonic]``: among the first N fused candidates (default 20) of each document
  with headings (one of its candidates has a section), the one that comes first in the document gains W
  (``decay=harmonic``: the i-th in document order gains W / i).
- ``short:n=N:w=W[:scale=1]``: each candidate under a heading with fewer than N words loses W (``scale=1``: loses
  W times the share of the N words it lacks; ``leads=1``: section leads only).
- ``doclead:w=W``: the first passage of a document with headings gains W when it has no section (it runs from
  the page's title into the first heading) and states something, as a section's first passage does.
``--misses`` prints instead, for each question whose page ranks first but whose labelled passage is not in the
top 5, the first passage and the labelled one's rank, section and opening words (the miss analysis).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
QUESTIONS = ROOT / "benchmarks" / "data" / "docs_questions.jsonl"
_WORD = re.compile(r"[^\W\d_]{3,}")
# The variant kinds: those that change settings or qa's lead rule, the feedback words, or the fused ranking.
SETTING_KINDS = ("lead", "nofeedback", "anylead")
FEEDBACK_KINDS = ("dfcap", "feedidf")
RANKING_KINDS = ("heading", "page", "early", "short", "doclead")
# qa's own functions that a variant replaces, kept to put back for the next variant.
_ORIGINAL: dict = {}


@dataclass
class Step:
    """One ranking change: its kind and parameters, parsed from ``kind:key=value:...``."""

    kind: str
    values: dict[str, str] = field(default_factory=dict)

    def number(self, key: str, default: float) -> float:
        """A numeric parameter."""
        return float(self.values.get(key, default))

    @classmethod
    def parse(cls, text: str) -> "Step":
        """A step from its command-line form."""
        kind, *pairs = text.split(":")
        if kind not in SETTING_KINDS + FEEDBACK_KINDS + RANKING_KINDS + ("qa",):
            raise SystemExit(f"unknown variant kind {kind!r}")
        return cls(kind, dict(pair.split("=", 1) for pair in pairs))


def memoised(call, key):
    """``call`` remembering its answers by ``key(*args)``."""
    answers: dict = {}

    def remembered(*args):
        found = key(*args)
        if found not in answers:
            answers[found] = call(*args)
        return answers[found]

    return remembered


def per_id_memo(call):
    """``call(query, ids) -> {id: value}`` remembering each id's value per query vector."""
    known: dict[bytes, dict[int, float]] = {}

    def remembered(query, ids):
        seen = known.setdefault(np.asarray(query).tobytes(), {})
        missing = [i for i in ids if i not in seen]
        if missing:
            seen.update(call(query, missing))
        return {i: seen[i] for i in ids if i in seen}

    return remembered


def replaying(service) -> None:
    """Make the service's retrievers answer each distinct call once (the same answers every variant gets)."""
    allowed_key = lambda allowed: None if allowed is None else np.asarray(allowed).tobytes()  # noqa: E731
    service.dense.embed = memoised(service.dense.embed, lambda question: question)
    service.dense.retrieve = memoised(
        service.dense.retrieve, lambda query, k, allowed=None: (query.tobytes(), k, allowed_key(allowed))
    )
    service.keyword.retrieve = memoised(
        service.keyword.retrieve, lambda question, k, allowed=None: (question, k, allowed_key(allowed))
    )
    service.dense.similarity = per_id_memo(service.dense.similarity)
    service.sentences.best = per_id_memo(service.sentences.best)


class Corpus:
    """What the steps read of the index: passages' documents and sections, and terms' document frequencies."""

    def __init__(self, service) -> None:
        self.service = service
        self.postings = service.keyword.postings
        self.tokenizer = service.keyword.tokenizer
        self._chunks: dict = {}
        self._stems: dict[str, tuple[str, ...]] = {}

    def chunks(self, ids):
        """Stored chunks by id (read once)."""
        missing = [i for i in ids if i not in self._chunks]
        if missing:
            self._chunks.update(self.service.store.chunks(missing))
        return {i: self._chunks[i] for i in ids if i in self._chunks}

    def stems(self, text: str) -> set[str]:
        """The stems of ``text``'s query terms (as the keyword index tokenizes them)."""
        from qa.search.keyword import query_terms

        if text not in self._stems:
            self._stems[text] = tuple(t for ts in self.tokenizer.tokens(query_terms(text)) for t in ts)
        return set(self._stems[text])

    def idf(self, stem: str) -> float:
        """BM25's IDF of a stem over all passages (0 for an unknown one)."""
        frequency = len(self.postings.postings(stem)[0])
        if not frequency:
            return 0.0
        return max(math.log((self.postings.n_rows - frequency + 0.5) / (frequency + 0.5)), 0.0)

    def share(self, stem: str) -> float:
        """The share of all passages holding ``stem``."""
        return len(self.postings.postings(stem)[0]) / max(self.postings.n_rows, 1)


def heading_step(corpus: Corpus, question: str, fused, step: Step):
    """``fused`` with the heading bonus of ``step`` added (see the module docstring)."""
    weight, use_idf, last = step.number("w", 0.1), step.values.get("idf") == "1", step.values.get("part") == "last"
    asked = corpus.stems(question)
    if not asked:
        return fused
    weigh = corpus.idf if use_idf else (lambda stem: 1.0)
    total = sum(weigh(stem) for stem in asked) or 1.0
    chunks = corpus.chunks([chunk_id for chunk_id, _ in fused])
    scored = []
    for chunk_id, score in fused:
        section = chunks[chunk_id].section if chunk_id in chunks else None
        if section:
            heading = section.split(" › ")[-1] if last else section
            score += weight * sum(weigh(stem) for stem in asked & corpus.stems(heading)) / total
        scored.append((chunk_id, score))
    return sorted(scored, key=lambda pair: (-pair[1], pair[0]))


def page_step(corpus: Corpus, fused, step: Step):
    """``fused`` with the page prior of ``step`` added (see the module docstring)."""
    weight, top, how = step.number("w", 0.1), int(step.number("top", 20)), step.values.get("agg", "sum")
    head = fused[:top]
    chunks = corpus.chunks([chunk_id for chunk_id, _ in fused])
    strength: dict[int, float] = {}
    for chunk_id, score in head:
        row = chunks[chunk_id].document_row
        value = {"sum": max(score, 0.0), "max": score, "count": 1.0}[how]
        strength[row] = max(strength.get(row, value), value) if how == "max" else strength.get(row, 0.0) + value
    best = max(strength.values(), default=0.0)
    if best <= 0:
        return fused
    scored = [(i, score + weight * strength.get(chunks[i].document_row, 0.0) / best) for i, score in fused]
    return sorted(scored, key=lambda pair: (-pair[1], pair[0]))


def early_step(corpus: Corpus, fused, step: Step):
    """``fused`` with the early-passage bonus of ``step`` added (see the module docstring)."""
    weight, top, harmonic = step.number("w", 0.1), int(step.number("top", 20)), step.values.get("decay") == "harmonic"
    chunks = corpus.chunks([chunk_id for chunk_id, _ in fused])
    by_document: dict[str, list] = {}
    for chunk_id, _ in fused[:top]:
        by_document.setdefault(chunks[chunk_id].doc_id, []).append(chunks[chunk_id])
    bonus: dict[int, float] = {}
    for passages in by_document.values():
        if not any(passage.section for passage in passages):
            continue
        passages.sort(key=lambda passage: passage.start)
        for place, passage in enumerate(passages[: None if harmonic else 1], 1):
            bonus[passage.id] = weight / place
    scored = [(chunk_id, score + bonus.get(chunk_id, 0.0)) for chunk_id, score in fused]
    return sorted(scored, key=lambda pair: (-pair[1], pair[0]))


def short_step(corpus: Corpus, fused, step: Step):
    """``fused`` with the short-passage penalty of ``step`` taken off (see the module docstring)."""
    least, weight, scaled = step.number("n", 10), step.number("w", 0.2), step.values.get("scale") == "1"
    chunks = corpus.chunks([chunk_id for chunk_id, _ in fused])
    leads = corpus.service.store.section_leads(list(chunks)) if step.values.get("leads") == "1" else None
    scored = []
    for chunk_id, score in fused:
        chunk = chunks[chunk_id]
        words = len(chunk.text.split())
        if chunk.section and words < least and (leads is None or chunk_id in leads):
            score -= weight * ((least - words) / least if scaled else 1.0)
        scored.append((chunk_id, score))
    return sorted(scored, key=lambda pair: (-pair[1], pair[0]))


def doclead_step(corpus: Corpus, fused, step: Step):
    """``fused`` with the document-lead bonus of ``step`` added (see the module docstring)."""
    from qa.search.service import states_something

    ids = [chunk_id for chunk_id, _ in fused]
    marks = ",".join("?" * len(ids))
    rows = corpus.service.store._connection().execute(
        f"SELECT c.id FROM chunks c WHERE c.id IN ({marks}) AND c.ord = 0 AND c.section IS NULL AND EXISTS"
        " (SELECT 1 FROM chunks o WHERE o.document_id = c.document_id AND o.section IS NOT NULL)",
        ids,
    )
    firsts = {row[0] for row in rows}
    chunks = corpus.chunks(sorted(firsts))
    firsts = {chunk_id for chunk_id in firsts if states_something(chunks[chunk_id].text)}
    scored = [(chunk_id, score + (step.number("w", 0.2) if chunk_id in firsts else 0.0)) for chunk_id, score in fused]
    return sorted(scored, key=lambda pair: (-pair[1], pair[0]))


def feedback_words_variant(corpus: Corpus, question: str, passage: str, step: Step) -> list[str]:
    """The feedback words of ``passage`` under a ``dfcap`` or ``feedidf`` step."""
    from collections import Counter

    from qa.search.keyword import STOPWORDS, query_terms
    from qa.search.service import _FEEDBACK_WORDS
    from qa.text.cjk import fts_form

    words = [w.lower() for w in _WORD.findall(fts_form(passage)) if w.lower() not in STOPWORDS]
    asked = {token for tokens in corpus.tokenizer.tokens(query_terms(question)) for token in tokens}
    counts: Counter = Counter()
    written: dict[str, str] = {}
    for word, tokens in zip(words, corpus.tokenizer.tokens(words)):
        if len(tokens) != 1 or tokens[0] in asked:
            continue
        if step.kind == "dfcap" and corpus.share(tokens[0]) > step.number("share", 0.05):
            continue
        counts[tokens[0]] += 1
        written.setdefault(tokens[0], word)
    if step.kind == "feedidf":
        counts = Counter({stem: count * corpus.idf(stem) for stem, count in counts.items()})
    return [written[stem] for stem, _ in counts.most_common(_FEEDBACK_WORDS)]


def install(service, corpus: Corpus, steps: list[Step], settings) -> None:
    """Configure ``service`` for one variant: its settings, and its ranking and feedback steps patched in."""
    import qa.search.service
    from qa.search.service import SearchService

    qa.search.service.states_something = _ORIGINAL.setdefault("states_something", qa.search.service.states_something)
    service._stating.clear()  # the service's judgments of leads were made under the variant before
    changed = settings
    for step in steps:
        if step.kind == "lead":
            changed = replace(changed, section_lead=step.number("w", 0.2))
        elif step.kind == "anylead":
            qa.search.service.states_something = lambda text: True
        elif step.kind == "nofeedback":
            changed = replace(changed, keyword_feedback=0.0)
    service.settings = changed
    ranking = [step for step in steps if step.kind in RANKING_KINDS]
    feedback = [step for step in steps if step.kind in FEEDBACK_KINDS]
    original_leads = SearchService._with_section_leads
    question_of: dict[str, str] = {}

    def with_steps(self, fused, bonus):
        fused = original_leads(self, fused, bonus)
        for step in ranking:
            if step.kind == "heading":
                fused = heading_step(corpus, question_of["now"], fused, step)
            elif step.kind == "doclead":
                fused = doclead_step(corpus, fused, step)
            elif step.kind == "short":
                fused = short_step(corpus, fused, step)
            elif step.kind == "early":
                fused = early_step(corpus, fused, step)
            else:
                fused = page_step(corpus, fused, step)
        return fused

    original_first_stage = SearchService._first_stage

    def first_stage(self, question, top_k, mode, allowed, query=None):
        question_of["now"] = question
        return original_first_stage(self, question, top_k, mode, allowed, query)

    def feedback_ranking(self, question, chunk_id, depth, allowed):
        passage = corpus.chunks([chunk_id]).get(chunk_id)
        if passage is None or not passage.section:
            return []
        words = feedback_words_variant(corpus, question, passage.text, feedback[-1])
        return self.keyword.retrieve(" ".join(words), depth, allowed) if words else []

    service._with_section_leads = with_steps.__get__(service) if ranking else original_leads.__get__(service)
    service._first_stage = first_stage.__get__(service)
    if feedback:
        service._feedback_ranking = feedback_ranking.__get__(service)
    elif "_feedback_ranking" in vars(service):
        del service._feedback_ranking
    if not ranking and "_with_section_leads" in vars(service):
        del service._with_section_leads
    # With no ranking step the section lead must still run when a settings' bonus is set: leave the class's method.
    if ranking and not changed.section_lead:
        service.settings = replace(changed, section_lead=1e-12)


def any_lead(self, fused, bonus):
    """The section lead as it was before round four: every section's first passage gains ``bonus``."""
    from operator import itemgetter

    leads = self.store.section_leads([chunk_id for chunk_id, _ in fused])
    if not leads:
        return fused
    scored = sorted((chunk_id, score + bonus if chunk_id in leads else score) for chunk_id, score in fused)
    scored.sort(key=itemgetter(1), reverse=True)
    return scored


def latency(service, questions: list[str], rounds: int) -> tuple[float, float]:
    """Median ms of ``service.search`` (top 5) with the section lead as before and as it is, alternating."""
    from feedback_quality import alternating_medians

    def before() -> None:
        service._with_section_leads = any_lead.__get__(service)

    def now() -> None:
        service.__dict__.pop("_with_section_leads", None)
        service._stating.clear()  # judged afresh for each question: no reuse across questions

    medians = alternating_medians(service, questions, rounds, {"before": before, "now": now})
    return medians["before"], medians["now"]


def misses(dataset, service, corpus: Corpus) -> str:
    """The questions whose page ranks first but whose labelled passage is not in the top 5, with what is above it."""
    lines = []
    for query in dataset.queries:
        document = next(iter(query.relevant))
        hits = service.search(query.text, 30, highlights=False).results
        # As qa eval counts them: a result cites its document, that document's other paths and its duplicates'.
        places = [
            {hit.citation.source, *hit.citation.aliases, *(place.source for place in hit.duplicates)} for hit in hits
        ]
        if not hits or document not in places[0]:
            continue
        labelled = next(
            (rank for rank, hit in enumerate(hits, 1) if query.phrase in hit.text and document in places[rank - 1]),
            None,
        )
        if labelled is not None and labelled <= 5:
            continue
        first = hits[0]
        lines.append(f"{query.id}: {query.text}  [labelled passage at {labelled or '-'}]")
        lines.append(f"   first: §{first.citation.section} | {' '.join(first.text.split())[:160]}")
        if labelled:
            hit = hits[labelled - 1]
            lines.append(f"   label: §{hit.citation.section} | {' '.join(hit.text.split())[:160]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: replay each variant on one opened index and print a row for each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--index", type=Path, required=True, help="an index of the corpus, default settings")
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--variants", nargs="+", default=["qa"])
    parser.add_argument("--misses", action="store_true", help="print the miss analysis instead")
    parser.add_argument("--latency", type=int, default=0, metavar="ROUNDS", help="time the lead before and now")
    args = parser.parse_args(argv)
    from feedback_quality import open_labelled, scored

    from qa.eval.evaluate import run_queries

    service, dataset = open_labelled(args.index, args.questions, args.corpus)
    settings = service.settings
    if args.latency:
        before, now = latency(service, [query.text for query in dataset.queries], args.latency)
        print(
            f"{len(dataset.queries)} questions x {args.latency} rounds: search median with the lead as before "
            f"{before:.2f} ms, as now {now:.2f} ms, ratio {now / before:.3f}"
        )
        return 0
    replaying(service)
    corpus = Corpus(service)
    if args.misses:
        print(misses(dataset, service, corpus))
        return 0
    baseline = None
    print("variant                                  hit@1  hit@3  hit@5  MRR@10  page@5  better/worse  top 5 +/-")
    for text in args.variants:
        install(service, corpus, [Step.parse(part) for part in text.split("+")], settings)
        started = time.perf_counter()
        ranks, row = scored(run_queries(dataset, service, "hybrid"), baseline)
        baseline = baseline or ranks
        print(f"{text:40} {row}  ({time.perf_counter() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
