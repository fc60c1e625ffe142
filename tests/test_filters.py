"""Filters restrict by document id glob and date range before ranking, in every mode."""

from __future__ import annotations

import pytest

from qa.errors import InvalidRequest
from qa.search.filters import SearchFilter

MODES = ["hybrid", "dense", "keyword"]


@pytest.mark.parametrize("mode", MODES)
def test_source_glob_keeps_only_matching_documents_and_still_fills_top_k(service, mode):
    search_filter = SearchFilter.of(source="004_*")
    results = service.search(
        "procuratorial work and the rule of law", 10, mode=mode, search_filter=search_filter
    ).results
    assert len(results) == 10
    assert {r.citation.source for r in results} == {"004_e4f473833b61ecc8.txt"}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "after, before, allowed",
    [
        ("2024-01-01", None, {"000_d01fc28f19d529a8.txt", "002_7611d074bac0c8e6.txt", "004_e4f473833b61ecc8.txt"}),
        (None, "2022-12-31", {"001_39bd27a81007a87b.txt", "003_bdd7a3cd5751323a.txt"}),
        ("2024-06", "2024-06", {"004_e4f473833b61ecc8.txt"}),
        ("2019", "2019", {"003_bdd7a3cd5751323a.txt"}),
        ("2024-03-29", "2024-03-29", {"000_d01fc28f19d529a8.txt"}),
    ],
)
def test_date_range_is_inclusive_and_applied_before_ranking(service, mode, after, before, allowed):
    search_filter = SearchFilter.of(after=after, before=before)
    results = service.search(
        "procuratorial work and the rule of law", 8, mode=mode, search_filter=search_filter
    ).results
    assert results and {r.citation.source for r in results} <= allowed
    assert len(results) == 8


def test_filter_matching_nothing_returns_no_results(service):
    answer = service.search("anything", 5, search_filter=SearchFilter.of(source="nope/*"))
    assert answer.results == [] and answer.answerable is False


def test_no_filter_values_means_no_filter():
    assert SearchFilter.of() is None
    assert SearchFilter.of(source="  ") is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"after": "29/03/2024"}, "after must be an ISO date"),
        ({"before": "yesterday"}, "before must be an ISO date"),
        ({"after": "2024-13-01"}, "after must be an ISO date"),
        ({"after": "2024-05-01", "before": "2024-04-01"}, "later than before"),
    ],
)
def test_bad_filter_values_are_rejected(kwargs, message):
    with pytest.raises(InvalidRequest, match=message):
        SearchFilter.of(**kwargs)
