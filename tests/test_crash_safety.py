"""Crash safety: `qa index` (a full build or an update) killed with SIGKILL at random moments never leaves a broken
index behind."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import SEEDS

from qa.config import Settings
from qa.embed.encoder import load_encoder
from qa.index.indexer import build_index
from qa.index.manifest import MANIFEST_FILE
from qa.search.service import SearchService

# Slow tier (see conftest.py): kills `qa index` subprocesses mid-build.
pytestmark = pytest.mark.slow

QUESTIONS = ("Who led the research group to Guizhou?", "railway procuratorates", "minor crimes governance")
TRIALS = 24
# Each trial kills one of these: a full build, an update that merges (it hides most of the index), an update that
# adds a segment (qa.index.segments); two trials of each in turn, one killed anywhere and one inside the build.
KINDS = ("build", "update", "segment")


def _answers(index_dir, encoder):
    service = SearchService.open(Settings(index_dir=index_dir), encoder=encoder)
    return [
        [(h.citation.source, h.citation.start, h.citation.end) for h in service.search(q, 5).results] for q in QUESTIONS
    ]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """Corpus "old" (the seeds), corpus "new" (the seeds twice over, one file edited: an update that merges) and
    corpus "segment" (the seeds and one more file: an update that adds a segment)."""
    old = tmp_path_factory.mktemp("old")
    new = tmp_path_factory.mktemp("new")
    segment = tmp_path_factory.mktemp("segment")
    for path in SEEDS.glob("*.txt"):
        shutil.copy(path, old / path.name)
        shutil.copy(path, new / path.name)
        shutil.copy(path, new / f"copy-{path.name}")
        shutil.copy(path, segment / path.name)
    (new / "000_d01fc28f19d529a8.txt").write_text("Edited headline\nThis document was rewritten.", encoding="utf-8")
    (segment / "tea.txt").write_text("Green tea steeps for two minutes in water below boiling.\n", encoding="utf-8")
    return old, new, segment


def test_sigkill_at_random_moments_leaves_the_previous_or_the_new_index(corpora, tmp_path):
    old_corpus, new_corpus, segment_corpus = corpora
    targets = {"build": new_corpus, "update": new_corpus, "segment": segment_corpus}
    index_dir = tmp_path / "idx"
    defaults = Settings()
    encoder = load_encoder(precision=defaults.precision)  # what the `qa index` processes below embed with
    build = dict(chunk_size=defaults.chunk_size, chunk_overlap=defaults.chunk_overlap, embed_title=defaults.embed_title)
    build_index(old_corpus, index_dir, encoder, **build)
    old_manifest = json.loads((index_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    old_answers = _answers(index_dir, encoder)
    references, expected = {}, {}
    for corpus in (new_corpus, segment_corpus):
        references[corpus] = tmp_path / f"reference-{corpus.name}"
        build_index(corpus, references[corpus], encoder, **build)
        expected[corpus] = _answers(references[corpus], encoder)

    # How long an uninterrupted run of each kind takes here, so random kills can land anywhere in one (or just
    # after it) whatever the machine's speed.
    durations = {}
    for kind in KINDS:
        scratch = tmp_path / f"timed-{kind}"
        shutil.copytree(index_dir, scratch)
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "qa", "index", str(targets[kind]), "--index", str(scratch)]
            + (["--full"] if kind == "build" else []),
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
            check=True,
            capture_output=True,
        )
        durations[kind] = time.monotonic() - started

    rng = random.Random(20261121)
    outcomes = {(kind, left): 0 for kind in KINDS for left in ("old", "new")}
    for trial in range(TRIALS):
        # A third of the trials rebuild from scratch, a third update the old index into one set of files (the
        # edited file is embedded, the copies reuse their originals' vectors), a third add a segment to it: each
        # must be killable at any moment.
        kind = KINDS[(trial // 2) % len(KINDS)]
        corpus = targets[kind]
        process = subprocess.Popen(
            [sys.executable, "-m", "qa", "index", str(corpus), "--index", str(index_dir)]
            + (["--full"] if kind == "build" else []),
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if trial % 2 == 0:
            # Anywhere in the run, start-up included.
            time.sleep(rng.uniform(0.0, 1.1 * durations[kind]))  # a few land after the swap
        else:
            # Inside the build itself: wait for the staging directory, then a little longer (an update is short).
            deadline = time.monotonic() + 60
            while not list(tmp_path.glob(".idx.building-*")) and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 1.5 if kind == "build" else 0.5))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

        manifest = json.loads((index_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
        if manifest["created"] == old_manifest["created"] and manifest["corpus"] == old_manifest["corpus"]:
            assert _answers(index_dir, encoder) == old_answers, f"trial {trial} ({kind}): old index changed"
            outcomes[kind, "old"] += 1
        else:
            # The swap finished before the kill: the new index must be complete, and an update equal a build.
            reference = json.loads((references[corpus] / MANIFEST_FILE).read_text(encoding="utf-8"))
            assert manifest["counts"] == reference["counts"]
            # An update that adds a segment leaves more than one; the others write one set of files.
            assert (len(manifest["segments"]) > 1) == (kind == "segment"), f"trial {trial} ({kind})"
            assert _answers(index_dir, encoder) == expected[corpus], f"trial {trial} ({kind}): new index differs"
            outcomes[kind, "new"] += 1
            build_index(old_corpus, index_dir, encoder, **build)  # back to the old index for the next trial
            old_manifest = json.loads((index_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    summary = ", ".join(f"{kind} left the {left} index {n} times" for (kind, left), n in outcomes.items())
    print(f"\nSIGKILL trials: {summary}")
    # Most kills land before the swap, in builds and in updates: the property was really exercised.
    assert sum(outcomes[kind, "old"] for kind in KINDS) >= TRIALS // 2
    assert outcomes["segment", "old"] >= 1
    assert outcomes["update", "old"] >= 1

    # Whatever the kills left behind, the next build succeeds and cleans up after them.
    build_index(new_corpus, index_dir, encoder, **build)
    assert _answers(index_dir, encoder) == expected[new_corpus]
    assert not list(tmp_path.glob(".idx.building-*"))
