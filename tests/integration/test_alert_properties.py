"""Generated payloads against every intake endpoint: whatever arrives, the answer is never a 5xx.

Random JSON finds crashes in the decoding; near-valid shapes (a real body with one field replaced by
something random) get past the first checks and reach the parsers, the store and the policy.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from bot.bootstrap import Container
from bot.core.clock import ManualClock
from bot.web.app import create_app
from tests.fakes.ports import FakeTarget, RecordingNotifier
from tests.integration.alert_helpers import AUTH, deploy, load, make_container

SOURCES = ("alertmanager", "grafana", "datadog", "generic")
SEEDS: dict[str, Any] = {
    "alertmanager": load("alertmanager-firing.json"),
    "grafana": load("grafana-firing.json"),
    "datadog": load("datadog-triggered.json"),
    "generic": {"events": [{"id": "e1", "state": "open", "title": "errors", "priority": "critical",
                            "opened": "2026-11-02T11:00:00Z", "tags": {"model": "fraud"}}]},
}

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=40),
                    st.sampled_from(["firing", "resolved", "fraud", "critical", "page", "0001-01-01T00:00:00Z",
                                     "2026-11-02T11:00:00Z", "", "\x00", "\ud800"]))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=12)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document (the places a mutation can hit)."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += paths(item, (*prefix, i))
    return found


@st.composite
def near_valid(draw: st.DrawFn, source: str) -> Any:
    body = copy.deepcopy(SEEDS[source])
    for _ in range(draw(st.integers(1, 3))):
        if not (places := paths(body)):
            break
        where = draw(st.sampled_from(places))
        parent: Any = body
        for step in where[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            parent.pop(where[-1], None)
        else:
            parent[where[-1]] = draw(json_values)
    return body


@pytest.fixture
def client(db_url: str, clock: ManualClock) -> Iterator[TestClient]:
    c: Container = make_container(db_url, clock, FakeTarget(), RecordingNotifier())
    deploy(c, "fraud")
    deploy(c, "fraud-detector")
    with TestClient(create_app(c)) as tc:
        yield tc
    c.close()


def check(client: TestClient, source: str, content: bytes, content_type: str = "application/json") -> None:
    r = client.post(f"/alerts/{source}", content=content, headers={**AUTH, "content-type": content_type})
    assert r.status_code < 500, (source, content[:500], r.text)
    assert r.status_code in (202, 400, 413), r.text
    assert "error" in r.json() or r.json()["status"] == "accepted"


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])


@FAST
@given(source=st.sampled_from(SOURCES), value=json_values)
def test_random_json_never_gets_a_5xx(client: TestClient, source: str, value: Any) -> None:
    check(client, source, json.dumps(value).encode("utf-8", "surrogatepass"))


@FAST
@given(source=st.sampled_from(SOURCES), raw=st.binary(max_size=200))
def test_random_bytes_never_get_a_5xx(client: TestClient, source: str, raw: bytes) -> None:
    check(client, source, raw)


@FAST
@given(data=st.data(), source=st.sampled_from(SOURCES))
def test_near_valid_payloads_never_get_a_5xx(client: TestClient, data: st.DataObject, source: str) -> None:
    body = data.draw(near_valid(source))
    check(client, source, json.dumps(body).encode("utf-8", "surrogatepass"))


FORM_VALUES = st.one_of(st.text(max_size=60), st.sampled_from(
    ["Triggered", "Recovered", "Null", "model:fraud", "[Triggered on {model:fraud}] x", "{", "[1,2]", '{"a":1}']))


@FAST
@given(fields=st.dictionaries(st.sampled_from(["transition", "tags", "title", "date", "alert_type", "payload",
                                               "alert_title", "body", "x"]), FORM_VALUES, max_size=6),
       raw=st.binary(max_size=120))
def test_datadog_form_bodies_never_get_a_5xx(client: TestClient, fields: dict[str, str], raw: bytes) -> None:
    """Datadog's "Encode as form": any form, or any bytes declared as one, is answered 202 or 400."""
    form = "application/x-www-form-urlencoded"
    check(client, "datadog", urlencode(fields).encode(), form)
    check(client, "datadog", raw, form)
