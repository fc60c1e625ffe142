"""Bounded work per file: chunking streams huge texts without changing any passage, and a DOCX cannot balloon."""

from __future__ import annotations

import hashlib
import io
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from qa.ingest.formats import Unreadable, extract
from qa.ingest.formats.docx import MAX_TEXT_PER_BYTE, TEXT_ALWAYS_ALLOWED
from qa.text.chunking import _COUNT_BATCH, MAX_CHARS_PER_TOKEN, STRETCH, chunk_text

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
# sha256 of every passage (offsets, lines, text, tokens) for the documents below, recorded with the chunker
# as it was before it streamed (commit 5a978a6): `python tests/test_bounded_files.py > tests/data/...`.
RECORDED = DATA / "chunks_before_streaming.json"
SETTINGS = [(128, 24, 256), (64, 16, None), (256, 0, 256)]
_WORDS = "the of model passage index token cheap Dr. e.g. U.S. 汉字 naïve café x http://example.org/a/b".split()


def generated_text(seed: int) -> str:
    """Prose of mixed sentences (abbreviations, CJK, long runs without spaces, odd endings), the same per seed."""
    rng = random.Random(seed)
    parts = []
    for _ in range(rng.randint(50, 400)):
        sentence = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 40)))
        if rng.random() < 0.1:
            sentence += ", " + "y" * rng.randint(1, 3000)
        parts.append(sentence + rng.choice([". ", "! ", "? ", "\n", "\n\n", "。", "; ", " "]))
    return "".join(parts)


def recorded_documents() -> list[tuple[str, str, list[int], list[tuple[int, int]]]]:
    """(name, text, heading starts, code spans) of the seeds, the CJK corpus and eight generated texts."""
    documents = []
    for path in sorted((ROOT / "seeds").iterdir()) + sorted((DATA / "cjk_corpus" / "corpus").iterdir()):
        extracted = extract(path.read_bytes(), path.suffix)
        documents.append((path.name, extracted.text, [h.start for h in extracted.headings], list(extracted.code)))
    documents += [(f"generated-{seed}", generated_text(seed), [], []) for seed in range(8)]
    return documents


def passages_digest(chunks) -> str:
    """sha256 of the passages' offsets, lines, text and token counts."""
    rows = [(c.start, c.end, c.line_start, c.line_end, c.text, c.n_tokens) for c in chunks]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def digests(count_tokens) -> dict[str, list]:
    """Passage count and digest per document and setting."""
    result = {}
    for name, text, boundaries, code in recorded_documents():
        for size, overlap, limit in SETTINGS:
            chunks = chunk_text(
                text,
                size=size,
                overlap=overlap,
                count_tokens=count_tokens,
                limit=limit,
                boundaries=boundaries,
                code=code,
            )
            result[f"{name}/{size}/{overlap}/{limit}"] = [len(chunks), passages_digest(chunks)]
    return result


def test_passages_are_byte_identical_to_those_recorded_before_streaming(encoder):
    assert digests(encoder.count_tokens) == json.loads(RECORDED.read_text(encoding="utf-8"))


def _spy(count_tokens):
    """``count_tokens`` that also records the longest text and the most characters it was handed in one call."""
    seen = {"longest": 0, "call_chars": 0, "calls": 0}

    def count(texts):
        seen["longest"] = max([seen["longest"], *map(len, texts)])
        seen["call_chars"] = max(seen["call_chars"], sum(map(len, texts)))
        seen["calls"] += 1
        return count_tokens(texts)

    return count, seen


def _check_passages(text: str, chunks, size: int, limit: int) -> None:
    """Every passage a verbatim slice within its token and character limits, and every visible character kept."""
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.n_tokens <= limit
        assert len(chunk.text) <= MAX_CHARS_PER_TOKEN * chunk.n_tokens
    assert "".join(text.split()) == "".join("".join(c.text.split()) for c in _without_overlap(chunks))


def _without_overlap(chunks):
    """The chunks with the text they repeat from the passage before cut off (as fresh Chunk-like pieces)."""
    from dataclasses import replace

    kept, reached = [], 0
    for chunk in chunks:
        start = max(chunk.start, reached)
        kept.append(replace(chunk, start=start, text=chunk.text[start - chunk.start :]))
        reached = chunk.end
    return kept


@pytest.mark.parametrize(
    "text",
    ["word " * 200_000, "abcdefghijklmnopqrstuvwxyz" * 20_000, "one, two, three " * 40_000],
    ids=["words without sentence ends", "one word without spaces", "clauses without sentence ends"],
)
def test_no_text_longer_than_every_budget_is_handed_to_the_tokenizer(encoder, text):
    # A tokenizer keeps offsets for every character it reads: a 50 MB sentence counted whole cost gigabytes.
    size, limit = 128, 256
    count, seen = _spy(encoder.count_tokens)
    chunks = chunk_text(text, size=size, overlap=24, count_tokens=count, limit=limit)
    assert seen["longest"] <= MAX_CHARS_PER_TOKEN * STRETCH * size
    _check_passages(text, chunks, size, limit)


