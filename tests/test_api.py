"""The HTTP API, exercised over real loopback HTTP against uvicorn serving the real app."""

from __future__ import annotations

import threading

import httpx
import pytest
from conftest import SEEDS, serving
from pydantic import TypeAdapter

from qa.api.app import create_app
from qa.api.routes import answer_body
from qa.api.schemas import SearchResponse
from qa.config import Settings
from qa.search.dense import DenseRetriever
from qa.search.service import SearchService


@pytest.fixture(scope="module")
def http(live_server):
    with httpx.Client(base_url=live_server, timeout=30) as client:
        yield client


def test_post_search_returns_ranked_cited_passages(http):
    response = http.post("/search", json={"question": "Who led the research group to Guizhou?", "top_k": 3})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"question", "mode", "answerable", "confidence", "results", "took_ms", "excluded_undated"}
    assert body["mode"] == "hybrid" and body["answerable"] is True and 0 <= body["confidence"] <= 1
    assert body["question"] == "Who led the research group to Guizhou?"
    assert [r["rank"] for r in body["results"]] == [1, 2, 3]
    for result in body["results"]:
        assert set(result) == {"rank", "score", "text", "citation", "duplicates"}
        citation = result["citation"]
        assert set(citation) == {
            "source",
            "title",
            "date",
            "date_source",
            "section",
            "anchor",
            "start",
            "end",
            "line_start",
            "line_end",
            "page",
            "page_end",
            "highlight",
            "aliases",
        }
        assert citation["page"] is None and citation["page_end"] is None  # text files have no pages
        text = (SEEDS / citation["source"]).read_text(encoding="utf-8")
        assert text[citation["start"] : citation["end"]] == result["text"]
        for mark in citation["highlight"]:
            assert citation["start"] <= mark["start"] < mark["end"] <= citation["end"]


def test_get_search_matches_post(http):
    question = "what did the two high courts agree on minor crimes"
    got = http.get("/search", params={"q": question, "top_k": 4}).json()
    posted = http.post("/search", json={"question": question, "top_k": 4}).json()
    assert got["results"] == posted["results"]


def test_search_accepts_mode_and_filters_in_post_and_get(http):
    body = {"question": "railway cases", "top_k": 4, "mode": "keyword", "source": "002_*", "after": "2024-01-01"}
    posted = http.post("/search", json=body).json()
    assert posted["mode"] == "keyword" and len(posted["results"]) == 4
    assert {r["citation"]["source"] for r in posted["results"]} == {"002_7611d074bac0c8e6.txt"}
    params = {"q": "railway cases", "top_k": 4, "mode": "keyword", "source": "002_*", "after": "2024-01-01"}
    assert http.get("/search", params=params).json()["results"] == posted["results"]


def test_off_topic_question_is_flagged_not_answerable_over_http(http):
    body = http.post("/search", json={"question": "How do I make sourdough bread rise faster?"}).json()
    assert body["answerable"] is False and len(body["results"]) == 5


def test_default_top_k_is_five(http):
    assert len(http.get("/search", params={"q": "public interest litigation"}).json()["results"]) == 5


def test_document_endpoint_serves_the_text_citations_index(http):
    hit = http.post("/search", json={"question": "Yin Jun fourth plenary session", "top_k": 1}).json()["results"][0]
    document = http.get(f"/documents/{hit['citation']['source']}").json()
    assert document["text"][hit["citation"]["start"] : hit["citation"]["end"]] == hit["text"]
    assert document["id"] == hit["citation"]["source"]
    assert document["title"] == hit["citation"]["title"] and document["date"] == hit["citation"]["date"]


@pytest.mark.parametrize(
    "path",
    [
        "/documents/missing.txt",
        "/documents/../pyproject.toml",
        "/documents/%2e%2e%2fpyproject.toml",
        "/documents/..%2F..%2Fetc%2Fpasswd",
        "/documents//etc/passwd",
        "/documents/seeds/000_d01fc28f19d529a8.txt",
    ],
)
def test_unknown_or_escaping_document_ids_are_404(http, path):
    response = http.get(path)
    assert response.status_code == 404
    assert "root:" not in response.text and "[project]" not in response.text


