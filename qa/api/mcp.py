"""/mcp: the MCP server (qa/mcp/server.py) over streamable HTTP, as one route of the app.

The MCP SDK is slow to import (its protocol is hundreds of pydantic models), so it is imported on the first request
to /mcp, not when the app is built: a service nobody asks over MCP never pays for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import anyio
import anyio.to_thread
from starlette.types import Receive, Scope, Send

from qa.search.service import SearchService


class MCPEndpoint:
    """An ASGI endpoint that starts the MCP session manager on first use and hands it every request.

    ``running()`` belongs in the app's lifespan: the manager lives in a task started there (its task group must
    outlive any one request), and a new one is made each time the app starts, so an app may start more than once.
    """

    def __init__(self, current_service: Callable[[], SearchService], *, host: str, max_body_bytes: int) -> None:
        self._current_service = current_service
        self._host = host
        self._max_body_bytes = max_body_bytes
        self._wanted: anyio.Event | None = None
        self._ready: anyio.Event | None = None
        self._manager = None
        self._failure: BaseException | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Serve /mcp until the context ends."""
        wanted, ready = anyio.Event(), anyio.Event()
        self._wanted, self._ready, self._manager, self._failure = wanted, ready, None, None
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._serve_when_wanted, wanted, ready)
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()

    async def _serve_when_wanted(self, wanted: anyio.Event, ready: anyio.Event) -> None:
        await wanted.wait()
        try:
            # Imported and built in a thread: the event loop keeps answering other requests meanwhile.
            manager = await anyio.to_thread.run_sync(self._new_manager)
        except Exception as exc:  # reported to each /mcp request; the rest of the app keeps serving
            self._failure = exc
            ready.set()
            return
        async with manager.run():
            self._manager = manager
            ready.set()
            await anyio.sleep_forever()

    def _new_manager(self):
        from qa.mcp.server import session_manager

        return session_manager(self._current_service, host=self._host, max_body_bytes=self._max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wanted, ready = self._wanted, self._ready
        if wanted is None or ready is None:
            raise RuntimeError("the MCP endpoint is not running: the app's lifespan has not started")
        wanted.set()
        await ready.wait()
        if self._manager is None:
            raise RuntimeError("the MCP server could not start") from self._failure
        await self._manager.handle_request(scope, receive, send)