def test_counting_hands_the_tokenizer_one_bounded_batch_at_a_time(encoder):
    text = "\n".join(f"Line {i} of a long log." for i in range(3 * _COUNT_BATCH))
    count, seen = _spy(encoder.count_tokens)
    chunk_text(text, size=128, overlap=24, count_tokens=count, limit=256)
    assert seen["call_chars"] <= _COUNT_BATCH * MAX_CHARS_PER_TOKEN * STRETCH * 128
    assert seen["call_chars"] < len(text) / 2  # the sentences went in several batches, never all at once


_GROWTH_PROBE = """
import resource, sys
from qa.text.chunking import chunk_text
from qa.embed.encoder import load_encoder
encoder = load_encoder()
text = "word " * 2_000_000
encoder.count_tokens(["warm up " * 100])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
chunks = chunk_text(text, size=128, overlap=24, count_tokens=encoder.count_tokens, limit=256)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024, len(chunks))
"""


@pytest.mark.slow  # a subprocess chunks 10 MB with the real tokenizer
def test_chunking_a_10_mb_sentence_grows_memory_by_far_less_than_the_text_would_cost_whole():
    # Counted whole and cut into a list of two million words, this sentence took gigabytes; streamed, the growth
    # is the passages themselves (about the size of the text) and one batch of pieces.
    result = subprocess.run([sys.executable, "-c", _GROWTH_PROBE], capture_output=True, text=True, check=True)
    grown_mb, n_chunks = map(int, result.stdout.split())
    assert n_chunks > 10_000
    assert grown_mb < 200, f"chunking grew the process by {grown_mb} MB"


# ---------------------------------------------------------------------------------------------------- DOCX


def _docx(paragraphs: list[str]) -> bytes:
    """A Word document of these paragraphs, as python-docx saves it."""
    import docx

    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _with_document_xml(raw: bytes, edit) -> bytes:
    """The package ``raw`` with word/document.xml replaced by ``edit(xml)``, compressed as Word does."""
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            target.writestr(info.filename, edit(data) if info.filename == "word/document.xml" else data)
    return out.getvalue()


def test_entity_references_adding_more_than_the_limit_are_refused_before_any_is_inlined():
    # libxml2 refuses large entity amplification itself (a DOCX of 100,000 references fails to parse); this is
    # the reader's own bound behind it, checked on the parsed tree before any text is built.
    from lxml import etree

    from qa.ingest.formats.docx import _inline_entities

    xml = b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY p "ten chars.">]><t>' + b"&p;" * 5 + b"</t>"
    root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False))
    with pytest.raises(Unreadable, match=r"DOCX with entity references expands to 50 characters .* repeats itself"):
        _inline_entities(root, limit=49)
    assert len(list(root.iter(etree.Entity))) == 5  # nothing was inlined
    _inline_entities(root, limit=50)
    assert root.text == "ten chars." * 5


@pytest.mark.slow  # builds and reads a huge .docx
def test_a_docx_with_one_huge_run_is_refused_with_its_size_in_the_reason():
    raw = _docx(["Introduction", "z" * (3 * TEXT_ALWAYS_ALLOWED)])
    assert MAX_TEXT_PER_BYTE * len(raw) < 3 * TEXT_ALWAYS_ALLOWED  # zip compression made it small
    with pytest.raises(Unreadable, match=rf"DOCX of {len(raw)} bytes expands to \d+ characters of text, more than"):
        extract(raw, ".docx")


def test_real_documents_stay_far_under_the_docx_expansion_bound():
    # Prose holds about one or two characters per byte of DOCX; the bound is ten times that and more.
    lines = [line for path in sorted((ROOT / "seeds").iterdir()) for line in path.read_text().splitlines()]
    lines = [line for line in lines * 20 if line.strip()]
    raw = _docx(lines)
    text = extract(raw, ".docx").text
    assert len(text) > 200_000
    assert len(text) / len(raw) < MAX_TEXT_PER_BYTE / 5


def test_entities_within_the_bound_are_still_inlined_in_place():
    def three_references(xml: bytes) -> bytes:
        xml = xml.replace(b"?>", b'?><!DOCTYPE w:document [<!ENTITY p "Acme">]>', 1)
        return xml.replace(b"<w:t>MARKER</w:t>", b"<w:t>&p;, &p;&p; and sons</w:t>")

    raw = _with_document_xml(_docx(["MARKER", "Next."]), three_references)
    assert extract(raw, ".docx").text == "Acme, AcmeAcme and sons\nNext."


if __name__ == "__main__":
    # Records the digests of the chunker on sys.path: run with the commit to compare against checked out.
    from qa.embed.encoder import load_encoder

    json.dump(digests(load_encoder().count_tokens), sys.stdout, indent=1, sort_keys=True)
