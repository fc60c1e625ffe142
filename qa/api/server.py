"""Run the app under uvicorn with limits on slow and numerous clients.

uvicorn (0.54) times out an idle keep-alive connection, but not a client that is slow to send a request:
a connection that sends half its headers, or a declared body it never finishes, is held open for as long
as the client likes, and enough of them exhaust the server. ``protocol_with_deadlines`` adds two deadlines
to uvicorn's own HTTP protocol: the request line and headers must arrive within ``header_timeout`` seconds
of the request's first byte (or of the connection, for a client that sends nothing), and the body within
``body_timeout`` seconds of the headers. A request that misses one is answered 408 (when nothing has been
answered yet) and its connection closed. The deadlines stop once the request is read: a slow search is
never cut off. ``limit_concurrency`` bounds open connections and requests together (uvicorn answers 503
beyond it).

``--workers N`` runs N server processes on one listening socket under uvicorn's own supervisor
(``serve_workers``): Python holds one lock per process, so a second process is what lets a search's Python
run on a second core. Each worker opens the index itself (memory-mapped files are shared between them by
the operating system) and reads its settings from the environment the supervisor passes down.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import cast

import uvicorn

from qa.config import Settings

log = logging.getLogger("qa.server")

_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
    b"content-length: 25\r\n\r\nrequest not sent in time\n"
)


class _RequestDeadlines(asyncio.Protocol):
    """Mixin for a uvicorn HTTP protocol: close a connection whose request is not received in time."""

    # Set by uvicorn's protocol, which comes after this mixin in the method order.
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    client: tuple[str, int] | None

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    _deadline: asyncio.TimerHandle | None = None

    def _arm(self, seconds: float, part: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire, part)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, part: str) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        client = "%s:%d" % self.client if self.client else "client"
        log.warning("closing connection from %s: request %s not received in time", client, part)
        if part == "headers":
            self.transport.write(_REQUEST_TIMEOUT)  # no response has begun on this request
        self.transport.close()

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm(self.header_timeout, "headers")

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)


def _httptools_protocol() -> type[asyncio.Protocol]:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HttpToolsWithDeadlines(_RequestDeadlines, HttpToolsProtocol):
        """uvicorn's httptools protocol with header and body deadlines."""

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm(self.header_timeout, "headers")

        def on_headers_complete(self) -> None:
            self._arm(self.body_timeout, "body")
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

    return HttpToolsWithDeadlines


def _h11_protocol() -> type[asyncio.Protocol]:
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class H11WithDeadlines(_RequestDeadlines, H11Protocol):
        """uvicorn's h11 protocol with header and body deadlines (h11 reports progress as parser states)."""

        _part: str | None = "headers"  # what the armed deadline is for; None while no request is being read

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            part = {h11.IDLE: "headers", h11.SEND_BODY: "body"}.get(self.conn.their_state)
            if part is None:
                self._part = None
                self._disarm()
            elif part != self._part:
                self._part = part
                self._arm(self.header_timeout if part == "headers" else self.body_timeout, part)

    return H11WithDeadlines


def protocol_with_deadlines(settings: Settings, implementation: str = "auto") -> type:
    """uvicorn's HTTP protocol (httptools when installed, else h11) with the settings' read deadlines.

    Args:
        implementation: "auto", "httptools" or "h11".
    """
    return _protocol_class(settings.header_timeout, settings.body_timeout, implementation)


@functools.lru_cache(maxsize=None)
def _protocol_class(header_timeout: float, body_timeout: float, implementation: str = "auto") -> type:
    """The protocol class of ``protocol_with_deadlines``, made once per set of deadlines."""
    base = None
    if implementation in ("auto", "httptools"):
        try:
            base = _httptools_protocol()
        except ImportError:
            if implementation == "httptools":
                raise
    if base is None:
        base = _h11_protocol()
    return type(base.__name__, (base,), {"header_timeout": header_timeout, "body_timeout": body_timeout})


def _new_protocol(header_timeout: float, body_timeout: float, **arguments):
    """One connection's protocol with these deadlines (what uvicorn calls per connection)."""
    return _protocol_class(header_timeout, body_timeout)(**arguments)


def protocol_factory(settings: Settings) -> functools.partial:
    """What uvicorn makes each connection's protocol with: the class of ``protocol_with_deadlines`` behind a
    function, because a worker process receives its configuration pickled and a class made at run time cannot
    be pickled by name."""
    return functools.partial(_new_protocol, settings.header_timeout, settings.body_timeout)


def server_config(app, settings: Settings, **options) -> uvicorn.Config:
    """A uvicorn configuration for ``app``: host, port, keep-alive, connection limit and read deadlines.

    Args:
        options: further ``uvicorn.Config`` arguments (logging, for example).
    """
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        # uvicorn calls ``http`` to make each connection's protocol, so a factory works though it is typed as a class.
        http=cast(type[asyncio.Protocol], protocol_factory(settings)),
        # uvicorn passes it to loop.call_later, which takes seconds as a float though it is typed int.
        timeout_keep_alive=cast(int, settings.keep_alive_timeout),
        limit_concurrency=settings.max_connections,
        **options,
    )


def serve_workers(settings: Settings, **options) -> None:
    """Serve with ``settings.workers`` processes under uvicorn's supervisor, which restarts a worker that dies.

    Each worker builds the app with ``create_app()`` from the ``QA_*`` environment, so the settings are written
    there first (``Settings.environment``): a worker sees exactly what this process resolved from options,
    variables and defaults.
    """
    import os

    from uvicorn.supervisors import Multiprocess

    os.environ.update(settings.environment())
    config = server_config("qa.api.app:create_app", settings, factory=True, workers=settings.workers, **options)
    Multiprocess(config, sockets=[config.bind_socket()]).run()
