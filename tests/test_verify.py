"""Checking quotes (`qa verify`, POST /verify, `qa.search.verify`): every verdict on the real seeds index and model,
each format (a PDF quote across a page break, HTML with nested tags, a DOCX table cell), citations checked and
corrected, and the CLI in a subprocess and HTTP through the real app."""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys

import httpx
import pytest
from conftest import ROOT, SEEDS

from qa.config import Settings
from qa.errors import InvalidRequest
from qa.search.verify import (
    APPROXIMATE_MIN_SIMILARITY,
    MAX_ALIGNED_CHARS,
    GivenCitation,
    Verifier,
    specifics,
    unmatched_specifics,
)
from qa.text.chunking import split_sentences
from qa.text.quotes import clean_quote, fold

SOURCE = "002_7611d074bac0c8e6.txt"
SENTENCE = "They went to Anshun, Guiyang and other places in Guizhou for research."


@pytest.fixture(scope="module")
def verifier(service):
    return Verifier(service)


def folds_to(document_text: str, start: int, end: int, quote: str) -> bool:
    """Whether ``document_text[start:end]`` is the quote once both are folded (first letter's case aside)."""
    found, wanted = clean_quote(document_text[start:end]), clean_quote(quote)
    return found[1:] == wanted[1:] and found[:1].lower() == wanted[:1].lower()


def random_spans(count: int, seed: int = 7) -> list[tuple[str, str]]:
    """``count`` random spans of 1-3 whole sentences of the seeds, as ``(document id, text)``."""
    rng = random.Random(seed)
    files = sorted(SEEDS.iterdir())
    spans = []
    while len(spans) < count:
        path = rng.choice(files)
        text = path.read_text(encoding="utf-8")
        sentences = [s for s in split_sentences(text) if len(text[s.start : s.end].split()) >= 6]
        first = rng.randrange(len(sentences) - 3)
        last = first + rng.randrange(3)
        if all(sentences[i].end + 2 >= sentences[i + 1].start for i in range(first, last)):
            spans.append((path.name, text[sentences[first].start : sentences[last].end]))
    return spans


def test_fold_keeps_the_original_offset_of_every_character():
    text = "A \u201cquoted\u201d\n\n  word\u2014and a soft\u00adhyphen\u200b."
    folded = fold(text)
    assert folded.text == 'A "quoted" word-and a softhyphen.'
    assert len(folded.origin) == len(folded.text)
    for i, c in enumerate(folded.text):
        original = text[folded.origin[i]]
        assert original == c or fold(original).text in (c, "")


@pytest.mark.parametrize("dressing", ["plain", "curly quotes", "line breaks", "lower first letter"])
def test_true_quotes_are_exact_with_offsets_that_fold_back_to_the_quote(verifier, service, dressing):
    for doc_id, quote in random_spans(12):
        given = {
            "plain": quote,
            "curly quotes": "\u201c" + quote.replace('"', "\u201d") + "\u201d",
            "line breaks": quote.replace(" ", "\n", 3).replace(", ", ",\n   "),
            "lower first letter": quote[0].lower() + quote[1:],
        }[dressing]
        result = verifier.verify(given)
        assert result.verdict == "exact", (dressing, quote)
        [piece] = result.pieces
        places = [(m.citation.source, m.citation.start, m.citation.end) for m in piece.matches]
        text = service.document(doc_id).text
        assert any(source == doc_id and folds_to(text, s, e, quote) for source, s, e in places), (quote, places)
        for match in piece.matches:
            assert match.text == service.document(match.citation.source).text[match.citation.start : match.citation.end]


def test_an_exact_quote_carries_the_full_citation_of_its_span(verifier, service):
    [piece] = verifier.verify(SENTENCE).pieces
    [match] = piece.matches
    c = match.citation
    text = service.document(SOURCE).text
    assert (c.source, match.text) == (SOURCE, SENTENCE)
    assert text[c.start : c.end] == SENTENCE
    assert (c.line_start, c.line_end) == (text.count("\n", 0, c.start) + 1, text.count("\n", 0, c.end - 1) + 1)
    assert c.title == service.document(SOURCE).metadata.title and c.date == "2024-07-04"
    assert [(h.start, h.end) for h in c.highlight] == [(c.start, c.end)]


