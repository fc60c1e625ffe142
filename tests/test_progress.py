"""Progress of long jobs: rate and time left on a terminal, a line every few seconds elsewhere, JSON lines on
request; `qa index` names what it added, changed and removed."""

from __future__ import annotations

import io
import json
import shutil

import pytest
from conftest import SEEDS
from test_cli import run_qa

from qa.cli.progress import Progress


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_a_plain_line_is_written_every_interval_and_at_the_end():
    out, clock = io.StringIO(), Clock()
    progress = Progress("auto", out, clock=clock)
    assert progress.style == "plain"
    progress("embedding", 0, 100)  # a stage is reported as it starts
    for done in range(1, 101):
        clock.now += 0.5  # 2 items a second: 50 s in all
        progress("embedding", done, 100)
    lines = out.getvalue().splitlines()
    assert len(lines) == 6  # as it starts, at 10, 20, 30 and 40 s, and at the end
    assert lines[0] == "embedding: 0/100 (0%)"
    assert lines[2] == "embedding: 40/100 (40%), 2.0/s, 30s left"
    assert lines[-1] == "embedding: 100/100 (100%), 2.0/s, took 50s"


def test_on_a_terminal_one_line_is_redrawn_with_rate_and_time_left():
    out, clock = Terminal(), Clock()
    progress = Progress("auto", out, clock=clock)
    assert progress.style == "bar"
    progress("chunking", 0, 120)
    clock.now += 30
    progress("chunking", 30, 120)
    clock.now += 90
    progress("chunking", 120, 120)
    text = out.getvalue()
    assert "\r\x1b[Kchunking: 30/120 (25%), 1.0/s, 1m30s left" in text
    assert text.endswith("chunking: 120/120 (100%), 1.0/s, took 2m00s\n")


def test_json_progress_is_one_object_per_line():
    out, clock = io.StringIO(), Clock()
    progress = Progress("json", out, clock=clock)
    progress("embedding", 0, 16)
    clock.now += 4
    progress("embedding", 4, 16)  # within the interval since the report before: not written
    clock.now += 8
    progress("embedding", 12, 16)
    clock.now += 4
    progress("embedding", 16, 16)  # the end of a stage is always written
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["done"] for r in records] == [0, 12, 16]
    assert records[0]["per_s"] is None and records[0]["left_s"] is None
    assert records[1] == {"stage": "embedding", "done": 12, "total": 16, "elapsed_s": 12.0, "per_s": 1.0, "left_s": 4.0}
    assert records[2]["left_s"] == 0.0


def test_unknown_progress_style_is_refused():
    with pytest.raises(ValueError, match="progress style"):
        Progress("loud")


@pytest.fixture()
def corpus(tmp_path):
    target = tmp_path / "corpus"
    shutil.copytree(SEEDS, target)
    return target


@pytest.mark.slow  # runs `qa index` in subprocesses
def test_index_off_a_terminal_reports_each_stage_and_names_what_changed(corpus, tmp_path):
    index_dir = tmp_path / "index"
    first = run_qa("index", corpus, "--index", index_dir, "--progress", "json", "--json")
    assert first.returncode == 0, first.stderr
    stages = {json.loads(line)["stage"] for line in first.stderr.splitlines() if line.startswith("{")}
    assert stages == {"chunking", "embedding"}
    report = json.loads(first.stdout)
    assert sorted(report["added_documents"]) == sorted(p.name for p in SEEDS.iterdir() if p.suffix == ".txt")

    changed = sorted(corpus.iterdir())[1]
    changed.write_text(changed.read_text(encoding="utf-8") + "\nA new closing line.\n", encoding="utf-8")
    sorted(corpus.iterdir())[0].unlink()
    (corpus / "new.md").write_text("# Added\n\nA document that was not there before.\n", encoding="utf-8")
    second = run_qa("index", corpus, "--index", index_dir, "--verbose")
    assert second.returncode == 0, second.stderr
    assert f"changed: {changed.name}" in second.stderr.splitlines()
    assert "added: new.md" in second.stderr.splitlines()
    assert any(line.startswith("removed: 000_") for line in second.stderr.splitlines())
    assert any(line.startswith("embedding: ") and "took" in line for line in second.stderr.splitlines())


@pytest.mark.slow  # runs `qa index` in a subprocess
def test_the_progress_style_is_a_setting_its_variable_chooses(corpus, tmp_path):
    result = run_qa("index", corpus, "--index", tmp_path / "index", env={"QA_PROGRESS": "json"})
    assert result.returncode == 0, result.stderr
    stages = {json.loads(line)["stage"] for line in result.stderr.splitlines() if line.startswith("{")}
    assert stages == {"chunking", "embedding"}
    refused = run_qa("index", corpus, "--index", tmp_path / "index", env={"QA_PROGRESS": "loud"})
    assert refused.returncode != 0 and "QA_PROGRESS" in refused.stderr
