"""The faster search paths give the answers the plain ones gave: a deeper look reuses the first stage, and the
best-sentence blend scores stacked 8-bit codes wherever they are held."""

from __future__ import annotations

import copy
import json
import shutil
import sys

import numpy as np
import pytest
from conftest import DATA, ROOT, SEEDS

from qa.config import Settings
from qa.index.indexer import build_index
from qa.index.sentence_vectors import SentenceVectors, dequantize
from qa.search.duplicates import group_duplicates
from qa.search.service import _DEEPER, SearchService

DEFAULTS = Settings()
BUILD = {
    "chunk_size": DEFAULTS.chunk_size,
    "chunk_overlap": DEFAULTS.chunk_overlap,
    "embed_title": DEFAULTS.embed_title,
}
QUESTIONS = [
    json.loads(line)["question"]
    for line in (DATA / "seeds_questions.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]
# Seeds documents copied under another name with a line of their own on top: their passages are near-identical,
# so questions about them fill the top k with repeats and search looks deeper.
COPIED = ["000_d01fc28f19d529a8.txt", "001_39bd27a81007a87b.txt", "004_e4f473833b61ecc8.txt"]


@pytest.fixture(scope="module")
def repeats(tmp_path_factory, encoder):
    """The seeds plus edited copies of three of them, indexed, with the service over that index."""
    root = tmp_path_factory.mktemp("repeats")
    corpus = root / "corpus"
    shutil.copytree(SEEDS, corpus)
    for number, name in enumerate(COPIED):
        text = (SEEDS / name).read_text(encoding="utf-8")
        (corpus / f"copy-{number}.txt").write_text(f"Mirror copy {number}\n{text}", encoding="utf-8")
    build_index(corpus, root / "idx", encoder, **BUILD)
    return SearchService.open(Settings(index_dir=root / "idx"), encoder=encoder)


def _fresh_rankings(service: SearchService, question: str, top_k: int, mode: str) -> list[tuple]:
    """What search answered before the first stage was reused: each look (top k, then deeper) ranked afresh."""
    depth = top_k
    while True:
        ranked = service.rank(question, depth, mode=mode).ranked
        chunks = service.store.chunks([chunk_id for chunk_id, _ in ranked])
        groups = group_duplicates([chunks[chunk_id].text for chunk_id, _ in ranked])
        if len(groups) >= top_k or len(ranked) < depth or depth > top_k:
            break
        depth = top_k * _DEEPER
    found = []
    for group in groups[:top_k]:
        leader, score = ranked[group[0]]
        repeats = [(chunks[ranked[i][0]].doc_id, chunks[ranked[i][0]].start) for i in group[1:]]
        found.append((chunks[leader].doc_id, chunks[leader].start, round(score, 6), repeats))
    return found


def _answered(service: SearchService, question: str, top_k: int, mode: str) -> list[tuple]:
    """The same fields of ``search``'s answer."""
    return [
        (hit.citation.source, hit.citation.start, hit.score, [(p.source, p.start) for p in hit.duplicates])
        for hit in service.search(question, top_k, mode=mode).results
    ]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "keyword"])
@pytest.mark.parametrize("top_k", [3, 5, 30])
def test_a_search_that_looks_deeper_answers_as_fresh_rankings_would(repeats, mode, top_k):
    deeper = 0
    for question in QUESTIONS:
        answered = _answered(repeats, question, top_k, mode)
        assert answered == _fresh_rankings(repeats, question, top_k, mode), question
        deeper += any(repeated for *_, repeated in answered)
    assert deeper >= 5  # the corpus makes repeats take places, so the deeper look is exercised


@pytest.mark.parametrize("mode", ["hybrid", "dense", "keyword"])
def test_a_search_embeds_its_question_once_even_when_it_looks_deeper(repeats, monkeypatch, mode):
    embedded = []
    embed = repeats.dense.embed
    monkeypatch.setattr(repeats.dense, "embed", lambda question: embedded.append(question) or embed(question))
    for question in QUESTIONS[:20]:
        embedded.clear()
        answer = repeats.search(question, 5, mode=mode)
        assert embedded == [question], question
        assert len(answer.results) == 5


def _all_chunk_ids(service: SearchService) -> list[int]:
    return [int(i) for i in service.dense.vectors.ids]


@pytest.mark.parametrize("subset", ["all", "every_third", "one", "none"])
def test_best_sentence_scores_read_from_the_file_equal_each_passage_scored_alone(repeats, subset):
    ids = _all_chunk_ids(repeats)
    ids = {"all": ids, "every_third": ids[::3], "one": ids[7:8], "none": []}[subset]
    reading = SentenceVectors(repeats.store, repeats.manifest.dimension, max_memory_bytes=0)
    held = SentenceVectors(repeats.store, repeats.manifest.dimension)
    assert held.in_memory and not reading.in_memory
    stored = repeats.store.sentence_vectors_of(ids, repeats.manifest.dimension)
    for question in QUESTIONS[:10]:
        query = repeats.dense.embed(question)
        expected = {i: float(np.max(dequantize(*v) @ query)) for i, v in stored.items() if len(v[0])}
        assert reading.best(query, ids) == expected == held.best(query, ids)
        assert reading.best(query, ids, reading.of(ids)) == expected  # vectors the caller already read


def test_search_ab_reports_what_differs_beyond_score_rounding(repeats):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import search_ab

    answer = repeats.search(QUESTIONS[0], 5).as_dict()
    rounded = copy.deepcopy(answer)
    rounded["results"][0]["score"] += 5e-6
    assert search_ab.differences(answer, rounded) == []
    moved = copy.deepcopy(answer)
    moved["results"][1]["score"] += 2e-5
    moved["results"][2]["citation"]["start"] += 1
    moved["results"][3]["citation"]["highlight"] = []
    assert search_ab.differences(answer, moved) == [
        f"rank 2 score {answer['results'][1]['score']} -> {moved['results'][1]['score']}",
        "rank 3 citation differs",
        "rank 4 citation differs",
    ]
    fewer = copy.deepcopy(answer)
    fewer["results"].pop()
    fewer["answerable"] = not answer["answerable"]
    assert search_ab.differences(answer, fewer) == [
        f"answerable: {answer['answerable']!r} -> {fewer['answerable']!r}",
        "5 results -> 4",
    ]
