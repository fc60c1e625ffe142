"""Settings: one object, filled from defaults, then environment variables, then command-line options.

Each setting is defined once (``setting``): its default, variable, parsing, checks and help; the CLI's options
(qa/cli/options.py) and the table in docs/configuration.md (``settings_table``) are made from that definition.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

from qa.errors import ConfigError

DEFAULT_INDEX_DIR = Path("embeddings")
DEFAULT_CORPUS = Path("seeds")
# Passage size in model tokens (special tokens excluded) and the overlap carried into the next passage.
DEFAULT_CHUNK_SIZE = 128
DEFAULT_CHUNK_OVERLAP = 24

# Retrieval modes; the default is the best on the measurements in docs/retrieval-quality.md.
Mode = Literal["hybrid", "dense", "keyword"]
MODES: tuple[Mode, ...] = get_args(Mode)
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
# How long jobs show progress on standard error (qa.cli.progress): auto is bar on a terminal, plain elsewhere.
PROGRESS_STYLES = ("auto", "bar", "plain", "json", "none")
# Re-ranking (off unless a cross-encoder is named): how many fused candidates it may re-score per question.
DEFAULT_RERANK_DEPTH = 30
MAX_RERANK_DEPTH = 500
# Keyword feedback weighs its second query at most this many times the question's own.
MAX_KEYWORD_FEEDBACK = 4.0
_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


class _Unparsable(ValueError):
    """An environment string that is not of the setting's type; the message says what it should be."""


def _text(raw: str) -> str:
    return raw


def _lower(raw: str) -> str:
    return raw.strip().lower()


def _path(raw: str) -> Path:
    return Path(raw)


def _int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise _Unparsable("a whole number") from None


