"""How long a client that sends half its request is held: plain uvicorn against `qa serve`'s read deadlines.

    python benchmarks/slow_client.py [--wait 45] [--header-timeout 10] [--body-timeout 30]

Serves a one-route app on loopback three ways (uvicorn's default protocol, and qa's deadlines over httptools and
over h11), opens a connection that sends half its headers and another that sends headers and part of a declared
body, and prints how many seconds each was held open (up to ``--wait``), and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI, Request

from qa.api.server import protocol_with_deadlines
from qa.config import Settings

HALF_HEADERS = b"GET /ping HTTP/1.1\r\nHost: x\r\n"
PART_BODY = b'POST /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"q'


def _app() -> FastAPI:
    app = FastAPI()

    @app.api_route("/ping", methods=["GET", "POST"])
    async def ping(request: Request) -> dict:
        return {"bytes": len(await request.body())}  # reads the body, as POST /search does

    return app


def held_seconds(port: int, sent: bytes, wait: float) -> float:
    """Seconds until the server closed a connection that sent ``sent`` and then nothing (``wait`` at most)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(sent)
        sock.settimeout(wait)
        started = time.monotonic()
        try:
            while sock.recv(4096):
                pass
        except TimeoutError:
            return wait
        return round(time.monotonic() - started, 2)


def measure(http, wait: float) -> dict:
    """Both slow clients against a server using the ``http`` protocol."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(_app(), host="127.0.0.1", port=port, http=http, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        return {
            "half_headers_s": held_seconds(port, HALF_HEADERS, wait),
            "part_body_s": held_seconds(port, PART_BODY, wait),
        }
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wait", type=float, default=45.0)
    parser.add_argument("--header-timeout", type=float, default=Settings().header_timeout)
    parser.add_argument("--body-timeout", type=float, default=Settings().body_timeout)
    args = parser.parse_args()
    settings = Settings(header_timeout=args.header_timeout, body_timeout=args.body_timeout)
    results = {
        "uvicorn (auto)": measure("auto", args.wait),
        "qa httptools": measure(protocol_with_deadlines(settings, "httptools"), args.wait),
        "qa h11": measure(protocol_with_deadlines(settings, "h11"), args.wait),
    }
    for name, held in results.items():
        print(
            f"{name:15} half headers held {held['half_headers_s']:5.1f} s, part of a body held "
            f"{held['part_body_s']:5.1f} s (of {args.wait:g} s waited)"
        )
    print(json.dumps({"wait_s": args.wait, **results}))


if __name__ == "__main__":
    main()
