"""Schemathesis against the app's own OpenAPI schema: generated requests, valid and invalid, never get a
5xx, and every answer (status, content type, headers, body) is one the schema declares."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from conftest import SEEDS
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from qa.api.app import create_app
from qa.config import Settings
from qa.search.filters import _lower, _upper

# The schema is read at import time, when pytest collects one test per operation, from an app with no index
# (routes and models, hence the schema, do not depend on it); the requests go to the real app below.
# (schemathesis.pytest.from_fixture would need no second app, but its lazy loader sets the private
# ``Function._nodeid``, which pytest 9.2 no longer has.)
_SCHEMA_APP = create_app(Settings(index_dir=Path(__file__).parent / "no-such-index"))
_SCHEMA = _SCHEMA_APP.openapi()
schema = schemathesis.openapi.from_dict(_SCHEMA)


# The ids in the seeds index: the `seeds_index` fixture indexes every file in seeds/.
_DOC_IDS = sorted(path.name for path in SEEDS.iterdir() if path.is_file() and not path.name.startswith("."))


@schema.hook
def before_generate_case(context, strategy):
    """Half the valid GET /documents/{doc_id} cases ask for a real document, so 200 answers are checked too."""
    if context.operation is None or context.operation.label != "GET /documents/{doc_id}":
        return strategy

    def known_id(drawn):
        case, use_known, doc_id = drawn
        if use_known and case.meta is not None and case.meta.generation.mode.is_positive:
            case.path_parameters = {**(case.path_parameters or {}), "doc_id": doc_id}
        return case

    return st.tuples(strategy, st.booleans(), st.sampled_from(_DOC_IDS)).map(known_id)


@schema.hook
def map_case(context, case):
    """Rules of a valid request that JSON Schema cannot state (or schemathesis does not apply), applied to
    schema-valid cases only.

    - JSON Schema counts 5.0 as an integer, but ``top_k`` must be a JSON integer (a strict field: 5.0, "5"
      and true are refused rather than quietly coerced), so 5.0 becomes 5.
    - ``after`` must not be later than ``before`` (a 422), so such a pair is swapped.
    - A cited span's ``start`` and ``end`` (POST /verify) come together and in order.
    Invalid (negative) cases are sent as generated.
    """
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return case
    for values in (case.body, case.query):
        if not isinstance(values, dict):
            continue
        top_k = values.get("top_k")
        if isinstance(top_k, float) and top_k.is_integer():
            values["top_k"] = int(top_k)
        _citation_rules(values.get("citation"))
        after, before = values.get("after"), values.get("before")
        if isinstance(after, str) and isinstance(before, str) and after and before and _lower(after) > _upper(before):
            values["after"], values["before"] = before, after
    return case


def _citation_rules(citation: object) -> None:
    """A citation's numbers are JSON integers, and a cited span's ``start`` and ``end`` come together and in order
    (POST /verify): a lone one is dropped, a reversed pair swapped."""
    if not isinstance(citation, dict):
        return
    for name in ("start", "end", "page"):  # strict whole numbers, as top_k
        if isinstance(citation.get(name), float) and citation[name].is_integer():
            citation[name] = int(citation[name])
    start, end = citation.get("start"), citation.get("end")
    if (start is None) != (end is None):
        citation.pop("start", None)
        citation.pop("end", None)
    elif isinstance(start, int) and isinstance(end, int) and start > end:
        citation["start"], citation["end"] = end, start


@pytest.fixture(scope="module")
def app(seeds_index, service):
    """The real app over the seeds index, built once for this module."""
    return create_app(Settings(index_dir=seeds_index), service=service)


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],  # each case runs the real model
)
def test_api_conforms_to_its_schema(case, app):
    case.call_and_validate(app=app)  # every check schemathesis has, on every operation
