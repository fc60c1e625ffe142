"""Search filters: restrict by document id glob and by date range before anything is ranked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from qa.errors import InvalidRequest
from qa.ingest.corpus import is_valid_text

_ISO_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
# A source glob names document ids, which are relative paths: 1,024 characters is more than any needs, far
# under SQLite's 50,000-byte pattern limit (a longer one is an SQL error, not a 4xx). Each ``*`` multiplies
# the work of matching a non-matching id, so they are bounded too.
MAX_SOURCE_CHARS = 1024
MAX_SOURCE_WILDCARDS = 16
# Longest value quoted back in an error message.
_QUOTED_CHARS = 40


@dataclass(frozen=True)
class SearchFilter:
    """Which documents may answer: ``source`` is a glob on the document id (``*`` also crosses ``/``);
    ``after`` and ``before`` are inclusive ISO dates (``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``).
    Documents without a date never pass a date filter."""

    source: str | None = None
    after: str | None = None
    before: str | None = None

    @classmethod
    def of(
        cls, source: str | None = None, after: str | None = None, before: str | None = None
    ) -> "SearchFilter | None":
        """A checked filter, or None when nothing restricts the search.

        Raises:
            InvalidRequest: a value is not a string, ``source`` is too long or holds too many ``*``, a date
                is not ISO 8601, or ``after`` is later than ``before``.
        """
        for name, value in (("source", source), ("after", after), ("before", before)):
            if value is not None and not isinstance(value, str):
                raise InvalidRequest(f"{name} must be a string")
        source = source.strip() if source and source.strip() else None
        if source is not None:
            _check_source(source)
        for name, value in (("after", after), ("before", before)):
            if value is not None and not _is_iso_date(value):
                raise InvalidRequest(
                    f"{name} must be an ISO date like 2024-03-29 (or 2024-03, 2024), got {_quoted(value)}"
                )
        if after and before and _lower(after) > _upper(before):
            raise InvalidRequest(f"after ({after}) is later than before ({before})")
        if source is None and after is None and before is None:
            return None
        return cls(source, after, before)

    def sql(self) -> tuple[str, tuple]:
        """An SQL condition over documents aliased ``d``, with its parameters."""
        clauses, params = [], []
        if self.source:
            clauses.append("d.doc_id GLOB ?")
            params.append(self.source)
        if self.after:
            clauses.append("d.date IS NOT NULL AND d.date >= ?")
            params.append(_lower(self.after))
        if self.before:
            clauses.append("d.date IS NOT NULL AND d.date <= ?")
            params.append(_upper(self.before))
        return " AND ".join(clauses) or "1", tuple(params)

    def undated_sql(self) -> tuple[str, tuple]:
        """An SQL condition over documents ``d`` matching those the source part lets through that have no date:
        the ones a date filter leaves out for want of a date."""
        if self.source:
            return "d.date IS NULL AND d.doc_id GLOB ?", (self.source,)
        return "d.date IS NULL", ()


def _check_source(source: str) -> None:
    """Refuse a source glob that is not text, too long, or has too many wildcards.

    Raises:
        InvalidRequest: naming the limit.
    """
    if not is_valid_text(source):
        raise InvalidRequest("source must be valid Unicode text (it holds an unpaired surrogate)")
    if len(source) > MAX_SOURCE_CHARS:
        raise InvalidRequest(f"source is {len(source)} characters long; the limit is {MAX_SOURCE_CHARS}")
    if source.count("*") > MAX_SOURCE_WILDCARDS:
        raise InvalidRequest(f"source holds {source.count('*')} '*' wildcards; the limit is {MAX_SOURCE_WILDCARDS}")


def _quoted(value: str) -> str:
    """``value`` as ``repr`` for a message, cut short when long (a message need not echo megabytes)."""
    return repr(value) if len(value) <= _QUOTED_CHARS else f"{value[:_QUOTED_CHARS]!r}... ({len(value)} characters)"


def _is_iso_date(value: str) -> bool:
    """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` naming a real date."""
    if not _ISO_DATE.match(value):
        return False
    try:
        date.fromisoformat(_lower(value))
    except ValueError:
        return False
    return True


def _lower(value: str) -> str:
    """The earliest full date a partial ISO date stands for: 2024 -> 2024-01-01 (as text, for comparison)."""
    return value + "-01-01"[len(value) - 4 :] if len(value) < 10 else value


def _upper(value: str) -> str:
    """The latest date a partial ISO date stands for; ``~`` sorts after any digit, so 2024-03 covers the month."""
    return value if len(value) == 10 else value + "~"
