"""Settings: one object, filled from defaults, then environment variables, then command-line options."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from qa.errors import ConfigError

DEFAULT_INDEX_DIR = Path("embeddings")
DEFAULT_CORPUS = Path("seeds")
# Passage size in model tokens (special tokens excluded) and the overlap carried into the next passage.
DEFAULT_CHUNK_SIZE = 128
DEFAULT_CHUNK_OVERLAP = 24

# Retrieval modes; the default is the best on the measurements in docs/retrieval-quality.md.
MODES = ("hybrid", "dense", "keyword")
# What `qa index` keeps of an HTML page: its main content (the default) or the whole visible page.
HTML_CONTENT = ("main", "all")
FUSIONS = ("score", "rrf")
ENCODERS = ("auto", "onnx", "torch")
# Precision of the model's arithmetic when embedding; an index records its own, and queries follow it.
PRECISIONS = ("fp32", "int8")
DEFAULT_PRECISION = "int8"

# Access (docs/http.md, "Access"): request bodies are capped; an API key, when set, must be this long.
DEFAULT_MAX_BODY_BYTES = 64 * 1024
MIN_BODY_LIMIT, MAX_BODY_LIMIT = 1024, 10 * 1024 * 1024
MAX_WORKERS = 64
# `--ray` (docs/distributed.md): a cluster started here for the build, the one this machine's `ray start` runs,
# or a remote one through Ray Client; and the most embedding actors or Serve replicas one command may ask for.
RAY_ADDRESSES = ("local", "auto")
RAY_CLIENT_PREFIX = "ray://"
MAX_RAY_WORKERS = 1024
MIN_API_KEY_CHARS = 16
# A key travels in an HTTP header: visible ASCII only, no spaces.
_API_KEY_RE = re.compile(r"[!-~]+")
# An origin as a browser sends it: scheme, host and optional port; no path, no trailing slash.
_ORIGIN_RE = re.compile(r"https?://[^/\s?#]+")

# Logging (docs/operations.md): "auto" is JSON lines unless standard error is a terminal.
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "json", "text")
# Re-ranking (off unless a cross-encoder is named): how many fused candidates it may re-score per question.
DEFAULT_RERANK_DEPTH = 30
MAX_RERANK_DEPTH = 500
# Keyword feedback weighs its second query at most this many times the question's own.
MAX_KEYWORD_FEEDBACK = 4.0
_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}

# Environment variable for each setting; documented in docs/configuration.md.
ENV_VARS = {
    "index_dir": "QA_INDEX_DIR",
    "corpus": "QA_CORPUS",
    "model": "QA_MODEL",
    "encoder": "QA_ENCODER",
    "precision": "QA_PRECISION",
    "cache_dir": "QA_CACHE_DIR",
    "chunk_size": "QA_CHUNK_SIZE",
    "chunk_overlap": "QA_CHUNK_OVERLAP",
    "embed_title": "QA_EMBED_TITLE",
    "html_content": "QA_HTML_CONTENT",
    "host": "QA_HOST",
    "port": "QA_PORT",
    "top_k": "QA_TOP_K",
    "max_top_k": "QA_MAX_TOP_K",
    "max_question_chars": "QA_MAX_QUESTION_CHARS",
    "mode": "QA_MODE",
    "fusion": "QA_FUSION",
    "dense_weight": "QA_DENSE_WEIGHT",
    "rrf_k": "QA_RRF_K",
    "candidates": "QA_CANDIDATES",
    "fusion_window": "QA_FUSION_WINDOW",
    "sentence_weight": "QA_SENTENCE_WEIGHT",
    "section_lead": "QA_SECTION_LEAD",
    "keyword_feedback": "QA_KEYWORD_FEEDBACK",
    "context_weight": "QA_CONTEXT_WEIGHT",
    "text_weight": "QA_TEXT_WEIGHT",
    "rerank": "QA_RERANK",
    "rerank_depth": "QA_RERANK_DEPTH",
    "api_key": "QA_API_KEY",
    "cors_origins": "QA_CORS_ORIGINS",
    "max_body_bytes": "QA_MAX_BODY_BYTES",
    "reload_interval": "QA_RELOAD_INTERVAL",
    "log_level": "QA_LOG_LEVEL",
    "log_format": "QA_LOG_FORMAT",
    "log_questions": "QA_LOG_QUESTIONS",
    "header_timeout": "QA_HEADER_TIMEOUT",
    "body_timeout": "QA_BODY_TIMEOUT",
    "keep_alive_timeout": "QA_KEEP_ALIVE_TIMEOUT",
    "max_connections": "QA_MAX_CONNECTIONS",
    "workers": "QA_WORKERS",
    "ray": "QA_RAY",
    "ray_workers": "QA_RAY_WORKERS",
}


@dataclass(frozen=True)
class Settings:
    """Everything a process needs to build, load and serve an index.

    Each field has a ``QA_*`` environment variable (``ENV_VARS``; the table in docs/configuration.md,
    says what each means).

    ``model`` is None to mean "whatever model the index was built with"; when set, a different model in
    the index is refused. ``api_key`` None leaves the HTTP service open; it is kept out of ``repr``.
    """

    index_dir: Path = DEFAULT_INDEX_DIR
    corpus: Path | None = None
    model: str | None = None
    # Encoder backend (docs/configuration.md, "Encoders"): onnx, torch, or auto (onnx when the model allows it).
    encoder: str = "auto"
    # Precision a new index is embedded at (docs/configuration.md, "Precision"); an existing index keeps its own.
    precision: str = DEFAULT_PRECISION
    # Where the ONNX export of a model is cached; None for $XDG_CACHE_HOME/qa or ~/.cache/qa.
    cache_dir: Path | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP
    embed_title: bool = True
    # What an HTML page contributes: "main" (its main content, navigation and page furniture left out) or "all".
    html_content: str = "main"
    host: str = "127.0.0.1"
    port: int = 8000
    top_k: int = 5
    max_top_k: int = 100
    max_question_chars: int = 2000
    # Retrieval: how dense and keyword rankings are combined (see docs/retrieval-quality.md).
    mode: str = "hybrid"
    fusion: str = "score"
    dense_weight: float = 0.5
    rrf_k: float = 60.0
    candidates: int = 100
    # Score fusion scales each list by its best and its ``fusion_window``-th best score (0: best and lowest).
    fusion_window: int = 100
    # Share of a passage's meaning score taken from its best sentence (hybrid score fusion).
    sentence_weight: float = 0.8
    # Added to the fused score of a passage that opens a headed section (hybrid score fusion).
    section_lead: float = 0.2
    # Weight of the second keyword query made of the best fused passage's most frequent words, when that passage
    # is under a heading (hybrid mode; 0: off; docs/retrieval-quality.md, "Round three").
    keyword_feedback: float = 1.0
    context_weight: float = 1.0
    text_weight: float = 1.0
    # A cross-encoder (directory or cached model name) that re-scores the best ``rerank_depth`` candidates.
    rerank: str | None = None
    rerank_depth: int = DEFAULT_RERANK_DEPTH
    # Access to the HTTP service (docs/http.md, "Access").
    api_key: str | None = field(default=None, repr=False)
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Seconds between looks for a rebuilt index while serving; 0 turns live reload off.
    reload_interval: float = 2.0
    # Logs of `qa serve` (docs/operations.md): one line per request, on standard error. Questions are
    # left out unless ``log_questions`` is set: they can hold what a user would not want written down.
    log_level: str = "info"
    log_format: str = "auto"
    log_questions: bool = False
    # Slow and numerous clients (docs/http.md, "Access"; qa/api/server.py): seconds a request's headers and then
    # its body may take to arrive, seconds an idle connection is kept, and open connections plus requests.
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0
    max_connections: int = 100
    # Server processes sharing the listening socket (qa/api/server.py): more than one lets searches use more
    # than one core, each process holding its own model and index.
    workers: int = 1
    # A Ray cluster to embed on (`qa index`) or serve from (`qa serve`): local, auto or ray://host:port; None for
    # this process alone. ``ray_workers``: embedding actors or Serve replicas (None: one per CPU, or one replica).
    ray: str | None = None
    ray_workers: int | None = None

    def __post_init__(self) -> None:
        # Accept "a, b" or any iterable of origins; keep one immutable, whitespace-free tuple.
        origins = self.cors_origins
        if isinstance(origins, str):
            origins = origins.split(",")
        object.__setattr__(self, "cors_origins", tuple(o.strip() for o in origins if o and o.strip()))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> "Settings":
        """Defaults, then ``QA_*`` environment variables, then non-None ``overrides``.

        Raises:
            ConfigError: an environment variable holds a value of the wrong type.
        """
        env: Mapping[str, str] = os.environ if environ is None else environ
        # Keyword arguments of the constructor, each converted to its field's type by _convert.
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_VARS[f.name])
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(f.name, raw)
        from_environment = set(values)
        given = {k: v for k, v in overrides.items() if v is not None}
        values.update(given)
        from_environment -= set(given)
        settings = cls(**values)
        for names, message in settings.problems():
            # A value that came from the environment is named by its variable, so it can be found and fixed.
            blamed = [ENV_VARS[name] for name in names if name in from_environment]
            raise ConfigError(f"{', '.join(blamed)}: {message}" if blamed else message)
        return settings

    def with_(self, **changes: Any) -> "Settings":
        """A copy with the non-None ``changes`` applied."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def check(self) -> None:
        """Reject values that cannot work, with a message naming the setting.

        Raises:
            ConfigError: a value is out of range.
        """
        for _names, message in self.problems():
            raise ConfigError(message)

    def problems(self) -> Iterator[tuple[tuple[str, ...], str]]:
        """Yield ``(field names, message)`` for each value that cannot work; the API key itself is never shown."""
        if self.html_content not in HTML_CONTENT:
            yield ("html_content",), f"HTML content must be one of {', '.join(HTML_CONTENT)}, got {self.html_content!r}"
        if self.chunk_size < 8:
            yield ("chunk_size",), f"chunk size must be at least 8 tokens, got {self.chunk_size}"
        if not 0 <= self.chunk_overlap < self.chunk_size:
            yield (
                ("chunk_overlap", "chunk_size"),
                (
                    f"chunk overlap must be between 0 and the chunk size minus one ({self.chunk_size - 1}), "
                    f"got {self.chunk_overlap}"
                ),
            )
        if not 1 <= self.port <= 65535:
            yield ("port",), f"port must be between 1 and 65535, got {self.port}"
        if not 1 <= self.max_top_k <= 1000:
            yield ("max_top_k",), f"max top_k must be between 1 and 1000, got {self.max_top_k}"
        if not 1 <= self.top_k <= self.max_top_k:
            yield ("top_k", "max_top_k"), f"top_k must be between 1 and {self.max_top_k}, got {self.top_k}"
        if self.encoder not in ENCODERS:
            yield ("encoder",), f"encoder must be one of {', '.join(ENCODERS)}, got {self.encoder!r}"
        if self.precision not in PRECISIONS:
            yield ("precision",), f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
        if self.mode not in MODES:
            yield ("mode",), f"mode must be one of {', '.join(MODES)}, got {self.mode!r}"
        if self.fusion not in FUSIONS:
            yield ("fusion",), f"fusion must be one of {', '.join(FUSIONS)}, got {self.fusion!r}"
        if not 0.0 <= self.dense_weight <= 1.0:
            yield ("dense_weight",), f"dense weight must be between 0 and 1, got {self.dense_weight}"
        if not 0.0 <= self.sentence_weight <= 1.0:
            yield ("sentence_weight",), f"sentence weight must be between 0 and 1, got {self.sentence_weight}"
        if not 0.0 <= self.section_lead <= 1.0:
            yield ("section_lead",), f"section lead must be between 0 and 1, got {self.section_lead}"
        if not 0.0 <= self.keyword_feedback <= MAX_KEYWORD_FEEDBACK:
            yield (
                ("keyword_feedback",),
                (f"keyword feedback must be between 0 and {MAX_KEYWORD_FEEDBACK:g}, got {self.keyword_feedback}"),
            )
        if self.candidates < 1:
            yield ("candidates",), f"candidates must be positive, got {self.candidates}"
        if self.fusion_window < 0:
            yield ("fusion_window",), f"fusion window must not be negative, got {self.fusion_window}"
        if self.rrf_k <= 0:
            yield ("rrf_k",), f"rrf_k must be positive, got {self.rrf_k}"
        if self.context_weight < 0 or self.text_weight < 0:
            yield ("context_weight", "text_weight"), "keyword weights must not be negative"
        if not 1 <= self.rerank_depth <= MAX_RERANK_DEPTH:
            yield ("rerank_depth",), (f"rerank depth must be between 1 and {MAX_RERANK_DEPTH}, got {self.rerank_depth}")
        if self.max_question_chars < 1:
            yield ("max_question_chars",), f"max question length must be positive, got {self.max_question_chars}"
        if self.api_key is not None:
            # Never echo the key itself: only its length.
            if len(self.api_key) < MIN_API_KEY_CHARS:
                yield ("api_key",), f"API key must be at least {MIN_API_KEY_CHARS} characters, got {len(self.api_key)}"
            elif not _API_KEY_RE.fullmatch(self.api_key):
                yield ("api_key",), "API key must be visible ASCII characters without spaces"
        for origin in self.cors_origins:
            if origin != "*" and not _ORIGIN_RE.fullmatch(origin):
                yield (
                    ("cors_origins",),
                    (
                        f"CORS origin must look like https://host[:port] (no path or trailing slash) or be *, "
                        f"got {origin!r}"
                    ),
                )
        if not 0 <= self.reload_interval <= 3600:
            yield (
                ("reload_interval",),
                (f"reload interval must be between 0 and 3600 seconds, got {self.reload_interval}"),
            )
        if not MIN_BODY_LIMIT <= self.max_body_bytes <= MAX_BODY_LIMIT:
            yield (
                ("max_body_bytes",),
                (f"max body bytes must be between {MIN_BODY_LIMIT} and {MAX_BODY_LIMIT}, got {self.max_body_bytes}"),
            )
        if self.log_level not in LOG_LEVELS:
            yield ("log_level",), f"log level must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}"
        if self.log_format not in LOG_FORMATS:
            yield ("log_format",), f"log format must be one of {', '.join(LOG_FORMATS)}, got {self.log_format!r}"
        for name in ("header_timeout", "body_timeout", "keep_alive_timeout"):
            value = getattr(self, name)
            if not 0 < value <= 3600:
                yield (name,), f"{name.replace('_', ' ')} must be over 0 and at most 3600 seconds, got {value}"
        if not 1 <= self.max_connections <= 100_000:
            yield ("max_connections",), f"max connections must be between 1 and 100000, got {self.max_connections}"
        if not 1 <= self.workers <= MAX_WORKERS:
            yield ("workers",), f"workers must be between 1 and {MAX_WORKERS}, got {self.workers}"
        if self.ray is not None and not valid_ray_address(self.ray):
            yield ("ray",), f"a Ray address is local, auto or ray://host:port, got {self.ray!r}"
        if self.ray_workers is not None and not 1 <= self.ray_workers <= MAX_RAY_WORKERS:
            yield ("ray_workers",), f"Ray workers must be between 1 and {MAX_RAY_WORKERS}, got {self.ray_workers}"

    def environment(self) -> dict[str, str]:
        """Every setting as its ``QA_*`` variable, as ``from_env`` reads it back (None settings left out), so a
        child process (a server worker) resolves exactly these settings."""
        values = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, tuple):
                value = ",".join(value)
            values[ENV_VARS[f.name]] = str(value)
        return values


