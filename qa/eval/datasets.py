"""Loaders for labelled retrieval sets (BEIR folders and project question files) into one Dataset structure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.errors import InvalidRequest

QUESTION_FIELDS = ("id", "question", "document")


@dataclass(frozen=True)
class LabelledQuery:
    """One question with its relevance judgments (document id -> grade) and, for question sets, the answer phrase."""

    id: str
    text: str
    relevant: dict[str, int]
    phrase: str | None = None


@dataclass
class Dataset:
    """A labelled set: its queries, and where the documents they refer to live.

    kind is "beir" (documents in `beir_corpus`, a corpus.jsonl) or "questions" (documents are files in `corpus_dir`).
    """

    name: str
    kind: str
    queries: list[LabelledQuery]
    corpus_dir: Path | None
    beir_corpus: Path | None

    @property
    def qrels(self) -> dict[str, dict[str, int]]:
        """Query id -> {document id: grade}, the shape qa.eval.metrics.summarise expects."""
        return {query.id: query.relevant for query in self.queries}


def load_dataset(path: Path, *, split: str = "test", corpus: Path | None = None) -> Dataset:
    """Load a labelled set from a BEIR folder, a question .jsonl file, or a folder with questions.jsonl.

    Args:
        path: a BEIR folder (corpus.jsonl, queries.jsonl, qrels), a question file (.jsonl), or a folder holding
            questions.jsonl and, usually, a corpus/ subfolder.
        split: which BEIR qrels to use; ignored for question sets.
        corpus: the corpus folder the questions refer to; for a questions folder it defaults to its corpus/ subfolder.

    Raises:
        InvalidRequest: the path is missing or in neither format, a file is malformed, or the split has no qrels.
    """
    path = Path(path)
    if path.is_file():
        return _load_questions(path, name=path.stem, corpus_dir=corpus)
    if not path.is_dir():
        raise InvalidRequest(f"dataset not found: {path}")
    if (path / "corpus.jsonl").is_file() and (path / "queries.jsonl").is_file():
        return _load_beir(path, split=split, corpus_dir=corpus)
    if (path / "questions.jsonl").is_file():
        default_corpus = path / "corpus"
        corpus_dir = corpus if corpus is not None else (default_corpus if default_corpus.is_dir() else None)
        return _load_questions(path / "questions.jsonl", name=path.name, corpus_dir=corpus_dir)
    raise InvalidRequest(
        f"{path} is not a labelled dataset: expected a BEIR folder (corpus.jsonl, queries.jsonl, qrels) "
        "or a folder with questions.jsonl"
    )


def iter_beir_corpus(path: Path) -> Iterator[tuple[str, str, str]]:
    """Yield (_id, title, text) for each document of a BEIR corpus.jsonl; a missing title is ""."""
    for where, record in _read_jsonl(Path(path)):
        _require(record, ("_id", "text"), where)
        yield str(record["_id"]), str(record.get("title") or ""), str(record["text"])


def beir_document_text(title: str, text: str) -> str:
    """Join a BEIR title and text the usual way: "title\\ntext" (both stripped), or the text alone if untitled."""
    title, text = title.strip(), text.strip()
    return f"{title}\n{text}" if title else text


def _load_questions(path: Path, *, name: str, corpus_dir: Path | None) -> Dataset:
    queries: list[LabelledQuery] = []
    seen: set[str] = set()
    for where, record in _read_jsonl(path):
        _require(record, QUESTION_FIELDS, where, non_empty=True)
        query_id = str(record["id"])
        if query_id in seen:
            raise InvalidRequest(f"{where}: duplicate question id {query_id!r}")
        seen.add(query_id)
        phrase = record.get("phrase")
        queries.append(
            LabelledQuery(
                id=query_id,
                text=str(record["question"]),
                relevant={str(record["document"]): 1},
                phrase=None if phrase is None else str(phrase),
            )
        )
    return Dataset(name=name, kind="questions", queries=queries, corpus_dir=corpus_dir, beir_corpus=None)


def _load_beir(folder: Path, *, split: str, corpus_dir: Path | None) -> Dataset:
    qrels = _read_qrels(_find_qrels(folder, split))
    texts = _read_query_texts(folder / "queries.jsonl")
    if any(query_id not in texts for query_id in qrels) and (folder / "queries_all.jsonl").is_file():
        texts = {**_read_query_texts(folder / "queries_all.jsonl"), **texts}
    missing = [query_id for query_id in qrels if query_id not in texts]
    if missing:
        raise InvalidRequest(
            f"{folder}: {len(missing)} judged query id(s) have no text in queries.jsonl or queries_all.jsonl, "
            f"for example {missing[0]!r}"
        )
    queries = [LabelledQuery(id=qid, text=texts[qid], relevant=relevant) for qid, relevant in qrels.items()]
    return Dataset(
        name=folder.name, kind="beir", queries=queries, corpus_dir=corpus_dir, beir_corpus=folder / "corpus.jsonl"
    )


def _find_qrels(folder: Path, split: str) -> Path:
    candidates = [folder / "qrels" / f"{split}.tsv"]
    if split == "test":
        candidates.append(folder / "qrels.tsv")
    candidates.append(folder / f"qrels_{split}.tsv")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(candidate.relative_to(folder)) for candidate in candidates)
    raise InvalidRequest(f"{folder}: no qrels for split {split!r} (looked for {tried})")


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Read a BEIR qrels TSV (header `query-id corpus-id score`) into query id -> {doc id: grade}, in file order."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8-sig") as handle:  # universal newlines: CRLF is read as LF
        for number, line in enumerate(handle, start=1):
            fields = line.strip().split("\t")
            if fields == [""] or (number == 1 and fields[0] == "query-id"):
                continue
            if len(fields) != 3:
                raise InvalidRequest(
                    f"{path}:{number}: expected 3 tab-separated fields (query-id, corpus-id, score), got {len(fields)}"
                )
            query_id, doc_id, score = fields
            try:
                grade = int(score)
            except ValueError:
                raise InvalidRequest(f"{path}:{number}: score must be an integer, got {score!r}") from None
            qrels.setdefault(query_id, {})[doc_id] = grade
    return qrels


def _read_query_texts(path: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    for where, record in _read_jsonl(path):
        _require(record, ("_id", "text"), where)
        texts[str(record["_id"])] = str(record["text"])
    return texts


def _read_jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ("file:line", object) for each non-blank line, raising InvalidRequest on bad JSON or a non-object."""
    try:
        handle = path.open(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidRequest(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidRequest(f"{where}: malformed JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise InvalidRequest(f"{where}: expected a JSON object, got {type(record).__name__}")
            yield where, record


def _require(record: dict[str, Any], fields: tuple[str, ...], where: str, *, non_empty: bool = False) -> None:
    missing = [field for field in fields if record.get(field) is None or (non_empty and not str(record[field]).strip())]
    if missing:
        raise InvalidRequest(f"{where}: missing field(s) {', '.join(missing)}")
