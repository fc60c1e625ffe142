"""The support score of qa/search/verify.py on the tuning half only: how often the right document is among the
candidates at all (candidate recall), and variants of the score's features compared by two-fold cross-validation within
the tuning half (the reported half is never read here).

The labelled items are those of benchmarks/verify_quotes.py (``labelled_sets``, the same seeded draw); only the
items that reach the support step (not found exact, closest span below the approximate threshold) are scored.
Each variant is refitted per fold as verify_quotes.py fits the model (logistic, groups balanced) and printed as
the share judged as expected per group, with the AUC of paraphrases against on-topic fabrications (seeds) and of
SciFact claims against SciFact's not_found items: the AUC needs no threshold, so it moves less by one item.

    python benchmarks/verify_support.py --seeds-index /tmp/verify-seeds --scifact-index /tmp/m-sf \\
        --other-index /tmp/m-docs2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from verify_quotes import SCIFACT, fit_support, halves, labelled_sets

from qa.search.confidence import term_coverage
from qa.search.keyword import STOPWORDS, query_terms
from qa.search.service import SearchService
from qa.search.verify import (
    APPROXIMATE_MIN_SIMILARITY,
    DENSE_CANDIDATES,
    MAX_UNMATCHED,
    SupportModel,
    Verifier,
    keyword_query,
    unmatched_specifics,
)
from qa.text.chunking import split_sentences
from qa.text.quotes import clean_quote

BASE = ("cosine", "coverage", "passage_cosine", "unmatched")
# Candidates read per retriever for the recall table (the verifier reads DENSE_CANDIDATES of each).
DEEPEST = 50
_WORD = re.compile(r"\w+")
# A name or number as qa.search.verify.specifics folds it is a number when it is digits (and a decimal point).
_NUMBER = re.compile(r"[\d.]+")


@dataclass
class Sentence:
    """A candidate passage's sentence: its text, its neighbours' texts, its cosine with the text and its passage's."""

    text: str
    before: str
    after: str
    cosine: float
    passage_cosine: float
    pair_cosine: float
    chunk_id: int


@dataclass
class Scored:
    """A tuning-half item that reaches the support step, with its candidates' sentences (best cosine first)."""

    index: str
    group: str
    text: str
    supported: bool
    sentences: list[Sentence]
    dense: list[str]
    keyword: list[str]
    right_documents: set[str]


def candidates(service: SearchService, index: str, item, right: set[str]) -> Scored:
    """Every sentence of the verifier's candidates for one text (DENSE_CANDIDATES of each retriever), and the
    documents of the DEEPEST of each for the recall table."""
    [query] = service.dense.encoder.encode([item.text])
    _, [dense] = service.dense.vectors.search(np.asarray([query]), DEEPEST)
    dense = [int(i) for i in dense if i != -1]
    keyword = [i for i, _ in service.keyword.retrieve(keyword_query(clean_quote(item.text)), DEEPEST)]
    chunks = service.store.chunks(list(dict.fromkeys(dense + keyword)))
    used = list(dict.fromkeys(dense[:DENSE_CANDIDATES] + keyword[:DENSE_CANDIDATES]))
    vectors = service.sentences.of(used)
    passages = dict(zip(used, service.dense.vectors.reconstruct(used)))
    sentences = []
    for chunk_id in used:
        chunk, rows = chunks.get(chunk_id), vectors.get(chunk_id)
        spans = split_sentences(chunk.text) if chunk is not None else []
        if rows is None or not len(rows) or len(rows) != len(spans):
            continue
        texts = [chunk.text[s.start : s.end] for s in spans]
        scores = rows @ query
        for i, text in enumerate(texts):
            sentences.append(
                Sentence(
                    text,
                    texts[i - 1] if i else "",
                    texts[i + 1] if i + 1 < len(texts) else "",
                    float(scores[i]),
                    float(passages[chunk_id] @ query),
                    _pair_cosine(rows, i, query),
                    chunk_id,
                )
            )
    sentences.sort(key=lambda s: -s.cosine)
    documents = {i: c.doc_id for i, c in chunks.items()}
    return Scored(
        index,
        f"{index}: {item.group}",
        item.text,
        item.expected == "supported",
        sentences,
        [documents.get(i, "") for i in dense],
        [documents.get(i, "") for i in keyword],
        right,
    )


