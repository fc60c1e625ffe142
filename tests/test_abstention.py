"""Abstention: off-topic questions are flagged as not answerable, labelled ones are not; results still come back."""

from __future__ import annotations

import json

from conftest import DATA


def _lines(name):
    return [line for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def test_off_topic_questions_are_not_answerable_but_still_get_passages(service):
    questions = _lines("offtopic_questions.txt")
    answers = [service.search(q, 3) for q in questions]
    assert all(len(a.results) == 3 for a in answers)
    assert all(0.0 <= a.confidence <= 1.0 for a in answers)
    flagged = sum(not a.answerable for a in answers) / len(answers)
    print(f"\noff-topic flagged not answerable: {flagged:.3f} of {len(answers)}")
    assert flagged >= 0.8


def test_labelled_questions_are_answerable(service):
    questions = [json.loads(line)["question"] for line in _lines("seeds_questions.jsonl")]
    answers = [service.search(q, 3) for q in questions]
    accepted = sum(a.answerable for a in answers) / len(answers)
    print(f"\nlabelled questions answerable: {accepted:.3f} of {len(answers)}")
    assert accepted >= 0.8


def test_confidence_is_higher_for_on_topic_questions_on_average(service):
    on = [service.search(json.loads(line)["question"], 1).confidence for line in _lines("seeds_questions.jsonl")]
    off = [service.search(q, 1).confidence for q in _lines("offtopic_questions.txt")]
    assert sum(on) / len(on) > sum(off) / len(off) + 0.3