def test_a_quote_across_a_passage_boundary_is_found_whole(verifier, service):
    chunks = sorted(service.store.chunks(list(range(1, 120))).values(), key=lambda c: c.id)
    first, second = next((a, b) for a, b in itertools.pairwise(chunks) if a.doc_id == b.doc_id and b.start > a.start)
    text = service.document(first.doc_id).text
    start = first.start + split_sentences(first.text)[-1].start
    # The first sentence of the next passage that ends beyond this one (passages may overlap by a sentence).
    end = next(second.start + s.end for s in split_sentences(second.text) if second.start + s.end > first.end)
    quote = text[start:end]
    result = verifier.verify(quote)
    assert result.verdict == "exact"
    spans = [(m.citation.start, m.citation.end) for m in result.pieces[0].matches]
    assert (start, end) in spans


@pytest.mark.parametrize(
    "altered, quote_word, document_word",
    [
        (SENTENCE.replace("Guiyang", "Guiyan"), "Guiyan", "Guiyang"),  # a typo
        (SENTENCE.replace("research", "inspection"), "inspection", "research"),  # a changed word
        (SENTENCE.replace(" and other places", ""), "", "and other places"),  # dropped words
    ],
)
def test_an_altered_quote_is_approximate_with_the_differing_words_marked(
    verifier, service, altered, quote_word, document_word
):
    [piece] = verifier.verify(altered).pieces
    assert piece.verdict == "approximate"
    assert APPROXIMATE_MIN_SIMILARITY <= piece.score < 1
    [match] = piece.matches
    text = service.document(SOURCE).text
    assert text[match.citation.start : match.citation.end] == SENTENCE
    assert [(d.quote, d.document) for d in piece.differences] == [(quote_word, document_word)]
    difference = piece.differences[0]
    assert text[difference.start : difference.end] == document_word


def test_a_paraphrase_is_supported_with_its_passage_and_sentence_cited(verifier, service):
    paraphrase = "The researchers travelled to several places in Guizhou, Anshun and Guiyang among them."
    [piece] = verifier.verify(paraphrase).pieces
    assert piece.verdict == "supported" and 0.5 <= piece.score <= 1
    [match] = piece.matches
    c = match.citation
    text = service.document(c.source).text
    assert c.source == SOURCE and text[c.start : c.end] == match.text
    [sentence] = c.highlight
    assert text[sentence.start : sentence.end] == SENTENCE


def test_a_paraphrase_merging_sentences_is_supported_by_one_of_them(verifier, service):
    # Restates three adjacent sentences of the first seed as one: "Handling cases is the basic way of legal
    # supervision. Every case is a 'procuratorial product'. Whether the quality is qualified or not ... affects the
    # people's perception of fairness and justice."
    merged = (
        "Case handling is the fundamental means of legal supervision, and each case is a 'procuratorial product' "
        "whose quality affects how people perceive fairness and justice."
    )
    [piece] = verifier.verify(merged).pieces
    assert piece.verdict == "supported" and piece.score >= 0.5
    c = piece.matches[0].citation
    [sentence] = c.highlight
    stated = service.document(c.source).text[sentence.start : sentence.end]
    assert c.source == "000_d01fc28f19d529a8.txt"
    assert "Handling cases is the basic way of legal supervision" in stated or "procuratorial product" in stated


