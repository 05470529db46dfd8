"""schemathesis against the running server, every operation of /openapi.json, on SQLite and PostgreSQL:
no 5xx, every answer matches the document (status, content type, schema), schema-invalid input refused.

The document itself must be valid OpenAPI 3.1 and describe every route of the app but /slack/events. The
incident pages are fuzzed like the JSON API: their answers, refusals included, are HTML pages, as documented.
Examples per operation are bounded (``EXAMPLES``) so each database takes about a minute.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import positive_data_acceptance

from bot.web.openapi import openapi_document, undocumented
from tests.e2e.dbstate import database_url, seeded_bot
from tests.e2e.hostile_cases import AUTH
from tests.e2e.slackbot import SlackBot

EXAMPLES = 200


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SlackBot, str]]:
    url = database_url(request, tmp_path_factory)
    with seeded_bot(url) as bot:
        yield bot, url


# The document the app serves (the first test checks the running server serves exactly this one); loaded at
# import so pytest can list one test per operation.
# Schema-invalid data must be refused; a body over the endpoint's size cap is refused too (413).
CONFIG = schemathesis.Config.from_dict({"checks": {"negative_data_rejection": {
    "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]}}})
schema = schemathesis.openapi.from_dict(openapi_document(), config=CONFIG)


def test_document_is_valid_openapi_and_complete(server: tuple[SlackBot, str]) -> None:
    bot, _ = server
    document = httpx.get(f"{bot.url}/openapi.json").json()
    validate(document)
    assert document == json.loads(json.dumps(openapi_document()))
    assert document["openapi"].startswith("3.")
    assert undocumented(bot.running.app.routes, document) == []
    assert "/slack/events" not in document["paths"]
    assert {f"/alerts/{s}" for s in ("alertmanager", "grafana", "datadog", "generic")} <= set(document["paths"])


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_every_operation(case: Any, server: tuple[SlackBot, str]) -> None:
    bot, _ = server
    # Schema-valid data may still be refused for what no schema can say (an unknown model is a 404, an alert
    # body the sender defines is a 400): the acceptance check would call those failures.
    # A case generated without its Authorization header on purpose is sent without one (adding it would undo the
    # mutation and make an accepted request look like a failure); every other case carries the token.
    unauthenticated = (case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)
                       and "Authorization" not in (case.headers or {}))
    case.call_and_validate(base_url=bot.url, headers=None if unauthenticated else AUTH,
                           excluded_checks=[positive_data_acceptance])
