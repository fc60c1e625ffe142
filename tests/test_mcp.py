"""The MCP server, driven by the official SDK's own client over both transports: stdio (`python -m qa mcp` in a
subprocess) and streamable HTTP (the real app under uvicorn on loopback, behind an API key), over the seeds index."""

from __future__ import annotations

import asyncio
import os
import sys

import httpx
import pytest
from conftest import ROOT, serving
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from qa.api.app import create_app
from qa.api.schemas import SearchResponse, VerifyResponse
from qa.config import Settings

# Slow tier (see conftest.py): runs the MCP server over stdio subprocesses and HTTP.
pytestmark = pytest.mark.slow

KEY = "mcp-test-key-0123456789"
QUESTION = "Which railway cases does the Guizhou procuratorate handle?"
QUOTE = "They went to Anshun, Guiyang and other places in Guizhou for research."
QUOTE_SOURCE = "002_7611d074bac0c8e6.txt"


def stdio_client(index_dir, **extra_env: str) -> Client:
    """The SDK's client, spawning `python -m qa mcp --index DIR` with this checkout on the path."""
    env = {
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "QA_CACHE_DIR": os.environ.get("QA_CACHE_DIR", ""),
        **extra_env,
    }
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "qa", "mcp", "--index", str(index_dir)],
        env={k: v for k, v in env.items() if v},
    )
    return Client(params, read_timeout_seconds=120)


def http_client(url: str, key: str | None = KEY) -> Client:
    """The SDK's client over streamable HTTP, sending the API key when one is given."""
    headers = {"Authorization": f"Bearer {key}"} if key else None
    return Client(streamable_http_client(f"{url}/mcp", http_client=create_mcp_http_client(headers=headers)))


async def exercise(client: Client, index_text) -> dict:
    """Every behaviour the tests check, gathered in one session (starting a server is the slow part)."""
    async with client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        answer = await client.call_tool("search", {"question": QUESTION, "top_k": 3})
        first = answer.structured_content["results"][0]["citation"]
        span = await client.call_tool(
            "get_document", {"id": first["source"], "start": first["start"], "end": first["end"]}
        )
        whole = await client.call_tool("get_document", {"id": first["source"]})
        filtered = await client.call_tool(
            "search", {"question": QUESTION, "source": "004*", "after": "2024", "mode": "keyword"}
        )
        return {
            "tools": tools,
            "answer": answer,
            "span": span,
            "whole": whole,
            "filtered": filtered,
            "expected_document": index_text(first["source"]),
            "empty": await client.call_tool("search", {"question": "   "}),
            "bad date": await client.call_tool("search", {"question": QUESTION, "after": "yesterday"}),
            "unknown": await client.call_tool("get_document", {"id": "no-such.txt"}),
            "bad span": await client.call_tool("get_document", {"id": first["source"], "start": 5, "end": 2}),
            "verified": await client.call_tool(
                "verify_quote", {"text": f"\u201c{QUOTE}\u201d", "source": QUOTE_SOURCE, "start": 0, "end": 10}
            ),
            "empty quote": await client.call_tool("verify_quote", {"text": " "}),
        }


def check_session(found: dict, service) -> None:
    """What both transports must show."""
    tools = found["tools"]
    assert set(tools) == {"search", "get_document", "verify_quote"}
    for tool in tools.values():
        assert "verbatim" in tool.description and "cite" in tool.description
        assert tool.annotations.read_only_hint is True
    assert set(tools["search"].input_schema["properties"]) == {"question", "top_k", "mode", "source", "after", "before"}
    assert tools["search"].input_schema["required"] == ["question"]

    answer = found["answer"]
    assert not answer.is_error
    body = answer.structured_content
    SearchResponse.model_validate(body)
    expected = service.search(QUESTION, 3).as_dict()
    assert [hit["citation"] for hit in body["results"]] == [hit["citation"] for hit in expected["results"]]
    # The readable text quotes every passage, line by line, under its citation.
    text = answer.content[0].text
    for hit in body["results"]:
        c = hit["citation"]
        assert f"[{hit['rank']}] {c['source']}" in text and f"characters {c['start']}-{c['end']}" in text
        assert "\n".join(f"> {line}" if line else ">" for line in hit["text"].split("\n")) in text

    first = body["results"][0]
    span = found["span"]
    assert not span.is_error
    assert span.structured_content["text"] == first["text"] == span.content[1].text
    assert span.structured_content["line_start"] == first["citation"]["line_start"]
    assert span.structured_content["line_end"] == first["citation"]["line_end"]
    assert found["whole"].structured_content["text"] == found["expected_document"]

    filtered = found["filtered"].structured_content
    assert filtered["mode"] == "keyword" and filtered["results"]
    assert {hit["citation"]["source"][:3] for hit in filtered["results"]} == {"004"}

    verified = found["verified"]
    assert not verified.is_error
    VerifyResponse.model_validate(verified.structured_content)
    [piece] = verified.structured_content["pieces"]
    quoted = piece["matches"][0]["citation"]
    assert piece["verdict"] == "exact" and quoted["source"] == QUOTE_SOURCE
    assert service.document(QUOTE_SOURCE).text[quoted["start"] : quoted["end"]] == QUOTE
    assert piece["citation_check"]["correct"] is False
    assert f"it is at {QUOTE_SOURCE}, characters {quoted['start']}-{quoted['end']}" in verified.content[0].text

    for name, message in [
        ("empty quote", "text to check is empty"),
        ("empty", "question is empty"),
        ("bad date", "after must be an ISO date"),
        ("unknown", "no document with id 'no-such.txt'"),
        ("bad span", "span 5-2 is outside document"),
    ]:
        result = found[name]
        assert result.is_error, name
        assert message in result.content[0].text, (name, result.content[0].text)