def _pair_cosine(rows: np.ndarray, at: int, query: np.ndarray) -> float:
    """The best cosine of the sentence alone or joined with a neighbour (normalised sum of their vectors)."""
    best = float(rows[at] @ query)
    for first in (at - 1, at):
        if first >= 0 and first + 1 < len(rows):
            joined = rows[first] + rows[first + 1]
            best = max(best, float(joined @ query / (np.linalg.norm(joined) or 1.0)))
    return best


def evidence_documents() -> dict[str, set[str]]:
    """SciFact claim text -> the ids of its judged evidence documents."""
    judged: dict[str, set[str]] = {}
    for name in ("qrels.tsv", "qrels_train.tsv"):
        for line in (SCIFACT / name).read_text().splitlines()[1:]:
            claim, document, _ = line.split("\t")
            judged.setdefault(claim, set()).add(document)
    claims = [json.loads(line) for line in (SCIFACT / "queries_all.jsonl").read_text().splitlines() if line.strip()]
    return {c["text"]: judged.get(c["_id"], set()) for c in claims}


def recall_table(scored: list[Scored]) -> None:
    """How often a SciFact claim's judged evidence document is among each retriever's first k candidates."""
    claims = [s for s in scored if s.right_documents]
    print(f"\ncandidate recall, SciFact claims with evidence, tuning half ({len(claims)} claims): document among")
    print(f"{'k':>4s} {'dense':>7s} {'keyword':>8s} {'either':>7s}")
    for k in (5, 10, 20, 50):
        dense = np.mean([bool(set(s.dense[:k]) & s.right_documents) for s in claims])
        keyword = np.mean([bool(set(s.keyword[:k]) & s.right_documents) for s in claims])
        either = np.mean([bool(set(s.dense[:k] + s.keyword[:k]) & s.right_documents) for s in claims])
        print(f"{k:4d} {dense:7.3f} {keyword:8.3f} {either:7.3f}")


class Features:
    """The features a variant computes for one candidate sentence; ``idf`` weighs words by their rarity, and the
    encoder's word vectors (contextual token embeddings pooled per word) align the text's words with a sentence's."""

    def __init__(self, idf: dict[str, dict[str, float]], encoder) -> None:
        self.idf = idf
        self.encoder = encoder

    def of(self, item: Scored, sentence: Sentence, variant: str) -> dict[str, float]:
        """The sentence's features for ``variant`` (names: BASE, ``unmatched_names`` and ``unmatched_numbers``,
        ``pair_cosine`` and ``idf_coverage``, and
        ``aligned_mean`` and ``aligned_lowest`` for an ``aligned`` variant)."""
        terms = query_terms(item.text)
        nearby = " ".join((sentence.before, sentence.text, sentence.after))
        names_in = {"neighbours": nearby}.get(variant, sentence.text)
        unmatched = unmatched_specifics(item.text, names_in)
        numbers = {u for u in unmatched if _NUMBER.fullmatch(u)}
        found = {
            "cosine": sentence.cosine,
            "coverage": term_coverage(terms, sentence.text),
            "passage_cosine": sentence.passage_cosine,
            "unmatched": min(len(unmatched), MAX_UNMATCHED),
            "unmatched_names": min(len(unmatched - numbers), MAX_UNMATCHED),
            "unmatched_numbers": min(len(numbers), MAX_UNMATCHED),
            "pair_cosine": sentence.pair_cosine,
            "idf_coverage": self.idf_coverage(item.index, terms, sentence.text),
        }
        if "aligned" in variant:
            found.update(self.alignment(item.text, nearby if "neighbours" in variant else sentence.text))
        return found

    def alignment(self, text: str, sentence: str) -> dict[str, float]:
        """How well each content word of ``text`` is matched by some word of ``sentence`` (the best cosine of their
        contextual word vectors): the mean over the words, and the lowest (an invented word matches nothing)."""
        words = [(m.start(), m.end()) for m in _WORD.finditer(text) if m.group().lower() not in STOPWORDS]
        others = [(m.start(), m.end()) for m in _WORD.finditer(sentence)]
        if not words or not others:
            return {"aligned_mean": 0.0, "aligned_lowest": 0.0}
        _, (mine, theirs) = self.encoder.encode_with_spans([text, sentence], [words, others])
        best = (mine @ theirs.T).max(axis=1)
        return {"aligned_mean": float(best.mean()), "aligned_lowest": float(best.min())}

    def idf_coverage(self, index: str, terms: list[str], text: str) -> float:
        """The share of the text's content words the sentence holds (5-letter prefixes, as ``term_coverage``
        compares them), each weighed by its inverse document frequency in the index."""
        words = {w[:5] for w in _WORD.findall(text.lower())}
        weights = [self.idf[index].get(t, 0.0) for t in terms]
        total = sum(weights)
        return sum(w for t, w in zip(terms, weights) if t[:5] in words) / total if total else 0.0


