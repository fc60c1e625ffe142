"""Schemathesis against the app's own OpenAPI schema: generated requests, valid and invalid, never get a
5xx, and every answer (status, content type, body) is one the schema declares."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from qa.api.app import create_app
from qa.config import Settings

# The schema document is built at import time, when pytest collects one test per operation, from an app
# with no index (the routes and models, hence the schema, do not depend on it). The requests go to the
# real app below. (schemathesis.pytest.from_fixture would avoid the second app, but its lazy loader sets
# the private ``Function._nodeid``, which pytest 9.2 no longer has.)
_SCHEMA_APP = create_app(Settings(index_dir=Path(__file__).parent / "no-such-index"))
schema = schemathesis.openapi.from_dict(_SCHEMA_APP.openapi())


@pytest.fixture(scope="module")
def app(seeds_index, service):
    """The real app over the seeds index, built once for this module."""
    return create_app(Settings(index_dir=seeds_index), service=service)


@schema.parametrize()
@settings(
    max_examples=40, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_schema(case, app):
    case.call_and_validate(app=app)
