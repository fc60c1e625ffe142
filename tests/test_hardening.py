"""Hardening: promises the red team found broken (issue 16), each held by a test that failed before the fix."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from conftest import free_port, serving, wait_for_server

from qa.cli.main import main
from qa.cli.render import render_answer, safe_line, safe_text
from qa.config import Settings
from qa.errors import BuildInProgress, ConfigError, IndexCorrupt
from qa.index.atomic import _exchange, staging_directory
from qa.index.indexer import build_index
from qa.index.manifest import Manifest, verify_checksums
from qa.index.snapshot import open_snapshot
from qa.search.service import Answer, Citation, Highlight, Hit, SearchService

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
    build_index(
        corpus,
        index_dir,
        encoder,
        chunk_size=defaults.chunk_size,
        chunk_overlap=defaults.chunk_overlap,
        embed_title=defaults.embed_title,
    )


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
    deletes the directory it replaced, as ``qa.index.atomic.replace_directory`` does.
    """

    def __init__(self, builds: dict[str, Path], target: Path, pause: float = 0.001) -> None:
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
    sys.setswitchinterval(1e-4)  # hand the GIL over often, so swaps land between the steps of an open
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
    sys.setswitchinterval(1e-4)
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


@pytest.mark.parametrize("keep", [(), ("vectors.f32", "sentences.i8"), ("store.sqlite3",), None])
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


# ---------------------------------------------------------------- 3: `qa serve` starts without a usable index


def _swap_in(good: Path, index_dir: Path) -> None:
    """Put a copy of ``good`` at ``index_dir`` the way a build does (whole directory, one rename)."""
    staged = index_dir.with_name("staged")
    shutil.copytree(good, staged)
    if index_dir.exists():
        assert _exchange(staged, index_dir)
        shutil.rmtree(staged)
    else:
        staged.rename(index_dir)


