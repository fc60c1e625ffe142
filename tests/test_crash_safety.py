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
from qa.encoder import load_encoder
from qa.indexer import build_index
from qa.manifest import MANIFEST_FILE
from qa.search import SearchService

QUESTIONS = ("Who led the research group to Guizhou?", "railway procuratorates", "minor crimes governance")
TRIALS = 20


def _answers(index_dir, encoder):
    service = SearchService.open(Settings(index_dir=index_dir), encoder=encoder)
    return [[(h.citation.source, h.citation.start, h.citation.end) for h in service.search(q, 5).results] for q in QUESTIONS]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """Corpus "old" (the seeds) and corpus "new" (the seeds twice over, one file edited): a build and an update."""
    old = tmp_path_factory.mktemp("old")
    new = tmp_path_factory.mktemp("new")
    for path in SEEDS.glob("*.txt"):
        shutil.copy(path, old / path.name)
        shutil.copy(path, new / path.name)
        shutil.copy(path, new / f"copy-{path.name}")
    (new / "000_d01fc28f19d529a8.txt").write_text("Edited headline\nThis document was rewritten.", encoding="utf-8")
    return old, new


def test_sigkill_at_random_moments_leaves_the_previous_or_the_new_index(corpora, tmp_path):
    old_corpus, new_corpus = corpora
    index_dir = tmp_path / "idx"
    defaults = Settings()
    encoder = load_encoder(precision=defaults.precision)  # what the `qa index` processes below embed with
    build = dict(chunk_size=defaults.chunk_size, chunk_overlap=defaults.chunk_overlap, embed_title=defaults.embed_title)
    build_index(old_corpus, index_dir, encoder, **build)
    old_manifest = json.loads((index_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    old_answers = _answers(index_dir, encoder)
    reference = tmp_path / "reference"
    build_index(new_corpus, reference, encoder, **build)
    new_answers = _answers(reference, encoder)

    # How long an uninterrupted run of each kind takes here, so random kills can land anywhere in one (or just
    # after it) whatever the machine's speed.
    durations = {}
    for kind in ("build", "update"):
        scratch = tmp_path / f"timed-{kind}"
        shutil.copytree(index_dir, scratch)
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "qa", "index", str(new_corpus), "--index", str(scratch)]
            + (["--full"] if kind == "build" else []),
            env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=True, capture_output=True,
        )
        durations[kind] = time.monotonic() - started

    rng = random.Random(20261121)
    outcomes = {(kind, left): 0 for kind in ("build", "update") for left in ("old", "new")}
    for trial in range(TRIALS):
        # Half the trials rebuild from scratch, half update the old index (the edited file is embedded, the
        # copies reuse their originals' vectors): both must be killable at any moment.
        kind = "build" if trial % 4 < 2 else "update"
        process = subprocess.Popen(
            [sys.executable, "-m", "qa", "index", str(new_corpus), "--index", str(index_dir)]
            + (["--full"] if kind == "build" else []),
            env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
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
            assert manifest["counts"] == json.loads((reference / MANIFEST_FILE).read_text(encoding="utf-8"))["counts"]
            assert _answers(index_dir, encoder) == new_answers, f"trial {trial} ({kind}): new index differs"
            outcomes[kind, "new"] += 1
            build_index(old_corpus, index_dir, encoder, **build)  # back to the old index for the next trial
            old_manifest = json.loads((index_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    summary = ", ".join(f"{kind} left the {left} index {n} times" for (kind, left), n in outcomes.items())
    print(f"\nSIGKILL trials: {summary}")
    # Most kills land before the swap, in builds and in updates: the property was really exercised.
    assert outcomes["build", "old"] + outcomes["update", "old"] >= TRIALS // 2
    assert outcomes["update", "old"] >= 1

    # Whatever the kills left behind, the next build succeeds and cleans up after them.
    build_index(new_corpus, index_dir, encoder, **build)
    assert _answers(index_dir, encoder) == new_answers
    assert not list(tmp_path.glob(".idx.building-*"))