def _float(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise _Unparsable("a number") from None


def _bool(raw: str) -> bool:
    if raw.strip().lower() not in _BOOLEANS:
        raise _Unparsable("true or false")
    return _BOOLEANS[raw.strip().lower()]


def _origins(raw: str) -> tuple[str, ...]:
    return tuple(origin.strip() for origin in raw.split(",") if origin.strip())


# The type of a setting's values, by how its variable is parsed (what a click option takes, for one).
_KINDS: dict[Callable[[str], object], str] = {_path: "path", _int: "int", _float: "float", _bool: "bool"}


def _number(value: float) -> str:
    """A bound as a message or a table shows it: 1 rather than 1.0."""
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass(frozen=True)
class Setting:
    """How one field of ``Settings`` is read, checked and explained: what the CLI, the HTTP app and the docs use.

    ``low``/``high`` bound a number (``low_open``: strictly above ``low``); ``choices`` lists the accepted words;
    ``check`` returns a message for a value no bound says is wrong. ``shown`` is how the docs and ``--help`` name
    a default its value alone would not explain (one that depends on the index, say); ``label`` names the setting
    in messages (default: its name with spaces); ``metavar`` is its value's name in ``--help``.
    """

    env: str
    help: str
    parse: Callable[[str], object] = _text
    choices: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    unit: str = ""
    label: str | None = None
    check: Callable[[Any], str | None] | None = None
    shown: str | None = None
    metavar: str | None = None

    @property
    def kind(self) -> str:
        """The type of the setting's values: "path", "int", "float", "bool", or "text" for the rest."""
        return _KINDS.get(self.parse, "text")

    def accepted(self) -> str:
        """The values the setting takes, as the docs' table shows them: its choices or its bounds ("" for any)."""
        if self.choices is not None:
            return ", ".join(f"`{choice}`" for choice in self.choices)
        if self.kind == "bool":
            return "`true`, `false`"
        low, high = self.low, self.high
        if low is not None and high is not None:
            return (
                f"over {_number(low)}, at most {_number(high)}"
                if self.low_open
                else f"{_number(low)} to {_number(high)}"
            )
        if low is not None:
            return f"over {_number(low)}" if self.low_open else f"{_number(low)} or more"
        return ""

    def problem(self, name: str, value: object) -> str | None:
        """Why ``value`` cannot work for the setting ``name``, or None when it can (None values always can)."""
        if value is None:
            return None
        label = self.label or name.replace("_", " ")
        if self.choices is not None and value not in self.choices:
            return f"{label} must be one of {', '.join(self.choices)}, got {value!r}"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            message = self._out_of_bounds(label, value)
            if message is not None:
                return message
        return self.check(value) if self.check is not None else None

    def _out_of_bounds(self, label: str, value: float) -> str | None:
        low, high = self.low, self.high
        # Written as "inside" so that NaN, which compares false with everything, is out of bounds.
        above_low = low is None or (value > low if self.low_open else value >= low)
        below_high = high is None or value <= high
        if above_low and below_high:
            return None
        if low is not None and high is not None:
            if self.low_open:
                return f"{label} must be over {_number(low)} and at most {_number(high)}{self.unit}, got {value}"
            return f"{label} must be between {_number(low)} and {_number(high)}{self.unit}, got {value}"
        if low is not None and self.low_open and low == 0:
            return f"{label} must be positive, got {value}"
        if low == 0:
            return f"{label} must not be negative, got {value}"
        return f"{label} must be at least {_number(low or 0)}{self.unit}, got {value}"


def setting(default: object, *, env: str, help: str, repr: bool = True, **how: Any) -> Any:
    """A ``Settings`` field: its default, its ``QA_*`` variable, its help, and ``Setting``'s other keywords
    (how the variable is parsed, the bounds or choices it is checked against)."""
    return field(default=default, repr=repr, metadata={"setting": Setting(env=env, help=help, **how)})


def _api_key_problem(key: str) -> str | None:
    # Never echo the key itself: only its length.
    if len(key) < MIN_API_KEY_CHARS:
        return f"API key must be at least {MIN_API_KEY_CHARS} characters, got {len(key)}"
    if not _API_KEY_RE.fullmatch(key):
        return "API key must be visible ASCII characters without spaces"
    return None


def _origins_problem(origins: tuple[str, ...]) -> str | None:
    for origin in origins:
        if origin != "*" and not _ORIGIN_RE.fullmatch(origin):
            return f"CORS origin must look like https://host[:port] (no path or trailing slash) or be *, got {origin!r}"
    return None


def _ray_problem(address: str) -> str | None:
    return None if valid_ray_address(address) else f"a Ray address is local, auto or ray://host:port, got {address!r}"


@dataclass(frozen=True)
class Settings:
    """Everything a process needs to build, load and serve an index.

    Each field is defined once, by ``setting``: its default, its ``QA_*`` environment variable, how that variable
    is parsed and checked, and its help, which `qa`'s options (qa/cli/options.py) and the table in
    docs/configuration.md (``settings_table``) are made from.

    ``model`` is None to mean "whatever model the index was built with"; when set, a different model in
    the index is refused. ``api_key`` None leaves the HTTP service open; it is kept out of ``repr``.
    """

    index_dir: Path = setting(
        DEFAULT_INDEX_DIR, env="QA_INDEX_DIR", parse=_path, help="index directory", metavar="PATH"
    )
    corpus: Path | None = setting(
        None,
        env="QA_CORPUS",
        parse=_path,
        shown="`seeds` for a new index",
        help="corpus folder for `qa index` / `qa serve`",
    )
    model: str | None = setting(
        None,
        env="QA_MODEL",
        shown="the index's model; `all-MiniLM-L6-v2` for a new index",
        help="the model: any sentence-transformers name or local path",
    )
    encoder: str = setting(
        "auto",
        env="QA_ENCODER",
        choices=ENCODERS,
        help="embedding backend: `onnx` (ONNX Runtime, exported once and cached), `torch` (sentence-transformers), "
        "or `auto`: ONNX when the model's pipeline allows it",
    )
    precision: str = setting(
        DEFAULT_PRECISION,
        env="QA_PRECISION",
        choices=PRECISIONS,
        shown="the index's own; `int8` for a new index",
        help="arithmetic passages are embedded at: `int8` (ONNX only, faster) or `fp32` (equals PyTorch); questions "
        "follow the index",
    )
    cache_dir: Path | None = setting(
        None,
        env="QA_CACHE_DIR",
        parse=_path,
        shown="`$XDG_CACHE_HOME/qa` or `~/.cache/qa`",
        help="where the one-time ONNX export of a model is kept",
    )
    chunk_size: int = setting(
        DEFAULT_CHUNK_SIZE,
        env="QA_CHUNK_SIZE",
        parse=_int,
        low=8,
        unit=" tokens",
        help="passage size in model tokens, whole sentences; a sentence under a quarter of the size that could only "
        "stand alone joins the passage before, which may then hold up to 1.25 times the size",
    )
    chunk_overlap: int = setting(
        DEFAULT_CHUNK_OVERLAP,
        env="QA_CHUNK_OVERLAP",
        parse=_int,
        help="tokens of whole sentences repeated from one passage into the next",
    )
    embed_title: bool = setting(
        True, env="QA_EMBED_TITLE", parse=_bool, help="embed each passage with its document's title before it"
    )
    html_content: str = setting(
        "main",
        env="QA_HTML_CONTENT",
        parse=_lower,
        choices=HTML_CONTENT,
        label="HTML content",
        help="what an HTML page contributes: `main` (its main content; navigation, headers, footers, sidebars and "
        "tables of contents left out, and the pages a documentation builder generates, its indexes, search page "
        "and highlighted source, skipped: [documents.md](documents.md)) or `all` (the whole visible page, of "
        "every page); recorded in the index, so changing it rebuilds",
    )
    host: str = setting("127.0.0.1", env="QA_HOST", help="address `qa serve` listens on")
    port: int = setting(8000, env="QA_PORT", parse=_int, low=1, high=65535, help="port `qa serve` listens on")
    top_k: int = setting(5, env="QA_TOP_K", parse=_int, help="passages per question")
    max_top_k: int = setting(
        100, env="QA_MAX_TOP_K", parse=_int, low=1, high=1000, label="max top_k", help="largest number of passages"
    )
    max_question_chars: int = setting(
        2000,
        env="QA_MAX_QUESTION_CHARS",
        parse=_int,
        low=0,
        low_open=True,
        label="max question length",
        help="longest accepted question",
    )
    # Retrieval: how dense and keyword rankings are combined (see docs/retrieval-quality.md).
    mode: str = setting(
        "hybrid", env="QA_MODE", choices=MODES, help="retrieval mode: `hybrid`, `dense` (meaning) or `keyword` (BM25)"
    )
    fusion: str = setting(
        "score", env="QA_FUSION", choices=FUSIONS, help="how hybrid mode fuses the two rankings: `score` or `rrf`"
    )
    dense_weight: float = setting(
        0.5, env="QA_DENSE_WEIGHT", parse=_float, low=0, high=1, help="the weight of meaning in score fusion"
    )
    rrf_k: float = setting(
        60.0, env="QA_RRF_K", parse=_float, low=0, low_open=True, label="rrf_k", help="reciprocal-rank fusion constant"
    )
    candidates: int = setting(
        100, env="QA_CANDIDATES", parse=_int, low=0, low_open=True, help="candidates taken from each retriever"
    )
    fusion_window: int = setting(
        100,
        env="QA_FUSION_WINDOW",
        parse=_int,
        low=0,
        help="score fusion scales each list by its best and its N-th best score; `0` for its best and lowest",
    )
    sentence_weight: float = setting(
        0.8,
        env="QA_SENTENCE_WEIGHT",
        parse=_float,
        low=0,
        high=1,
        help="how much a passage's best sentence counts in its meaning score",
    )
    section_lead: float = setting(
        0.2,
        env="QA_SECTION_LEAD",
        parse=_float,
        low=0,
        high=1,
        help="added to the hybrid score of a passage of 20 words or more that opens a headed section (0 turns it "
        "off; [retrieval-quality](retrieval-quality.md#documentation))",
    )
    keyword_feedback: float = setting(
        1.0,
        env="QA_KEYWORD_FEEDBACK",
        parse=_float,
        low=0,
        high=MAX_KEYWORD_FEEDBACK,
        help="hybrid mode: when the best passage is under a heading, its five most frequent words the question "
        "lacks become a second keyword query, weighted this much against the question's own (0 turns it off; "
        "documents without headings are never affected: [retrieval-quality](retrieval-quality.md#documentation), "
        '"Round three")',
    )
    context_weight: float = setting(
        1.0, env="QA_CONTEXT_WEIGHT", parse=_float, help="BM25 weight of a passage's document context"
    )
    text_weight: float = setting(1.0, env="QA_TEXT_WEIGHT", parse=_float, help="BM25 weight of a passage's text")
    rerank: str | None = setting(
        None,
        env="QA_RERANK",
        shown="off",
        metavar="MODEL",
        help="a cross-encoder that re-orders the best candidates (`qa ask`, `qa serve`, `qa eval`): a directory "
        "holding a sentence-transformers CrossEncoder or its ONNX export (model.onnx + tokenizer.json), or a cached "
        "model name",
    )
    rerank_depth: int = setting(
        DEFAULT_RERANK_DEPTH,
        env="QA_RERANK_DEPTH",
        parse=_int,
        low=1,
        high=MAX_RERANK_DEPTH,
        metavar="N",
        help="candidates the cross-encoder re-scores per question",
    )
    # Access to the HTTP service (docs/http.md, "Access").
    api_key: str | None = setting(
        None,
        env="QA_API_KEY",
        repr=False,
        check=_api_key_problem,
        shown="none (open)",
        label="API key",
        metavar="KEY",
        help=f"bearer key required on every endpoint but `GET /health`; at least {MIN_API_KEY_CHARS} characters",
    )
    cors_origins: tuple[str, ...] = setting(
        (),
        env="QA_CORS_ORIGINS",
        parse=_origins,
        check=_origins_problem,
        shown="empty (no CORS)",
        help="comma-separated origins allowed to call the API from a browser",
    )
    max_body_bytes: int = setting(
        DEFAULT_MAX_BODY_BYTES,
        env="QA_MAX_BODY_BYTES",
        parse=_int,
        low=MIN_BODY_LIMIT,
        high=MAX_BODY_LIMIT,
        help="largest request body accepted",
    )
    reload_interval: float = setting(
        2.0,
        env="QA_RELOAD_INTERVAL",
        parse=_float,
        low=0,
        high=3600,
        unit=" seconds",
        help="seconds between looks for a rebuilt index while serving; `0` turns it off",
    )
    # Logs of `qa serve` (docs/operations.md): one line per request, on standard error. Questions are
    # left out unless ``log_questions`` is set: they can hold what a user would not want written down.
    log_level: str = setting(
        "info",
        env="QA_LOG_LEVEL",
        parse=_lower,
        choices=LOG_LEVELS,
        metavar="LEVEL",
        help="what `qa serve` logs: `debug`, `info`, `warning` or `error`",
    )
    log_format: str = setting(
        "auto",
        env="QA_LOG_FORMAT",
        parse=_lower,
        choices=LOG_FORMATS,
        metavar="FORMAT",
        help="format of `qa serve`'s log: `json` (one object per line), `text` (`key=value`), or `auto`: JSON "
        "unless standard error is a terminal",
    )
    log_questions: bool = setting(
        False, env="QA_LOG_QUESTIONS", parse=_bool, help="also write each search's question into its log line"
    )
    progress: str = setting(
        "auto",
        env="QA_PROGRESS",
        parse=_lower,
        choices=PROGRESS_STYLES,
        help="how `qa index`, `qa eval` and `qa serve`'s build show progress on standard error: `auto` is a redrawn "
        "line on a terminal and a plain line every 10 s elsewhere (`bar`, `plain`), `json` one JSON object per "
        "report, `none` nothing",
    )
    # Slow and numerous clients (docs/http.md, "Access"; qa/api/server.py).
    header_timeout: float = setting(
        10.0,
        env="QA_HEADER_TIMEOUT",
        parse=_float,
        low=0,
        low_open=True,
        high=3600,
        unit=" seconds",
        help="seconds a request's line and headers may take to arrive before `qa serve` answers 408 and closes "
        "the connection",
    )
    body_timeout: float = setting(
        30.0,
        env="QA_BODY_TIMEOUT",
        parse=_float,
        low=0,
        low_open=True,
        high=3600,
        unit=" seconds",
        help="seconds a request's body may take to arrive after its headers, likewise",
    )
    keep_alive_timeout: float = setting(
        5.0,
        env="QA_KEEP_ALIVE_TIMEOUT",
        parse=_float,
        low=0,
        low_open=True,
        high=3600,
        unit=" seconds",
        help="seconds an idle keep-alive connection is kept open",
    )
    max_connections: int = setting(
        100,
        env="QA_MAX_CONNECTIONS",
        parse=_int,
        low=1,
        high=100_000,
        help="open connections and requests together; beyond it `qa serve` answers 503 (per worker)",
    )
    workers: int = setting(
        1,
        env="QA_WORKERS",
        parse=_int,
        low=1,
        high=MAX_WORKERS,
        metavar="N",
        help="server processes answering on the one port, each holding its own model and index: more than one "
        "lets searches use more cores: see [operations](operations.md#more-than-one-core)",
    )
    ray: str | None = setting(
        None,
        env="QA_RAY",
        check=_ray_problem,
        shown="unset",
        metavar="ADDRESS",
        help="a Ray cluster: `qa index --ray ADDRESS` embeds on it, `qa serve --ray ADDRESS` serves as Ray Serve "
        "replicas: `local`, `auto` or `ray://host:port` ([distributed](distributed.md); needs "
        "`pip install 'qa[ray]'`)",
    )
    ray_workers: int | None = setting(
        None,
        env="QA_RAY_WORKERS",
        parse=_int,
        low=1,
        high=MAX_RAY_WORKERS,
        label="Ray workers",
        shown="one per CPU",
        metavar="N",
        help="`qa index --ray-workers N`: chunking and embedding actors; `qa serve --replicas N`: Serve replicas "
        "(default 1)",
    )

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
            ConfigError: an environment variable holds a value of the wrong type, or a value cannot work.
        """
        env: Mapping[str, str] = os.environ if environ is None else environ
        # Keyword arguments of the constructor, each parsed to its field's type by its Setting.
        values: dict[str, Any] = {}
        for name, spec in SETTINGS.items():
            raw = env.get(spec.env)
            if raw is None or raw == "":
                continue
            try:
                values[name] = spec.parse(raw)
            except _Unparsable as wrong:
                raise ConfigError(f"{spec.env} must be {wrong}, got {raw!r}") from None
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

    def check(self) -> None:
        """Reject values that cannot work, with a message naming the setting.

        Raises:
            ConfigError: a value is out of range.
        """
        for _names, message in self.problems():
            raise ConfigError(message)

    def problems(self) -> Iterator[tuple[tuple[str, ...], str]]:
        """Yield ``(field names, message)`` for each value that cannot work; the API key itself is never shown.

        Each setting's own bounds, choices and check come first (``Setting.problem``), then the rules that tie two
        settings together."""
        for name, spec in SETTINGS.items():
            message = spec.problem(name, getattr(self, name))
            if message is not None:
                yield (name,), message
        if not 0 <= self.chunk_overlap < self.chunk_size:
            yield (
                ("chunk_overlap", "chunk_size"),
                (
                    f"chunk overlap must be between 0 and the chunk size minus one ({self.chunk_size - 1}), "
                    f"got {self.chunk_overlap}"
                ),
            )
        if not 1 <= self.top_k <= self.max_top_k:
            yield ("top_k", "max_top_k"), f"top_k must be between 1 and {self.max_top_k}, got {self.top_k}"
        if self.context_weight < 0 or self.text_weight < 0:
            yield ("context_weight", "text_weight"), "keyword weights must not be negative"

    def environment(self) -> dict[str, str]:
        """Every setting as its ``QA_*`` variable, as ``from_env`` reads it back (None settings left out), so a
        child process (a server worker) resolves exactly these settings."""
        values = {}
        for name, spec in SETTINGS.items():
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, tuple):
                value = ",".join(value)
            values[spec.env] = str(value)
        return values


# Each setting's definition, by field name, in the order of the fields.
SETTINGS: dict[str, Setting] = {f.name: f.metadata["setting"] for f in fields(Settings)}
# Environment variable for each setting; documented in docs/configuration.md.
ENV_VARS: dict[str, str] = {name: spec.env for name, spec in SETTINGS.items()}


def shown_default(name: str) -> str:
    """The default of setting ``name`` as the docs and `--help` show it (markdown: values in backticks)."""
    spec = SETTINGS[name]
    if spec.shown is not None:
        return spec.shown
    value = next(f.default for f in fields(Settings) if f.name == name)
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (int, float)):
        return f"`{_number(value)}`"
    return f"`{value}`"


def settings_table() -> str:
    """The markdown table of every setting (variable, field, default, accepted values, meaning) that
    docs/configuration.md holds."""
    rows = ["| variable | setting | default | accepted | meaning |", "|---|---|---|---|---|"]
    for name, spec in SETTINGS.items():
        rows.append(f"| `{spec.env}` | `{name}` | {shown_default(name)} | {spec.accepted()} | {spec.help} |")
    return "\n".join(rows) + "\n"


def build_precision(asked: str | None, recorded: str | None) -> str:
    """The precision a build embeds at: the one asked for (an option or ``QA_PRECISION``), else the one the existing
    index records (an update keeps its precision), else int8 for a new index."""
    return asked or recorded or DEFAULT_PRECISION


def valid_ray_address(address: str) -> bool:
    """Whether ``address`` is one `--ray` takes: local, auto, or ray://host:port."""
    return address in RAY_ADDRESSES or (address.startswith(RAY_CLIENT_PREFIX) and len(address) > len(RAY_CLIENT_PREFIX))
