"""What a new user sees first: the CLI in a subprocess, run from an empty folder (no seeds/, no index)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT

from qa.cli.main import main


def run_qa(*args: str, cwd, **env: str) -> subprocess.CompletedProcess:
    """`python -m qa ARGS` from ``cwd``, with no QA_* setting inherited from the test's own environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    clean.update({"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "COLUMNS": "120", **env})
    return subprocess.run(
        [sys.executable, "-m", "qa", *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )


def test_bare_index_without_seeds_says_how_to_point_it_at_a_folder(tmp_path):
    done = run_qa("index", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert "corpus folder not found" not in done.stderr
    message = " ".join(done.stderr.split())  # click may wrap the line
    assert "no folder to index" in message and "qa index ~/notes" in message and "QA_CORPUS" in message
    assert str(tmp_path) in message
    assert list(tmp_path.iterdir()) == []  # nothing was created


@pytest.mark.slow  # runs `qa index` in a subprocess
def test_a_folder_named_by_qa_corpus_is_indexed_from_an_empty_folder(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "logs.md").write_text("# Logs\n\nRotate the logs every night with logrotate.\n", encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    done = run_qa("index", "--json", cwd=work, QA_CORPUS=str(notes))
    assert done.returncode == 0, done.stderr
    assert (work / "embeddings" / "manifest.json").is_file()


@pytest.mark.parametrize("command", [None, *sorted(main.commands)])
def test_every_help_ends_with_an_example_of_its_own_command(tmp_path, command):
    done = run_qa(*([command] if command else []), "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    heading = "Start here:" if command is None else "Example"
    assert heading in done.stdout
    examples = [line for line in done.stdout.split(heading, 1)[1].splitlines()[1:] if line.strip()]
    assert examples, done.stdout
    expected = "qa " if command is None else f"qa {command}"
    for line in examples:
        assert expected in line, line
