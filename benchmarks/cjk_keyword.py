"""Chinese keyword search, measured: hit@1, hit@5 and MRR@10 of CJK questions over the seeds, before and after.

Usage (from the repository root; builds two seeds indexes in a temporary folder):
    HF_HUB_OFFLINE=1 PYTHONPATH=. python benchmarks/cjk_keyword.py
    HF_HUB_OFFLINE=1 PYTHONPATH=. python benchmarks/cjk_keyword.py --corpus tests/data/cjk_corpus/corpus \\
        --questions tests/data/cjk_corpus/questions.jsonl
The seeds hold a single Chinese sentence; the small CJK corpus has CJK passages competing with each other
(and one made of function characters only), which is where stop characters can matter.

Systems, each in keyword mode and in hybrid mode (the same dense side), scored as `qa eval` scores them:
  off               the keyword index and queries as before qa.text.cjk: a CJK run is one unicode61 token
  bigrams           what qa ships: CJK runs indexed and queried as bigrams, stop-character bigrams left out
  bigrams+stops     the same index, the query keeping bigrams that hold a stop character (的, 是, 什么 ...)
  bigram table      "off" for non-CJK terms plus a second FTS5 table holding each passage's CJK runs as bigrams,
                    queried with the shipped query bigrams; the two BM25 scores are added (English rows untouched)
  trigram table     the same with a second table of tokenizer trigram over the CJK runs, queried with trigrams
Then English: every question of tests/data/seeds_questions.jsonl ranked in keyword mode on "off" and on
"bigrams" (same passages, same ids), counting identical rankings and the largest score difference, and
checking that every keyword row that differs holds CJK text.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import qa.index.store  # noqa: E402
import qa.search.keyword  # noqa: E402
from qa.config import Settings  # noqa: E402
from qa.embed.encoder import load_encoder  # noqa: E402
from qa.eval.datasets import load_dataset  # noqa: E402
from qa.eval.evaluate import run_queries  # noqa: E402
from qa.eval.metrics import hit_at_k, mrr_at_k  # noqa: E402
from qa.index.indexer import build_index  # noqa: E402
from qa.index.manifest import DATABASE_FILE  # noqa: E402
from qa.index.store import StoreReader, keyword_rows  # noqa: E402
from qa.search.service import SearchService  # noqa: E402
from qa.text.cjk import CJK_RUN, bigrams, has_cjk  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _unchanged(text: str) -> str:
    return text


@contextlib.contextmanager
def cjk_handling(*, index: bool = True, query: bool = True, stop_characters: bool = True):
    """Switch parts of qa's CJK handling off for the duration (index writing, query terms, stop characters)."""
    saved = qa.index.store.fts_form, qa.search.keyword.fts_form, qa.search.keyword.is_stop_term
    if not index:
        qa.index.store.fts_form = _unchanged
    if not query:
        qa.search.keyword.fts_form = _unchanged
    if not stop_characters:
        qa.search.keyword.is_stop_term = lambda term: False
    try:
        yield
    finally:
        qa.index.store.fts_form, qa.search.keyword.fts_form, qa.search.keyword.is_stop_term = saved


def build(corpus: Path, index_dir: Path, encoder, *, cjk: bool) -> Path:
    """A seeds index with the default settings, its keyword rows written with or without qa.text.cjk."""
    defaults = Settings()
    with cjk_handling(index=cjk):
        build_index(
            corpus,
            index_dir,
            encoder,
            chunk_size=defaults.chunk_size,
            chunk_overlap=defaults.chunk_overlap,
            embed_title=defaults.embed_title,
        )
    return index_dir


def trigrams(run: str) -> list[str]:
    """Overlapping three-character pieces of a CJK run (none for a shorter run: trigram FTS5 cannot match it)."""
    return [run[i : i + 3] for i in range(len(run) - 2)]


def query_bigrams(run: str) -> list[str]:
    """A question's CJK run as the shipped query takes it: bigrams, less those holding a stop character."""
    return [t for t in qa.search.keyword.query_terms(run) if has_cjk(t)]