def valid_ray_address(address: str) -> bool:
    """Whether ``address`` is one `--ray` takes: local, auto, or ray://host:port."""
    return address in RAY_ADDRESSES or (address.startswith(RAY_CLIENT_PREFIX) and len(address) > len(RAY_CLIENT_PREFIX))


def _convert(name: str, raw: str) -> object:
    """Turn an environment string into the setting's type."""
    if name in ("index_dir", "corpus", "cache_dir"):
        return Path(raw)
    if name in ("embed_title", "log_questions"):
        if raw.strip().lower() not in _BOOLEANS:
            raise ConfigError(f"{ENV_VARS[name]} must be true or false, got {raw!r}")
        return _BOOLEANS[raw.strip().lower()]
    if name in ("log_level", "log_format", "html_content"):
        return raw.strip().lower()
    if name in (
        "dense_weight",
        "sentence_weight",
        "section_lead",
        "keyword_feedback",
        "rrf_k",
        "context_weight",
        "text_weight",
        "reload_interval",
        "header_timeout",
        "body_timeout",
        "keep_alive_timeout",
    ):
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{ENV_VARS[name]} must be a number, got {raw!r}") from None
    if name == "cors_origins":
        return tuple(origin.strip() for origin in raw.split(",") if origin.strip())
    if name in (
        "chunk_size",
        "chunk_overlap",
        "port",
        "top_k",
        "max_top_k",
        "max_question_chars",
        "candidates",
        "max_body_bytes",
        "fusion_window",
        "rerank_depth",
        "max_connections",
        "workers",
        "ray_workers",
    ):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{ENV_VARS[name]} must be a whole number, got {raw!r}") from None
    return raw