def test_document_line_count_matches_the_file(http):
    for path in sorted(SEEDS.glob("*.txt")):
        body = http.get(f"/documents/{path.name}").json()
        assert body["lines"] == len(path.read_text(encoding="utf-8").splitlines())


def test_unknown_route_answers_in_the_error_shape(http):
    response = http.get("/nowhere")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_health_reports_model_and_counts(http):
    body = http.get("/health").json()
    assert body["status"] == "ok" and body["index_loaded"] is True
    assert body["model"] == "all-MiniLM-L6-v2"
    assert body["documents"] == 5 and body["chunks"] > 50


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"question": ""}, "question is empty"),
        ({"question": "   "}, "question is empty"),
        ({"question": "x" * 5000}, "limit is 2000"),
        ({"question": "ok", "top_k": 0}, "top_k must be a whole number from 1 to 100"),
        ({"question": "ok", "top_k": 1000}, "top_k must be a whole number from 1 to 100"),
        ({"question": "ok", "top_k": "many"}, "top_k"),
        ({"question": 42}, "question"),
        ({}, "question: Field required"),
        ({"question": "ok", "mode": "fuzzy"}, "mode"),
        ({"question": "ok", "after": "last week"}, "after must be an ISO date"),
        ({"question": "ok", "after": "2024-05-01", "before": "2024-01-01"}, "later than before"),
    ],
)
def test_bad_search_requests_are_422_with_a_message(http, payload, message):
    response = http.post("/search", json=payload)
    assert response.status_code == 422
    assert message in response.json()["message"]


def test_bad_get_search_is_422(http):
    assert http.get("/search", params={"q": " "}).status_code == 422
    assert http.get("/search").status_code == 422
    assert http.get("/search", params={"q": "ok", "top_k": "-1"}).status_code == 422


def test_malformed_json_body_is_422(http):
    response = http.post("/search", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_app_without_an_index_starts_and_says_why(tmp_path):
    from fastapi.testclient import TestClient

    app = create_app(Settings(index_dir=tmp_path / "none"))
    with TestClient(app) as client:
        health = client.get("/health").json()
        assert health["index_loaded"] is False and "no index" in health["error"]
        response = client.post("/search", json={"question": "anything"})
        assert response.status_code == 503
        assert response.json()["error"] == "index_not_found"


@pytest.mark.parametrize("mode", ["hybrid", "dense", "keyword"])
def test_search_body_is_byte_for_byte_what_response_model_validation_would_encode(service, mode):
    # FastAPI's own path for a returned dict: validate it as the response model, then dump it as JSON.
    adapter = TypeAdapter(SearchResponse)
    questions = [
        "Who led the research group to Guizhou?",
        "what is the weather on Mars?",
        "the",
        "Гуйчжоу 贵州 “quoted”",
    ]
    for question in questions:
        for top_k in (1, 5, 100):
            answer = service.search(question, top_k, mode=mode)
            assert answer_body(answer) == adapter.dump_json(adapter.validate_python(answer.as_dict()))


class _GatedEncoder:
    """The real encoder, but each call waits until the test opens the gate."""

    def __init__(self, encoder) -> None:
        self.encoder = encoder
        self.entered = threading.Event()
        self.gate = threading.Event()

    def __getattr__(self, name):
        return getattr(self.encoder, name)

    def encode(self, texts):
        self.entered.set()
        self.gate.wait(timeout=30)
        return self.encoder.encode(texts)


def test_the_event_loop_answers_other_requests_while_a_question_is_embedded(service):
    gated = _GatedEncoder(service.dense.encoder)
    slow = SearchService(
        service.settings, service.manifest, service.store, DenseRetriever(gated, service.dense.vectors)
    )
    with serving(create_app(Settings(index_dir=service.settings.index_dir), service=slow)) as url:
        searched: list[httpx.Response] = []
        asking = threading.Thread(
            target=lambda: searched.append(httpx.get(f"{url}/search", params={"q": "Guizhou"}, timeout=60))
        )
        asking.start()
        try:
            assert gated.entered.wait(timeout=30)
            health = httpx.get(f"{url}/health", timeout=10)  # answered while the search is still embedding
            assert health.status_code == 200 and not searched
        finally:
            gated.gate.set()
            asking.join(timeout=60)
        assert searched[0].status_code == 200 and searched[0].json()["results"]