@pytest.mark.parametrize(
    ("stated", "invented"),
    [
        # A person: Ying Yong led the research in Guizhou, Zhang Jun did not.
        (
            "Ying Yong led a research team of the Supreme People's Procuratorate to Guizhou in early July.",
            "Zhang Jun led a research team of the Supreme People's Procuratorate to Guizhou in early July.",
        ),
        # Numbers: the research ran from July 1st to 3rd.
        (
            "Ying Yong led a research team of the Supreme People's Procuratorate to Guizhou from July 1 to 3.",
            "Ying Yong led a research team of the Supreme People's Procuratorate to Guizhou from July 11 to 13.",
        ),
    ],
)
def test_an_invented_name_or_number_about_a_seed_person_is_not_found(verifier, stated, invented):
    assert verifier.verify(stated).verdict == "supported"
    [piece] = verifier.verify(invented).pieces
    assert piece.verdict == "not_found" and piece.matches == [] and piece.score < 0.5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("More than 200,000 procurators attended on March 18.", {"200000", "march", "18"}),
        # A sentence's first word is capitalised anyway: "Zhang" is left out, "Jun" is read.
        # A sentence's first word is capitalised anyway: "Zhang" is left out, "Jun" is read.
        ("Zhang Jun set out three requirements in the 19th year.", {"jun", "3", "19"}),
        ("The Fourth Plenary Session met. Then Ying Yong spoke.", {"4", "plenary", "session", "ying", "yong"}),
        ("Weighed food records (WFR) are costly in the UK.", {"uk"}),
        ("Bcp1 is a chaperone for Rpl23 in S. cerevisiae.", {"rpl23"}),
        ("One key route is to modernize how it is managed.", set()),
    ],
)
def test_names_and_numbers_are_read_folded_for_comparison(text, expected):
    assert specifics(text) == expected


def test_a_number_of_thousands_of_digits_is_compared_as_text(verifier):
    huge = "7" * 6000
    assert specifics(f"The count was {huge} in total.") == {huge}
    [piece] = verifier.verify(f"More than {huge} procurators nationwide attended the conference.").pieces
    assert piece.verdict == "not_found"


def test_a_text_too_long_to_align_is_still_found_exact_and_otherwise_judged_by_support(tmp_path, encoder):
    """Past MAX_ALIGNED_CHARS a text is not aligned approximately (at the length allowed that would take minutes):
    an exact one is still found at its place, and one with a word changed is judged by support instead."""
    from qa.index.indexer import build_index
    from qa.search.service import SearchService

    items = [
        f"crate {n} of {['apples', 'pears', 'plums', 'quinces'][n % 4]} weighing {n + 20} kilograms" for n in range(80)
    ]
    sentence = "The inventory of the cold store lists " + ", ".join(items) + "."
    assert len(sentence) > MAX_ALIGNED_CHARS
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "inventory.txt").write_text(f"Cold store inventory\n\n{sentence}\n", encoding="utf-8")
    build_index(corpus, tmp_path / "index", encoder, chunk_size=128, chunk_overlap=24)
    long_verifier = Verifier(SearchService.open(Settings(index_dir=tmp_path / "index"), encoder=encoder))
    [exact] = long_verifier.verify(sentence).pieces
    assert exact.verdict == "exact"
    assert (exact.matches[0].citation.start, exact.matches[0].citation.end) == (22, 22 + len(sentence))
    [changed] = long_verifier.verify(sentence.replace("weighing 41", "weighing 14")).pieces
    assert changed.verdict in ("supported", "not_found") and not changed.differences


def test_names_and_numbers_the_passage_lacks_are_the_invented_ones():
    passage = "From July 1st to 3rd, Ying Yong led the research group to Guizhou; more than 200000 attended."
    assert unmatched_specifics("Ying Yong went to Guizhou from July 1 to 3 with 200,000 others.", passage) == set()
    invented = "Ying Yong went to Yunnan on July 11 with four others."
    assert unmatched_specifics(invented, passage) == {"yunnan", "11", "4"}


@pytest.mark.parametrize(
    "claim",
    [
        "The moon landing was filmed in a studio in Nevada in 1969.",
        "Photosynthesis converts sunlight into chemical energy stored in glucose.",
        "Mount Everest was first climbed by a team of Roman engineers.",
    ],
)
def test_a_fabricated_claim_is_not_found(verifier, claim):
    result = verifier.verify(claim)
    assert result.verdict == "not_found"
    assert result.pieces[0].matches == [] and result.pieces[0].score < 0.5


def test_a_paragraph_gets_one_verdict_per_sentence(verifier):
    paragraph = (
        f"{SENTENCE} The delegation later visited a chocolate factory in Belgium. "
        "They went to Anshun, Guiyang and other places in Guizhou for inspection."
    )
    result = verifier.verify(paragraph)
    assert [p.verdict for p in result.pieces] == ["exact", "not_found", "approximate"]
    assert result.verdict == "not_found"
    for piece in result.pieces:
        assert paragraph[piece.start : piece.end] == piece.text