def _damage_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("state, reason", [("missing", "no index at"), ("one byte damaged", "checksum")])
def test_qa_serve_starts_without_a_usable_index_says_why_and_recovers(two_builds, tmp_path, state, reason):
    index_dir = tmp_path / "index"
    if state != "missing":
        shutil.copytree(two_builds["alpha"], index_dir)
        _damage_one_byte(index_dir / "store.sqlite3")
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "QA_RELOAD_INTERVAL": "0.2", "QA_LOG_LEVEL": "warning"}
    env.pop("QA_API_KEY", None)
    stderr_path = tmp_path / "stderr.log"
    url = f"http://127.0.0.1:{port}"
    with open(stderr_path, "w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "qa", "serve", "--no-build", "--index", str(index_dir), "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
        try:
            with open(stderr_path, encoding="utf-8") as log:
                process.stderr = log  # for wait_for_server's message if the server dies
                wait_for_server(url, process)
            health = httpx.get(f"{url}/health", timeout=10).json()
            assert health["status"] == "unavailable" and health["index_loaded"] is False
            assert reason in health["error"]
            search = httpx.get(f"{url}/search", params={"q": "green tea"}, timeout=10)
            assert search.status_code == 503 and reason in search.json()["message"]
            _swap_in(two_builds["alpha"], index_dir)
            deadline = time.monotonic() + 120
            while not httpx.get(f"{url}/health", timeout=10).json()["index_loaded"]:
                assert time.monotonic() < deadline and process.poll() is None, "never picked up the good index"
                time.sleep(0.2)
            search = httpx.get(f"{url}/search", params={"q": "green tea", "top_k": 1}, timeout=60)
            assert search.status_code == 200 and search.json()["results"][0]["citation"]["source"] == "a.md"
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert "Serving no index yet" in stderr_path.read_text(encoding="utf-8")


# ---------------------------------------------------------------- 4: filter values are bounded


@pytest.fixture(scope="module")
def alpha_client(two_builds, encoder):
    from fastapi.testclient import TestClient

    from qa.api.app import create_app

    service = SearchService.open(Settings(index_dir=two_builds["alpha"]), encoder=encoder)
    with TestClient(create_app(Settings(index_dir=two_builds["alpha"]), service=service)) as client:
        yield client


@pytest.mark.parametrize(
    "source, message",
    [
        ("a" * 60_000, "source is 60000 characters long; the limit is 1024"),
        ("x" * 1025, "source is 1025 characters long"),
        ("*" * 17, "source holds 17 '*' wildcards; the limit is 16"),
        ("a*" * 40, "wildcards; the limit is 16"),
    ],
)
def test_an_oversized_source_glob_is_a_422_not_a_500(alpha_client, source, message):
    for response in (
        alpha_client.post("/search", json={"question": "green tea", "source": source}),
        alpha_client.get("/search", params={"q": "green tea", "source": source}),
    ):
        assert response.status_code == 422, response.text[:200]
        assert message in response.json()["message"]


def test_a_glob_at_the_limits_is_answered(alpha_client):
    source = "*" * 16 + "a" * (1024 - 16 - 4) + ".md"
    assert alpha_client.post("/search", json={"question": "green tea", "source": source[-1024:]}).status_code == 200


def test_a_long_date_is_refused_without_being_echoed_whole(alpha_client):
    response = alpha_client.post("/search", json={"question": "green tea", "after": "2" * 50_000})
    assert response.status_code == 422 and len(response.json()["message"]) < 200


def test_qa_ask_with_an_oversized_source_prints_one_error_line(two_builds):
    args = ["ask", "green tea", "--index", str(two_builds["alpha"]), "--source", "a" * 60_000]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.output == "error: source is 60000 characters long; the limit is 1024\n"


# ---------------------------------------------------------------- 10: nothing printed for a terminal can drive it

ESCAPES = "\x1b[2J\x1b]0;owned\x07\x9b31m\r\b"


def _hit(text: str, source: str, title: str) -> Hit:
    citation = Citation(
        source=source,
        title=title,
        date="2024-01-01",
        date_source="text",
        section=None,
        anchor=None,
        start=0,
        end=len(text),
        line_start=1,
        line_end=text.count("\n") + 1,
        page=None,
        page_end=None,
        highlight=[Highlight(0, 5)],
    )
    return Hit(rank=1, score=0.5, text=text, citation=citation)


@pytest.mark.parametrize("color", [False, True])
def test_rendered_answers_escape_control_characters_but_keep_the_terminals_own_styling(color):
    hit = _hit(f"Green{ESCAPES} tea\n\tsteeps.", f"evil{ESCAPES}\nwarning: forged.md", f"Title{ESCAPES}")
    answer = Answer(question="tea", mode="hybrid", answerable=True, confidence=0.9, results=[hit], took_ms=1.0)
    shown = render_answer(answer, color=color)
    without_styling = shown.replace("\x1b[1m", "").replace("\x1b[0m", "")
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f]", without_styling)
    assert "\\x1b[2J" in shown and "\\x9b31m" in shown and "\\x07" in shown
    citation = [line for line in shown.splitlines() if line.startswith("   -- ")]
    assert len(citation) == 1 and "evil\\x1b[2J" in citation[0] and "\\nwarning: forged.md" in citation[0]
    assert ("\x1b[1m" in shown) == color


def test_safe_text_keeps_newlines_and_tabs_and_safe_line_does_not():
    assert safe_text("a\n\tb\x1b") == "a\n\tb\\x1b"
    assert safe_line("a\n\tb\x1b\u202e") == "a\\n\\tb\\x1b\\u202e"
    assert safe_line("plain é 中文") == "plain é 中文"


@pytest.fixture(scope="module")
def hostile_index(tmp_path_factory):
    """An index of a corpus whose names, title and text hold terminal escapes, built with `qa index`."""
    root = tmp_path_factory.mktemp("hostile-names")
    corpus = root / "corpus"
    corpus.mkdir()
    text = f"# Tea {ESCAPES}\n\nGreen tea {ESCAPES} steeps for two minutes.\n"
    (corpus / f"evil{ESCAPES[:8]}.md").write_text(text, encoding="utf-8")
    (corpus / f"copy{ESCAPES[:8]}.md").write_text(text, encoding="utf-8")  # an alias: cited on `also in:` lines
    (corpus / "empty\nwarning: skipped forged.md: looks real.md").write_text("", encoding="utf-8")
    result = CliRunner().invoke(main, ["index", str(corpus), "--index", str(root / "index"), "--verbose"])
    assert result.exit_code == 0, result.output
    return root / "index", result.output