class SecondTableRetriever:
    """Keyword retrieval with a second FTS5 table for CJK runs beside the unicode61 one (which keeps its rows).

    The first table answers the question's non-CJK terms, the second its CJK pieces; the two BM25 scores of a
    passage are added. With ``tokenizer`` trigram the second table holds the runs and is asked for trigrams;
    with unicode61 it holds the runs' bigrams and is asked for the shipped query bigrams.
    """

    def __init__(self, index_dir: Path, tokenizer: str) -> None:
        self.words = qa.search.keyword.KeywordRetriever(StoreReader(index_dir / DATABASE_FILE))
        self.trigram = tokenizer == "trigram"
        source = sqlite3.connect(index_dir / DATABASE_FILE)
        with cjk_handling(index=False):  # the rows as that index (built without qa.text.cjk) holds them
            rows = [(r.chunk_id, r.context, r.text) for r in keyword_rows(source)]
        source.close()
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.db.execute(f"CREATE VIRTUAL TABLE cjk USING fts5(runs, tokenize = '{tokenizer}')")
        # Every passage gets a row, empty without CJK, so IDF counts all passages (FTS5 floors a negative IDF).
        for rowid, context, text in rows:
            runs = CJK_RUN.findall(f"{context}\n{text}")
            held = " ".join(runs) if self.trigram else " ".join(" ".join(bigrams(run)) for run in runs)
            self.db.execute("INSERT INTO cjk (rowid, runs) VALUES (?, ?)", (rowid, held))

    def retrieve(self, question: str, k: int, allowed=None) -> list[tuple[int, float]]:
        """Best ``k`` ``(chunk id, summed BM25)``: unicode61 on the non-CJK terms, the second table on CJK runs."""
        if allowed is not None:
            raise NotImplementedError("filters are not part of this comparison")
        scores: dict[int, float] = {}
        with cjk_handling(query=False):
            words = [t for t in qa.search.keyword.query_terms(question) if not has_cjk(t)]
        if words:
            phrases = self.words.tokenizer.tokens(words)
            for chunk_id, score in self.words.postings.search(phrases, k, weights=self.words.weights):
                scores[chunk_id] = scores.get(chunk_id, 0.0) + score
        split = trigrams if self.trigram else query_bigrams
        pieces = list(dict.fromkeys(p for run in CJK_RUN.findall(question) for p in split(run)))
        if pieces:
            expression = " OR ".join(f'"{p}"' for p in pieces)
            sql = "SELECT rowid, -bm25(cjk) FROM cjk WHERE cjk MATCH ? ORDER BY 2 DESC LIMIT ?"
            for chunk_id, score in self.db.execute(sql, (expression, k)):
                scores[chunk_id] = scores.get(chunk_id, 0.0) + score
        return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]


def figures(report) -> dict[str, float]:
    """hit@1, hit@5 and MRR@10 from an EvalReport's rankings."""
    questions = list(report.qrels)
    n = len(questions)
    return {
        "hit@1": sum(hit_at_k(report.runs[q], report.qrels[q], 1) for q in questions) / n,
        "hit@5": sum(hit_at_k(report.runs[q], report.qrels[q], 5) for q in questions) / n,
        "MRR@10": sum(mrr_at_k(report.runs[q], report.qrels[q], 10) for q in questions) / n,
    }


