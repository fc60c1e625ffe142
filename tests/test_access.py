"""Access: the optional API key, CORS only when configured, the request body limit, loopback by default."""

from __future__ import annotations

import asyncio
import hmac
import json
import re

import httpx
import pytest
from click.testing import CliRunner
from conftest import serving
from fastapi.testclient import TestClient

from qa.api.app import create_app
from qa.cli.main import main
from qa.config import DEFAULT_MAX_BODY_BYTES, Settings
from qa.errors import ConfigError

KEY = "s3cret-key-0123456789abcdef"
DOC_ID = "004_e4f473833b61ecc8.txt"
UNAUTHORIZED = {"error": "unauthorized", "message": "missing or invalid API key"}
ORIGIN = "https://app.example"


def keyed_app(service, **settings):
    return create_app(Settings(index_dir=service.settings.index_dir, api_key=KEY, **settings), service=service)


def open_app(service, **settings):
    return create_app(Settings(index_dir=service.settings.index_dir, **settings), service=service)


@pytest.fixture(scope="module")
def keyed(service):
    """An httpx client for a live server that requires the key; it sends no key unless told."""
    with serving(keyed_app(service)) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def http(live_server):
    with httpx.Client(base_url=live_server, timeout=30) as client:
        yield client


def bearer(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# ---------------------------------------------------------------- API key, over real HTTP

PROTECTED = [
    ("GET", "/search?q=railway+cases"),
    ("POST", "/search"),
    ("GET", f"/documents/{DOC_ID}"),
    ("GET", "/documents/missing.txt"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/redoc"),
    ("GET", "/nowhere"),
    ("GET", "/health/"),
    ("POST", "/health"),
    ("DELETE", "/search"),
]
BAD_CREDENTIALS = {
    "missing": {},
    "wrong key, same length": bearer("x" * len(KEY)),
    "shorter key": bearer(KEY[:-1]),
    "longer key": bearer(KEY + "0"),
    "key as a prefix": bearer(KEY[:16]),
    "key and more": {"Authorization": f"Bearer {KEY} {KEY}"},
    "scheme only": {"Authorization": "Bearer"},
    "basic scheme": {"Authorization": "Basic " + KEY},
    "key without scheme": {"Authorization": KEY},
    "token scheme": {"Authorization": f"Token {KEY}"},
    "key in another header": {"X-API-Key": KEY},
}


def _request(client, method, path, headers):
    body = json.dumps({"question": "railway cases", "top_k": 1}) if method == "POST" else None
    return client.request(method, path, headers={"content-type": "application/json", **headers}, content=body)


@pytest.mark.parametrize("method, path", PROTECTED)
@pytest.mark.parametrize("credentials", list(BAD_CREDENTIALS), ids=list(BAD_CREDENTIALS))
def test_every_endpoint_but_health_needs_the_key(keyed, method, path, credentials):
    response = _request(keyed, method, path, BAD_CREDENTIALS[credentials])
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert response.headers["www-authenticate"] == "Bearer"
    assert KEY not in response.text and "search" not in response.text


def test_refusals_are_byte_identical_whatever_was_wrong(keyed):
    bodies = {
        (path, name): _request(keyed, "GET", path, headers).content
        for path in ("/search?q=x", "/nowhere", "/openapi.json")
        for name, headers in BAD_CREDENTIALS.items()
    }
    assert len(set(bodies.values())) == 1
    assert json.loads(next(iter(bodies.values()))) == UNAUTHORIZED


def test_two_authorization_headers_are_refused(keyed):
    headers = [("Authorization", f"Bearer {KEY}"), ("Authorization", "Bearer wrong-wrong-wrong-wrong")]
    assert keyed.get("/search", params={"q": "railway"}, headers=headers).status_code == 401


def test_health_stays_open_with_or_without_a_key(keyed):
    for headers in ({}, bearer("wrong-wrong-wrong-wrong"), bearer()):
        response = keyed.get("/health", headers=headers)
        assert response.status_code == 200 and response.json()["index_loaded"] is True


def test_the_right_key_opens_everything(keyed):
    response = keyed.post("/search", json={"question": "railway cases", "top_k": 2}, headers=bearer())
    assert response.status_code == 200 and len(response.json()["results"]) == 2
    assert keyed.get("/search", params={"q": "railway cases"}, headers=bearer()).status_code == 200
    document = keyed.get(f"/documents/{DOC_ID}", headers=bearer())
    assert document.status_code == 200 and document.json()["id"] == DOC_ID
    assert keyed.get("/docs", headers=bearer()).status_code == 200
    # The scheme is case-insensitive (RFC 7235); only the key must match exactly.
    assert keyed.get("/search", params={"q": "x"}, headers={"Authorization": f"bearer {KEY}"}).status_code == 200
    # Past the key, errors are the usual ones.
    missing = keyed.get("/nowhere", headers=bearer())
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert keyed.get("/documents/missing.txt", headers=bearer()).status_code == 404
    assert keyed.post("/search", json={"question": " "}, headers=bearer()).status_code == 422


def test_openapi_schema_declares_the_bearer_key(keyed):
    schema = keyed.get("/openapi.json", headers=bearer()).json()
    assert schema["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "The service's API key (QA_API_KEY).",
    }
    assert schema["security"] == [{"apiKey": []}]
    assert schema["paths"]["/health"]["get"]["security"] == []
    assert "401" in schema["paths"]["/search"]["post"]["responses"]
    assert KEY not in json.dumps(schema)


def test_key_is_compared_in_constant_time(service, monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    with TestClient(keyed_app(service)) as client:
        assert client.get("/search", params={"q": "railway"}, headers=bearer()).status_code == 200
        assert client.get("/search", params={"q": "railway"}, headers=bearer("y" * 30)).status_code == 401
        assert client.get("/nowhere").status_code == 401
    assert calls == [(KEY.encode(), KEY.encode()), (b"y" * 30, KEY.encode()), (b"", KEY.encode())]
    assert all(isinstance(a, bytes) and isinstance(b, bytes) for a, b in calls)


def test_without_a_key_the_service_is_open(http):
    assert http.get("/search", params={"q": "railway cases", "top_k": 1}).status_code == 200
    assert http.get("/openapi.json").status_code == 200
    assert "securitySchemes" not in http.get("/openapi.json").json().get("components", {})
    # A stray Authorization header changes nothing when no key is configured.
    assert http.get("/search", params={"q": "railway"}, headers=bearer("whatever")).status_code == 200


# ---------------------------------------------------------------- CORS


def _preflight(client, origin=ORIGIN, method="POST", headers="authorization, content-type"):
    return client.options(
        "/search",
        headers={"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers},
    )


def test_no_cors_headers_by_default(http):
    preflight = _preflight(http)
    assert "access-control-allow-origin" not in preflight.headers
    assert not any(name.startswith("access-control-") for name in preflight.headers)
    simple = http.get("/health", headers={"Origin": ORIGIN})
    assert simple.status_code == 200 and "access-control-allow-origin" not in simple.headers


def test_cors_allows_exactly_the_configured_origins(service):
    with TestClient(open_app(service, cors_origins=(ORIGIN,))) as client:
        preflight = _preflight(client)
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert set(preflight.headers["access-control-allow-methods"].split(", ")) == {"GET", "POST"}
        allowed_headers = {h.lower() for h in preflight.headers["access-control-allow-headers"].split(", ")}
        assert {"authorization", "content-type"} <= allowed_headers
        assert client.get("/health", headers={"Origin": ORIGIN}).headers["access-control-allow-origin"] == ORIGIN

        for other in ("https://evil.example", "http://app.example", "https://app.example.evil.example"):
            assert "access-control-allow-origin" not in _preflight(client, origin=other).headers
            assert "access-control-allow-origin" not in client.get("/health", headers={"Origin": other}).headers
        assert _preflight(client, method="DELETE").status_code == 400
        assert _preflight(client, headers="x-api-key").status_code == 400


def test_cors_with_a_key_answers_preflight_and_lets_the_browser_read_a_401(service):
    with TestClient(keyed_app(service, cors_origins=f"{ORIGIN}, https://other.example")) as client:
        preflight = _preflight(client)  # browsers never send credentials on a preflight
        assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == ORIGIN
        refused = client.get("/search", params={"q": "x"}, headers={"Origin": ORIGIN})
        assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == ORIGIN
        allowed = client.get("/search", params={"q": "x"}, headers={"Origin": ORIGIN, **bearer()})
        assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == ORIGIN


# ---------------------------------------------------------------- request body limit, over real HTTP


def _padded_body(size: int) -> bytes:
    """A valid search request of exactly ``size`` bytes (unknown fields are ignored)."""
    head = b'{"question": "railway cases", "top_k": 1, "pad": "'
    return head + b"x" * (size - len(head) - 2) + b'"}'


def _chunks(body: bytes, size: int = 8192):
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_oversized_body_with_content_length_is_413(http):
    body = _padded_body(100_000)
    response = http.post("/search", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {
        "error": "payload_too_large",
        "message": f"request body is 100000 bytes; the limit is {DEFAULT_MAX_BODY_BYTES}",
    }


def test_oversized_chunked_body_is_413(http):
    request = http.build_request(
        "POST", "/search", content=_chunks(_padded_body(100_000)), headers={"content-type": "application/json"}
    )
    assert "content-length" not in request.headers and request.headers["transfer-encoding"] == "chunked"
    response = http.send(request)
    assert response.status_code == 413
    body = response.json()
    assert body["error"] == "payload_too_large"
    # Without a declared length the service counts what it has read when it stops: "at least N" unless
    # the server happened to have the whole body already.
    pattern = rf"request body is (at least )?(\d+) bytes; the limit is {DEFAULT_MAX_BODY_BYTES}"
    found = re.fullmatch(pattern, body["message"])
    assert found, body["message"]
    assert DEFAULT_MAX_BODY_BYTES < int(found[2]) <= 100_000
    assert (found[1] is None) == (int(found[2]) == 100_000)


def test_bodies_under_the_limit_are_fine(http):
    body = _padded_body(60_000)
    assert http.post("/search", content=body, headers={"content-type": "application/json"}).status_code == 200
    request = http.build_request("POST", "/search", content=_chunks(body), headers={"content-type": "application/json"})
    response = http.send(request)
    assert response.status_code == 200 and len(response.json()["results"]) == 1
    exact = _padded_body(DEFAULT_MAX_BODY_BYTES)
    assert http.post("/search", content=exact, headers={"content-type": "application/json"}).status_code == 200


def test_server_answers_again_after_a_413(http):
    http.post("/search", content=_padded_body(100_000), headers={"content-type": "application/json"})
    assert http.get("/health").status_code == 200


def test_key_is_checked_before_the_body_size(keyed):
    response = keyed.post("/search", content=_padded_body(100_000), headers={"content-type": "application/json"})
    assert response.status_code == 401 and response.json() == UNAUTHORIZED
    authorized = keyed.post(
        "/search", content=_padded_body(100_000), headers={"content-type": "application/json", **bearer()}
    )
    assert authorized.status_code == 413


def test_streamed_body_is_read_no_further_than_one_byte_past_the_limit(service):
    """Driven at the ASGI level with one-byte chunks, so every byte the app pulls is counted."""
    app = open_app(service, max_body_bytes=1024)
    pulled = 0
    sent: list[dict] = []

    async def receive():
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x", "more_body": pulled < 100_000}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/search",
        "raw_path": b"/search",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    asyncio.run(app(scope, receive, send))
    assert pulled == 1025
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 413
    body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    assert body == {"error": "payload_too_large", "message": "request body is at least 1025 bytes; the limit is 1024"}


def test_body_limit_is_configurable(service):
    with TestClient(open_app(service, max_body_bytes=2048)) as client:
        response = client.post("/search", content=_padded_body(3000), headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert response.json()["message"] == "request body is 3000 bytes; the limit is 2048"
        fits = client.post("/search", content=_padded_body(2000), headers={"content-type": "application/json"})
        assert fits.status_code == 200


# ---------------------------------------------------------------- settings and `qa serve`


def test_defaults_bind_loopback_with_no_key_no_cors_and_a_64_kib_limit():
    settings = Settings()
    assert settings.host == "127.0.0.1"
    assert settings.api_key is None and settings.cors_origins == () and settings.max_body_bytes == 64 * 1024


def test_serve_help_shows_loopback_default_and_the_key_option():
    result = CliRunner().invoke(main, ["serve", "--help"], env={"QA_HOST": None, "QA_API_KEY": None})
    assert result.exit_code == 0
    text = " ".join(result.output.split())  # click wraps help to the terminal width
    assert "default: 127.0.0.1" in text
    assert "--api-key" in text and "QA_API_KEY" in text


@pytest.mark.parametrize("key", ["short", "x" * 15, "sixteen chars ok", "tab\tinside-the-key-here", "ключ" * 5])
def test_unusable_keys_are_config_errors(key):
    with pytest.raises(ConfigError) as caught:
        Settings(api_key=key).check()
    assert key not in str(caught.value)


def test_too_short_key_is_refused_everywhere(service, tmp_path):
    with pytest.raises(ConfigError, match="at least 16 characters, got 5"):
        create_app(Settings(index_dir=service.settings.index_dir, api_key="short"), service=service)
    with pytest.raises(ConfigError, match="at least 16 characters"):
        Settings.from_env({"QA_API_KEY": "short"})
    result = CliRunner().invoke(main, ["serve", "--no-build", "--index", str(tmp_path / "none"), "--api-key", "short"])
    assert result.exit_code == 1 and "at least 16 characters" in result.output
    args = ["serve", "--no-build", "--index", str(tmp_path / "none")]
    result = CliRunner().invoke(main, args, env={"QA_API_KEY": "short"})
    assert result.exit_code == 1 and "at least 16 characters" in result.output


def test_access_settings_come_from_the_environment():
    settings = Settings.from_env(
        {
            "QA_API_KEY": KEY,
            "QA_CORS_ORIGINS": f" {ORIGIN} ,http://localhost:3000,, ",
            "QA_MAX_BODY_BYTES": "2048",
        }
    )
    assert settings.api_key == KEY
    assert settings.cors_origins == (ORIGIN, "http://localhost:3000")
    assert settings.max_body_bytes == 2048
    assert KEY not in repr(settings)
    assert Settings.from_env({"QA_API_KEY": ""}).api_key is None
    assert Settings.from_env({"QA_CORS_ORIGINS": ""}).cors_origins == ()


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"QA_MAX_BODY_BYTES": "1023"}, "between 1024 and 10485760"),
        ({"QA_MAX_BODY_BYTES": str(10 * 1024 * 1024 + 1)}, "between 1024 and 10485760"),
        ({"QA_MAX_BODY_BYTES": "lots"}, "QA_MAX_BODY_BYTES must be a whole number"),
        ({"QA_CORS_ORIGINS": "https://app.example/"}, "CORS origin"),
        ({"QA_CORS_ORIGINS": "app.example"}, "CORS origin"),
    ],
)
def test_bad_access_settings_are_config_errors(environ, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(environ)


@pytest.mark.parametrize(
    "host, warned", [("0.0.0.0", True), ("127.0.0.1", False), ("::1", False), ("localhost", False)]
)
def test_serve_warns_when_listening_beyond_loopback_without_a_key(tmp_path, host, warned, monkeypatch):
    import uvicorn

    monkeypatch.setattr(uvicorn.Server, "run", lambda self: None)  # the warning comes before serving
    args = ["serve", "--no-build", "--index", str(tmp_path / "none"), "--host", host]
    result = CliRunner().invoke(main, args, env={"QA_API_KEY": None})
    assert result.exit_code == 0  # no index yet: it still serves (/health says why)
    assert ("without an API key" in result.output) is warned
    keyed_result = CliRunner().invoke(main, args, env={"QA_API_KEY": KEY})
    assert "without an API key" not in keyed_result.output and KEY not in keyed_result.output
