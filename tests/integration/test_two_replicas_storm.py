"""Two `serve` processes on one PostgreSQL under an alert storm, with Slack down for the first half: exactly
one proposal and one switch per incident, at most one card per incident, every card converges once Slack is
back, every alert stored and decided."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from bench.alert_storm import TOKEN, _blast, make_bodies, policy_toml
from devkit.fake_api import FakeSlackApi
from tests.integration.served import Serve, serve_env, wait_until
from tests.integration.test_crash_recovery import TABLES

MODELS = 50


def _scalar(url: str, sql: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def test_two_replicas_under_a_storm_with_slack_down_for_the_first_half(tmp_path: Path, pg_database: str) -> None:
    engine = create_engine(pg_database)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    engine.dispose()
    models = [f"model-{m:02d}" for m in range(MODELS)]
    (tmp_path / "rollback.toml").write_text(policy_toml(models))
    with FakeSlackApi() as slack:
        env = serve_env(pg_database, slack.base_url, tmp_path / "rollback.toml")
        env["ALERT_WEBHOOK_TOKEN"] = TOKEN  # the storm's client sends the benchmark's token
        replicas = [Serve(env, tmp_path).start(), Serve(env, tmp_path).start()]
        try:
            for model in models:
                for version in ("1", "2"):
                    r = httpx.post(f"{replicas[0].url}/deployments", headers={"Authorization": f"Bearer {TOKEN}"},
                                   json={"model": model, "version": version, "stable": version == "1"})
                    assert r.status_code == 201, r.text
            bodies = make_bodies(2_000, 500, MODELS, 20)
            half = len(bodies) // 2
            ports = [s.port for s in replicas]
            for method in ("chat.postMessage", "chat.update", "conversations.history"):
                slack.server_error(method, times=100_000)  # Slack down
            first = asyncio.run(_blast(ports, [(b, 20) for b in bodies[:half]], 25, "first half"))
            slack.clear_faults()  # Slack back
            second = asyncio.run(_blast(ports, [(b, 20) for b in bodies[half:]], 25, "second half"))
            assert set(first.statuses) == {202} and set(second.statuses) == {202}
            url = pg_database
            wait_until(lambda: _scalar(url, "SELECT count(*) FROM alerts WHERE decided_at IS NULL") == 0, 90,
                       "every alert decided")
            wait_until(lambda: _scalar(url, "SELECT count(*) FROM proposals WHERE state = 'succeeded'") == MODELS,
                       90, "every incident rolled back")
            wait_until(lambda: _scalar(url, "SELECT count(*) FROM slack_outbox WHERE done_at IS NULL") == 0, 120,
                       "every card and thread message delivered")
            assert _scalar(url, "SELECT count(*) FROM proposals") == MODELS
            assert _scalar(url, "SELECT count(*) FROM alerts") == 500
            # one switch per incident: one deployment row written by a rollback per model
            assert _scalar(url, "SELECT count(*) FROM deployments WHERE source LIKE 'rollback #%'") == MODELS
            assert _scalar(url, "SELECT count(DISTINCT model) FROM deployments WHERE source LIKE 'rollback #%'") \
                == MODELS
            cards = [m for m in slack.messages("C0ALERTS") if not m.get("thread_ts")]
            assert len(cards) == MODELS  # converged: one card per incident, none twice
            assert all("Rolled back" in str(m.get("blocks")) for m in cards)
        finally:
            for serve in replicas:
                serve.stop()