def quality(dataset, services: dict[str, tuple[SearchService, dict]]) -> None:
    """Print each system's figures on ``dataset`` in keyword and hybrid mode."""
    for name, (service, switches) in services.items():
        for mode in ("keyword", "hybrid"):
            with cjk_handling(**switches):
                row = figures(run_queries(dataset, service, mode))
            print(f"{name:15s} {mode:8s} " + "  ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)


def stop_share(dataset) -> str:
    """How many of the questions' CJK bigrams the stop characters take out of the query."""
    with cjk_handling(stop_characters=False):
        every = [t for q in dataset.queries for t in qa.search.keyword.query_terms(q.text) if has_cjk(t)]
    kept = [t for q in dataset.queries for t in qa.search.keyword.query_terms(q.text) if has_cjk(t)]
    return f"CJK query terms: {len(every)}, of which left out as holding a stop character: {len(every) - len(kept)}"


def english_unchanged(dataset, before: SearchService, after: SearchService, before_dir: Path, after_dir: Path) -> None:
    """Print how English questions rank in keyword mode before and after, and which keyword rows changed.

    Only rows holding CJK text are written differently, but BM25 normalises by the average row length of the
    whole table, so every score moves a little; the CJK rows, now longer, also score lower for English terms.
    """
    rows = []
    for folder, cjk in ((before_dir, False), (after_dir, True)):
        db = sqlite3.connect(folder / DATABASE_FILE)
        with cjk_handling(index=cjk):  # each index's rows as it was written
            rows.append([(r.chunk_id, r.context, r.text) for r in keyword_rows(db)])
        db.close()
    changed = {a[0] for a, b in zip(*rows) if a != b}
    identical = identical_top10 = 0
    largest = 0.0
    for query in dataset.queries:
        with cjk_handling(query=False):
            old = before.keyword.retrieve(query.text, 100)
        new = after.keyword.retrieve(query.text, 100)
        identical += [i for i, _ in old] == [i for i, _ in new]
        old_kept = [(i, s) for i, s in old if i not in changed]
        new_kept = dict((i, s) for i, s in new if i not in changed)
        identical_top10 += [i for i, _ in old_kept[:10]] == [i for i, _ in new if i not in changed][:10]
        largest = max([largest] + [abs(new_kept[i] / s - 1) for i, s in old_kept if i in new_kept and s])
    print(
        f"english ({len(dataset.queries)} questions, keyword mode): identical rankings to depth 100 {identical}; "
        f"identical top 10 of the rows without CJK {identical_top10}; largest relative score change of a row "
        f"without CJK {largest:.2%}; keyword rows differing {len(changed)}/{len(rows[0])}, all holding CJK "
        f"text: {all(has_cjk(r[1] + r[2]) for r in rows[0] if r[0] in changed)}",
        flush=True,
    )
    for name, service, switches in (("off", before, {"query": False}), ("bigrams", after, {})):
        with cjk_handling(**switches):
            row = figures(run_queries(dataset, service, "keyword"))
        print(f"english {name:8s} keyword  " + "  ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=Path, default=ROOT / "tests/data/cjk_questions.jsonl")
    parser.add_argument("--corpus", type=Path, default=ROOT / "seeds")
    parser.add_argument(
        "--english", type=Path, help="English questions over the corpus (default: the seeds' when it is the seeds)"
    )
    args = parser.parse_args()
    if args.english is None and args.corpus.resolve() == (ROOT / "seeds").resolve():
        args.english = ROOT / "tests/data/seeds_questions.jsonl"

    encoder = load_encoder()
    with tempfile.TemporaryDirectory() as folder:
        before_dir = build(args.corpus, Path(folder) / "off", encoder, cjk=False)
        after_dir = build(args.corpus, Path(folder) / "bigrams", encoder, cjk=True)
        before = SearchService.open(Settings(index_dir=before_dir), encoder=encoder)
        after = SearchService.open(Settings(index_dir=after_dir), encoder=encoder)
        second = {}
        for tokenizer in ("unicode61", "trigram"):
            second[tokenizer] = SearchService.open(Settings(index_dir=before_dir), encoder=encoder)
            second[tokenizer].keyword = SecondTableRetriever(before_dir, tokenizer)
        dataset = load_dataset(args.questions, corpus=args.corpus)
        print(f"{dataset.name}: {len(dataset.queries)} questions over {args.corpus.name}", flush=True)
        print(stop_share(dataset), flush=True)
        quality(
            dataset,
            {
                "off": (before, {"query": False}),
                "bigrams": (after, {}),
                "bigrams+stops": (after, {"stop_characters": False}),
                "bigram table": (second["unicode61"], {}),
                "trigram table": (second["trigram"], {}),
            },
        )
        if args.english is not None:
            english_unchanged(load_dataset(args.english, corpus=args.corpus), before, after, before_dir, after_dir)


if __name__ == "__main__":
    main()
