"""The MCP server: the search service as tools for AI assistants, over stdio (`qa mcp`) or HTTP (`/mcp`).

Built with the official SDK's ``MCPServer``. ``search`` answers with the passages and their full citations twice:
as structured content (the JSON of POST /search) and as text that quotes each passage under its citation, for
clients that show only text. ``get_document`` returns the exact text a citation's offsets index; ``verify_quote``
checks a quote or a paragraph against the documents (``qa.search.verify``). A ``QAError``
comes back as a tool error carrying its message.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from collections.abc import Callable
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from qa import __version__
from qa.api.schemas import SearchResponse, VerifyResponse
from qa.config import Mode
from qa.errors import InvalidRequest, QAError
from qa.search.filters import SearchFilter
from qa.search.service import Answer, Hit, SearchService
from qa.search.verify import GivenCitation, Verifier, render_verification

INSTRUCTIONS = (
    "Searches the user's own documents. Every passage comes with a citation (source file, section, lines, page). "
    "When you answer from these passages, quote the words you rely on verbatim and cite each quote by its source "
    "and lines, for example (ops/logging.md, lines 12-14). When the search says the passages probably do not "
    "answer the question, say so instead of guessing. Use get_document to read around a citation."
)
SEARCH_DESCRIPTION = (
    "Find the passages in the user's indexed documents that best answer a question, best first. Each result is a "
    "passage quoted exactly, with its citation: source (document id), title, section, line range, page (PDFs), "
    "date and the character span start-end in the document's text. Quote passages verbatim (never paraphrase "
    "inside quotation marks) and cite the source and lines of every quote. 'answerable' false means the best "
    "passage probably does not answer the question: tell the user rather than guess."
)
DOCUMENT_DESCRIPTION = (
    "The exact text of one indexed document, or of the span start-end (character offsets, end exclusive) that a "
    "search citation gives: text[start:end] is the cited passage. Use it to read the context around a citation; "
    "quote verbatim and cite the source and lines."
)
VERIFY_DESCRIPTION = (
    "Check a quote, or each sentence of a paragraph you wrote from the documents, against the user's documents. "
    "Verdicts: exact (the text occurs; every place is cited with source, span, lines, page, section), approximate "
    "(a very similar span, with the differing words), supported (not quoted, but a passage states it; its "
    "supporting sentence is cited) or not_found. Give the citation you attached (source, and start/end or page) "
    "to learn whether it points at the text and, if not, where the text really is. Fix or drop any sentence that "
    "is not_found before presenting it; quote verbatim only text found exact, and cite the source and lines it gives."
)


class DocumentSpan(BaseModel):
    """``get_document``'s structured content: ``text`` is the document's text from ``start`` to ``end``."""

    id: str
    title: str | None
    date: str | None
    date_source: str | None
    author: str | None
    source: str | None = Field(description="Where the document says it comes from (a site or publisher), if given.")
    length: int = Field(description="Characters in the whole document.")
    start: int
    end: int
    line_start: int = Field(description="1-based line of the span's first character.")
    line_end: int = Field(description="1-based line of the span's last character.")
    text: str


def create_mcp_server(current_service: Callable[[], SearchService]) -> MCPServer:
    """An MCP server whose tools answer from ``current_service()``, called once per tool call.

    Args:
        current_service: the service to use now; raises a ``QAError`` (such as ``IndexNotFound``) when there is none,
            which the caller sees as a tool error.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    server = MCPServer(
        "qa",
        title="qa: cited question answering",
        version=__version__,
        instructions=INSTRUCTIONS,
        log_level="WARNING",
    )
    # The SDK calls logging.basicConfig when constructed; the root logger is the application's to configure.
    root.handlers[:] = handlers
    root.setLevel(level)
    read_only = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)

    @server.tool(name="search", title="Search the documents", description=SEARCH_DESCRIPTION, annotations=read_only)
    def search(
        question: Annotated[str, Field(description="The question, in plain language.")],
        top_k: Annotated[int | None, Field(description="How many passages to return (default 5).")] = None,
        mode: Annotated[
            Mode | None,
            Field(description="hybrid (default): meaning and wording; dense: meaning only; keyword: exact words."),
        ] = None,
        source: Annotated[
            str | None, Field(description="Only documents whose id matches this glob, e.g. 'ops/*'.")
        ] = None,
        after: Annotated[str | None, Field(description="Only documents dated on or after this ISO date.")] = None,
        before: Annotated[str | None, Field(description="Only documents dated on or before this ISO date.")] = None,
    ) -> Annotated[CallToolResult, SearchResponse]:
        """The passages that answer ``question``, as structured content and as quoted text."""
        with _as_tool_error():
            search_filter = SearchFilter.of(source=source, after=after, before=before)
            answer = current_service().search(question, top_k, mode=mode, search_filter=search_filter)
        return CallToolResult(
            content=[TextContent(type="text", text=render_answer_text(answer))], structured_content=answer.as_dict()
        )

    @server.tool(
        name="get_document", title="Read a cited document", description=DOCUMENT_DESCRIPTION, annotations=read_only
    )
    def get_document(
        id: Annotated[str, Field(description="The document id: a citation's 'source'.")],
        start: Annotated[int | None, Field(description="First character (a citation's 'start'); default 0.")] = None,
        end: Annotated[
            int | None, Field(description="End character, exclusive (a citation's 'end'); default: the end.")
        ] = None,
    ) -> Annotated[CallToolResult, DocumentSpan]:
        """A document's text, or the span ``start:end`` of it, with its metadata."""
        with _as_tool_error():
            span = document_span(current_service(), id, start, end)
        header = (
            f"{span.id}, characters {span.start}-{span.end} of {span.length}, lines {span.line_start}-{span.line_end}"
            + (f" ({span.title})" if span.title else "")
        )
        return CallToolResult(
            content=[TextContent(type="text", text=header), TextContent(type="text", text=span.text)],
            structured_content=span.model_dump(mode="json"),
        )

    @server.tool(name="verify_quote", title="Check a quote", description=VERIFY_DESCRIPTION, annotations=read_only)
    def verify_quote(
        text: Annotated[str, Field(description="The quote, or a paragraph whose sentences are checked one by one.")],
        source: Annotated[str | None, Field(description="The document the text is attributed to (its id).")] = None,
        start: Annotated[int | None, Field(description="The cited span's first character (with end).")] = None,
        end: Annotated[int | None, Field(description="The cited span's end character, exclusive.")] = None,
        page: Annotated[int | None, Field(description="The cited page (PDF).")] = None,
    ) -> Annotated[CallToolResult, VerifyResponse]:
        """Each piece's verdict with its citations, as structured content and as text."""
        with _as_tool_error():
            if source is None and (start is not None or end is not None or page is not None):
                raise InvalidRequest("start, end and page name a place in the document given by source")
            citation = GivenCitation.of(source, start, end, page) if source is not None else None
            verification = Verifier(current_service()).verify(text, citation)
        return CallToolResult(
            content=[TextContent(type="text", text=render_verification(verification))],
            structured_content=verification.as_dict(),
        )

    return server


