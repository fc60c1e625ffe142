"""The Python API (`from qa import Index`), used exactly as a user would: scripts run in fresh processes, over the
real model, FAISS and SQLite. A fresh process is also the only honest place to see which modules a call imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT

QUESTION = "Which railway cases does the Guizhou procuratorate handle?"


def run_script(script: str, cwd: Path | None = None) -> dict:
    """Run ``script`` in a fresh interpreter with this checkout on the path; its last stdout line, as JSON."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_qa_loads_no_index_model_or_numerical_code():
    found = run_script("""
        import json, sys
        import qa
        heavy = ["numpy", "faiss", "torch", "onnxruntime", "qa.search.service", "qa.library", "fastapi"]
        print(json.dumps({"loaded": [name for name in heavy if name in sys.modules], "version": qa.__version__}))
    """)
    assert found == {"loaded": [], "version": "0.1.0"}


def test_open_and_search_cites_the_exact_text_and_imports_no_torch(seeds_index):
    found = run_script(f"""
        import json, sys
        from qa import Index
        index = Index.open({str(seeds_index)!r})
        answer = index.search({QUESTION!r}, top_k=3)
        exact = [
            index.document(hit.citation.source).text[hit.citation.start:hit.citation.end] == hit.text
            for hit in answer.results
        ]
        print(json.dumps({{
            "torch": "torch" in sys.modules, "answer": answer.as_dict(), "exact": exact, "info": index.info(),
        }}))
    """)
    assert found["torch"] is False
    answer = found["answer"]
    assert answer["question"] == QUESTION and answer["mode"] == "hybrid" and len(answer["results"]) == 3
    assert found["exact"] == [True, True, True]
    assert "railway" in answer["results"][0]["text"].lower()
    assert found["info"]["index_dir"] == str(seeds_index.absolute())
    assert found["info"]["counts"]["documents"] == len(list((ROOT / "seeds").iterdir()))


def test_errors_a_caller_can_cause_are_qa_errors_of_the_right_kind(seeds_index, tmp_path):
    found = run_script(f"""
        import json
        import qa
        from qa import Index

        def kind(call):
            try:
                call()
            except qa.QAError as exc:
                return [type(exc).__name__, exc.status_code, str(exc)]
            return None

        index = Index.open({str(seeds_index)!r})
        print(json.dumps({{
            "missing index": kind(lambda: Index.open({str(tmp_path / "nowhere")!r})),
            "empty question": kind(lambda: index.search("   ")),
            "top_k": kind(lambda: index.search("railway", top_k=0)),
            "mode": kind(lambda: index.search("railway", mode="fuzzy")),
            "date": kind(lambda: index.search("railway", after="last year")),
            "document": kind(lambda: index.document("no-such.txt")),
            "corpus": kind(lambda: Index.build({str(tmp_path / "no-corpus")!r}, {str(tmp_path / "idx")!r})),
        }}))
    """)
    assert found["missing index"][:2] == ["IndexNotFound", 503]
    assert found["empty question"] == ["InvalidRequest", 422, "question is empty"]
    assert found["top_k"][:2] == ["InvalidRequest", 422] and "top_k" in found["top_k"][2]
    assert found["mode"][:2] == ["InvalidRequest", 422] and "mode" in found["mode"][2]
    assert found["date"][:2] == ["InvalidRequest", 422] and "ISO date" in found["date"][2]
    assert found["document"][:2] == ["DocumentNotFound", 404]
    assert found["corpus"][0] == "CorpusError"


CORPUS = {
    "ops/logs.md": "---\ntitle: Log rotation\ndate: 2024-05-02\n---\n\n# Log rotation\n\n"
    "Rotate the service logs with logrotate every night; keep fourteen compressed files.\n",
    "ops/backup.md": "---\ntitle: Backups\ndate: 2023-01-10\n---\n\n# Backups\n\n"
    "Rotate the backup tapes weekly and keep the logs of every backup run for a year.\n",
    "notes/garden.txt": "Garden notes\n\nThe tomatoes need water every morning in July; rotate the crops yearly.\n",
}


@pytest.mark.slow  # loads the real model
def test_build_then_search_with_source_and_date_filters(tmp_path):
    corpus = tmp_path / "docs"
    for name, text in CORPUS.items():
        (corpus / name).parent.mkdir(parents=True, exist_ok=True)
        (corpus / name).write_text(text, encoding="utf-8")
    # An undated file is dated by its modification time: put it well before the date filters below.
    os.utime(corpus / "notes" / "garden.txt", (1_500_000_000, 1_500_000_000))
    found = run_script(
        """
        import json
        from qa import Index
        index = Index.build("docs", "docs-index")
        question = "how do I rotate the logs?"
        sources = lambda answer: [hit.citation.source for hit in answer.results]
        print(json.dumps({
            "report": [index.report.documents, index.report.update],
            "all": sources(index.search(question, top_k=5)),
            "ops": sources(index.search(question, top_k=5, source="ops/*")),
            "after": sources(index.search(question, top_k=5, mode="keyword", after="2024")),
            "before": sources(index.search(question, top_k=5, source="ops/*", before="2023-12-31")),
            "reopened": sources(Index.open("docs-index").search(question, top_k=1)),
        }))
    """,
        cwd=tmp_path,
    )
    assert found["report"] == [3, False]
    assert found["all"][0] == "ops/logs.md" and set(found["all"]) == set(CORPUS)
    assert set(found["ops"]) == {"ops/logs.md", "ops/backup.md"}
    assert found["after"] == ["ops/logs.md"]
    assert found["before"] == ["ops/backup.md"]
    assert found["reopened"] == ["ops/logs.md"]


def test_answer_as_dict_is_the_http_search_body(service, seeds_index):
    from fastapi.testclient import TestClient

    from qa import Index
    from qa.api.app import create_app
    from qa.config import Settings

    answer = Index(service).search(QUESTION, top_k=2, source="00*", after="2024")
    with TestClient(create_app(Settings(index_dir=seeds_index), service=service)) as client:
        body = client.post("/search", json={"question": QUESTION, "top_k": 2, "source": "00*", "after": "2024"}).json()
    mine = answer.as_dict()
    assert list(mine) == list(body)
    assert {**mine, "took_ms": 0} == {**body, "took_ms": 0}


@pytest.mark.parametrize("name", ["Index", "Answer", "Hit", "Citation", "QAError", "InvalidRequest", "IndexNotFound"])
def test_public_names_are_importable_from_qa(name):
    import qa

    assert name in qa.__all__ and getattr(qa, name).__name__ == name


@pytest.mark.slow  # loads the real model
def test_the_example_in_docs_python_md_runs_as_written(tmp_path):
    page = (ROOT / "docs" / "python.md").read_text(encoding="utf-8")
    example = page.split("```python\n", 1)[1].split("```", 1)[0]
    for name, text in CORPUS.items():
        (tmp_path / "docs" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "docs" / name).write_text(text, encoding="utf-8")
    found = run_script(
        example + "\nimport json\nprint(json.dumps([hit.citation.source for hit in answer.results]))\n", cwd=tmp_path
    )
    assert found == ["ops/logs.md"]
