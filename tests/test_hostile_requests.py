"""Hostile requests through the real app: whatever a client sends, the answer is a result or a 4xx with
``{"error", "message"}``; never a 5xx, never a traceback."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from qa.api.app import create_app
from qa.config import Settings
from qa.errors import InvalidRequest

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def client(service):
    # raise_server_exceptions=False: a crash must show up as the 500 a real client would get, and fail below.
    app = create_app(Settings(index_dir=service.settings.index_dir), service=service)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def assert_client_error(response, status: int | tuple[int, ...] | None = None) -> dict:
    """A 4xx whose body is exactly ``{"error", "message"}`` in JSON, with no traceback in it."""
    assert 400 <= response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
    if status is not None:
        assert response.status_code in ((status,) if isinstance(status, int) else status), response.text[:300]
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "message"}, body
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in response.text and 'File "' not in response.text
    return body


def assert_answer(response) -> dict:
    assert response.status_code == 200, f"{response.status_code}: {response.text[:300]}"
    body = response.json()
    assert {"question", "mode", "answerable", "confidence", "results", "took_ms"} <= set(body)
    return body


# --- the question's characters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "question, searched",
    [
        ("what\x00is the railway procuratorate", "what is the railway procuratorate"),
        ("\x1b[31mrailway\x1b[0m cases", "[31mrailway [0m cases"),  # no escape reaches a terminal
        ("railway\x07\x08\x7f\x85 cases", "railway  cases"),  # BEL, BS, DEL, NEL: one run, one space
        ("  railway\tcases\r\nin Guizhou  ", "railway\tcases\r\nin Guizhou"),  # tab, CR, LF are kept
        ("\u202erailway cases", "\u202erailway cases"),  # format characters are text: kept as written
        ("railway\u200dcases \ufeff", "railway\u200dcases \ufeff"),
        ("\uffff\ufffe railway", "\uffff\ufffe railway"),  # noncharacters are valid UTF-8
    ],
    ids=["nul", "ansi-escape", "bel-bs-del-nel", "tab-crlf", "rtl-override", "zwj-bom", "noncharacters"],
)
def test_control_characters_are_replaced_and_the_question_is_still_answered(client, question, searched):
    for response in (
        client.post("/search", json={"question": question, "top_k": 2}),
        client.get("/search", params={"q": question, "top_k": 2}),
    ):
        body = assert_answer(response)
        assert body["question"] == searched
        assert body["results"]


@pytest.mark.parametrize("question", ["\x00", "\x00\x01\x02\x1f", " \x1b \x7f\x9f\t"])
def test_a_question_of_only_control_characters_is_empty(client, question):
    body = assert_client_error(client.post("/search", json={"question": question}), 422)
    assert body == {"error": "invalid_request", "message": "question is empty"}
    assert_client_error(client.get("/search", params={"q": question}), 422)


@pytest.mark.parametrize(
    "raw, searched",
    [
        (b'{"question": "\\ud800 railway cases"}', "\ufffd railway cases"),
        (b'{"question": "railway \\udc00\\ud800 cases"}', "railway \ufffd\ufffd cases"),
        (b'{"question": "railway \\ud83d\\ude00 cases"}', "railway \U0001f600 cases"),  # a real pair: one emoji
    ],
    ids=["high", "reversed-pair", "valid-pair"],
)
def test_lone_surrogates_in_json_escapes_do_not_crash(client, raw, searched):
    body = assert_answer(client.post("/search", content=raw, headers=JSON))
    assert body["question"] == searched


def test_invalid_utf8_in_the_body_is_a_client_error(client):
    assert_client_error(client.post("/search", content=b'{"question": "caf\xe9 \xff\xfe"}', headers=JSON))


@pytest.mark.parametrize(
    "raw",
    [b"q=%00railway", b"q=%ff%fe+railway", b"q=%ED%A0%80railway"],
    ids=["nul", "invalid-utf8", "encoded-surrogate"],
)
def test_get_with_hostile_percent_escapes_is_answered(client, raw):
    body = assert_answer(client.get("/search?" + raw.decode("ascii")))
    assert "railway" in body["question"] and "\x00" not in body["question"]


def test_a_100_kb_question_is_refused_with_a_reason(client):
    # Refused either by the request size limit (413) or by the question length limit (422): never a 500.
    body = assert_client_error(client.post("/search", json={"question": "why " * 25_000}), (413, 422))
    assert "limit" in body["message"]


def test_a_question_over_the_length_limit_names_the_limit(client):
    body = assert_client_error(client.post("/search", json={"question": "x" * 10_000}), 422)
    assert body["message"] == "question is 10000 characters long; the limit is 2000"
    body = assert_client_error(client.get("/search", params={"q": "y" * 5_000}), 422)
    assert body["message"] == "question is 5000 characters long; the limit is 2000"


def test_a_long_question_of_many_distinct_terms_is_answered(client):
    question = " ".join(f"t{i:04d}" for i in range(333))[:2000]  # 333 distinct keyword terms
    assert assert_answer(client.post("/search", json={"question": question, "mode": "keyword"}))["question"] == question


@pytest.mark.parametrize("question", ['"' * 50, "* OR NEAR(a b) AND", "railway) OR (1=1", "'; DROP TABLE chunks; --"])
def test_query_syntax_in_a_question_is_just_text(client, question):
    for mode in ("keyword", "hybrid"):
        assert_answer(client.post("/search", json={"question": question, "mode": mode}))


# --- wrong types and shapes ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [["railway"], 5, 1.5, None, {"text": "railway"}, True], ids=repr)
def test_question_of_the_wrong_type_is_422(client, value):
    body = assert_client_error(client.post("/search", json={"question": value}), 422)
    assert body["error"] == "invalid_request" and "question" in body["message"]


@pytest.mark.parametrize("value", ["five", "5.5", 5.5, 0, -1, 101, 10**30, [], {}, [5]], ids=repr)
def test_top_k_of_the_wrong_type_or_range_is_422(client, value):
    body = assert_client_error(client.post("/search", json={"question": "railway", "top_k": value}), 422)
    assert "top_k" in body["message"]


def test_top_k_null_means_the_default(client):
    assert len(assert_answer(client.post("/search", json={"question": "railway", "top_k": None}))["results"]) == 5


@pytest.mark.parametrize("value", ["5", 5.0, True], ids=repr)
def test_top_k_that_is_not_a_json_integer_is_422(client, value):
    assert_client_error(client.post("/search", json={"question": "railway", "top_k": value}), 422)


@pytest.mark.parametrize("value", [3, "", "HYBRID", "bm25", ["dense"], True], ids=repr)
def test_mode_of_the_wrong_type_or_value_is_422(client, value):
    body = assert_client_error(client.post("/search", json={"question": "railway", "mode": value}), 422)
    assert "mode" in body["message"]


@pytest.mark.parametrize("field", ["source", "after", "before"])
@pytest.mark.parametrize("value", [5, ["a"], {"a": 1}, True], ids=repr)
def test_filters_of_the_wrong_type_are_422(client, field, value):
    body = assert_client_error(client.post("/search", json={"question": "railway", field: value}), 422)
    assert field in body["message"]


@pytest.mark.parametrize("field, value", [("after", "\x00"), ("before", "2024-99-99"), ("after", "\ud800")])
def test_hostile_dates_are_422(client, field, value):
    raw = json.dumps({"question": "railway", field: value}).encode("ascii")  # ensure_ascii: "\ud800" stays escaped
    assert_client_error(client.post("/search", content=raw, headers=JSON), 422)


@pytest.mark.parametrize("value", ["\x00", "[", "**/../../*", "\x1b[2J"])
def test_hostile_source_globs_just_match_nothing(client, value):
    assert assert_answer(client.post("/search", json={"question": "railway", "source": value}))["results"] == []


def test_lone_surrogate_in_source_is_a_422(client):
    response = client.post("/search", content=b'{"question": "railway", "source": "\\ud800*"}', headers=JSON)
    assert "source must be valid Unicode" in assert_client_error(response, 422)["message"]


@pytest.mark.parametrize(
    "raw",
    [
        b'["question", "railway"]',
        b'"railway"',
        b"42",
        b"null",
        b"true",
        b"",
        b"{",
        b'{"question": "railway"',
        b"{'question': 'railway'}",
        b"[" * 20_000 + b"]" * 20_000,
        b'{"question":' * 3_000 + b'"x"' + b"}" * 3_000,
    ],
    ids=[
        "array",
        "string",
        "number",
        "null",
        "true",
        "empty",
        "brace",
        "unterminated",
        "single-quotes",
        "deep-array",
        "deep-object",
    ],
)
def test_bodies_that_are_not_a_json_object_are_client_errors(client, raw):
    assert_client_error(client.post("/search", content=raw, headers=JSON))


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", None],
)
def test_bodies_that_are_not_json_are_client_errors(client, content_type):
    headers = {"content-type": content_type} if content_type else {}
    for raw in (b'{"question": "railway"}', b"question=railway"):
        assert_client_error(client.post("/search", content=raw, headers=headers))


@pytest.mark.parametrize(
    "query",
    [
        "",
        "top_k=abc",
        "q=railway&top_k=1e3",
        "q=railway&top_k=",
        "q=railway&mode=%00",
        "q=railway&after=%00",
        "q=railway&top_k=99999999999999999999999",
    ],
)
def test_bad_get_parameters_are_client_errors(client, query):
    assert_client_error(client.get("/search?" + query), 422)


@pytest.mark.parametrize("doc_id", ["%00", "%ff", "..%2f..%2fetc%2fpasswd", "%1b%5b2J", "x" * 5_000])
def test_hostile_document_ids_are_404(client, doc_id):
    assert_client_error(client.get("/documents/" + doc_id), 404)


# --- the service's own check, as the CLI uses it ------------------------------------------------------------


@pytest.mark.parametrize(
    "question, cleaned",
    [
        ("a\x00b", "a b"),
        ("a\x00\x00\x01b", "a b"),
        ("\x1bX", "X"),
        ("caf\ud800", "caf\ufffd"),
        ("\ud800", "\ufffd"),
        ("x\u0085y", "x y"),
        ("tab\there", "tab\there"),
        ("\u202eabc", "\u202eabc"),
    ],
)
def test_check_question_cleans_what_it_keeps(service, question, cleaned):
    assert service.check_question(question) == cleaned
    service.check_question(question).encode("utf-8")  # always encodable


@pytest.mark.parametrize(
    "question, message",
    [
        ("\x00\x1b", "question is empty"),
        (None, "question must be a string"),
        (["a"], "question must be a string"),
        ("z" * 2001, "question is 2001 characters long; the limit is 2000"),
    ],
)
def test_check_question_refuses_what_it_cannot_search(service, question, message):
    with pytest.raises(InvalidRequest, match=f"^{message}$"):
        service.check_question(question)


def test_length_limit_counts_the_cleaned_question(service):
    # Control characters are not counted against the limit; what is searched is what is measured.
    assert len(service.check_question("\x00" * 500 + "w" * 2000)) == 2000
