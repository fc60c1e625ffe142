"""PDF: the text of each page in order, with where each page starts."""

from __future__ import annotations

import io

from qa.formats.base import PAGE_SEPARATOR, Extracted, Unreadable, storable


def read_pdf(raw: bytes) -> Extracted:
    """A PDF: the text of each page in order, pages separated by a blank line, with each page's start offset.

    Raises:
        Unreadable: not a PDF, damaged, encrypted with a password, or with no text on any page (a scan).
    """
    try:
        import logging

        from pypdf import PdfReader
        from pypdf.errors import FileNotDecryptedError, PdfReadError
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ImportError("reading PDF files needs pypdf: pip install pypdf") from exc
    # pypdf logs every oddity it recovers from; what matters reaches the user as a skip reason instead.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    if not raw.lstrip()[:5] == b"%PDF-":
        raise Unreadable("not a PDF file (no %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            # Many PDFs are encrypted only to set permissions, with an empty password that anyone may use.
            try:
                opened = reader.decrypt("")
            except Exception as exc:
                raise Unreadable(f"PDF is encrypted and cannot be opened: {exc}") from None
            if not opened:
                raise Unreadable("PDF is encrypted with a password")
        pages = [storable(page.extract_text() or "").strip() for page in reader.pages]
    except Unreadable:
        raise
    except FileNotDecryptedError:
        raise Unreadable("PDF is encrypted with a password") from None
    except PdfReadError as exc:
        raise Unreadable(f"damaged PDF: {exc}") from None
    except Exception as exc:  # a parser meeting hostile bytes can fail in any way; the file is skipped, not the build
        raise Unreadable(f"damaged PDF: {type(exc).__name__}: {exc}") from None
    if not any(pages):
        raise Unreadable("PDF has no extractable text (scanned images?)" if pages else "PDF has no pages")
    starts, offset = [], 0
    for page in pages:
        starts.append(offset)
        offset += len(page) + len(PAGE_SEPARATOR)
    info = _pdf_info(reader)
    text = PAGE_SEPARATOR.join(pages)
    return Extracted(text, pages=tuple(starts), title=info.get("title"), author=info.get("author"))


def _pdf_info(reader) -> dict[str, str]:
    """Title and author from a PDF's info dictionary, when set to something a person wrote."""
    try:
        info = reader.metadata or {}
        found = {"title": info.get("/Title"), "author": info.get("/Author")}
    except Exception:  # metadata is a nicety; a damaged info dictionary must not lose the text
        return {}
    out = {}
    for key, value in found.items():
        value = storable(str(value)).strip() if value else ""
        if value and not value.lower().startswith(("microsoft word - ", "untitled")):
            out[key] = value
    return out