def test_a_wrong_citation_is_corrected_to_the_right_span(verifier, service):
    text = service.document(SOURCE).text
    right = text.index(SENTENCE)
    wrong = GivenCitation.of(SOURCE, 0, 200)
    [piece] = verifier.verify(SENTENCE, wrong).pieces
    check = piece.citation_check
    assert not check.correct
    assert (check.found_at.source, check.found_at.start, check.found_at.end) == (SOURCE, right, right + len(SENTENCE))
    assert f"characters {right}-{right + len(SENTENCE)}" in check.message

    other = GivenCitation.of("000_d01fc28f19d529a8.txt")
    check = verifier.verify(SENTENCE, other).pieces[0].citation_check
    assert not check.correct and "cited document '000_d01fc28f19d529a8.txt' does not hold" in check.message

    correct = GivenCitation.of(SOURCE, right - 50, right + len(SENTENCE) + 50)
    assert verifier.verify(SENTENCE, correct).pieces[0].citation_check.correct

    missing = GivenCitation.of("no-such.txt", 0, 10)
    check = verifier.verify(SENTENCE, missing).pieces[0].citation_check
    assert not check.correct and "no document 'no-such.txt'" in check.message and check.found_at.source == SOURCE


@pytest.mark.parametrize(
    "text, citation, message",
    [
        ("   ", None, "text to check is empty"),
        ("x" * 10_001, None, "the limit is 10000"),
        (SENTENCE, {"source": ""}, "citation source must be a non-empty document id"),
        (SENTENCE, {"source": SOURCE, "start": 5}, "give both or neither"),
        (SENTENCE, {"source": SOURCE, "start": 9, "end": 2}, "start (9) is after its end (2)"),
        (SENTENCE, {"source": SOURCE, "page": 0}, "page must be 1 or more"),
    ],
)
def test_unusable_input_is_refused_with_a_message(verifier, text, citation, message):
    with pytest.raises(InvalidRequest, match=message.replace("(", r"\(").replace(")", r"\)")):
        verifier.verify(text, GivenCitation.of(**citation) if citation else None)


# ------------------------------------------------------------------------------------------------ formats

PDF_PAGE_ONE = ["Orchard report", "The harvest began early that year because the"]
PDF_PAGE_TWO = ["summer had been unusually warm and dry.", "Pickers arrived in the second week of August."]
HTML = """<html><head><title>Hives</title></head><body><main><h1 id="hives">Hives</h1>
<p>The <em>old</em> hives were moved to the <a href="/heather"><strong>heather</strong> moor</a> in late August.</p>
<p>Nothing else happened.</p></main></body></html>"""


@pytest.fixture(scope="module")
def formats_verifier(tmp_path_factory, encoder):
    """A verifier over a real index of one PDF, one HTML page and one DOCX with a table."""
    import docx
    from test_formats import minimal_pdf

    from qa.index.indexer import build_index
    from qa.search.service import SearchService

    corpus = tmp_path_factory.mktemp("verify-formats")
    (corpus / "orchard.pdf").write_bytes(minimal_pdf([PDF_PAGE_ONE, PDF_PAGE_TWO]))
    (corpus / "hives.html").write_text(HTML, encoding="utf-8")
    document = docx.Document()
    document.add_heading("Yields", 1)
    table = document.add_table(rows=2, cols=2)
    cells = table.rows[0].cells + table.rows[1].cells
    for cell, value in zip(cells, ["Variety", "Yield per hectare", "Bramley", "nine tonnes in a good year"]):
        cell.text = value
    document.save(corpus / "yields.docx")
    index_dir = corpus / "index"
    defaults = Settings()
    build_index(
        corpus,
        index_dir,
        encoder,
        chunk_size=defaults.chunk_size,
        chunk_overlap=defaults.chunk_overlap,
        embed_title=defaults.embed_title,
    )
    return Verifier(SearchService.open(Settings(index_dir=index_dir), encoder=encoder))