@contextlib.contextmanager
def _as_tool_error():
    """Turn a ``QAError`` into the SDK's ``ToolError``: the caller gets an error result with the message."""
    try:
        yield
    except QAError as exc:
        raise ToolError(str(exc)) from exc


def document_span(service: SearchService, doc_id: str, start: int | None, end: int | None) -> DocumentSpan:
    """The document ``doc_id`` cut to ``start:end`` (default: all of it), with the lines the span covers.

    Raises:
        DocumentNotFound: no such document.
        InvalidRequest: the span is not ``0 <= start <= end <= length``.
    """
    document = service.document(doc_id)
    text = document.text
    start = 0 if start is None else start
    end = len(text) if end is None else end
    if not 0 <= start <= end <= len(text):
        raise InvalidRequest(
            f"span {start}-{end} is outside document {doc_id!r}: start and end must satisfy "
            f"0 <= start <= end <= {len(text)}"
        )
    meta = document.metadata
    return DocumentSpan(
        id=document.doc_id,
        title=meta.title,
        date=meta.date,
        date_source=meta.date_source,
        author=meta.author,
        source=meta.source,
        length=len(text),
        start=start,
        end=end,
        line_start=text.count("\n", 0, start) + 1,
        line_end=text.count("\n", 0, max(start, end - 1)) + 1,
        text=text[start:end],
    )


def citation_line(hit: Hit) -> str:
    """``[1] ops/logs.md › Rotation, lines 3-5, page 2, 2024-05-02, characters 120-480``: where a passage is."""
    c = hit.citation
    lines = f"line {c.line_start}" if c.line_start == c.line_end else f"lines {c.line_start}-{c.line_end}"
    parts = [f"[{hit.rank}] {c.source}" + (f" › {c.section}" if c.section else ""), lines]
    if c.page is not None:
        parts.append(f"page {c.page}" if c.page_end in (None, c.page) else f"pages {c.page}-{c.page_end}")
    if c.date:
        parts.append(c.date)
    parts.append(f"characters {c.start}-{c.end}")
    return ", ".join(parts)


def render_answer_text(answer: Answer) -> str:
    """The answer for a reader: a summary line, then each passage quoted line by line under its citation."""
    count = len(answer.results)
    verdict = (
        f"answerable (confidence {answer.confidence:.2f})"
        if answer.answerable
        else f"probably NOT answered by these documents (confidence {answer.confidence:.2f}): say so rather than guess"
    )
    blocks = [f'{count} passage{"s" if count != 1 else ""} for "{answer.question}" ({answer.mode}; {verdict}).']
    if answer.excluded_undated:
        blocks.append(f"{answer.excluded_undated} undated documents were left out by the date filter.")
    for hit in answer.results:
        quoted = "\n".join(f"> {line}" if line else ">" for line in hit.text.split("\n"))
        blocks.append(f"{citation_line(hit)}\n{quoted}")
    return "\n\n".join(blocks)


def transport_security(host: str) -> TransportSecuritySettings | None:
    """DNS-rebinding protection for a loopback server (a web page must not reach it through a hostile name);
    None elsewhere, where the API key guards the service."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        return None
    names = ["127.0.0.1", "localhost", "[::1]"]
    # With and without a port: a browser or client leaves out the default one (:80).
    return TransportSecuritySettings(
        allowed_hosts=[*names, *(f"{name}:*" for name in names)],
        allowed_origins=[*(f"http://{name}" for name in names), *(f"http://{name}:*" for name in names)],
    )


def session_manager(
    current_service: Callable[[], SearchService], *, host: str, max_body_bytes: int
) -> StreamableHTTPSessionManager:
    """A new streamable-HTTP session manager for an MCP server over ``current_service()``; run it with ``.run()``.

    Stateless, with JSON responses: every POST is answered on its own, so nothing is kept per client (no session
    to lose on a restart or to share between workers).
    """
    server = create_mcp_server(current_service)
    # Only its session manager is used: the route belongs to the app (qa/api/mcp.py).
    server.streamable_http_app(
        json_response=True,
        stateless_http=True,
        transport_security=transport_security(host),
        max_request_body_size=max_body_bytes,
        host=host,
    )
    return server.session_manager


def serve_stdio(current_service: Callable[[], SearchService]) -> None:
    """Answer MCP requests on standard input and output from ``current_service()`` until the client closes them."""
    create_mcp_server(current_service).run("stdio")
