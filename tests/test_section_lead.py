"""The section lead: in hybrid search, the passage that opens a headed section gets ``section_lead`` added to its
fused score, with the real model, store and segments; documents without headings are ranked as before."""

from __future__ import annotations

from dataclasses import replace

import pytest

from qa.config import Settings
from qa.errors import ConfigError
from qa.index.indexer import build_index
from qa.search.service import SearchService, states_something

BUILD = dict(chunk_size=48, chunk_overlap=8, embed_title=True)

# A manual in Markdown: each section opens with what it is for, then goes on with details and examples, so a
# question finds both the opening passage and the ones after it.
MANUAL = """# Stashing changes

Stashing records the current state of the working directory and the index, and goes back to a clean working
directory, so that you can switch to another task and come back to your uncommitted work later.

The stash keeps a list of entries. Each entry records the working tree and the index as commits. The newest
entry is on top. Entries can be listed, shown, applied, popped and dropped by their position in the list.

Options change what is saved: untracked files can be included, the index can be left alone, and paths can be
given to stash only part of the changes. A message can describe the entry for the list.

# Restoring files

Restoring puts files in the working tree back to their content in the index or in another commit, throwing
away local edits that were not committed.

Paths can be restored from any commit. The source defaults to the index for the working tree. Both the working
tree and the index can be restored at once, and only some hunks can be picked interactively.
"""

PROSE = """Notes on version control

A stash holds uncommitted changes so that work can be set aside and taken up again later. Restoring files throws
away edits. Branches keep lines of work apart, and merging brings them back together.
"""

QUESTIONS = [
    "how can I put my uncommitted work aside to switch to another task",
    "throw away my edits to a file",
    "list the entries of the stash",
    "restore only some hunks of a file",
]


# The manual with a closing one-line section, as man pages end: it opens its section but states no point.
SEE_ALSO = MANUAL + "\n# See also\n\ngit-restore(1), git-stash(1)\n"


@pytest.fixture(scope="module")
def manual_index(tmp_path_factory, encoder):
    corpus = tmp_path_factory.mktemp("manual")
    (corpus / "stash.md").write_text(MANUAL, encoding="utf-8")
    (corpus / "notes.txt").write_text(PROSE, encoding="utf-8")
    index = tmp_path_factory.mktemp("manual-index") / "index"
    build_index(corpus, index, encoder, **BUILD)
    return index


@pytest.fixture(scope="module")
def see_also_index(tmp_path_factory, encoder):
    return build_see_also(tmp_path_factory, encoder)


def build_see_also(tmp_path_factory, encoder):
    """An index of the one-file manual whose sections include a one-line "SEE ALSO"."""
    corpus = tmp_path_factory.mktemp("see-also")
    (corpus / "stash.md").write_text(SEE_ALSO, encoding="utf-8")
    index = tmp_path_factory.mktemp("see-also-index") / "index"
    build_index(corpus, index, encoder, **BUILD)
    return index


def _service(index, encoder, lead: float) -> SearchService:
    # Keyword feedback off: it reads the best passage, which the lead may change, so it would move other scores.
    settings = replace(Settings(), index_dir=index, section_lead=lead, keyword_feedback=0.0)
    return SearchService.open(settings, encoder=encoder)


def test_section_leads_are_the_first_passage_under_each_heading_and_never_a_passage_without_one(manual_index, encoder):
    service = _service(manual_index, encoder, 0.0)
    chunks = [chunk for chunk, _tokens in service.store.iter_chunks()]
    leads = service.store.section_leads([chunk.id for chunk in chunks])
    manual = [chunk for chunk in chunks if chunk.doc_id == "stash.md"]
    assert len(manual) > 2, "the manual must make several passages per section for this test to mean anything"
    expected = {
        chunk.id for before, chunk in zip([None, *manual], manual) if before is None or before.section != chunk.section
    }
    assert leads == expected
    assert {chunk.section for chunk in manual if chunk.id in leads} == {"Stashing changes", "Restoring files"}
    assert not leads & {chunk.id for chunk in chunks if chunk.doc_id == "notes.txt"}