def test_a_pdf_quote_across_a_page_break_is_exact_and_names_both_pages(formats_verifier):
    quote = "The harvest began early that year because the summer had been unusually warm and dry."
    result = formats_verifier.verify(quote)
    assert result.verdict == "exact"
    [match] = result.pieces[0].matches
    assert match.citation.source == "orchard.pdf"
    assert (match.citation.page, match.citation.page_end) == (1, 2)
    text = formats_verifier.service.document("orchard.pdf").text
    assert folds_to(text, match.citation.start, match.citation.end, quote)
    assert "\n" in match.text  # the page break lies inside the span and was folded
    check = formats_verifier.verify(quote, GivenCitation.of("orchard.pdf", page=2)).pieces[0].citation_check
    assert check.correct
    check = formats_verifier.verify(quote, GivenCitation.of("orchard.pdf", page=3)).pieces[0].citation_check
    assert not check.correct and "has 2 pages" in check.message


def test_an_html_quote_whose_source_has_nested_tags_is_exact_with_its_section(formats_verifier):
    quote = "The old hives were moved to the heather moor in late August."
    result = formats_verifier.verify(quote)
    assert result.verdict == "exact"
    [match] = result.pieces[0].matches
    assert match.text == quote and match.citation.source == "hives.html"
    assert match.citation.section == "Hives" and match.citation.anchor == "hives"


def test_a_docx_table_cell_is_exact(formats_verifier):
    result = formats_verifier.verify("nine tonnes in a good year")
    assert result.verdict == "exact"
    [match] = result.pieces[0].matches
    assert (match.citation.source, match.text) == ("yields.docx", "nine tonnes in a good year")
    assert match.citation.section == "Yields"


# ------------------------------------------------------------------------------------------------ CLI and HTTP


def test_qa_verify_prints_verdicts_and_json_in_a_subprocess(seeds_index):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "qa", "verify", "--index", str(seeds_index)]
    done = subprocess.run(
        [*command, "--json", "--source", SOURCE, "--start", "0", "--end", "10", SENTENCE],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["verdict"] == "exact" and body["pieces"][0]["citation_check"]["correct"] is False
    done = subprocess.run(
        command,
        input="The moon is made of cheese.\n",
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0 and "NOT FOUND" in done.stdout
    done = subprocess.run(
        [*command, "--start", "3", SENTENCE], check=False, capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 2 and "--source" in done.stderr


def test_post_verify_answers_over_http_and_refuses_bad_input(live_server, service):
    from qa.api.schemas import VerifyResponse

    text = service.document(SOURCE).text
    right = text.index(SENTENCE)
    body = {"text": "\u201c" + SENTENCE + "\u201d", "citation": {"source": SOURCE, "start": 0, "end": 40}}
    response = httpx.post(f"{live_server}/verify", json=body, timeout=60)
    assert response.status_code == 200, response.text
    found = VerifyResponse.model_validate(response.json())
    assert found.verdict == "exact"
    check = found.pieces[0].citation_check
    assert not check.correct and (check.found_at.start, check.found_at.end) == (right, right + len(SENTENCE))
    for bad in [
        {"text": ""},
        {"text": SENTENCE, "citation": {"source": SOURCE, "start": "1", "end": 3}},
        {"text": SENTENCE, "citation": {"source": SOURCE, "start": 4}},
        {"text": 5},
    ]:
        response = httpx.post(f"{live_server}/verify", json=bad, timeout=60)
        assert response.status_code == 422, (bad, response.text)
        assert set(response.json()) >= {"error", "message"}


def test_the_python_api_checks_a_quote_and_its_citation(seeds_index):
    from qa import Index

    index = Index.open(seeds_index)
    result = index.verify(SENTENCE, source=SOURCE, page=1)
    [piece] = result.pieces
    assert result.verdict == "exact" and piece.citation_check.correct  # a document without pages is one page
    assert result.as_dict()["pieces"][0]["matches"][0]["citation"]["source"] == SOURCE
    with pytest.raises(InvalidRequest, match="given by source"):
        index.verify(SENTENCE, start=1, end=5)
