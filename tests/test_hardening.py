"""Hardening: promises the red team found broken (issue 16), each held by a test that failed before the fix."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa.atomic import _exchange, staging_directory
from qa.cli import main
from qa.config import Settings
from qa.errors import BuildInProgress, IndexCorrupt
from qa.indexer import build_index
from qa.manifest import Manifest, verify_checksums
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


# ---------------------------------------------------------------- 1: a symlinked --index shares the build lock

@pytest.mark.parametrize("hold, then", [("link", "target"), ("target", "link")])
def test_a_link_and_its_target_are_one_index_to_the_build_lock(tmp_path, hold, then):
    target = tmp_path / "real" / "index"
    target.parent.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)
    spelling = {"link": link, "target": target}
    with staging_directory(spelling[hold]):
        with pytest.raises(BuildInProgress):
            with staging_directory(spelling[then]):
                pass


def test_a_build_through_a_link_replaces_the_target_and_keeps_the_link(two_builds, tmp_path, encoder):
    target = tmp_path / "real" / "index"
    target.parent.mkdir()
    shutil.copytree(two_builds["alpha"], target)
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in CORPORA["beta"].items():
        (corpus / name).write_text(text, encoding="utf-8")
    _build(corpus, link, encoder)
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert _build_name(Manifest.read(target).corpus["root"]) == "corpus"
    assert sorted(p.name for p in target.parent.iterdir()) == [".index.lock", "index"]  # nothing left beside it


# ---------------------------------------------------------------- 9: a manifest must vouch for every file

@pytest.mark.parametrize("keep", [(), ("vectors.faiss",), ("store.sqlite3",), None])
def test_a_manifest_without_every_checksum_is_refused(two_builds, tmp_path, keep):
    index_dir = tmp_path / "index"
    shutil.copytree(two_builds["alpha"], index_dir)
    manifest_path = index_dir / "manifest.json"
    data = json.loads(manifest_path.read_text(encoding="utf-8"))
    # None: "checksums" is not even an object.
    data["checksums"] = [] if keep is None else {name: data["checksums"][name] for name in keep}
    manifest_path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(IndexCorrupt, match="checksum"):
        open_snapshot(index_dir)
    if keep is not None:
        with pytest.raises(IndexCorrupt, match="lists no checksum for"):
            verify_checksums(index_dir, Manifest.read(index_dir))
    result = CliRunner().invoke(main, ["info", "--index", str(index_dir)])
    assert result.exit_code == 1 and "error: " in result.output and "checksum" in result.output