@pytest.mark.parametrize("question", QUESTIONS)
def test_a_section_lead_gains_exactly_the_bonus_and_every_other_passage_keeps_its_score(
    manual_index, encoder, question
):
    plain = _service(manual_index, encoder, 0.0).rank(question, 20, mode="hybrid")
    boosted_service = _service(manual_index, encoder, 0.2)
    boosted = boosted_service.rank(question, 20, mode="hybrid")
    leads = boosted_service.store.section_leads([chunk_id for chunk_id, _ in plain.ranked])
    assert leads, "some lead must be among the candidates"
    before = dict(plain.ranked)
    assert set(before) == {chunk_id for chunk_id, _ in boosted.ranked}
    for chunk_id, score in boosted.ranked:
        assert score == pytest.approx(before[chunk_id] + (0.2 if chunk_id in leads else 0.0), abs=1e-9)
    assert [score for _, score in boosted.ranked] == sorted((score for _, score in boosted.ranked), reverse=True)


def test_a_lead_just_below_a_later_passage_of_its_section_moves_above_it(manual_index, encoder):
    service = _service(manual_index, encoder, 0.0)
    question = "how can I put my uncommitted work aside to switch to another task"
    ranked = service.rank(question, 20, mode="hybrid").ranked
    leads = service.store.section_leads([chunk_id for chunk_id, _ in ranked])
    scores = dict(ranked)
    assert ranked[0][0] not in leads, "the best passage must not be a lead for this test to mean anything"
    lead = next(chunk_id for chunk_id, _ in ranked if chunk_id in leads)
    # A bonus just larger than the gap to the best passage puts the lead first, whatever the model's scores are.
    gap = ranked[0][1] - scores[lead]
    bonus = min(1.0, gap + 0.01)
    first = _service(manual_index, encoder, bonus).rank(question, 5, mode="hybrid").ranked[0][0]
    assert first == lead


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SEE ALSO git-am(1), git-send-email(1)", False),
        ("4. Advanced Foreign Key Constraint Features", False),
        (" ".join(["word"] * 19), False),
        (" ".join(["word"] * 20), True),
        (
            "Stashing records the current state of the working directory and the index, "
            "and goes back to a clean working directory.",
            True,
        ),
        # Chinese is counted in the bigrams the keyword index holds: a run of 23 characters makes 22, one of 7 makes 6.
        ("检察工作现代化的根本是检察人员的现代化水平提升", True),
        ("检察工作现代化", False),
    ],
)
def test_a_passage_states_something_from_twenty_words_counting_cjk_in_bigrams(text, expected):
    assert states_something(text) is expected


def test_a_lead_of_fewer_than_twenty_words_gains_nothing_while_longer_leads_gain_the_bonus(see_also_index, encoder):
    question = "see also how to restore files and stash changes"
    plain = _service(see_also_index, encoder, 0.0).rank(question, 20, mode="hybrid")
    boosted_service = _service(see_also_index, encoder, 0.2)
    boosted = boosted_service.rank(question, 20, mode="hybrid")
    ids = [chunk_id for chunk_id, _ in plain.ranked]
    chunks = boosted_service.store.chunks(ids)
    leads = boosted_service.store.section_leads(ids)
    short = {chunk_id for chunk_id in leads if chunks[chunk_id].section == "See also"}
    assert short and leads - short, "the one-line section's passage and longer leads must all be candidates"
    assert all(not states_something(chunks[chunk_id].text) for chunk_id in short)
    before = dict(plain.ranked)
    assert set(before) == {chunk_id for chunk_id, _ in boosted.ranked}
    for chunk_id, score in boosted.ranked:
        gained = 0.2 if chunk_id in leads - short else 0.0
        assert score == pytest.approx(before[chunk_id] + gained, abs=1e-9)


def test_without_headings_the_ranking_is_unchanged(service, encoder):
    plain = SearchService.open(replace(service.settings, section_lead=0.0), encoder=encoder)
    boosted = SearchService.open(replace(service.settings, section_lead=0.2), encoder=encoder)
    question = "What did the court decide about the procuratorate?"
    assert boosted.rank(question, 10).ranked == plain.rank(question, 10).ranked


def test_the_section_lead_is_a_setting_with_bounds(monkeypatch):
    monkeypatch.setenv("QA_SECTION_LEAD", "0.3")
    assert Settings.from_env().section_lead == 0.3
    monkeypatch.setenv("QA_SECTION_LEAD", "2")
    with pytest.raises(ConfigError, match="section lead"):
        Settings.from_env()
