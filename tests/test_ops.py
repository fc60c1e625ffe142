"""Operations: configuration from the environment, /metrics, one structured log line per request with a
request id, progress only on a terminal, and OpenAPI examples at /docs."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pty
import re
import shutil
import subprocess
import sys
import threading

import httpx
import pytest
from click.testing import CliRunner
from conftest import ROOT, SEEDS, free_port, serving, wait_for_server
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from qa.api.app import create_app
from qa.api.logs import ACCESS_LOGGER, JSONFormatter, TextFormatter, log_config, request_id_from, resolve_format
from qa.cli.main import main
from qa.config import ENV_VARS, Settings
from qa.errors import ConfigError
from qa.index.indexer import build_index
from qa.search.service import SearchService

KEY = "ops-key-0123456789abcdef"
DOC_ID = "004_e4f473833b61ecc8.txt"
QUESTION = "Which railway cases does the Guizhou procuratorate handle?"
HEX_ID = re.compile(r"[0-9a-f]{32}")


def _app(service, **settings):
    return create_app(Settings(index_dir=service.settings.index_dir, reload_interval=0, **settings), service=service)


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a Prometheus exposition: (name, sorted labels) -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples, name, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


# ---------------------------------------------------------------- /metrics


def test_metrics_count_requests_by_route_template_method_and_status_over_http(service):
    with serving(_app(service)) as url, httpx.Client(base_url=url, timeout=30) as http:
        for _ in range(2):
            assert http.post("/search", json={"question": QUESTION, "top_k": 2}).status_code == 200
        assert http.get("/search", params={"q": QUESTION, "mode": "keyword"}).status_code == 200
        assert http.post("/search", json={"question": "  "}).status_code == 422
        assert http.get(f"/documents/{DOC_ID}").status_code == 200
        assert http.get("/documents/missing.txt").status_code == 404
        assert http.get("/documents/nested/../other.txt").status_code == 404
        assert http.get("/no/such/page").status_code == 404
        assert http.delete("/search").status_code == 405
        response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples = _samples(response.text)
    requests = "qa_http_requests_total"
    assert _value(samples, requests, method="POST", route="/search", status="200") == 2
    assert _value(samples, requests, method="POST", route="/search", status="422") == 1
    assert _value(samples, requests, method="GET", route="/search", status="200") == 1
    assert _value(samples, requests, method="GET", route="/documents/{doc_id}", status="200") == 1
    assert _value(samples, requests, method="GET", route="/documents/{doc_id}", status="404") == 2
    assert _value(samples, requests, method="GET", route="unmatched", status="404") == 1
    assert _value(samples, requests, method="DELETE", route="/search", status="405") == 1
    # Raw paths and ids never become labels.
    labels = {value for (_, pairs) in samples for _, value in pairs}
    assert not any("missing" in value or DOC_ID in value or "such" in value for value in labels)
    # A latency histogram per route: cumulative buckets ending in +Inf == count.
    duration = "qa_http_request_duration_seconds"
    buckets = sorted(
        (float(dict(pairs)["le"]), value)
        for (name, pairs), value in samples.items()
        if name == f"{duration}_bucket" and dict(pairs)["route"] == "/search" and dict(pairs)["method"] == "POST"
    )
    assert len(buckets) > 5 and buckets[-1] == (float("inf"), 3)
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)
    assert _value(samples, f"{duration}_count", method="POST", route="/search") == 3
    assert _value(samples, f"{duration}_sum", method="POST", route="/search") > 0
    assert _value(samples, f"{duration}_count", method="GET", route="/documents/{doc_id}") == 3
    # Searches by mode and answerability: the three answered searches (the 422 is not one).
    searches = {pairs: value for (name, pairs), value in samples.items() if name == "qa_searches_total"}
    assert sum(searches.values()) == 3
    assert {dict(pairs)["mode"] for pairs in searches} == {"hybrid", "keyword"}


def test_an_unusual_method_is_counted_as_other(service):
    # In-process: an HTTP server's parser may refuse such a method before the app sees it.
    with TestClient(_app(service)) as client:
        assert client.request("BREW", "/search").status_code == 405
        samples = _samples(client.get("/metrics").text)
    assert _value(samples, "qa_http_requests_total", method="other", route="/search", status="405") == 1
    assert not any("BREW" in value for (_, pairs) in samples for _, value in pairs)


def test_index_gauges_equal_the_real_counts(service):
    with TestClient(_app(service)) as client:
        samples = _samples(client.get("/metrics").text)
    documents = service.store.documents()
    assert _value(samples, "qa_index_loaded") == 1
    assert _value(samples, "qa_index_documents") == len(documents) == 5
    assert _value(samples, "qa_index_chunks") == sum(n for _, _, n in documents)
    assert _value(samples, "qa_index_vectors") == len(service.dense.vectors) == sum(n for _, _, n in documents)
    on_disk = sum(p.stat().st_size for p in service.settings.index_dir.iterdir() if p.is_file())
    assert _value(samples, "qa_index_size_bytes") == on_disk > 0
    assert _value(samples, "qa_index_reloads_total") == 0
    info = [dict(pairs) for (name, pairs) in samples if name == "qa_build_info"]
    assert len(info) == 1 and info[0]["model"] == service.manifest.model and info[0]["version"]


def test_index_gauges_follow_a_live_reload(index_copy, tmp_path, encoder):
    other = tmp_path / "other"
    other.mkdir()
    (other / "tea.md").write_text("# Tea\n\nGreen tea steeps for two minutes below boiling.\n", encoding="utf-8")
    (other / "rail.md").write_text("# Rail\n\nThe railway timetable changes in May.\n", encoding="utf-8")
    settings = Settings(index_dir=index_copy, reload_interval=0)  # reloaded by hand below, not by a timer
    app = create_app(settings, service=SearchService.open(settings, encoder=encoder))
    with TestClient(app) as client:
        before = _samples(client.get("/metrics").text)
        defaults = Settings()
        build_index(
            other,
            index_copy,
            encoder,
            chunk_size=defaults.chunk_size,
            chunk_overlap=defaults.chunk_overlap,
            embed_title=defaults.embed_title,
        )
        assert app.state.live.check() is True
        after = _samples(client.get("/metrics").text)
    assert _value(before, "qa_index_documents") == 5 and _value(before, "qa_index_reloads_total") == 0
    assert _value(after, "qa_index_documents") == 2
    assert _value(after, "qa_index_chunks") == _value(after, "qa_index_vectors") == 2
    assert _value(after, "qa_index_reloads_total") == 1
    assert _value(after, "qa_index_size_bytes") == sum(p.stat().st_size for p in index_copy.iterdir() if p.is_file())
    assert _value(after, "qa_index_size_bytes") < _value(before, "qa_index_size_bytes")
    assert _value(after, "qa_index_created_timestamp_seconds") >= _value(before, "qa_index_created_timestamp_seconds")


def test_without_an_index_metrics_say_so(tmp_path):
    with TestClient(create_app(Settings(index_dir=tmp_path / "none", reload_interval=0))) as client:
        samples = _samples(client.get("/metrics").text)
    assert _value(samples, "qa_index_loaded") == 0
    assert _value(samples, "qa_index_documents") is None


def test_metrics_need_the_key_like_every_endpoint_but_health(service):
    with TestClient(_app(service, api_key=KEY)) as client:
        refused = client.get("/metrics")
        assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
        assert client.get("/health").status_code == 200
        allowed = client.get("/metrics", headers={"Authorization": f"Bearer {KEY}"})
    assert allowed.status_code == 200
    samples = _samples(allowed.text)
    assert _value(samples, "qa_http_requests_total", method="GET", route="/metrics", status="401") == 1
    assert KEY not in allowed.text


# ---------------------------------------------------------------- request ids and log lines


def _access_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS_LOGGER]


def test_one_json_log_line_per_request_with_the_request_id_of_the_response(service, caplog):
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    with serving(_app(service, api_key=KEY)) as url, httpx.Client(base_url=url, timeout=30) as http:
        caplog.clear()
        response = http.post(
            "/search",
            json={"question": QUESTION, "top_k": 2, "source": "00*.txt"},
            headers={"Authorization": f"Bearer {KEY}"},
        )
        assert response.status_code == 200
        records = _access_records(caplog)
    assert len(records) == 1
    text = JSONFormatter().format(records[0])
    assert "\n" not in text
    line = json.loads(text)
    assert line["request_id"] == response.headers["x-request-id"]
    assert HEX_ID.fullmatch(line["request_id"])
    assert line["level"] == "info" and line["logger"] == ACCESS_LOGGER
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["ts"])
    assert (line["method"], line["route"], line["status"]) == ("POST", "/search", 200)
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
    assert line["client"] == "127.0.0.1"
    body = response.json()
    assert (line["mode"], line["top_k"], line["results"], line["answerable"]) == (
        "hybrid",
        2,
        len(body["results"]),
        body["answerable"],
    )
    assert line["filters"] == ["source"]
    # Never the question (privacy) nor the key.
    assert "question" not in line and "railway" not in text and KEY not in text


def test_every_request_gets_one_line_refusals_and_unknown_paths_included(service, caplog):
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    with TestClient(_app(service, api_key=KEY)) as client:
        caplog.clear()
        responses = [
            client.get("/search", params={"q": QUESTION}),  # no key
            client.get("/nowhere", headers={"Authorization": f"Bearer {KEY}"}),
            client.get("/health"),
        ]
        records = _access_records(caplog)
    assert [r.qa_fields["status"] for r in records] == [401, 404, 200]
    assert [r.qa_fields["route"] for r in records] == ["/search", "unmatched", "/health"]
    assert [r.qa_fields["request_id"] for r in records] == [r.headers["x-request-id"] for r in responses]
    assert all(KEY not in JSONFormatter().format(r) and "railway" not in JSONFormatter().format(r) for r in records)


def test_questions_are_logged_only_when_enabled(service, caplog):
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    with TestClient(_app(service, log_questions=True)) as client:
        caplog.clear()
        client.get("/search", params={"q": QUESTION, "top_k": 1})
        [record] = _access_records(caplog)
    assert record.qa_fields["question"] == QUESTION
    assert Settings.from_env({"QA_LOG_QUESTIONS": "true"}).log_questions is True
    assert Settings.from_env({}).log_questions is False


@pytest.mark.parametrize(
    "incoming", ["abc-123", "0f3c9a7e-6b2d-4c1a-9e8f-2d3b4c5d6e7f", "req_42.retry:1", "Zm9vYmFy+/=", "x" * 128]
)
def test_a_sane_incoming_request_id_is_echoed_and_logged(service, caplog, incoming):
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    with TestClient(_app(service)) as client:
        caplog.clear()
        response = client.get("/health", headers={"X-Request-ID": incoming})
        [record] = _access_records(caplog)
    assert response.headers["x-request-id"] == incoming == record.qa_fields["request_id"]


@pytest.mark.parametrize(
    "incoming",
    ["x" * 129, "two words", 'quote"d', "<script>", '{"json": 1}', "", "ключ", "a;b"],
    ids=["too-long", "space", "quote", "markup", "json", "empty", "non-ascii", "semicolon"],
)
def test_an_unsafe_incoming_request_id_is_replaced(service, caplog, incoming):
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    with TestClient(_app(service)) as client:
        caplog.clear()
        response = client.get("/health", headers={"X-Request-ID": incoming.encode("utf-8")})
        [record] = _access_records(caplog)
    replaced = response.headers["x-request-id"]
    assert HEX_ID.fullmatch(replaced) and replaced == record.qa_fields["request_id"]


@pytest.mark.parametrize("raw", [b"abc\ndef", b"abc\r\nX-Evil: 1", b"abc\x00", b"\xff\xfe"])
def test_control_characters_in_a_request_id_never_reach_a_header_or_log(service, raw):
    # An HTTP server refuses these before the app; the app does not rely on it.
    assert HEX_ID.fullmatch(request_id_from([(b"x-request-id", raw)]))
    app = _app(service)
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/health",
        "raw_path": b"/health",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"x-request-id", raw)],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "scheme": "http",
        "http_version": "1.1",
        "asgi": {"version": "3.0"},
    }
    asyncio.run(app(scope, receive, send))
    headers = dict(sent[0]["headers"])
    assert HEX_ID.fullmatch(headers[b"x-request-id"].decode())


def test_two_request_id_headers_are_ambiguous_and_replaced():
    assert HEX_ID.fullmatch(request_id_from([(b"x-request-id", b"one"), (b"X-Request-ID", b"two")]))
    assert request_id_from([(b"X-Request-ID", b"one")]) == "one"


def test_an_unexpected_error_is_a_json_500_naming_the_request_id(service, caplog):
    app = _app(service)

    def explode():
        raise RuntimeError("boom")

    app.add_api_route("/explode", explode, include_in_schema=False)
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    with TestClient(app, raise_server_exceptions=False) as client:
        caplog.clear()
        response = client.get("/explode", headers={"X-Request-ID": "trace-500"})
        [record] = _access_records(caplog)
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "trace-500"
    assert response.json() == {
        "error": "internal_error",
        "message": "unexpected error; quote request id trace-500 when reporting it",
        "request_id": "trace-500",
    }
    line = json.loads(JSONFormatter().format(record))
    assert line["level"] == "error" and line["status"] == 500 and line["route"] == "/explode"
    assert "RuntimeError: boom" in line["exception"]


def test_cors_lets_a_browser_read_the_request_id(service):
    origin = "https://app.example"
    with TestClient(_app(service, cors_origins=(origin,))) as client:
        response = client.get("/health", headers={"Origin": origin})
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()


def test_text_format_is_one_line_of_key_value_pairs():
    record = logging.LogRecord(ACCESS_LOGGER, logging.INFO, __file__, 1, "GET %s %d", ("/health", 200), None)
    record.qa_fields = {"request_id": "abc", "status": 200, "client": None, "answerable": True, "note": "two words"}
    text = TextFormatter().format(record)
    assert "\n" not in text
    assert text.endswith(
        'INFO    qa.access: GET /health 200 request_id=abc status=200 client=None answerable=true note="two words"'
    )


def test_auto_log_format_is_json_unless_stderr_is_a_terminal():
    class Stream:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    assert resolve_format("auto", Stream(False)) == "json"
    assert resolve_format("auto", Stream(True)) == "text"
    assert resolve_format("text", Stream(False)) == "text" and resolve_format("json", Stream(True)) == "json"
    config = log_config(Settings(log_format="json", log_level="warning"))
    assert config["formatters"]["qa"]["()"].endswith("JSONFormatter")
    assert config["loggers"]["qa"]["level"] == "WARNING"
    assert config["loggers"]["uvicorn.access"]["handlers"] == []


def test_qa_serve_writes_json_lines_and_no_uvicorn_access_log(seeds_index, tmp_path):
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "QA_LOG_FORMAT": "text"}  # the flag below wins over it
    env.pop("QA_API_KEY", None)
    stderr_path = tmp_path / "stderr.log"
    with open(stderr_path, "w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "qa",
                "serve",
                "--no-build",
                "--index",
                str(seeds_index),
                "--port",
                str(port),
                "--log-format",
                "json",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            with open(stderr_path, encoding="utf-8") as log:
                process.stderr = log  # for wait_for_server's message if the server dies
                wait_for_server(url, process)
            response = httpx.get(
                f"{url}/search",
                params={"q": QUESTION, "top_k": 1},
                headers={"X-Request-ID": "serve-test-1"},
                timeout=60,
            )
            assert response.status_code == 200 and response.headers["x-request-id"] == "serve-test-1"
        finally:
            process.terminate()
            process.wait(timeout=30)
    lines = stderr_path.read_text(encoding="utf-8").splitlines()
    structured = [json.loads(line) for line in lines if line.startswith("{")]
    access = [line for line in structured if line.get("request_id") == "serve-test-1"]
    assert len(access) == 1
    assert access[0]["route"] == "/search" and access[0]["status"] == 200 and access[0]["results"] == 1
    assert "question" not in access[0] and "railway" not in "\n".join(lines)
    # uvicorn's own messages use the same format; its access log ('"GET /search HTTP/1.1" 200') is off.
    assert any(line["logger"].startswith("uvicorn") for line in structured)
    assert not any("HTTP/1.1" in line for line in lines)
    # The only plain lines are the CLI's own start-up messages.
    assert all(line.startswith("{") or line.startswith("Serving ") for line in lines if line.strip())


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"QA_PORT": "eighty"}, "QA_PORT must be a whole number, got 'eighty'"),
        ({"QA_PORT": "0"}, "QA_PORT: port must be between 1 and 65535, got 0"),
        ({"QA_TOP_K": "500"}, "QA_TOP_K: top_k must be between 1 and 100, got 500"),
        ({"QA_MODE": "fuzzy"}, "QA_MODE: mode must be one of hybrid, dense, keyword, got 'fuzzy'"),
        ({"QA_LOG_FORMAT": "xml"}, "QA_LOG_FORMAT: log format must be one of auto, json, text, got 'xml'"),
        ({"QA_LOG_LEVEL": "loud"}, "QA_LOG_LEVEL: log level must be one of debug, info, warning, error, got 'loud'"),
        ({"QA_LOG_QUESTIONS": "maybe"}, "QA_LOG_QUESTIONS must be true or false, got 'maybe'"),
        ({"QA_RELOAD_INTERVAL": "-1"}, "QA_RELOAD_INTERVAL: reload interval must be between 0 and 3600"),
        ({"QA_CHUNK_SIZE": "64", "QA_CHUNK_OVERLAP": "64"}, "QA_CHUNK_OVERLAP, QA_CHUNK_SIZE: chunk overlap"),
        ({"QA_API_KEY": "short"}, "QA_API_KEY: API key must be at least 16 characters, got 5"),
        ({"QA_FUSION_WINDOW": "-1"}, "QA_FUSION_WINDOW: fusion window must not be negative, got -1"),
        ({"QA_FUSION_WINDOW": "wide"}, "QA_FUSION_WINDOW must be a whole number, got 'wide'"),
    ],
)
def test_a_bad_environment_value_is_a_config_error_naming_the_variable(environ, message):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(environ)
    assert message in str(caught.value)


def test_options_win_over_the_environment_and_are_not_blamed_on_it():
    assert Settings.from_env({"QA_PORT": "9000", "QA_LOG_FORMAT": "text"}, port=8080, log_format="json").port == 8080
    # A bad environment value that an option replaces is no error.
    assert Settings.from_env({"QA_PORT": "0"}, port=8080).port == 8080
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({}, port=0)
    assert "QA_PORT" not in str(caught.value) and "port must be between 1 and 65535" in str(caught.value)
    settings = Settings.from_env({"QA_LOG_LEVEL": "WARNING", "QA_LOG_FORMAT": " Json ", "QA_HOST": "0.0.0.0"})
    assert (settings.log_level, settings.log_format, settings.host) == ("warning", "json", "0.0.0.0")


def test_qa_serve_names_a_bad_log_setting_before_starting(tmp_path):
    args = ["serve", "--no-build", "--index", str(tmp_path / "none")]
    result = CliRunner().invoke(main, args, env={"QA_LOG_FORMAT": "xml", "QA_API_KEY": None})
    assert result.exit_code == 1 and "error: QA_LOG_FORMAT: log format must be one of" in result.output
    result = CliRunner().invoke(main, [*args, "--log-level", "loud"], env={"QA_API_KEY": None})
    assert result.exit_code == 1 and "log level must be one of" in result.output
    assert "QA_LOG_LEVEL" not in result.output  # the option was wrong, not the environment
    help_text = CliRunner().invoke(main, ["serve", "--help"]).output
    assert "--log-level" in help_text and "--log-format" in help_text and "QA_LOG_FORMAT" in help_text


def test_configuration_reference_lists_every_variable():
    reference = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    table = reference.split("| variable |", 1)[1].split("\n\n", 1)[0]
    for variable in ENV_VARS.values():
        assert f"`{variable}`" in table, variable


# ---------------------------------------------------------------- progress on a terminal only


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    shutil.copy(SEEDS / DOC_ID, root / "meeting.txt")
    (root / "eggs.md").write_text("# Eggs\n\nA soft-boiled egg needs six minutes in boiling water.\n", encoding="utf-8")
    return root


def _index_command(corpus, index_dir):
    return [sys.executable, "-m", "qa", "index", str(corpus), "--index", str(index_dir)]


@pytest.mark.slow  # runs `qa index` in a subprocess
def test_off_a_terminal_progress_is_plain_lines_never_redrawn(tiny_corpus, tmp_path):
    result = subprocess.run(
        _index_command(tiny_corpus, tmp_path / "idx"),
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr and "\x1b" not in result.stderr  # nothing drawn for a terminal
    lines = result.stderr.splitlines()
    assert "chunking: 0/2 (0%)" in lines and any(re.match(r"chunking: 2/2 \(100%\), .*took", line) for line in lines)
    assert "Indexed 2 documents" in result.stdout


@pytest.mark.slow  # runs `qa index` in a subprocess on a pseudo-terminal
def test_progress_is_drawn_on_a_terminal(tiny_corpus, tmp_path):
    controller, terminal = pty.openpty()
    chunks: list[bytes] = []

    def read_all():
        while True:
            try:
                data = os.read(controller, 4096)
            except OSError:  # EIO once the terminal side is closed and drained
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    process = subprocess.Popen(
        _index_command(tiny_corpus, tmp_path / "idx"),
        stdout=subprocess.PIPE,
        stderr=terminal,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    os.close(terminal)
    stdout, _ = process.communicate(timeout=300)
    reader.join(timeout=30)
    os.close(controller)
    drawn = b"".join(chunks).decode("utf-8", "replace")
    assert process.returncode == 0, drawn
    assert "\r" in drawn and re.search(r"\d+/\d+", drawn)
    assert b"Indexed 2 documents" in stdout


# ---------------------------------------------------------------- OpenAPI


def test_openapi_documents_examples_errors_metrics_and_request_ids(service):
    with TestClient(_app(service)) as client:
        schema = client.get("/openapi.json").json()
        docs = client.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text and "swagger" in docs.text.lower()
    post = schema["paths"]["/search"]["post"]
    examples = post["requestBody"]["content"]["application/json"]["examples"]
    values = [example["value"] for example in examples.values()]
    assert any(v.get("mode") == "keyword" for v in values)
    assert any({"source", "after", "before"} <= set(v) for v in values)
    assert all(v["question"].strip() for v in values)
    answered = post["responses"]["200"]["content"]["application/json"]["examples"]
    assert {e["value"]["answerable"] for e in answered.values()} == {True, False}
    for status in ("400", "401", "413", "422", "503"):
        content = post["responses"][status]["content"]["application/json"]
        assert content["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
        assert all(set(e["value"]) == {"error", "message"} for e in content["examples"].values()), status
    document = schema["paths"]["/documents/{doc_id}"]["get"]["responses"]
    assert {"200", "401", "404", "503"} <= set(document)
    not_found = document["404"]["content"]["application/json"]["examples"]["not_found"]["value"]
    assert not_found["error"] == "document_not_found"
    get = schema["paths"]["/search"]["get"]
    assert all(param.get("examples") for param in get["parameters"])
    metrics = schema["paths"]["/metrics"]["get"]["responses"]
    assert "qa_http_requests_total" in metrics["200"]["content"]["text/plain"]["example"]
    assert "401" in metrics
    for path in schema["paths"].values():
        for operation in path.values():
            for response in operation["responses"].values():
                assert "X-Request-ID" in response["headers"]


def test_request_examples_in_the_schema_are_answered(service):
    with TestClient(_app(service)) as client:
        examples = client.get("/openapi.json").json()["paths"]["/search"]["post"]["requestBody"]["content"][
            "application/json"
        ]["examples"]
        for name, example in examples.items():
            response = client.post("/search", json=example["value"])
            assert response.status_code == 200, (name, response.text)
            assert response.json()["results"], name
