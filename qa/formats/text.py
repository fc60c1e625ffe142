"""Plain text and Markdown: decoded and served exactly as written."""

from __future__ import annotations

from qa.formats.base import Extracted, decode_text


def read_plain(raw: bytes) -> Extracted:
    """A .txt or .md file: UTF-8 text, served exactly as written."""
    return Extracted(decode_text(raw))
