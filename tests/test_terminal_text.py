"""Text files saved from a terminal (man pages rendered by nroff, coloured tool output): read as the terminal shows
them, with every line where it was, so citations and line numbers still point at what a reader sees."""

from __future__ import annotations

import gzip

from qa.ingest.corpus import scan_corpus
from qa.ingest.formats.text import read_plain

# grotty's output as Debian ships it in man-db-manual.txt.gz: SGR escapes for bold and underline.
ANSI_MANUAL = (
    b"\x1b[1mman-db - the database cached manual pager suite\x1b[0m\n"
    b"   \x1b[4mColin\x1b[24m \x1b[4mWatson\x1b[24m\n"
    b"\x1b[1mUNIX \x1b[22mis a registered trademark.\n"
)
# nroff's overstrikes, as `man ls | col -b` would have removed: bold by striking twice, underline by an underscore.
OVERSTRUCK = b"N\x08NA\x08AM\x08ME\x08E\n    l\x08ls\x08s - list _\x08d_\x08i_\x08r contents\n"


def test_ansi_escape_sequences_are_not_text():
    assert read_plain(ANSI_MANUAL).text == (
        "man-db - the database cached manual pager suite\n   Colin Watson\nUNIX is a registered trademark.\n"
    )


def test_overstruck_characters_read_as_the_terminal_shows_them():
    assert read_plain(OVERSTRUCK).text == "NAME\n    ls - list dir contents\n"


def test_a_character_struck_by_another_shows_the_later_one_and_a_backspace_at_a_line_start_stays():
    assert read_plain(b"a\x08b x\x08_ \x08y\n\x08z\n").text == "b xy\n\x08z\n"


def test_text_without_terminal_formatting_is_served_exactly_as_written():
    raw = "Plain words, a tab\tand [brackets] stay.\r\n".encode()
    assert read_plain(raw).text == raw.decode()


def test_a_gzipped_manual_in_a_corpus_is_indexed_without_its_escapes(tmp_path):
    (tmp_path / "man-db-manual.txt.gz").write_bytes(gzip.compress(ANSI_MANUAL))
    [document] = scan_corpus(tmp_path).documents
    assert "\x1b" not in document.text and document.text.splitlines()[1] == "   Colin Watson"
