"""benchmarks/ranking_replay.py measures the shipped ranking: its replayed ``qa`` variant ranks exactly as the search
service does, and its ``anylead`` variant is the section lead as it was before leads needed 20 words; with the real
model and store."""

from __future__ import annotations

import sys
from dataclasses import replace

import pytest
from conftest import ROOT
from test_section_lead import QUESTIONS, build_see_also

from qa.config import Settings
from qa.search.service import SearchService

sys.path.insert(0, str(ROOT / "benchmarks"))
import ranking_replay  # noqa: E402


@pytest.fixture(scope="module")
def see_also_index(tmp_path_factory, encoder):
    return build_see_also(tmp_path_factory, encoder)


SEE_ALSO_QUESTION = "see also how to restore files and stash changes"


def _replayed(index, encoder, variant: str) -> SearchService:
    """A service over ``index`` answering through the replay's caches, configured as ``variant``."""
    settings = replace(Settings(), index_dir=index)
    service = SearchService.open(settings, encoder=encoder)
    ranking_replay.replaying(service)
    steps = [ranking_replay.Step.parse(part) for part in variant.split("+")]
    ranking_replay.install(service, ranking_replay.Corpus(service), steps, settings)
    return service


def _install(service: SearchService, variant: str) -> None:
    """Configure an already replaying ``service`` as ``variant`` (as the benchmark does between variants)."""
    steps = [ranking_replay.Step.parse(part) for part in variant.split("+")]
    settings = replace(Settings(), index_dir=service.settings.index_dir)
    ranking_replay.install(service, ranking_replay.Corpus(service), steps, settings)


def test_the_replayed_qa_variant_ranks_exactly_as_the_search_service_every_time(see_also_index, encoder):
    live = SearchService.open(replace(Settings(), index_dir=see_also_index), encoder=encoder)
    replayed = _replayed(see_also_index, encoder, "qa")
    questions = [*QUESTIONS, SEE_ALSO_QUESTION]
    for question in questions:
        expected = live.rank(question, 20).ranked
        assert replayed.rank(question, 20).ranked == expected
        assert replayed.rank(question, 20).ranked == expected  # the second time from the replay's caches
    # Another variant in between leaves nothing behind: not its judgment of the one-line section's lead either.
    _install(replayed, "anylead")
    assert replayed.rank(SEE_ALSO_QUESTION, 20).ranked != live.rank(SEE_ALSO_QUESTION, 20).ranked
    _install(replayed, "qa")
    for question in questions:
        assert replayed.rank(question, 20).ranked == live.rank(question, 20).ranked


def test_the_anylead_variant_gives_a_one_line_section_the_lead_that_the_service_no_longer_does(see_also_index, encoder):
    live = SearchService.open(replace(Settings(), index_dir=see_also_index), encoder=encoder)
    ranked = live.rank(SEE_ALSO_QUESTION, 20).ranked
    chunks = live.store.chunks([chunk_id for chunk_id, _ in ranked])
    short = next(chunk_id for chunk_id, chunk in chunks.items() if chunk.section == "See also")
    try:
        before = dict(_replayed(see_also_index, encoder, "anylead+nofeedback").rank(SEE_ALSO_QUESTION, 20).ranked)
    finally:
        _replayed(see_also_index, encoder, "qa")  # puts back qa's own lead rule for the tests after this one
    now = dict(_replayed(see_also_index, encoder, "nofeedback").rank(SEE_ALSO_QUESTION, 20).ranked)
    assert before[short] == pytest.approx(now[short] + Settings().section_lead, abs=1e-9)
