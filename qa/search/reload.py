"""Live reload: notice when the index directory has been replaced and swap in a freshly opened service."""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from qa.config import Settings
from qa.embed.encoder import Encoder
from qa.errors import IndexNotFound, QAError
from qa.index.manifest import MANIFEST_FILE
from qa.index.snapshot import directory_identity
from qa.search.service import SearchService

Opener = Callable[[Settings, Encoder | None], SearchService]


_log = logging.getLogger("qa.reload")


def _build(service: SearchService | None) -> dict | None:
    """What a log line says of an index: when it was built and what it holds."""
    manifest = getattr(service, "manifest", None)  # test doubles may have none
    if manifest is None:
        return None
    return {
        "created": manifest.created,
        "documents": manifest.counts.get("documents"),
        "chunks": manifest.counts.get("chunks"),
    }


def _default_opener(settings: Settings, encoder: Encoder | None) -> SearchService:
    return SearchService.open(settings, encoder=encoder)


def index_identity(index_dir: Path) -> tuple | None:
    """What changes when a build swaps a new index in: the directory's inode and the manifest's stamp."""
    try:
        directory = os.stat(index_dir)
        manifest = os.stat(Path(index_dir) / MANIFEST_FILE)
    except OSError:
        return None
    return directory_identity(directory, manifest)


class LiveService:
    """The service currently answering requests, replaced whole when a rebuilt index appears.

    A request holds a ``lease()`` on one service from start to end, so it always sees one index: never
    the old vectors with the new store. Opening the new index happens on the watcher thread; requests
    never wait for it. If the new index cannot be opened, the old one keeps serving and ``last_error``
    says why. A replaced service that this object opened is closed (its files released) as soon as the
    last request leasing it finishes, not whenever the garbage collector gets to it.
    """

    def __init__(
        self,
        settings: Settings,
        service: SearchService | None = None,
        *,
        opener: Opener = _default_opener,
        identify: Callable[[], tuple | None] | None = None,
    ) -> None:
        """Args:
        identify: what changes when the index is rebuilt, None while unknown (default: ``index_identity`` of
            ``settings.index_dir``; a sharded service's is its shards' builds, qa.distributed.shards)."""
        self.settings = settings
        self._opener = opener
        self._identify = identify or (lambda: index_identity(settings.index_dir))
        self._service = service
        self._identity = getattr(service, "identity", None) or self._identify()
        self.last_error: str | None = None
        self.reloads = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Leases per service (by id) and the services to close once their leases end. A service handed in
        # by the caller belongs to the caller and is never closed here.
        self._lock = threading.Lock()
        self._leases: dict[int, int] = {}
        self._owned: set[int] = set()
        self._retired: dict[int, SearchService] = {}
        if service is None:
            self._open(self._identity)

    def current(self) -> SearchService | None:
        """The service answering now (None when no index could be opened yet), for reading its manifest.

        Anything that reads the index's files uses ``lease()`` instead, so the files stay open meanwhile.
        """
        return self._service

    def loaded(self) -> SearchService:
        """The service answering now, for a caller that cannot answer without one (an MCP tool call).

        Raises:
            IndexNotFound: no index is loaded (its message says why).
        """
        service = self._service
        if service is None:
            raise self._not_loaded()
        return service

    def _not_loaded(self) -> IndexNotFound:
        return IndexNotFound(self.last_error or "no index is loaded")

    @contextmanager
    def lease(self) -> Iterator[SearchService]:
        """The current service, kept open until the block ends even if a reload replaces it meanwhile.

        Raises:
            IndexNotFound: no index is loaded (its message says why).
        """
        with self._lock:
            service = self._service
            if service is None:
                raise self._not_loaded()
            self._leases[id(service)] = self._leases.get(id(service), 0) + 1
        try:
            yield service
        finally:
            with self._lock:
                left = self._leases[id(service)] - 1
                if left:
                    self._leases[id(service)] = left
                else:
                    del self._leases[id(service)]
                finished = self._retired.pop(id(service), None) if not left else None
            if finished is not None:
                finished.close()

    def check(self) -> bool:
        """Open and swap in the index if the directory was replaced since the last look; True if swapped."""
        identity = self._identify()
        if identity is None or identity == self._identity:
            return False
        return self._open(identity)

    def _open(self, identity: tuple | None) -> bool:
        current = self._service
        # The model is reused when the new index was built with the same one (it loads once per process).
        encoder = current.dense.encoder if current is not None else None
        started = time.perf_counter()
        try:
            try:
                fresh = self._opener(self.settings, encoder)
            except QAError:
                if encoder is None:
                    raise
                fresh = self._opener(self.settings, None)  # another model: load the one the index needs
        except QAError as exc:
            # Keep serving what we have; the same directory is tried again on the next look.
            if str(exc) != self.last_error:  # once per failure, not on every look
                _log.warning(
                    "index reload failed; serving the index already open",
                    extra={"qa_fields": {"error": str(exc), "serving": _build(current)}},
                )
            self.last_error = str(exc)
            return False
        # The identity of the directory actually opened: a swap during the open must not be taken as seen.
        opened = getattr(fresh, "identity", None) or identity
        with self._lock:
            self._service, self._identity, self.last_error = fresh, opened, None
            self._owned.add(id(fresh))
            idle = current is not None and id(current) in self._owned and id(current) not in self._leases
            if current is not None and id(current) in self._owned:
                self._owned.discard(id(current))
                if not idle:
                    self._retired[id(current)] = current
        if idle and current is not None:  # idle implies current; said again for the type checker
            current.close()
        if current is not None:
            self.reloads += 1
        _log.info(
            "index reloaded" if current is not None else "index opened",
            extra={
                "qa_fields": {
                    "old": _build(current),
                    "new": _build(fresh),
                    "seconds": round(time.perf_counter() - started, 3),
                }
            },
        )
        return True

    def start(self, interval: float) -> None:
        """Look for a replaced index every ``interval`` seconds on a daemon thread (0 disables)."""
        if interval <= 0 or self._thread is not None:
            return
        self._stop.clear()

        def watch() -> None:
            while not self._stop.wait(interval):
                self.check()

        self._thread = threading.Thread(target=watch, name="qa-index-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