@pytest.mark.slow  # hostile_index builds with the real model
def test_qa_index_warnings_cannot_be_forged_by_a_file_name(hostile_index):
    _, output = hostile_index
    warnings = [line for line in output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and warnings[0].startswith("warning: skipped empty\\nwarning: skipped forged.md")


@pytest.mark.slow  # hostile_index builds with the real model
def test_qa_index_names_added_documents_without_raw_escapes(hostile_index):
    _, output = hostile_index
    added = [line for line in output.splitlines() if line.startswith("added: ")]
    assert added == ["added: copy\\x1b[2J\\x1b]0;.md"]  # the copy sorts first; the other is its alias
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f]", output), output


@pytest.mark.slow  # hostile_index builds with the real model
def test_qa_info_and_ask_print_no_raw_escapes_and_json_stays_exact(hostile_index):
    index_dir, _ = hostile_index
    for args in (["info"], ["ask", "green tea"]):
        output = CliRunner().invoke(main, [*args, "--index", str(index_dir)]).output
        assert "\\x1b[2J" in output
        assert args == ["info"] or "also in: evil\\x1b[2J" in output  # the alias's name, escaped too
        assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f]", output), output
    exact = json.loads(CliRunner().invoke(main, ["ask", "green tea", "--json", "--index", str(index_dir)]).output)
    assert ESCAPES in exact["results"][0]["text"]


# ---------------------------------------------------------------- 13: HEAD /health, relative redirects, no path

KEY = "k" * 24


def _app(index_dir: Path, encoder, **settings):
    from qa.api.app import create_app

    service = SearchService.open(Settings(index_dir=index_dir), encoder=encoder)
    return create_app(Settings(index_dir=index_dir, **settings), service=service)


@pytest.mark.parametrize("api_key", [None, KEY])
def test_head_health_is_200_with_no_body_over_http(two_builds, encoder, api_key):
    with serving(_app(two_builds["alpha"], encoder, api_key=api_key)) as url:
        response = httpx.head(f"{url}/health", timeout=10)
    assert response.status_code == 200 and response.content == b""


