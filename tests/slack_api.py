"""The local Slack Web API stand-in for tests (the server lives in devkit: the demo uses it too)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devkit.fake_api import Call, FakeSlackApi, parse_body

__all__ = ["Call", "FakeSlackApi", "fake_slack", "parse_body"]


@pytest.fixture
def fake_slack() -> Iterator[FakeSlackApi]:
    """A started FakeSlackApi with one user group, stopped after the test."""
    with FakeSlackApi(usergroups={"S0ONCALL": ["U0LEAD", "U0BOB"]}) as api:
        yield api
