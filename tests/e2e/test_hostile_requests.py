"""Every malformed or hostile request of tests/e2e/hostile_cases.py against the running server, on SQLite and
PostgreSQL: the status, an answer naming what was wrong, and every table as it was before."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.dbstate import database_url, seeded_bot, table_digests
from tests.e2e.hostile_cases import AUTH, CASES, Case
from tests.e2e.rawhttp import RawResponse, request
from tests.e2e.slackbot import SlackBot


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SlackBot, str]]:
    url = database_url(request, tmp_path_factory)
    with seeded_bot(url) as bot:
        yield bot, url


def send(bot: SlackBot, case: Case) -> RawResponse:
    headers = case.headers() if callable(case.headers) else dict(case.headers)
    if case.auth:
        headers = {**AUTH, **headers}
    body = case.body() if callable(case.body) else case.body
    return request(bot.url, case.method, case.path, headers, body)


def test_there_are_at_least_134_cases() -> None:
    assert len(CASES) >= 134
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_request(server: tuple[SlackBot, str], case: Case) -> None:
    bot, url = server
    if case.replay_first:
        first_headers = case.headers() if callable(case.headers) else case.headers
        first = request(bot.url, case.method, case.path, first_headers, case.body if isinstance(case.body, bytes)
                        else None)
        assert first.status == 200, first.body
        replayed = RawResponse(0, {}, b"", 0)
        before = table_digests(url)
        replayed = request(bot.url, case.method, case.path, first_headers, case.body if isinstance(case.body, bytes)
                           else None)
        response = replayed
    else:
        before = table_digests(url)
        response = send(bot, case)
    assert response.status == case.status, response.body[:500]
    if case.key:
        assert response.headers.get("content-type", "").startswith("application/json"), response.headers
        answer = response.json()
        assert isinstance(answer.get(case.key), str) and answer[case.key], answer
        if case.field is not None:
            assert answer.get("field") == case.field, answer
        assert case.words in answer[case.key], answer
        assert "Traceback" not in answer[case.key]
    else:  # a button press: Slack only needs the acknowledgement; the answer goes to the user
        assert response.body in (b"", b"{}"), response.body
    after = table_digests(url)
    changed = {name for name in set(before) | set(after) if before.get(name) != after.get(name)}
    assert changed <= case.changes, f"tables changed: {sorted(changed - case.changes)}"