def test_trailing_slash_redirect_is_relative_and_never_names_the_clients_host(alpha_client):
    response = alpha_client.get("/health/?x=1", headers={"Host": "evil.example"}, follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == "/health?x=1"
    assert alpha_client.get("http://testserver//evil.example/", follow_redirects=False).status_code == 404
    assert alpha_client.get("/nothing/", follow_redirects=False).status_code == 404


def test_health_shows_the_index_path_only_to_callers_with_the_key(two_builds, encoder):
    from fastapi.testclient import TestClient

    with TestClient(_app(two_builds["alpha"], encoder, api_key=KEY)) as client:
        stranger = client.get("/health").json()
        holder = client.get("/health", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert stranger["status"] == "ok" and stranger["index_dir"] is None
    assert holder["index_dir"] == str(two_builds["alpha"].absolute())
    assert str(two_builds["alpha"].parent) not in json.dumps(stranger)


def test_health_error_names_no_path_to_a_stranger(tmp_path):
    from fastapi.testclient import TestClient

    from qa.api.app import create_app

    index_dir = tmp_path / "secret-place" / "index"
    with TestClient(create_app(Settings(index_dir=index_dir, api_key=KEY))) as client:
        stranger = client.get("/health").json()
        holder = client.get("/health", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert "secret-place" not in json.dumps(stranger) and "no index at <index>" in stranger["error"]
    assert str(index_dir) in holder["error"]


# ---------------------------------------------------------------- 7: a replaced index's files are closed


def _open_store_files(under: Path) -> list[str]:
    """This process's open descriptors on a store file below ``under`` (deleted ones included)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(under)) and "store.sqlite3" in target:
            found.append(target)
    return found


def test_reloads_close_the_old_index_files_once_their_last_request_ends(two_builds, tmp_path, encoder):
    from qa.search.reload import LiveService

    root = tmp_path / "live"
    index_dir = root / "index"
    root.mkdir()
    shutil.copytree(two_builds["alpha"], index_dir)
    live = LiveService(
        Settings(index_dir=index_dir), opener=lambda settings, _: SearchService.open(settings, encoder=encoder)
    )
    gc_was_enabled = gc.isenabled()
    gc.disable()  # closing must not wait for the garbage collector
    try:
        assert len(_open_store_files(root)) == 1
        for number in range(6):
            _swap_in(two_builds["beta" if number % 2 == 0 else "alpha"], index_dir)
            assert live.check() is True
            assert len(_open_store_files(root)) == 1, _open_store_files(root)
        with live.lease() as held:
            _swap_in(two_builds["beta"], index_dir)
            assert live.check() is True
            assert len(_open_store_files(root)) == 2  # the request in flight still reads its own index
            assert held.store.documents()
        assert len(_open_store_files(root)) == 1
    finally:
        if gc_was_enabled:
            gc.enable()
    assert live.reloads == 7


# ---------------------------------------------------------------- 8: slow clients are cut off, others served


@contextlib.contextmanager
def _server_with_limits(app, settings: Settings, implementation: str):
    """``app`` under uvicorn with the service's own read deadlines, on loopback; yields its address."""
    import uvicorn

    from qa.api.server import protocol_with_deadlines, server_config

    config = server_config(app, dataclasses.replace(settings, port=free_port()), log_level="warning")
    config.http = protocol_with_deadlines(settings, implementation)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "test server did not start"
        time.sleep(0.05)
    try:
        yield "127.0.0.1", config.port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _seconds_until_closed(sock: socket.socket, limit: float) -> tuple[float, bytes]:
    """How long until the server closes ``sock`` (at most ``limit``), and what it sent first."""
    started = time.monotonic()
    sock.settimeout(limit)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except TimeoutError:
        return limit, received
    return time.monotonic() - started, received


@pytest.mark.parametrize("implementation", ["httptools", "h11"])
@pytest.mark.parametrize(
    "sent, part",
    [
        (b"", "nothing"),
        (b"GET /health HTTP/1.1\r\nHost: x\r\n", "half the headers"),
        (
            b'POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"q',
            "part of the body",
        ),
    ],
    ids=["nothing", "half-headers", "part-body"],
)
def test_a_slow_client_is_cut_off_while_others_are_served(two_builds, encoder, implementation, sent, part):
    settings = Settings(index_dir=two_builds["alpha"], header_timeout=1.0, body_timeout=1.0)
    with _server_with_limits(_app(two_builds["alpha"], encoder), settings, implementation) as (host, port):
        with socket.create_connection((host, port)) as slow:
            slow.sendall(sent)
            for _ in range(3):
                assert httpx.get(f"http://{host}:{port}/health", timeout=5).status_code == 200
            took, received = _seconds_until_closed(slow, limit=15)
    assert took < 10, f"a client that sent {part} was held for {took:.0f} s"
    assert received == b"" or received.startswith(b"HTTP/1.1 408")


def test_server_limits_come_from_the_environment():
    settings = Settings.from_env(
        {"QA_HEADER_TIMEOUT": "2.5", "QA_BODY_TIMEOUT": "7", "QA_KEEP_ALIVE_TIMEOUT": "3", "QA_MAX_CONNECTIONS": "50"}
    )
    assert (settings.header_timeout, settings.body_timeout, settings.keep_alive_timeout, settings.max_connections) == (
        2.5,
        7.0,
        3.0,
        50,
    )
    with pytest.raises(ConfigError, match="QA_HEADER_TIMEOUT: header timeout must be over 0"):
        Settings.from_env({"QA_HEADER_TIMEOUT": "0"})
