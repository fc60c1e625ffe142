"""Hardening: promises the red team found broken (issue 16), each held by a test that failed before the fix."""

from __future__ import annotations

import os
import shutil
import sys
import threading
from pathlib import Path

import pytest

from qa.atomic import _exchange
from qa.config import Settings
from qa.indexer import build_index
from qa.search import SearchService
from qa.snapshot import open_snapshot

# Two builds told apart by every file: the manifest's corpus root, the vector count and the store's documents.
CORPORA = {
    "alpha": {"a.md": "# Alpha\n\nThe alpha file talks about green tea and nothing else.\n"},
    "beta": {
        "b1.md": "# Beta one\n\nTrains leave the station at noon. The timetable changes in May.\n",
        "b2.md": "# Beta two\n\nNight trains need a reservation. Sleeper cars have two berths.\n",
        "b3.md": "# Beta three\n\nThe railway museum opens on Sundays.\n",
    },
}
SWAPS = 10_000


def _build(corpus: Path, index_dir: Path, encoder) -> None:
    defaults = Settings()
    build_index(corpus, index_dir, encoder, chunk_size=defaults.chunk_size, chunk_overlap=defaults.chunk_overlap,
                embed_title=defaults.embed_title)


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory, encoder) -> dict[str, Path]:
    """Two small prebuilt indexes, by name. Treat as read-only."""
    root = tmp_path_factory.mktemp("two-builds")
    built = {}
    for name, files in CORPORA.items():
        corpus = root / "corpora" / name
        corpus.mkdir(parents=True)
        for file_name, text in files.items():
            (corpus / file_name).write_text(text, encoding="utf-8")
        built[name] = root / "indexes" / name
        _build(corpus, built[name], encoder)
    return built


def _build_name(manifest_root: str) -> str:
    return Path(manifest_root).name


# ---------------------------------------------------------------- 2: a reload never opens a mixed index

class _Swapper(threading.Thread):
    """Swaps fresh copies of two builds in under one path, the way `qa index` does, until told to stop.

    Each swap brings in a new directory (hard links to one build's files) by renameat2(RENAME_EXCHANGE) and
    deletes the directory it replaced, as ``qa.atomic.replace_directory`` does.
    """

    def __init__(self, builds: dict[str, Path], target: Path, pause: float = 0.0001) -> None:
        super().__init__(daemon=True)
        # A pause about as long as part of an open, so swaps keep landing inside opens without starving them.
        self.pause = pause
        self.builds, self.target = list(builds.values()), target
        self.swaps = 0
        self.stop = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                source = self.builds[self.swaps % 2 == 0]
                fresh = self.target.with_name(f"fresh-{self.swaps}")
                fresh.mkdir()
                for path in source.iterdir():
                    os.link(path, fresh / path.name)
                assert _exchange(fresh, self.target)
                shutil.rmtree(fresh)  # now the replaced directory
                self.swaps += 1
                self.stop.wait(self.pause)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.failure = exc


def _owner_of_each_file(snapshot_manifest, vectors, store, builds_by_count) -> set[str]:
    """Which build each of manifest, vectors and store came from."""
    from_manifest = _build_name(snapshot_manifest.corpus["root"])
    from_vectors = builds_by_count[len(vectors)]
    documents = {doc_id for doc_id, _, _ in store.documents()}
    from_store = "alpha" if documents == set(CORPORA["alpha"]) else "beta" if documents == set(CORPORA["beta"]) else "?"
    return {from_manifest, from_vectors, from_store}


def _chunk_counts(builds) -> dict[int, str]:
    counts = {}
    for name, path in builds.items():
        snapshot = open_snapshot(path)
        counts[len(snapshot.vectors)] = name
        snapshot.store.close()
    assert len(counts) == 2, "the two builds must differ in passage count"
    return counts


def test_opens_racing_10000_swaps_always_pair_one_builds_files(two_builds, tmp_path):
    target = tmp_path / "live" / "index"
    target.parent.mkdir()
    shutil.copytree(two_builds["alpha"], target)
    by_count = _chunk_counts(two_builds)
    swapper = _Swapper(two_builds, target)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # hand the GIL over often, so swaps land between the steps of an open
    opens, mixed, seen = 0, [], set()
    swapper.start()
    try:
        while swapper.swaps < SWAPS and swapper.is_alive():
            snapshot = open_snapshot(target)
            owners = _owner_of_each_file(snapshot.manifest, snapshot.vectors, snapshot.store, by_count)
            snapshot.store.close()
            opens += 1
            seen |= owners
            if len(owners) != 1:
                mixed.append(owners)
    finally:
        swapper.stop.set()
        swapper.join(timeout=30)
        sys.setswitchinterval(interval)
    print(f"\n{opens} opens during {swapper.swaps} swaps: {len(mixed)} mixed")
    assert swapper.failure is None
    assert swapper.swaps >= SWAPS and opens >= 500
    assert mixed == [] and seen == {"alpha", "beta"}


def test_search_service_opens_racing_swaps_are_never_mixed(two_builds, tmp_path, encoder):
    target = tmp_path / "live" / "index"
    target.parent.mkdir()
    shutil.copytree(two_builds["beta"], target)
    by_count = _chunk_counts(two_builds)
    swapper = _Swapper(two_builds, target)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    opens, problems = 0, []
    swapper.start()
    try:
        while swapper.swaps < 1000 and swapper.is_alive():
            try:
                service = SearchService.open(Settings(index_dir=target), encoder=encoder)
            except Exception as exc:  # noqa: BLE001 - every failed open is a problem here
                problems.append(repr(exc))
                continue
            owners = _owner_of_each_file(service.manifest, service.dense.vectors, service.store, by_count)
            service.close()
            opens += 1
            if len(owners) != 1:
                problems.append(f"mixed: {owners}")
    finally:
        swapper.stop.set()
        swapper.join(timeout=30)
        sys.setswitchinterval(interval)
    print(f"\n{opens} service opens during {swapper.swaps} swaps: {len(problems)} problems")
    assert swapper.failure is None and opens >= 100
    assert problems == []
