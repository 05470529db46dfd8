"""Outages around a real `serve` process on PostgreSQL: Slack failing in every way, the database refusing
connections and swallowing packets. Rollbacks are never delayed by Slack; every endpoint answers 503 within
5 s while the database is away; work resumes when it returns, without a restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.core.clock import SystemClock
from bot.core.proposal import State
from bot.store.db import make_engine
from bot.store.repository import SqlStore
from devkit.fake_api import FakeSlackApi
from tests.fakes.tcp_proxy import TcpProxy
from tests.integration.alert_helpers import am_alert, am_body
from tests.integration.served import AUDIT_RING, AUTH, Deployer, Serve, policy_text, serve_env, wait_until
from tests.integration.test_crash_recovery import TABLES, cards, deploy_versions

ENDPOINTS: list[tuple[str, str, Any]] = [
    ("POST", "/alerts/alertmanager", am_body(am_alert("fraud-detector", "out01"))),
    ("POST", "/deployments", {"model": "fraud-detector", "version": "9"}),
    ("GET", "/api/models/fraud-detector", None),
    ("GET", "/api/proposals/1", None),
    ("GET", "/api/audit?model=fraud-detector", None),
    ("GET", "/readyz", None),
]


@pytest.fixture
def pg_url(pg_database: str) -> str:
    engine = create_engine(pg_database)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return pg_database


@pytest.fixture
def store(pg_url: str) -> Iterator[SqlStore]:
    engine = make_engine(pg_url)
    yield SqlStore(engine, SystemClock(), audit_keys=AUDIT_RING)  # the served bot's key
    engine.dispose()


def test_slack_failing_every_way_delays_cards_never_rollbacks(tmp_path: Path, pg_url: str,
                                                               store: SqlStore) -> None:
    with FakeSlackApi() as slack, Deployer({"fraud-detector": "7"}) as deployer:
        (tmp_path / "rollback.toml").write_text(policy_text(deployer.url))
        serve = Serve(serve_env(pg_url, slack.base_url, tmp_path / "rollback.toml"), tmp_path).start()
        try:
            deploy_versions(serve)
            slack.server_error("chat.postMessage", times=3)  # the card's post: HTTP 500 three times
            slack.rate_limit("chat.update", times=2, retry_after=1)  # then 429 with Retry-After
            slack.hang("chat.update", 12)  # then hanging past the client's timeout
            r = serve.post("/alerts/alertmanager", am_body(am_alert("fraud-detector", "w1", severity="warning")))
            assert r.status_code == 202
            p = wait_until(lambda: next(iter(store.proposals(model="fraud-detector")), None), 10, "the proposal")
            sent = time.monotonic()
            r = serve.post("/alerts/alertmanager", am_body(am_alert("fraud-detector", "c1", severity="critical")))
            assert r.status_code == 202
            wait_until(lambda: store.get_proposal(p.id).state is State.SUCCEEDED, 10, "the automatic rollback")
            assert time.monotonic() - sent < 3.0  # Slack failing does not hold the switch back
            assert len(deployer.posts) == 1
            wait_until(lambda: store.outbox_counts()["pending"] == 0, 60, "every message delivered")
            [card] = cards(slack, p.id)
            assert "Rolled back" in str(card.get("blocks")) or "Rolled back" in str(card.get("text"))
            replies = [str(m.get("text")) for m in slack.replies("C0ALERTS", card["ts"])]
            joined = next(i for i, t in enumerate(replies) if "joined" in t)
            done = next(i for i, t in enumerate(replies) if t.startswith("Done"))
            assert joined < done  # in the order they happened
            actions = [a.action for a in store.audit_records(proposal_id=p.id)]
            assert "slack.post_failed" not in actions and "slack.delivery_stopped" not in actions
        finally:
            serve.stop()


def _timed(serve: Serve, method: str, path: str, body: Any) -> tuple[int, float]:
    started = time.monotonic()
    r = httpx.request(method, f"{serve.url}{path}", json=body, headers=AUTH, timeout=30)
    return r.status_code, time.monotonic() - started


@pytest.mark.parametrize("outage", ["refused", "partitioned"])
def test_database_outage_is_503_within_5_s_and_work_resumes(tmp_path: Path, pg_url: str, store: SqlStore,
                                                             outage: str) -> None:
    url = make_url(pg_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxied = url.set(port=proxy.port).render_as_string(hide_password=False)
    try:
        with FakeSlackApi() as slack, Deployer({"fraud-detector": "7"}) as deployer:
            (tmp_path / "rollback.toml").write_text(policy_text(deployer.url))
            env = serve_env(proxied, slack.base_url, tmp_path / "rollback.toml", REQUEST_DEADLINE_SECONDS="4.5")
            serve = Serve(env, tmp_path).start()
            try:
                deploy_versions(serve)
                proxy.refuse() if outage == "refused" else proxy.stall()
                for method, path, body in ENDPOINTS:
                    status, took = _timed(serve, method, path, body)
                    assert status == 503 and took < 5.0, (path, status, took)
                proxy.heal()
                r = wait_until(lambda: serve.post("/alerts/alertmanager", am_body(
                    am_alert("fraud-detector", "back1", severity="critical"))).status_code == 202, 20,
                    "alerts to be accepted again")
                assert r
                done = wait_until(lambda: [x for x in store.proposals(model="fraud-detector")
                                           if x.state is State.SUCCEEDED], 20, "the decider and executor to resume")
                assert len(done) == 1 and len(deployer.posts) == 1
            finally:
                serve.stop()
    finally:
        proxy.close()