# name -> (features weighed, how the sentence is chosen: by cosine, or the best by the model among the first N).
VARIANTS = {
    "the current model": (BASE, 1),
    "names and numbers read in the sentence and its neighbours": (BASE, 1),
    "names and numbers the sentence lacks counted apart": (
        ("cosine", "coverage", "passage_cosine", "unmatched_names", "unmatched_numbers"),
        1,
    ),
    "+ the best cosine of the sentence joined with a neighbour": (BASE + ("pair_cosine",), 1),
    "coverage weighed by IDF": (("cosine", "idf_coverage", "passage_cosine", "unmatched"), 1),
    "+ coverage weighed by IDF": (BASE + ("idf_coverage",), 1),
    "+ its words aligned with the sentence's (mean, lowest)": (BASE + ("aligned_mean", "aligned_lowest"), 1),
    "+ the same, aligned with the sentence and its neighbours": (BASE + ("aligned_mean", "aligned_lowest"), 1),
    "the best by the model among the 3 closest sentences": (BASE, 3),
    "the best by the model among the 10 closest sentences": (BASE, 10),
    "the same, refitted on the sentences it chooses": (BASE, 10),
}
# Rounds of refitting a variant that chooses among sentences on the ones its last fit chose.
REFITS = 3


def feature_rows(features: Features, item: Scored, name: str, names: tuple[str, ...], top: int) -> list[np.ndarray]:
    """The feature vectors of the item's ``top`` closest sentences (one, for a variant choosing by cosine)."""
    variant = " ".join(w for w in ("neighbours", "aligned") if w in name)
    rows = []
    for sentence in item.sentences[:top]:
        values = features.of(item, sentence, variant)
        rows.append(np.array([values[n] for n in names]))
    return rows or [np.zeros(len(names))]


def cross_validate(
    features: Features, scored: list[Scored], totals: dict[str, int], name: str
) -> tuple[dict[str, float], float, float]:
    """Two-fold cross-validation of a variant within the tuning half: share as expected per group (of all its
    tuning items: one judged exact or approximate is not as expected), and the two AUCs (module docstring)."""
    names, top = VARIANTS[name]
    rows = [feature_rows(features, item, name, names, top) for item in scored]
    position: dict[str, int] = {}
    folds = []
    for item in scored:
        position[item.group] = position.get(item.group, 0) + 1
        folds.append(position[item.group] % 2)
    scores = np.zeros(len(scored))
    for fold in (0, 1):
        train = [i for i, f in enumerate(folds) if f != fold]
        model = _fit(names, [scored[i] for i in train], [rows[i][0] for i in train])
        for _ in range(REFITS if "refitted" in name else 0):
            model = _fit(names, [scored[i] for i in train], [_chosen(model, rows[i]) for i in train])
        for i, f in enumerate(folds):
            if f == fold:
                scores[i] = _score(model, _chosen(model, rows[i]))
    shares = {}
    for group in dict.fromkeys(s.group for s in scored):
        members = [i for i, s in enumerate(scored) if s.group == group]
        shares[group] = sum((scores[i] >= 0) == scored[i].supported for i in members) / totals[group]
    paraphrase_auc = _auc(scores, scored, "seeds: paraphrases", lambda g: g == "seeds: fabricated (on topic)")
    scifact_auc = _auc(scores, scored, "scifact: scifact claims with evidence", lambda g: g.startswith("scifact"))
    return shares, paraphrase_auc, scifact_auc


def _score(model: SupportModel, row: np.ndarray) -> float:
    """The model's log-odds for one feature vector (the threshold 0.5 is log-odds 0)."""
    return model.bias + float(np.dot(model.weights, row))


def _chosen(model: SupportModel, rows: list[np.ndarray]) -> np.ndarray:
    """The feature vector of the sentence the model scores highest."""
    return max(rows, key=lambda row: _score(model, row))


