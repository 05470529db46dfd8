"""Slack signatures remembered in the database: a replay is refused on every replica, exactly once wins under
concurrency, a failed request (5xx) can be retried, and old signatures are purged."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from bot.store.db import make_engine
from bot.store.replay import KEEP_SECONDS, ReplayLog
from bot.web.slack_guard import slack_checked
from devkit.signing import post, sign, slash_command_body
from tests.conftest import make_policy
from tests.e2e.slackbot import SECRET, slack_bot


def test_a_signature_counts_once_across_replicas(db_url: str) -> None:
    replica_a, replica_b = ReplayLog(make_engine(db_url)), ReplayLog(make_engine(db_url))
    now = int(time.time())
    assert replica_a.first_time("v0=aaa", now, now)
    assert not replica_b.first_time("v0=aaa", now, now)
    assert not replica_a.first_time("v0=aaa", now, now)
    assert replica_b.first_time("v0=bbb", now, now)


def test_concurrent_deliveries_of_one_signature_let_exactly_one_through(db_url: str) -> None:
    logs = [ReplayLog(make_engine(db_url)) for _ in range(4)]
    now = int(time.time())
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: logs[i % 4].first_time("v0=race", now, now), range(32)))
    assert results.count(True) == 1


def test_old_signatures_are_purged_and_forget_lets_a_retry_in(db_url: str) -> None:
    engine = make_engine(db_url)
    log = ReplayLog(engine)
    now = int(time.time())
    assert log.first_time("v0=old", now - KEEP_SECONDS - 5, now - KEEP_SECONDS - 5)
    assert log.first_time("v0=new", now, now)
    with engine.connect() as conn:
        assert [r[0] for r in conn.execute(text("SELECT signature FROM slack_signatures"))] == ["v0=new"]
    log.forget("v0=new")
    assert log.first_time("v0=new", now, now)


def _guarded_app(db_url: str, status: int) -> Starlette:
    async def handler(request: Request) -> Response:
        return PlainTextResponse("done", status_code=status)

    guarded = slack_checked(handler, SECRET, ReplayLog(make_engine(db_url)))
    return Starlette(routes=[Route("/slack/events", guarded, methods=["POST"])])


def test_our_own_failure_does_not_burn_the_signature(db_url: str) -> None:
    request = sign(SECRET, slash_command_body("status"))
    with TestClient(_guarded_app(db_url, 500)) as failing:
        assert failing.post("/slack/events", content=request.body, headers=request.headers).status_code == 500
    with TestClient(_guarded_app(db_url, 200)) as working:
        assert working.post("/slack/events", content=request.body, headers=request.headers).status_code == 200
        again = working.post("/slack/events", content=request.body, headers=request.headers)
    assert again.status_code == 401 and "already received" in again.json()["error"]
    assert again.headers["x-slack-no-retry"] == "1"


def test_replay_to_another_running_replica_is_refused(db_url: str, clock: Any) -> None:
    request = sign(SECRET, slash_command_body("help", user_id="U0BOB"))
    with slack_bot(db_url, make_policy(), clock) as first, slack_bot(db_url, make_policy(), clock) as second:
        assert post(f"{first.url}/slack/events", request).status == 200
        replayed = post(f"{second.url}/slack/events", request)
    assert replayed.status == 401 and "already received" in replayed.json()["error"]
