"""Tests for qa.eval.datasets: BEIR folders and question files, loaded into one structure, with clear errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from qa.errors import InvalidRequest
from qa.eval.datasets import Dataset, LabelledQuery, beir_document_text, iter_beir_corpus, load_dataset

SCIFACT = Path(__file__).resolve().parents[2] / "shared/eval/public/scifact"
HEADER = "query-id\tcorpus-id\tscore\n"


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def _write_beir(folder: Path, qrels: dict[str, str] | None = None, queries: list[dict] | None = None) -> Path:
    """A tiny BEIR folder: three docs, three queries; `qrels` maps a relative file name to its TSV body."""
    _write_jsonl(
        folder / "corpus.jsonl",
        [
            {"_id": "d1", "title": "Alpha", "text": "About alpha."},
            {"_id": "d2", "title": "", "text": "Untitled text."},
            {"_id": "d3", "title": "Gamma", "text": "About gamma."},
        ],
    )
    if queries is None:
        queries = [
            {"_id": "q1", "text": "what is alpha"},
            {"_id": "q2", "text": "what is gamma"},
            {"_id": "q3", "text": "never judged"},
        ]
    _write_jsonl(folder / "queries.jsonl", queries)
    if qrels is None:
        qrels = {"qrels/test.tsv": HEADER + "q1\td1\t1\nq2\td3\t2\nq2\td2\t0\n"}
    for name, body in qrels.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(body.encode("utf-8"))
    return folder


# --- BEIR -------------------------------------------------------------------------------------------------------


def test_beir_folder_loads_judged_queries_with_graded_relevance(tmp_path):
    folder = _write_beir(tmp_path / "tiny")
    dataset = load_dataset(folder)
    assert dataset == Dataset(
        name="tiny",
        kind="beir",
        queries=[
            LabelledQuery(id="q1", text="what is alpha", relevant={"d1": 1}),
            LabelledQuery(id="q2", text="what is gamma", relevant={"d3": 2, "d2": 0}),
        ],
        corpus_dir=None,
        beir_corpus=folder / "corpus.jsonl",
    )
    assert dataset.qrels == {"q1": {"d1": 1}, "q2": {"d3": 2, "d2": 0}}


def test_beir_queries_without_judgments_are_dropped(tmp_path):
    dataset = load_dataset(_write_beir(tmp_path / "tiny"))
    assert "q3" not in [query.id for query in dataset.queries]


@pytest.mark.parametrize(
    ("qrels_file", "split"),
    [
        ("qrels/test.tsv", "test"),
        ("qrels.tsv", "test"),
        ("qrels_test.tsv", "test"),
        ("qrels/dev.tsv", "dev"),
        ("qrels_dev.tsv", "dev"),
    ],
)
def test_beir_qrels_file_is_found_for_each_naming_convention(tmp_path, qrels_file, split):
    folder = _write_beir(tmp_path / "tiny", qrels={qrels_file: HEADER + "q1\td1\t1\n"})
    assert [query.id for query in load_dataset(folder, split=split).queries] == ["q1"]


def test_beir_qrels_folder_takes_precedence_over_flat_files(tmp_path):
    folder = _write_beir(
        tmp_path / "tiny",
        qrels={"qrels/test.tsv": HEADER + "q1\td1\t1\n", "qrels.tsv": HEADER + "q2\td3\t1\n"},
    )
    assert [query.id for query in load_dataset(folder).queries] == ["q1"]


def test_beir_plain_qrels_tsv_is_only_the_test_split(tmp_path):
    folder = _write_beir(tmp_path / "tiny", qrels={"qrels.tsv": HEADER + "q1\td1\t1\n"})
    with pytest.raises(InvalidRequest, match=r"no qrels for split 'train'.*qrels_train\.tsv"):
        load_dataset(folder, split="train")


def test_beir_qrels_with_crlf_line_endings_are_read(tmp_path):
    body = HEADER.replace("\n", "\r\n") + "q1\td1\t1\r\nq2\td3\t2\r\n"
    dataset = load_dataset(_write_beir(tmp_path / "tiny", qrels={"qrels.tsv": body}))
    assert dataset.qrels == {"q1": {"d1": 1}, "q2": {"d3": 2}}


def test_beir_query_missing_from_queries_jsonl_is_taken_from_queries_all(tmp_path):
    folder = _write_beir(tmp_path / "tiny", queries=[{"_id": "q1", "text": "what is alpha"}])
    _write_jsonl(
        folder / "queries_all.jsonl",
        [{"_id": "q1", "text": "older wording of q1"}, {"_id": "q2", "text": "what is gamma"}],
    )
    texts = {query.id: query.text for query in load_dataset(folder).queries}
    assert texts == {"q1": "what is alpha", "q2": "what is gamma"}  # queries.jsonl wins where both have a query


def test_beir_judged_query_without_text_is_an_error(tmp_path):
    folder = _write_beir(tmp_path / "tiny", queries=[{"_id": "q1", "text": "what is alpha"}])
    with pytest.raises(InvalidRequest, match=r"1 judged query id\(s\) have no text.*'q2'"):
        load_dataset(folder)


def test_beir_corpus_argument_is_kept_as_corpus_dir(tmp_path):
    dataset = load_dataset(_write_beir(tmp_path / "tiny"), corpus=tmp_path / "exported")
    assert dataset.corpus_dir == tmp_path / "exported"


def test_iter_beir_corpus_yields_id_title_text(tmp_path):
    folder = _write_beir(tmp_path / "tiny")
    _write_jsonl(
        folder / "corpus.jsonl", [{"_id": "d1", "title": "Alpha", "text": "About alpha."}, {"_id": 7, "text": ""}]
    )
    assert list(iter_beir_corpus(folder / "corpus.jsonl")) == [("d1", "Alpha", "About alpha."), ("7", "", "")]


@pytest.mark.parametrize(
    ("title", "text", "expected"),
    [
        ("Alpha", "About alpha.", "Alpha\nAbout alpha."),
        ("  Alpha ", " About alpha.\n", "Alpha\nAbout alpha."),
        ("", "Untitled text.", "Untitled text."),
        ("   ", "Untitled text.", "Untitled text."),
    ],
)
def test_beir_document_text_joins_stripped_title_and_text(title, text, expected):
    assert beir_document_text(title, text) == expected


# --- project question files -------------------------------------------------------------------------------------

QUESTIONS = [
    {"id": "q01", "question": "Who chaired it?", "document": "000_a.txt", "phrase": "presided over"},
    {"id": "q02", "question": "Who wrote it?", "document": "001_b.txt", "phrase": "Author: X"},
]


def test_question_file_loads_one_relevant_document_and_phrase_per_question(tmp_path):
    path = _write_jsonl(tmp_path / "seeds_questions.jsonl", QUESTIONS)
    dataset = load_dataset(path, corpus=tmp_path / "seeds")
    assert dataset == Dataset(
        name="seeds_questions",
        kind="questions",
        queries=[
            LabelledQuery(id="q01", text="Who chaired it?", relevant={"000_a.txt": 1}, phrase="presided over"),
            LabelledQuery(id="q02", text="Who wrote it?", relevant={"001_b.txt": 1}, phrase="Author: X"),
        ],
        corpus_dir=tmp_path / "seeds",
        beir_corpus=None,
    )


def test_question_file_without_corpus_argument_has_no_corpus_dir(tmp_path):
    assert load_dataset(_write_jsonl(tmp_path / "q.jsonl", QUESTIONS)).corpus_dir is None


def test_question_without_phrase_has_phrase_none(tmp_path):
    path = _write_jsonl(tmp_path / "q.jsonl", [{"id": "q1", "question": "Why?", "document": "a.txt"}])
    assert load_dataset(path).queries[0].phrase is None


def test_question_file_skips_blank_lines(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text("\n" + json.dumps(QUESTIONS[0]) + "\n\n   \n" + json.dumps(QUESTIONS[1]) + "\n", encoding="utf-8")
    assert [query.id for query in load_dataset(path).queries] == ["q01", "q02"]


def test_question_folder_uses_its_corpus_subfolder(tmp_path):
    folder = tmp_path / "myset"
    _write_jsonl(folder / "questions.jsonl", QUESTIONS)
    (folder / "corpus").mkdir()
    dataset = load_dataset(folder)
    assert (dataset.name, dataset.kind, dataset.corpus_dir) == ("myset", "questions", folder / "corpus")
    assert len(dataset.queries) == 2


def test_question_folder_corpus_argument_overrides_subfolder(tmp_path):
    folder = tmp_path / "myset"
    _write_jsonl(folder / "questions.jsonl", QUESTIONS)
    (folder / "corpus").mkdir()
    assert load_dataset(folder, corpus=tmp_path / "other").corpus_dir == tmp_path / "other"


def test_project_seed_questions_load():
    path = Path(__file__).resolve().parent / "data" / "seeds_questions.jsonl"
    dataset = load_dataset(path)
    assert dataset.kind == "questions"
    assert dataset.queries and all(len(query.relevant) == 1 and query.phrase for query in dataset.queries)


# --- errors -----------------------------------------------------------------------------------------------------


def test_malformed_json_names_file_and_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps(QUESTIONS[0]) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(InvalidRequest, match=rf"{re.escape(str(path))}:2: malformed JSON"):
        load_dataset(path)


def test_json_line_that_is_not_an_object_is_an_error(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(InvalidRequest, match=rf"{re.escape(str(path))}:1: expected a JSON object, got list"):
        load_dataset(path)


@pytest.mark.parametrize("field", ["id", "question", "document"])
def test_question_missing_a_field_names_file_line_and_field(tmp_path, field):
    broken = {key: value for key, value in QUESTIONS[1].items() if key != field}
    path = _write_jsonl(tmp_path / "q.jsonl", [QUESTIONS[0], broken])
    with pytest.raises(InvalidRequest, match=rf"{re.escape(str(path))}:2: missing field\(s\) {field}"):
        load_dataset(path)


def test_blank_question_text_counts_as_missing(tmp_path):
    path = _write_jsonl(tmp_path / "q.jsonl", [{**QUESTIONS[0], "question": "  "}])
    with pytest.raises(InvalidRequest, match=r":1: missing field\(s\) question"):
        load_dataset(path)


def test_duplicate_question_id_is_an_error(tmp_path):
    path = _write_jsonl(tmp_path / "q.jsonl", [QUESTIONS[0], QUESTIONS[0]])
    with pytest.raises(InvalidRequest, match=rf"{re.escape(str(path))}:2: duplicate question id 'q01'"):
        load_dataset(path)


def test_beir_query_missing_text_names_file_and_line(tmp_path):
    folder = _write_beir(tmp_path / "tiny", queries=[{"_id": "q1", "text": "ok"}, {"_id": "q2"}])
    with pytest.raises(InvalidRequest, match=rf"{re.escape(str(folder / 'queries.jsonl'))}:2: missing field\(s\) text"):
        load_dataset(folder)


def test_beir_missing_qrels_lists_the_files_looked_for(tmp_path):
    folder = _write_beir(tmp_path / "tiny", qrels={})
    expected = "no qrels for split 'test' (looked for qrels/test.tsv, qrels.tsv, qrels_test.tsv)"
    with pytest.raises(InvalidRequest, match=re.escape(expected)):
        load_dataset(folder)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("q1\td1\n", "expected 3 tab-separated fields"),
        ("q1 d1 1\n", "expected 3 tab-separated fields"),
        ("q1\td1\thigh\n", "score must be an integer, got 'high'"),
    ],
)
def test_beir_bad_qrels_line_names_file_and_line(tmp_path, line, message):
    folder = _write_beir(tmp_path / "tiny", qrels={"qrels.tsv": HEADER + "q1\td1\t1\n" + line})
    with pytest.raises(InvalidRequest, match=rf"{re.escape(str(folder / 'qrels.tsv'))}:3: {message}"):
        load_dataset(folder)


def test_folder_in_neither_format_is_an_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(InvalidRequest, match="is not a labelled dataset"):
        load_dataset(tmp_path)


def test_missing_path_is_an_error(tmp_path):
    with pytest.raises(InvalidRequest, match="dataset not found"):
        load_dataset(tmp_path / "nowhere")


# --- the real SciFact copy (evaluation data kept outside the repository) ------------------------------------------


@pytest.mark.skipif(not SCIFACT.exists(), reason=f"SciFact not present at {SCIFACT}")
def test_scifact_test_and_train_splits_load():
    test = load_dataset(SCIFACT)
    assert (test.name, test.kind, len(test.queries)) == ("scifact", "beir", 300)
    assert sum(1 for _ in iter_beir_corpus(test.beir_corpus)) == 5183
    assert sum(len(query.relevant) for query in test.queries) == 339

    train = load_dataset(SCIFACT, split="train")
    # 809 distinct query ids in qrels_train.tsv (919 judgments), texts found in queries_all.jsonl.
    assert len(train.queries) == 809
    assert sum(len(query.relevant) for query in train.queries) == 919
    assert not {query.id for query in train.queries} & {query.id for query in test.queries}