def _fit(names: tuple[str, ...], items: list[Scored], rows: list[np.ndarray]) -> SupportModel:
    """verify_quotes.fit_support over any named features (it reads ``features`` and ``expected`` of each item)."""
    from verify_quotes import Item

    fitted = [
        Item(item.group, item.text, "supported" if item.supported else "not_found", features=dict(zip(names, row)))
        for item, row in zip(items, rows)
    ]
    return fit_support(fitted, names=names)


def _auc(scores: np.ndarray, scored: list[Scored], positive: str, negative) -> float:
    """The chance that an item of group ``positive`` scores above one of the groups ``negative`` accepts."""
    good = scores[[i for i, s in enumerate(scored) if s.group == positive]]
    bad = scores[[i for i, s in enumerate(scored) if s.group != positive and negative(s.group) and not s.supported]]
    if not len(good) or not len(bad):
        return float("nan")
    return float(np.mean((good[:, None] > bad[None, :]) + 0.5 * (good[:, None] == bad[None, :])))


def inverse_document_frequencies(service: SearchService, texts: list[str]) -> dict[str, float]:
    """log((N + 1) / (df + 0.5)) of every content word of ``texts``, df read from the keyword postings."""
    keyword = service.keyword
    terms = sorted({t for text in texts for t in query_terms(text)})
    count = service.manifest.counts["chunks"]
    found = {}
    for term, tokens in zip(terms, keyword.tokenizer.tokens(terms)):
        df = min((len(keyword.postings.postings(t)[0]) for t in tokens), default=0)
        found[term] = math.log((count + 1) / (df + 0.5))
    return found


def _short(group: str) -> str:
    """``scifact: fabricated (on topic)`` -> ``sf fab. on``: a column heading."""
    index, name = group.split(": ", 1)
    name = name.replace("fabricated (", "fab. ").replace(" topic)", "")
    name = name.replace("scifact claims with evidence", "claims").replace(" documents", " docs")
    return f"{'sf' if index == 'scifact' else index} {name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds-index", type=Path, required=True)
    parser.add_argument("--scifact-index", type=Path, required=True)
    parser.add_argument("--other-index", type=Path, required=True, help="documents that are in neither index")
    parser.add_argument("--per-group", type=int, default=200, help="generated items per group")
    args = parser.parse_args()
    sets = labelled_sets(args.seeds_index, args.scifact_index, args.other_index, args.per_group)
    evidence = evidence_documents()
    scored, idf, totals = [], {}, {}
    for index, (service, items) in sets.items():
        verifier = Verifier(service)
        tune = [i for i in halves(items)[0] if i.expected in ("supported", "not_found")]
        reaching = []
        for item in tune:
            found = verifier.features(item.text)
            if not found["exact"] and found["similarity"] < APPROXIMATE_MIN_SIMILARITY:
                reaching.append(item)
        for item in tune:
            totals[f"{index}: {item.group}"] = totals.get(f"{index}: {item.group}", 0) + 1
        scored += [candidates(service, index, item, evidence.get(item.text, set())) for item in reaching]
        idf[index] = inverse_document_frequencies(service, [i.text for i in reaching])
    recall_table(scored)
    features = Features(idf, sets["seeds"][0].dense.encoder)
    groups = list(dict.fromkeys(s.group for s in scored))
    print(f"\nsupport variants, two-fold cross-validation within the tuning half ({len(scored)} items reach support)")
    print(f"{'variant':58s} {'AUC seeds':>9s} {'AUC sf':>7s}  " + "  ".join(f"{_short(g):>13s}" for g in groups))
    for name in VARIANTS:
        shares, paraphrase_auc, scifact_auc = cross_validate(features, scored, totals, name)
        print(
            f"{name:58s} {paraphrase_auc:9.3f} {scifact_auc:7.3f}  " + "  ".join(f"{shares[g]:13.2f}" for g in groups)
        )
    # Only the items that reach support are fitted here (verify_quotes.py fits every supported and not_found item),
    # so the current model's weights differ a little from SUPPORT_MODEL's.
    print("\nfitted on the whole tuning half (sentences chosen by cosine):")
    for name, (names, _) in VARIANTS.items():
        rows = [feature_rows(features, item, name, names, 1)[0] for item in scored]
        model = _fit(names, scored, rows)
        weights = ", ".join(f"{n} {w:+.2f}" for n, w in zip(names, model.weights))
        print(f"{name:58s} {weights}; bias {model.bias}")


if __name__ == "__main__":
    main()
