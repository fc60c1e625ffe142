"""Pull title, date, author and source out of the head of a plain-text or Markdown document."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date as _date
from itertools import islice

# Metadata lives near the top; scanning further only picks up body text that merely looks like a label.
_HEAD_LINES = 15
# Anything longer is a body paragraph, not a headline.
_MAX_TITLE_CHARS = 300
# str.strip() already removes NBSP and ideographic spaces; BOM and zero-width space are not whitespace to Python.
_INVISIBLE = "\ufeff\u200b"

_LABELS: dict[str, str | None] = {
    "time": "date",
    "date": "date",
    "release time": "date",
    "release date": "date",
    "published": "date",
    "publication date": "date",
    "publish time": "date",
    "posted": "date",
    "author": "author",
    "authors": "author",
    "by": "author",
    "source": "source",
    "news source": "source",
    # Recognised only so they end the previous value and mark the line as metadata; their values are dropped.
    "editor": None,
    "edit": None,
    "responsible editor": None,
    "font size": None,
    "views": None,
}
# Longest first so "News source" wins over "source" and "Editor" over "Edit".
_LABEL_RE = re.compile(
    r"(?<!\w)(" + "|".join(re.escape(k) for k in sorted(_LABELS, key=len, reverse=True)) + r")\s*[:：]",
    re.IGNORECASE,
)
_BREADCRUMB_RE = re.compile(r">>|»|^(current location|you are here|your location|home\s*>)", re.IGNORECASE)
_TAG_RE = re.compile(r"^\s*[\[【][^\]】]*[\]】]\s*")
# A closing "###" only counts after a space, so "# C#" keeps its hash.
_HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
# Pages put "|", "/" and dashes between fields; a trailing "[" is the start of a widget such as "[Font size".
_PUNCT_RE = re.compile(r"^[\s|,;:\ufeff\u200b]+|[\s|,;:/\[(\-–—\ufeff\u200b]+$")

_MONTHS = {
    name: number
    for number, full in enumerate(
        [
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ],
        start=1,
    )
    for name in (full, full[:3])
} | {"sept": 9}
_TIME = r"(?:[T\s]+\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|UTC|GMT|[+-]\d{2}:?\d{2})?)?"
# HTTP dates and page footers put the weekday first: "Wed, 21 Oct 2015 07:28:00 GMT".
_WEEKDAY = re.compile(r"(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+", re.IGNORECASE)
_MONTH = r"(?<![A-Za-z])(?P<mon>[A-Za-z]{3,9})\.?"
_FULL_DATES = [
    re.compile(r"(?<!\d)(?P<y>\d{4})(?P<sep>[-/.])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})" + _TIME),
    re.compile(r"(?P<y>\d{4})\s*年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*日" + _TIME),
    re.compile(_MONTH + r"\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y>\d{4})" + _TIME),
    re.compile(r"(?<!\d)(?P<d>\d{1,2})(?:st|nd|rd|th)?\s+" + _MONTH + r",?\s+(?P<y>\d{4})" + _TIME),
]
# Only accepted for a whole value: inside running text a bare year or "2024-07" is too often something else.
_PARTIAL_DATES = [
    re.compile(r"(?P<y>\d{4})[-/.](?P<m>\d{1,2})"),
    re.compile(r"(?P<y>\d{4})\s*年\s*(?P<m>\d{1,2})\s*月"),
    re.compile(_MONTH + r",?\s+(?P<y>\d{4})"),
    re.compile(r"(?P<y>\d{4})"),
]


@dataclass(frozen=True)
class Metadata:
    """Document metadata; every field is None when it could not be found.

    ``date_source`` says where ``date`` came from: ``"document"`` (declared by the file: HTML ``<meta>`` or
    ``<time>``, PDF or DOCX properties), ``"text"`` (a date line in the text, such as "Last updated on ..."),
    or ``"file"`` (the file's modification time, a last resort); None when there is no date.
    """

    title: str | None = None
    date: str | None = None
    author: str | None = None
    source: str | None = None
    date_source: str | None = None


def _from_match(match: re.Match[str]) -> str | None:
    """Turn a date regex match into ISO 8601, or None when the calendar rejects it."""
    parts = match.groupdict()
    year = int(parts["y"])
    if year < 1000:  # "0000" and friends are placeholders, not dates.
        return None
    if parts.get("mon") is not None:
        month = _MONTHS.get(parts["mon"].lower())
        if month is None:
            return None
    else:
        month = int(parts["m"]) if parts.get("m") else None
    if month is None:
        return f"{year:04d}"
    if "d" not in parts:
        return f"{year:04d}-{month:02d}" if 1 <= month <= 12 else None
    try:
        return _date(year, month, int(parts["d"])).isoformat()
    except ValueError:
        return None


def parse_date(value: str) -> str | None:
    """Normalise one date string to ISO 8601; None when it is not a date."""
    if not isinstance(value, str):
        return None
    value = value.strip().strip(_INVISIBLE).strip()
    value = _WEEKDAY.sub("", value, count=1) if _WEEKDAY.match(value) else value
    for pattern in _FULL_DATES + _PARTIAL_DATES:
        match = pattern.fullmatch(value)
        if match:
            return _from_match(match)
    return None


def _find_date(text: str) -> str | None:
    """Return the first valid full date anywhere in text (labelled values often carry extra words)."""
    found = parse_date(text)
    if found:
        return found
    for pattern in _FULL_DATES:
        for match in pattern.finditer(text):
            if iso := _from_match(match):
                return iso
    return None


def _clean(value: str) -> str:
    """Strip whitespace, invisible characters and the separators that pages put between fields."""
    return _PUNCT_RE.sub("", value)


def _labelled_fields(line: str) -> dict[str, str | None] | None:
    """Split a metadata line into fields, or None when the line does not start with a known label."""
    matches = list(_LABEL_RE.finditer(line))
    if not matches or matches[0].start() != 0:
        return None
    fields: dict[str, str | None] = {}
    for current, following in zip(matches, matches[1:] + [None]):
        field = _LABELS[current.group(1).lower()]
        value = _clean(line[current.end() : following.start() if following else len(line)])
        if field and field not in fields:
            fields[field] = value or None
    return fields


def _front_matter(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    """Read a leading YAML-style block; return its simple key/value pairs and the remaining lines."""
    if not lines or lines[0].strip().strip(_INVISIBLE) != "---":
        return {}, lines
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            break
    else:
        return {}, lines  # Unclosed: a horizontal rule, not front matter.
    pairs: dict[str, str] = {}
    for raw in lines[1:end]:
        key, sep, value = raw.partition(":")
        value = value.strip().strip("'\"").strip()
        if sep and value and key.strip().lower() in ("title", "date", "author", "source"):
            pairs.setdefault(key.strip().lower(), value)
    return pairs, lines[end + 1 :]


def _title(head: list[str], markdown: bool) -> str | None:
    """Pick the headline: the first line that is not navigation, metadata or a date."""
    if markdown:
        for line in head:
            match = _HEADING_RE.match(line)
            if match and len(match.group(1)) == 1 and 0 < len(match.group(2)) <= _MAX_TITLE_CHARS:
                return _TAG_RE.sub("", match.group(2)).strip() or None
    last_crumb: str | None = None
    for line in head:
        if _BREADCRUMB_RE.search(line):
            last_crumb = re.split(r">>|»|>", line)[-1].strip().casefold()
            continue
        if (last_crumb and line.casefold() == last_crumb) or _labelled_fields(line) or parse_date(line):
            continue
        if markdown:
            line = _HEADING_RE.sub(r"\2", line)
        if len(line) > _MAX_TITLE_CHARS:
            return None
        title = _TAG_RE.sub("", line).strip()
        if any(ch.isalnum() for ch in title):  # Rules such as "---" or "****" are decoration, not headlines.
            return title
    return None


def _extract(text: str, suffix: str) -> Metadata:
    """Do the work of extract_metadata without the safety net."""
    markdown = suffix.lower().lstrip(".") in ("md", "markdown")
    lines = text.splitlines()
    front: dict[str, str] = {}
    if markdown:
        front, lines = _front_matter(lines)
    # Lazy so a multi-megabyte document costs no more than its first lines.
    head = list(islice((s for s in (line.strip().strip(_INVISIBLE).strip() for line in lines) if s), _HEAD_LINES))

    fields: dict[str, str | None] = {}
    for line in head:
        for field, value in (_labelled_fields(line) or {}).items():
            if fields.get(field) is None:
                fields[field] = _find_date(value) if field == "date" and value else value
    if fields.get("date") is None:
        fields["date"] = next((iso for line in head if (iso := parse_date(line))), None)

    return Metadata(
        title=front.get("title") or _title(head, markdown),
        date=(parse_date(front["date"]) if "date" in front else None) or fields.get("date"),
        author=front.get("author") or fields.get("author"),
        source=front.get("source") or fields.get("source"),
    )


def extract_metadata(text: str, *, suffix: str = ".txt") -> Metadata:
    """Extract title, date, author and source from the first lines of a document.

    Args:
        text: The full document text.
        suffix: File suffix; ".md" enables front matter and "# Heading" titles.

    Returns:
        A Metadata whose fields are None where nothing trustworthy was found; never raises.
    """
    if not isinstance(text, str) or not text.strip():
        return Metadata()
    try:
        return _extract(text, suffix if isinstance(suffix, str) else ".txt")
    except Exception:  # Metadata is a nicety: a bad heuristic must never block ingesting a document.
        return Metadata()
