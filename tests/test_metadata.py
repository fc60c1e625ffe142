"""Tests for qa.ingest.metadata: seed corpus expectations, date parsing and title heuristics."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from qa.ingest.metadata import Metadata, extract_metadata, parse_date

SEEDS = Path(__file__).resolve().parents[1] / "seeds"


def _seed(prefix: str) -> str:
    (path,) = SEEDS.glob(f"{prefix}_*.txt")
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("prefix", "title", "date", "author", "source"),
    [
        (
            "000",
            "The theoretical learning center group of the Supreme Procuratorate Group focuses on performing "
            "procuratorial functions Serve Chinese Modernization Hold Collective Learning Seminar "
            "Be brave to emphasize",
            "2024-03-29",
            "Gong Chenyu",
            "Gaojian Network",
        ),
        (
            "001",
            'Supreme Inspection: Actively perform the duties of "Four Major Prosecutors" in accordance with the law '
            "and provide all-round services to ensure high-quality economic and social development",
            "2022-06-01",
            None,
            None,
        ),
        (
            "002",
            'Continuously implementing the practice of "handling every case with high quality and efficiency" and '
            "striving to promote the rule of law ideology of Xijinping in procuratorial practice",
            "2024-07-04",
            None,
            None,
        ),
        (
            "003",
            "Yin Jun: Keeping in mind the mission, loyalty and duty, contribute to the procuratorial force for "
            "advancing the modernization of national governance system and capacity",
            "2019-12-06",
            None,
            None,
        ),
        (
            "004",
            "The Supreme People's Court and Supreme People's Procuratorate held the second work exchange meeting, "
            "and the Chamber of Commerce jointly discussed to support and serve Chinese path to modernization with "
            "the modernization of judicial work",
            "2024-06-28",
            None,  # "Edit:" and "Responsible editor:" name editors, not authors.
            "http://www.legaldaily.com.cn",  # "Source:" line after the lead paragraph, within the head window.
        ),
    ],
)
def test_seed_documents_yield_expected_metadata(prefix, title, date, author, source):
    assert extract_metadata(_seed(prefix)) == Metadata(title=title, date=date, author=author, source=source)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("March 29, 2024", "2024-03-29"),
        ("Mar 29, 2024", "2024-03-29"),
        ("Mar. 29, 2024", "2024-03-29"),
        ("December 06, 2019", "2019-12-06"),
        ("June 1, 2022", "2022-06-01"),
        ("29 March 2024", "2024-03-29"),
        ("1st July 2024", "2024-07-01"),
        ("2024-07-04", "2024-07-04"),
        ("2024/7/4", "2024-07-04"),
        ("2024.07.04", "2024-07-04"),
        ("2024-07-04 10:30:00", "2024-07-04"),
        ("2024-07-04T10:30:00", "2024-07-04"),
        ("2024-07-04T10:30:00Z", "2024-07-04"),
        ("2024-07-04T10:30:00.123+08:00", "2024-07-04"),
        ("2024年7月4日", "2024-07-04"),
        ("2024年07月04日 10:30", "2024-07-04"),
        ("  2024-07-04\u00a0", "2024-07-04"),
        ("2024-07", "2024-07"),
        ("March 2024", "2024-03"),
        ("2024", "2024"),
        ("2024-02-29", "2024-02-29"),
        ("2024-02-30", None),
        ("2023-02-29", None),
        ("2024-13-01", None),
        ("2024-00-10", None),
        ("February 30, 2024", None),
        ("Smarch 29, 2024", None),
        ("2024-07/04", None),
        ("0000-01-01", None),
        ("", None),
        ("not a date", None),
        ("Time: March 29, 2024", None),
        ("12345", None),
    ],
)
def test_parse_date_normalises_to_iso_or_rejects(value, expected):
    assert parse_date(value) == expected


def test_several_labels_on_one_line_are_split_at_each_label():
    meta = extract_metadata("Headline\nTime: March 29, 2024 Author: Gong Chenyu Source: Gaojian Network\nBody.")
    assert (meta.date, meta.author, meta.source) == ("2024-03-29", "Gong Chenyu", "Gaojian Network")


def test_labels_are_case_insensitive_and_values_lose_nbsp_and_pipes():
    meta = extract_metadata("Headline\nPUBLISHED: 2024/7/4 | BY: Jane Doe\u00a0| news SOURCE: Xinhua |\u00a0")
    assert (meta.date, meta.author, meta.source) == ("2024-07-04", "Jane Doe", "Xinhua")


def test_empty_label_values_and_page_furniture_give_none():
    meta = extract_metadata("Headline\nTime: June 1, 2022 Author: News source: [Font size: large | in | Small")
    assert meta == Metadata(title="Headline", date="2022-06-01")


def test_editor_is_not_taken_as_author():
    assert extract_metadata("Headline\nEditor: Li Si\nAuthor: Zhang San").author == "Zhang San"


def test_labelled_date_wins_over_date_only_line():
    assert extract_metadata("Headline\n2020-01-01\nRelease time: December 06, 2019").date == "2019-12-06"


def test_date_only_line_is_document_date():
    assert extract_metadata("Headline\n\u00a02024-07-04\u00a0\nBody text.").date == "2024-07-04"


def test_labelled_date_with_extra_words_still_parses():
    assert extract_metadata("Headline\nPosted: on 29 March 2024, 10:30").date == "2024-03-29"


def test_invalid_labelled_date_gives_none():
    assert extract_metadata("Headline\nDate: 2024-02-30").date is None


def test_headline_containing_colon_is_title_not_label():
    meta = extract_metadata("Yin Jun: Keeping in mind the mission\n\nRelease time: December 06, 2019\n")
    assert meta == Metadata(title="Yin Jun: Keeping in mind the mission", date="2019-12-06")


def test_headline_after_breadcrumb_is_title():
    text = "Current location: home page >> Party building\nParty building\nThe real headline\nBody."
    assert extract_metadata(text).title == "The real headline"


@pytest.mark.parametrize(
    "crumb",
    ["Home > News > World", "News » World", "You are here: Home / News", "Current location: Home"],
)
def test_breadcrumb_variants_are_skipped(crumb):
    assert extract_metadata(f"{crumb}\nActual headline\nBody.").title == "Actual headline"


def test_section_label_repeating_breadcrumb_is_skipped_case_insensitively():
    assert extract_metadata("Home >> News >> World\nWORLD\nActual headline").title == "Actual headline"


@pytest.mark.parametrize("tag", ["[Discipline and Style Construction] ", "【Focus】"])
def test_leading_bracketed_column_tag_is_stripped_from_title(tag):
    assert extract_metadata(f"{tag}Supreme Inspection: Act\nBody.").title == "Supreme Inspection: Act"


def test_metadata_line_before_headline_is_not_title():
    assert extract_metadata("Date: 2024-07-04\nHeadline\nSub-heading\n").title == "Headline"


def test_only_first_headline_line_is_title_not_sub_headings():
    assert extract_metadata("Headline\nShort sub-heading\nAnother\n").title == "Headline"


def test_long_first_paragraph_means_no_title():
    meta = extract_metadata("word " * 100 + "\nShort line later\n2024-07-04")
    assert meta == Metadata(date="2024-07-04")


def test_labels_beyond_the_head_window_are_ignored():
    text = "Headline\n" + "Body line.\n" * 20 + "Author: Too Late"
    assert extract_metadata(text).author is None


def test_markdown_front_matter_wins():
    text = '---\ntitle: "Front Title"\ndate: 2024-07-04T10:00:00Z\nauthor: Jane Doe\nsource: Xinhua\n---\n# Heading\n'
    assert extract_metadata(text, suffix=".md") == Metadata("Front Title", "2024-07-04", "Jane Doe", "Xinhua")


def test_markdown_front_matter_gaps_are_filled_from_body():
    text = "---\nauthor: Jane Doe\nlayout: post\n---\n\nIntro line\n# The Heading\nDate: March 29, 2024\n"
    assert extract_metadata(text, suffix=".md") == Metadata("The Heading", "2024-03-29", "Jane Doe")


def test_markdown_first_h1_heading_is_title():
    assert extract_metadata("Some intro\n\n# Main Title #\n\ntext", suffix=".md").title == "Main Title"


def test_markdown_overlong_heading_is_not_title():
    assert extract_metadata("# " + "word " * 100, suffix=".md").title is None


def test_markdown_without_h1_strips_hashes_from_first_line():
    assert extract_metadata("## Section Title\ntext", suffix=".md").title == "Section Title"


@pytest.mark.parametrize("rule", ["---", "****", "=====", "[]"])
def test_decorative_lines_are_not_titles(rule):
    assert extract_metadata(f"{rule}\nActual headline\n").title == "Actual headline"


def test_front_matter_and_heading_are_plain_text_outside_markdown():
    assert extract_metadata("# Title\nbody", suffix=".txt").title == "# Title"


def test_unclosed_front_matter_is_not_parsed():
    assert extract_metadata("---\ntitle: Nope\nbody", suffix=".md").title == "title: Nope"


@pytest.mark.parametrize("text", ["", "   \n\u00a0\n\t", "\ufeff"])
def test_empty_text_gives_empty_metadata(text):
    assert extract_metadata(text) == Metadata()


def test_random_junk_does_not_raise():
    rng = random.Random(1234)
    alphabet = "abc XYZ:|>»[]【】#-—/.\n\u00a0\ufeff年月日0123456789Time:Source:By:---"
    for _ in range(500):
        junk = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))
        for suffix in (".txt", ".md"):
            assert isinstance(extract_metadata(junk, suffix=suffix), Metadata)


def test_non_string_input_does_not_raise():
    assert extract_metadata(None) == Metadata()  # type: ignore[arg-type]
    assert extract_metadata(b"bytes") == Metadata()  # type: ignore[arg-type]
