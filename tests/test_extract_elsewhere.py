"""A scan that hands its files' bytes to be extracted elsewhere (as `qa index --ray` does) finds what a scan that
extracts each file as it reads it finds: the same documents, aliases, skipped files in the same order, fingerprint."""

from __future__ import annotations

from test_formats import BROKEN, HTML, make_docx, minimal_pdf

from qa.ingest.corpus import extract_file, scan_corpus


def _mixed_corpus(root):
    """Every format, identical copies (of a document and of refused files), an empty file and refused files."""
    (root / "broken").mkdir(parents=True)
    (root / "b-page.html").write_text(HTML, encoding="utf-8")
    (root / "a-page-copy.html").write_text(HTML, encoding="utf-8")
    (root / "page-as-text.txt").write_text(HTML, encoding="utf-8")  # the same bytes read by another format
    (root / "report.pdf").write_bytes(minimal_pdf([["The river authority met in March."]], title="River report"))
    (root / "survey.docx").write_bytes(make_docx())
    (root / "notes.md").write_text("# Beekeeping\n\nThe hives were moved to the heather.\n", encoding="utf-8")
    (root / "empty.txt").write_text("  \n", encoding="utf-8")
    for name, (make, _) in BROKEN.items():
        broken = make()
        (root / "broken" / name).write_bytes(broken)
        (root / f"z-copy-{name}").write_bytes(broken)
    return root


def test_a_scan_extracting_elsewhere_equals_a_scan_extracting_as_it_reads(tmp_path):
    corpus = _mixed_corpus(tmp_path / "corpus")
    handed_over = []

    def extract_files(files):
        handed_over.extend(file.doc_id for file in files)
        return [extract_file(file) for file in files]

    here = scan_corpus(corpus)
    elsewhere = scan_corpus(corpus, extract_files=extract_files)
    assert elsewhere.documents == here.documents
    assert elsewhere.skipped == here.skipped
    assert (elsewhere.fingerprint, elsewhere.stamp, elsewhere.stats) == (here.fingerprint, here.stamp, here.stats)
    # One file per set of identical bytes and format is handed over; a file empty on disk is refused before.
    assert sorted(handed_over) == sorted(
        ["a-page-copy.html", "page-as-text.txt", "report.pdf", "survey.docx", "notes.md"]
        + [f"broken/{name}" for name in BROKEN]
    )
    assert [d.aliases for d in here.documents if d.doc_id == "a-page-copy.html"] == [("b-page.html",)]
    refused = {s.doc_id for s in here.skipped}
    assert {f"z-copy-{name}" for name in BROKEN} | {"empty.txt"} <= refused
