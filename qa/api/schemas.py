"""Request and response models for the HTTP API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from qa.config import Mode, Settings
from qa.search.verify import MAX_PIECES, MAX_TEXT_CHARS

# What the service accepts, written into the OpenAPI schema so that clients and schema-driven tools know it.
# These are JSON Schema keywords only, not pydantic constraints: the service still checks every value itself,
# so HTTP and CLI share one check and one message. The limits are the defaults (QA_MAX_QUESTION_CHARS and
# QA_MAX_TOP_K can change them); GET /search can use the same dicts with ``Query(json_schema_extra=...)``.
_DEFAULTS = Settings()

# A question must hold something besides whitespace and control characters (``SearchService.check_question``
# turns control characters into spaces and strips whitespace): one character outside exactly that set.
# The limit counts the cleaned question, so a raw question within maxLength is always within the limit.
QUESTION_SCHEMA: dict = {
    "minLength": 1,
    "maxLength": _DEFAULTS.max_question_chars,
    "pattern": r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]",
}
TOP_K_SCHEMA: dict = {"minimum": 1, "maximum": _DEFAULTS.max_top_k}

# YYYY, YYYY-MM or YYYY-MM-DD naming a real date (``qa.search.filters``): year 0001-9999, month 01-12, a day the month
# has, February 29 only in leap years. ASCII digits only; whether ``after`` is later than ``before`` (a 422)
# is the one rule a JSON Schema cannot say.
_YEAR = "(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
_MONTH = "(?:0[1-9]|1[0-2])"
_MONTH_DAY = (
    "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    "|02-(?:0[1-9]|1[0-9]|2[0-8]))"
)
_LEAP_YEAR = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
ISO_DATE_SCHEMA: dict = {
    "pattern": f"^(?:{_YEAR}(?:-{_MONTH})?|{_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)$",
}


class SearchRequest(BaseModel):
    """A question and optional restrictions; limits are checked by the service so HTTP and CLI agree."""

    question: str = Field(
        description=(
            f"A question in plain language: not only whitespace or control characters, at most "
            f"{_DEFAULTS.max_question_chars} characters (QA_MAX_QUESTION_CHARS)."
        ),
        examples=["Who presided over the March 29 study session?"],
        json_schema_extra=QUESTION_SCHEMA,
    )
    # strict: "5", 5.0 and true are not whole numbers; a lax int would quietly turn them into 5, 5 and 1.
    top_k: int | None = Field(
        default=None,
        strict=True,
        examples=[5],
        json_schema_extra=TOP_K_SCHEMA,
        description=f"How many passages to return (default {_DEFAULTS.top_k}, at most {_DEFAULTS.max_top_k}).",
    )
    mode: Mode | None = Field(default=None, description="Retrieval mode (default hybrid).", examples=["hybrid"])
    source: str | None = Field(
        default=None, description="Only documents whose id matches this glob.", examples=["00*.txt"]
    )
    after: str | None = Field(
        default=None,
        examples=["2024-01-01"],
        json_schema_extra=ISO_DATE_SCHEMA,
        description="Only documents dated on or after this ISO date (YYYY, YYYY-MM or YYYY-MM-DD).",
    )
    before: str | None = Field(
        default=None,
        examples=["2024-12-31"],
        json_schema_extra=ISO_DATE_SCHEMA,
        description="Only documents dated on or before this ISO date (YYYY, YYYY-MM or YYYY-MM-DD); "
        "not before `after`.",
    )


class HighlightModel(BaseModel):
    """A supporting sentence: `text[start:end]` of the document, inside the passage."""

    start: int
    end: int


class CitationModel(BaseModel):
    """Where a passage comes from: `text[start:end]` of document `source`; lines are 1-based, inclusive."""

    source: str
    title: str | None
    date: str | None
    date_source: str | None = Field(
        default=None,
        description='Where `date` came from: "document" (declared by the file: HTML meta or time, PDF or DOCX '
        'properties), "text" (a date stated in the text), "file" (the file\'s modification time, a last resort).',
    )
    section: str | None = Field(
        default=None,
        description='The headings the passage sits under, outermost first, joined by " › "; null when the '
        "document has no headings.",
    )
    anchor: str | None = Field(
        default=None,
        description="The id of the source element nearest before the passage (HTML): `source#anchor` opens the "
        "page at that spot; null when there is none.",
    )
    start: int
    end: int
    line_start: int
    line_end: int
    page: int | None = Field(
        default=None,
        description="1-based page holding the passage's first character (PDF); null for documents without pages.",
    )
    page_end: int | None = Field(
        default=None,
        description="1-based page holding the passage's last character; equals `page` unless it spans pages.",
    )
    highlight: list[HighlightModel]
    aliases: list[str] = Field(
        default_factory=list,
        description="The document's other paths in the corpus: files with the same bytes, indexed once under "
        "`source`; the same offsets index each of them, and `GET /documents/{alias}` serves the same document.",
    )


class PlaceModel(BaseModel):
    """Another place a passage appears: `text[start:end]` of document `source`; lines are 1-based, inclusive."""

    source: str
    start: int
    end: int
    line_start: int
    line_end: int
    page: int | None = Field(default=None, description="1-based page of its first character (PDF), else null.")


class SearchHit(BaseModel):
    """One ranked passage and its citation."""

    rank: int
    score: float
    text: str
    citation: CitationModel
    duplicates: list[PlaceModel] = Field(
        default_factory=list,
        description="Lower-ranked passages whose text is near-identical to this one (the same paragraph or "
        "example elsewhere), collapsed into this result so that the others are distinct; best first.",
    )


class SearchResponse(BaseModel):
    """The passages for one question, best first; `answerable` is false when they probably do not answer it."""

    question: str
    mode: str
    answerable: bool
    confidence: float = Field(ge=0.0, le=1.0)
    results: list[SearchHit]
    took_ms: float
    excluded_undated: int = Field(
        default=0,
        ge=0,
        description="Documents a date filter (`after`, `before`) left out only because they have no date; 0 "
        "without a date filter.",
    )


class DocumentResponse(BaseModel):
    """A document's text and metadata: every citation's offsets index `text`."""

    id: str
    title: str | None
    date: str | None
    date_source: str | None = Field(
        default=None, description='Where `date` came from: "document", "text" or "file" (modification time).'
    )
    author: str | None
    source: str | None
    content_hash: str
    lines: int
    pages: list[int] | None = Field(
        default=None,
        description="For paged documents (PDF), the offset in `text` where each page starts, page 1 first; "
        "null otherwise.",
    )
    text: str
    aliases: list[str] = Field(
        default_factory=list,
        description="The document's other paths (files with the same bytes); it can be fetched by any of them.",
    )


class HealthResponse(BaseModel):
    """Whether the service can answer, with what model and how much data."""

    status: str
    index_loaded: bool
    model: str | None = None
    documents: int | None = None
    chunks: int | None = None
    index_dir: str | None = Field(
        default=None,
        description="Where the index lies; null unless the service has no API key or the call carries it.",
    )
    index_name: str | None = Field(
        default=None,
        description="The index directory's name (the web page shows which index it searches); null when "
        "`index_dir` is.",
    )
    created: str | None = None
    error: str | None = Field(
        default=None,
        description="Why no index is loaded; the index's location is left out for callers without the key.",
    )


class ErrorResponse(BaseModel):
    """Every error: a machine-readable kind and a sentence for people."""

    error: str
    message: str


# A quote to check: like a question, something besides whitespace and control characters, within the limit.
VERIFY_TEXT_SCHEMA: dict = {**QUESTION_SCHEMA, "maxLength": MAX_TEXT_CHARS}
# A cited document id: something besides whitespace.
CITED_SOURCE_SCHEMA: dict = {"minLength": 1, "pattern": QUESTION_SCHEMA["pattern"]}


class GivenCitationModel(BaseModel):
    """The citation a text came with: a document id, and optionally a span `start`-`end` (both, `start` <= `end`)
    or a `page`."""

    source: str = Field(
        description="The cited document's id (a citation's `source`).", json_schema_extra=CITED_SOURCE_SCHEMA
    )
    start: int | None = Field(
        default=None,
        strict=True,
        description="The cited span's first character (with `end`).",
        json_schema_extra={"minimum": 0},
    )
    end: int | None = Field(
        default=None,
        strict=True,
        description="The cited span's end character, exclusive (with `start`).",
        json_schema_extra={"minimum": 0},
    )
    page: int | None = Field(
        default=None, strict=True, description="The cited page (1-based, PDF).", json_schema_extra={"minimum": 1}
    )

    model_config = {"json_schema_extra": {"dependentRequired": {"start": ["end"], "end": ["start"]}}}


class VerifyRequest(BaseModel):
    """A quote or a paragraph to check against the documents, with the citation it came with, if any."""

    text: str = Field(
        description=f"A quote, or a paragraph whose sentences are checked one by one (at most {MAX_TEXT_CHARS} "
        f"characters, {MAX_PIECES} sentences).",
        examples=[
            (
                "The First Region Procuratorate of Guizhou Province is a dispatched office of the Provincial "
                "Procuratorate."
            )
        ],
        json_schema_extra=VERIFY_TEXT_SCHEMA,
    )
    citation: GivenCitationModel | None = Field(default=None, description="Where the text is said to come from.")


class DifferenceModel(BaseModel):
    """Words where a close quote and the document differ: the document has `document` at `start`-`end`."""

    quote: str
    document: str
    start: int
    end: int


class VerifyMatch(BaseModel):
    """A place holding the text: `text` is the document's text at the citation's span; its `highlight` is the
    quoted span (exact, approximate) or the supporting sentence (supported)."""

    text: str
    score: float
    citation: CitationModel


class CitationCheckModel(BaseModel):
    """Whether the given citation points at the text, and where the text really is."""

    given: GivenCitationModel
    correct: bool
    message: str
    found_at: CitationModel | None


class VerifyPiece(BaseModel):
    """The verdict on one piece of the text (`text[start:end]` of the input): the whole quote or one sentence."""

    text: str
    start: int
    end: int
    verdict: Literal["exact", "approximate", "supported", "not_found"] = Field(
        description="exact: occurs as written (whitespace, typographic quotes and dashes, first letter's case "
        "folded), every place listed; approximate: a very similar span, `differences` marked; supported: a "
        "passage's sentence states it; not_found: none of these."
    )
    score: float = Field(description="1 for exact, the similarity for approximate, the support score otherwise.")
    matches: list[VerifyMatch]
    differences: list[DifferenceModel]
    citation_check: CitationCheckModel | None


class VerifyResponse(BaseModel):
    """The verdict on a text: the weakest of its pieces', and each piece's."""

    text: str
    verdict: Literal["exact", "approximate", "supported", "not_found"]
    pieces: list[VerifyPiece]
    took_ms: float