def test_stdio_server_answers_with_cited_passages_and_tool_errors(seeds_index, service):
    found = asyncio.run(exercise(stdio_client(seeds_index), lambda doc_id: service.document(doc_id).text))
    check_session(found, service)


@pytest.fixture(scope="module")
def keyed_server(service):
    """The real app with an API key, served by uvicorn on loopback."""
    settings = Settings(index_dir=service.settings.index_dir, api_key=KEY)
    with serving(create_app(settings, service=service)) as url:
        yield url


def test_streamable_http_at_mcp_answers_with_cited_passages_and_tool_errors(keyed_server, service):
    found = asyncio.run(exercise(http_client(keyed_server), lambda doc_id: service.document(doc_id).text))
    check_session(found, service)


def test_mcp_over_http_needs_the_api_key(keyed_server):
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    headers = {"Accept": "application/json, text/event-stream"}
    refused = httpx.post(f"{keyed_server}/mcp", json=initialize, headers=headers)
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    accepted = httpx.post(f"{keyed_server}/mcp", json=initialize, headers={**headers, "Authorization": f"Bearer {KEY}"})
    assert accepted.status_code == 200 and accepted.json()["result"]["serverInfo"]["name"] == "qa"

    async def without_key():
        async with http_client(keyed_server, key=None) as client:
            await client.list_tools()

    # The SDK client raises the 401 from inside its task group, wrapped by the anyio version installed.
    with pytest.raises(Exception):  # noqa: B017
        asyncio.run(without_key())


def test_mcp_on_loopback_refuses_a_foreign_host_or_origin(keyed_server):
    headers = {"Accept": "application/json, text/event-stream", "Authorization": f"Bearer {KEY}"}
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    # A page on a hostile name that resolves to 127.0.0.1 (DNS rebinding) sends its own Host and Origin.
    for extra in ({"Host": "attacker.example:8000"}, {"Origin": "http://attacker.example"}):
        refused = httpx.post(f"{keyed_server}/mcp", json=ping, headers={**headers, **extra})
        assert refused.status_code in (400, 403, 421), (extra, refused.status_code)
    assert httpx.post(f"{keyed_server}/mcp", json=ping, headers=headers).status_code == 200


def test_mcp_over_http_reports_a_missing_index_as_a_tool_error(tmp_path):
    app = create_app(Settings(index_dir=tmp_path / "no-index", reload_interval=0))

    async def search():
        async with http_client(url, key=None) as client:
            return await client.call_tool("search", {"question": QUESTION})

    with serving(app) as url:
        result = asyncio.run(search())
    assert result.is_error and "no index" in result.content[0].text


def test_mcp_stdio_with_no_index_fails_at_start_with_a_message(tmp_path):
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "qa", "mcp", "--index", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"},
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("error: ") and "qa index" in done.stderr


def test_the_http_app_imports_the_mcp_sdk_only_when_mcp_is_asked_for(seeds_index):
    import json
    import subprocess
    import textwrap

    script = textwrap.dedent(f"""
        import json, sys
        from fastapi.testclient import TestClient
        from qa.api.app import create_app
        from qa.config import Settings

        app = create_app(Settings(index_dir={str(seeds_index)!r}, reload_interval=0))
        with TestClient(app, base_url="http://127.0.0.1") as client:
            client.get("/health")
            before = "mcp" in sys.modules
            reply = client.post("/mcp", headers={{"Accept": "application/json, text/event-stream"}}, json={{
                "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {{}},
            }})
        print(json.dumps({{"before": before, "after": "mcp" in sys.modules, "status": reply.status_code,
                          "tools": sorted(t["name"] for t in reply.json()["result"]["tools"])}}))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"before": False, "after": True, "status": 200, "tools": ["get_document", "search", "verify_quote"]}


def test_mcp_stdio_picks_up_a_rebuilt_index_without_a_restart(tmp_path, encoder):
    from qa.index.indexer import build_index

    corpus = tmp_path / "notes"
    corpus.mkdir()
    (corpus / "logs.md").write_text("# Logs\n\nRotate the service logs every night.\n", encoding="utf-8")
    index_dir = tmp_path / "index"
    defaults = Settings()

    def build() -> None:
        build_index(
            corpus,
            index_dir,
            encoder,
            chunk_size=defaults.chunk_size,
            chunk_overlap=defaults.chunk_overlap,
            embed_title=defaults.embed_title,
        )

    build()
    client = stdio_client(index_dir, QA_RELOAD_INTERVAL="0.2")

    async def session() -> tuple[list[str], list[str]]:
        async with client:
            before = await client.call_tool("search", {"question": "octopus hearts", "top_k": 5})
            (corpus / "octopus.md").write_text("# Octopus\n\nAn octopus has three hearts.\n", encoding="utf-8")
            build()
            for _ in range(100):  # the watcher looks every 0.2 s; give a busy machine up to 20 s
                after = await client.call_tool("search", {"question": "octopus hearts", "top_k": 5})
                if len(after.structured_content["results"]) > 1:
                    break
                await asyncio.sleep(0.2)

        def sources(result):
            return [hit["citation"]["source"] for hit in result.structured_content["results"]]

        return sources(before), sources(after)

    before, after = asyncio.run(session())
    assert before == ["logs.md"]
    assert after[0] == "octopus.md" and set(after) == {"logs.md", "octopus.md"}
