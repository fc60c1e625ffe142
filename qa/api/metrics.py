"""Prometheus metrics of the HTTP service: requests, latency, searches, and the index being served.

Each app has its own registry (``create_app`` may run many times in one process, as the tests do). Request
metrics are labelled by route *template* (``/documents/{doc_id}``), never the raw path, and by a fixed set
of methods, so no client can create new series. The index metrics are read from the live service at
scrape time, so after a reload they describe the index that now answers.
"""

from __future__ import annotations

import os
import platform
import weakref
from datetime import datetime
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from starlette.types import Scope

from qa import __version__
from qa.api.openapi import METRICS_RESPONSES
from qa.api.route_lookup import matching_routes
from qa.search.reload import LiveService
from qa.search.service import SearchService

# Any other method (HTTP allows any token) is counted as "other".
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
UNMATCHED = "unmatched"  # a path no route answers; never the path itself
# Seconds: from a cached health check (~1 ms) to a cold search under load (~1 s) and beyond.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

router = APIRouter()
# The *_created series (when each labelled series first appeared) double the output and nobody graphs them.
disable_created_metrics()


def route_template(app, scope: Scope) -> str:
    """The template of the route ``scope`` was routed to (``/documents/{doc_id}``), or ``unmatched``.

    A request refused before routing (no API key, body too large, a CORS preflight) has no route in its
    scope; it is matched against the app's routes here, so it counts under the route it was for. A route
    that only refuses the method (a 405) still names the route.
    """
    route = scope.get("route")
    if route is None:
        full, partial = matching_routes(app, scope)
        route = (full or partial or [None])[0]
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else UNMATCHED


class Metrics:
    """The registry of one app and the request and search metrics the telemetry middleware records."""

    def __init__(self, live: LiveService) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "qa_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "qa_http_request_duration_seconds",
            "Time from request to the end of the response, by route.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "qa_http_requests_in_progress", "HTTP requests being answered now.", registry=self.registry
        )
        self.searches = Counter(
            "qa_searches",
            "Searches answered, by retrieval mode and whether the documents seem to answer them.",
            ["mode", "answerable"],
            registry=self.registry,
        )
        self.registry.register(IndexCollector(live))

    def observe(self, method: str, route: str, status: int, seconds: float, line: dict) -> None:
        """Record one answered request; ``line`` is its log fields (a search adds ``mode`` and ``answerable``)."""
        method = method if method in METHODS else "other"
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
        if "answerable" in line and "mode" in line:
            self.searches.labels(str(line["mode"]), "true" if line["answerable"] else "false").inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of everything in the registry."""
        return generate_latest(self.registry)


class IndexCollector:
    """Index gauges read at scrape time from whatever service is live, plus build info and reloads."""

    def __init__(self, live: LiveService) -> None:
        self.live = live
        # Bytes on disk, measured once per opened index: the files do not change while it is served.
        self._sizes: weakref.WeakKeyDictionary[SearchService, int] = weakref.WeakKeyDictionary()

    def describe(self):
        return []  # collected lazily: nothing to register up front

    def collect(self):
        service = self.live.current()  # once, so every gauge describes the same index
        loaded = GaugeMetricFamily("qa_index_loaded", "1 when an index is loaded and searches can be answered.")
        loaded.add_metric([], 1 if service is not None else 0)
        yield loaded
        reloads = CounterMetricFamily("qa_index_reloads", "Rebuilt indexes swapped in while serving.")
        reloads.add_metric([], self.live.reloads)
        yield reloads
        info = GaugeMetricFamily(
            "qa_build_info",
            "Version of qa, Python, and the model of the loaded index.",
            labels=["version", "python", "model"],
        )
        info.add_metric([__version__, platform.python_version(), service.manifest.model if service else ""], 1)
        yield info
        if service is None:
            return
        counts = service.manifest.counts
        for name, help_text, value in (
            ("qa_index_documents", "Documents in the loaded index.", counts.get("documents", 0)),
            ("qa_index_chunks", "Passages in the loaded index.", counts.get("chunks", 0)),
            ("qa_index_vectors", "Vectors in the loaded FAISS index (one per passage).", len(service.dense.vectors)),
            ("qa_index_size_bytes", "Bytes on disk of the loaded index's files.", self._size(service)),
            (
                "qa_index_created_timestamp_seconds",
                "When the loaded index was built (Unix time).",
                _unix_time(service.manifest.created),
            ),
        ):
            gauge = GaugeMetricFamily(name, help_text)
            gauge.add_metric([], value)
            yield gauge

    def _size(self, service: SearchService) -> int:
        size = self._sizes.get(service)
        if size is None:
            directory = Path(service.settings.index_dir)
            try:
                size = sum(entry.stat().st_size for entry in os.scandir(directory) if entry.is_file())
            except OSError:
                return 0
            self._sizes[service] = size
        return size


def _unix_time(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except (TypeError, ValueError):
        return 0.0


@router.get("/metrics", response_class=PlainTextResponse, responses=METRICS_RESPONSES)
def metrics(request: Request) -> Response:
    """Prometheus metrics: requests by route and status, latency histograms, searches, the loaded index.

    Needs the API key like every endpoint but /health when the service has one (Prometheus:
    ``authorization: {credentials_file: ...}`` in the scrape config).
    """
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
