"""How often an index open racing rebuilds pairs one build's files with another's: file by file vs one snapshot.

    python benchmarks/open_race.py [--swaps 3000]

Builds two small indexes (told apart by every file), then swaps fresh copies of them in under one path, as
`qa index` does, while opening the index over and over two ways: the old sequence (manifest, checksums,
vectors and store each opened by path) and ``qa.index.snapshot.open_snapshot``. Prints, for each, the opens,
the mixed ones (files from two builds) and the failed ones, and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from qa.config import Settings  # noqa: E402
from qa.embed.encoder import load_encoder  # noqa: E402
from qa.errors import QAError  # noqa: E402
from qa.index.atomic import _exchange  # noqa: E402
from qa.index.indexer import build_index  # noqa: E402
from qa.index.manifest import DATABASE_FILE, VECTORS_FILE, Manifest, verify_checksums  # noqa: E402
from qa.index.snapshot import open_snapshot  # noqa: E402
from qa.index.store import StoreReader  # noqa: E402
from qa.index.vectors import VectorIndex  # noqa: E402

CORPORA = {
    "alpha": {"a.md": "# Alpha\n\nThe alpha file talks about green tea and nothing else.\n"},
    "beta": {
        "b1.md": "# Beta one\n\nTrains leave the station at noon. The timetable changes in May.\n",
        "b2.md": "# Beta two\n\nNight trains need a reservation. Sleeper cars have two berths.\n",
    },
}


def build_both(root: Path) -> dict[str, Path]:
    """The two indexes, by name."""
    encoder, defaults, built = load_encoder(), Settings(), {}
    for name, files in CORPORA.items():
        corpus = root / "corpora" / name
        corpus.mkdir(parents=True)
        for file_name, text in files.items():
            (corpus / file_name).write_text(text, encoding="utf-8")
        built[name] = root / "indexes" / name
        build_index(
            corpus,
            built[name],
            encoder,
            chunk_size=defaults.chunk_size,
            chunk_overlap=defaults.chunk_overlap,
            embed_title=defaults.embed_title,
        )
    return built


def swap_forever(builds: list[Path], target: Path, stop: threading.Event, counter: list[int]) -> None:
    """Swap fresh hard-linked copies of the builds in under ``target`` until ``stop``; count in ``counter``."""
    while not stop.is_set():
        fresh = target.with_name(f"fresh-{counter[0]}")
        fresh.mkdir()
        for path in builds[counter[0] % 2].iterdir():
            os.link(path, fresh / path.name)
        _exchange(fresh, target)
        shutil.rmtree(fresh)
        counter[0] += 1
        stop.wait(0.001)


def by_path(target: Path):
    """The old sequence: each file opened by path in its own step."""
    manifest = Manifest.read(target)
    verify_checksums(target, manifest)
    return manifest, VectorIndex.load(target / VECTORS_FILE), StoreReader(target / DATABASE_FILE)


def by_snapshot(target: Path):
    """The snapshot: every file through the one directory."""
    snapshot = open_snapshot(target)
    return snapshot.manifest, snapshot.vectors, snapshot.store


def race(opener, builds: dict[str, Path], root: Path, swaps: int) -> dict:
    """Open with ``opener`` until ``swaps`` swaps have happened; count mixed and failed opens."""
    target = root / opener.__name__ / "index"
    target.parent.mkdir()
    shutil.copytree(builds["alpha"], target)
    documents = {frozenset(files): name for name, files in CORPORA.items()}
    counts = {len(VectorIndex.load(path / VECTORS_FILE)): name for name, path in builds.items()}
    stop, counter = threading.Event(), [0]
    swapper = threading.Thread(target=swap_forever, args=(list(builds.values()), target, stop, counter))
    opens = mixed = failed = 0
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    swapper.start()
    try:
        while counter[0] < swaps:
            try:
                manifest, vectors, store = opener(target)
                owners = {
                    Path(manifest.corpus["root"]).name,
                    counts[len(vectors)],
                    documents.get(frozenset(d for d, _, _ in store.documents()), "?"),
                }
            except (QAError, OSError):
                failed += 1
                continue
            opens += 1
            mixed += len(owners) != 1
    finally:
        stop.set()
        swapper.join()
        sys.setswitchinterval(interval)
    return {"opener": opener.__name__, "swaps": counter[0], "opens": opens, "mixed": mixed, "failed": failed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--swaps", type=int, default=3000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="qa-open-race-"))
    try:
        builds = build_both(root)
        results = [race(opener, builds, root, args.swaps) for opener in (by_path, by_snapshot)]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for r in results:
        print(
            f"{r['opener']:12} {r['opens']:6} opens during {r['swaps']} swaps: {r['mixed']} mixed, {r['failed']} failed"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
