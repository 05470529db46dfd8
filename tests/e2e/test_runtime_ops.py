"""What an operator sees from the real `serve` and CLI: fail fast with one line, `.env` credentials reaching the
targets, JSON logs, quiet logs, one line per database outage, and the warnings `serve` owes them."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from adapters.targets.webhook import verify_signature
from bot.database_health import code_heads
from bot.store.migrate import upgrade
from devkit.fake_api import FakeSlackApi
from devkit.signing import post, sign, slash_command_body
from tests.components import require
from tests.conftest import PG_ADMIN_URL, _pg_available
from tests.e2e.cli import run_cli
from tests.e2e.serve_process import ServeProcess, free_port, scratch_postgres, serving
from tests.fakes.httpserver import LoopbackServer, Request, Response

LOCAL_POLICY = '[defaults]\nchannel = "C0ALERTS"\n[models.fraud-detector]\ntarget = "local"\n'
HEAD = ", ".join(code_heads("sqlite://"))


def needs_postgres() -> None:
    require(_pg_available(), "PostgreSQL at 127.0.0.1:5432", "start it or set TEST_POSTGRES_URL")


@pytest.fixture
def slack() -> Any:
    with FakeSlackApi() as api:
        yield api


def slack_env(slack: FakeSlackApi) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": "xoxb-ops-test", "SLACK_SIGNING_SECRET": "ops-signing", "SLACK_API_URL": slack.base_url,
            "ALERT_WEBHOOK_TOKEN": "ops-alert-token", "AUDIT_HMAC_KEY": "ops-audit-key-0123456789"}


def start_refused(tmp_path: Path, env: dict[str, str]) -> list[str]:
    (tmp_path / "rollback.toml").write_text(LOCAL_POLICY)
    out = run_cli("serve", "--port", str(free_port()), env=env, cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr and "serve.started" not in out.stderr
    return [line for line in out.stderr.splitlines() if line.strip()]


# ---- fail fast ------------------------------------------------------------------------------------------


def test_serve_refuses_a_database_that_does_not_exist(tmp_path: Path, slack: FakeSlackApi) -> None:
    needs_postgres()
    name = f"rollback_bot_missing_{uuid.uuid4().hex[:8]}"  # never created
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    lines = start_refused(tmp_path, {**slack_env(slack), "DATABASE_URL": url})
    assert lines == [f'cannot start: database "{name}" does not exist (DATABASE_URL {url})']


def test_serve_refuses_a_schema_that_was_never_upgraded(tmp_path: Path, slack: FakeSlackApi) -> None:
    needs_postgres()
    with scratch_postgres(PG_ADMIN_URL) as (_name, url):
        lines = start_refused(tmp_path, {**slack_env(slack), "DATABASE_URL": url})
        assert lines == [f"cannot start: schema is empty (never upgraded), code needs {HEAD}: run rollback-bot db "
                         "upgrade"]
        upgrade(url, "0001")
        lines = start_refused(tmp_path, {**slack_env(slack), "DATABASE_URL": url})
        assert lines == [f"cannot start: schema is at 0001, code needs {HEAD}: run rollback-bot db upgrade"]
        out = run_cli("deploy", "fraud-detector", "1", env={"DATABASE_URL": url}, cwd=tmp_path)
        assert out.returncode == 1
        assert out.stderr == f"error: schema is at 0001, code needs {HEAD}: run rollback-bot db upgrade\n"


def test_serve_without_slack_token_says_so_in_one_line_each(tmp_path: Path) -> None:
    lines = start_refused(tmp_path, {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
                                     "SLACK_SIGNING_SECRET": "s"})
    assert lines == ["cannot start: SLACK_BOT_TOKEN: not set; `serve` needs the bot token (xoxb-…) of your Slack app"]


def test_serve_on_an_unopenable_sqlite_path(tmp_path: Path, slack: FakeSlackApi) -> None:
    lines = start_refused(tmp_path, {**slack_env(slack), "DATABASE_URL": f"sqlite:///{tmp_path}/no/such/dir/x.db"})
    assert len(lines) == 1 and lines[0].startswith("cannot start: cannot open the SQLite database")


def test_check_validates_what_serve_needs(tmp_path: Path, slack: FakeSlackApi) -> None:
    needs_postgres()
    (tmp_path / "rollback.toml").write_text(LOCAL_POLICY + 'approval_timeout = "15m"\n')
    name = f"rollback_bot_missing_{uuid.uuid4().hex[:8]}"
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    out = run_cli("check", env={"DATABASE_URL": url}, cwd=tmp_path)
    assert out.returncode == 1
    problems = [line for line in out.stderr.splitlines() if line.startswith("problem:")]
    assert f'problem: database: database "{name}" does not exist (DATABASE_URL {url})' in problems
    assert any("SLACK_BOT_TOKEN: not set" in p for p in problems)
    assert any("SLACK_SIGNING_SECRET: not set" in p for p in problems)
    assert any("ALERT_WEBHOOK_TOKEN: not set" in p for p in problems)
    assert "timeout 15m → escalate, cooldown 30m, stable after 30m" in out.stdout
    assert "0:15:00" not in out.stdout
    ok = run_cli("check", "--connect", env={**slack_env(slack), "DATABASE_URL": f"sqlite:///{tmp_path / 'n.db'}"},
                 cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "configuration OK" in ok.stdout and "connect Slack:" in ok.stdout
    assert not (tmp_path / "n.db").exists()  # check reads; it never creates the database


def test_cli_mistakes_are_one_line_and_non_zero(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    (tmp_path / "rollback.toml").write_text(LOCAL_POLICY)
    for args, words in [
        (("audit", "list", "--since", "forever"), "'forever' is not a duration"),
        (("audit", "list", "--limit", "-3"), "is not a whole number"),
        (("rollback", "fraud-detector"), "the following arguments are required: --reason"),
        (("frobnicate",), "invalid choice"),
        (("deploy", "nope", "1"), "unknown model 'nope'"),
        (("--env-file", "missing.env", "audit", "list"), "--env-file missing.env: no such file"),
    ]:
        out = run_cli(*args, env=env, cwd=tmp_path)
        assert out.returncode != 0, args
        assert "Traceback" not in out.stderr
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and words in lines[0], (args, out.stderr)
    bad_env = run_cli("audit", "list", env={**env, "LOG_FORMAT": "xml"}, cwd=tmp_path)
    assert bad_env.returncode == 2 and bad_env.stderr.startswith("error: environment: LOG_FORMAT:")
    assert len(bad_env.stderr.splitlines()) == 1


# ---- .env credentials reach the targets ------------------------------------------------------------------


def webhook_receiver() -> LoopbackServer:
    state = {"version": "2"}

    def handle(req: Request) -> Response:
        if req.method == "POST":
            state["version"] = req.json()["to_version"]
        return Response(200, {"version": state["version"], "accepted": True})

    return LoopbackServer(handle)


def test_env_file_webhook_secret_is_seen_by_check_deploy_and_rollback(tmp_path: Path) -> None:
    with webhook_receiver() as receiver:
        (tmp_path / "rollback.toml").write_text(
            f'[defaults]\nchannel = "C0ALERTS"\n[models.churn]\ntarget = "webhook"\n'
            f'[models.churn.webhook]\nurl = "{receiver.url}/rollback"\n')
        (tmp_path / ".env").write_text("ROLLBACK_WEBHOOK_SECRET=from-dotenv-only\nALERT_WEBHOOK_TOKEN=abcd\n")
        env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
        check = run_cli("check", env=env, cwd=tmp_path)
        assert "ROLLBACK_WEBHOOK_SECRET" not in check.stderr, check.stderr
        for version in ("1", "2"):
            assert run_cli("deploy", "churn", version, env=env, cwd=tmp_path).returncode == 0
        rb = run_cli("rollback", "churn", "--reason", "errors", env=env, cwd=tmp_path)
        assert rb.returncode == 0, rb.stderr
        post = receiver.requests[-1]
        assert verify_signature("from-dotenv-only", post.body, post.headers["x-rollback-timestamp"],
                                post.headers["x-rollback-signature"])
        # A real environment variable wins over `.env`.
        assert run_cli("deploy", "churn", "3", env=env, cwd=tmp_path).returncode == 0
        rb = run_cli("rollback", "churn", "--reason", "again", "--force",
                     env={**env, "ROLLBACK_WEBHOOK_SECRET": "from-the-environment"}, cwd=tmp_path)
        assert rb.returncode == 0, rb.stderr
        post = receiver.requests[-1]
        assert verify_signature("from-the-environment", post.body, post.headers["x-rollback-timestamp"],
                                post.headers["x-rollback-signature"])


# ---- logs -------------------------------------------------------------------------------------------------


def test_json_logs_quiet_ticks_and_the_warnings_serve_owes(tmp_path: Path, slack: FakeSlackApi) -> None:
    (tmp_path / "rollback.toml").write_text(LOCAL_POLICY)
    env = {**slack_env(slack), "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}", "LOG_FORMAT": "json"}
    del env["ALERT_WEBHOOK_TOKEN"]
    assert run_cli("deploy", "fraud-detector", "1", env=env, cwd=tmp_path).returncode == 0
    with serving(env, tmp_path) as first:
        second = ServeProcess(env, tmp_path)
        try:
            second.wait_up()
            second.wait_log("serve.sqlite_shared")
        finally:
            second_log = second.stop()
        # A window long enough for every 5 s sweeper to tick at least twice.
        started = time.monotonic()
        while time.monotonic() - started < 11:
            assert first.get("/healthz")[0] == 200
            time.sleep(0.5)
    lines = first.log().splitlines()
    records = [json.loads(line) for line in lines]  # every line parses
    events = [r.get("event") for r in records]
    assert events.count("serve.no_alert_token") == 1 and events.count("serve.started") == 1
    assert "serve.sqlite_shared" not in events  # the first process owns the lock
    assert [json.loads(x).get("event") for x in second_log.splitlines()].count("serve.sqlite_shared") == 1
    assert not [r for r in records if r["logger"].startswith(("apscheduler", "alembic", "uvicorn", "httpx"))]
    assert not [r for r in records if "will be unused" in r["message"]]
    assert len(records) <= 8, lines  # no per-tick lines: start-up and shut-down only


def test_a_database_outage_is_logged_once_and_its_end_once(tmp_path: Path, slack: FakeSlackApi) -> None:
    needs_postgres()
    (tmp_path / "rollback.toml").write_text(LOCAL_POLICY)
    name = f"rollback_bot_rt_{uuid.uuid4().hex[:10]}"
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        upgrade(url)
        with serving({**slack_env(slack), "DATABASE_URL": url}, tmp_path) as bot:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            for _ in range(3):  # people keep using Slack during the outage
                body = slash_command_body("status", user_id="U0LEAD", channel_id="C0ALERTS",
                                          response_url=slack.response_url(channel="C0ALERTS"))
                assert post(f"{bot.url}/slack/events", sign("ops-signing", body)).status == 200
            answer = slack.wait_for("response_url", 3, timeout=15)[-1].body["text"]
            assert "database is unavailable right now" in answer
            failures = 0
            started = time.monotonic()
            while time.monotonic() - started < 11:  # readiness probes and two sweeper ticks against no database
                status, body = bot.get("/readyz")
                failures += status == 503
                time.sleep(0.5)
            assert failures >= 10, body
            assert f'database \\"{name}\\" does not exist' in body or f'database "{name}" does not exist' in body
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            upgrade(url)
            deadline = time.monotonic() + 30
            while bot.get("/readyz")[0] != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            # On PostgreSQL serve has three processes (requests, workers, slack): each logs the outage once,
            # by name.
            deadline = time.monotonic() + 30
            while bot.log().count("database.up") < 3 and time.monotonic() < deadline:
                time.sleep(0.1)
            log = bot.log()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    for process in ("requests", "workers", "slack"):
        downs = [line for line in log.splitlines() if "database.down" in line and f"process={process}" in line]
        ups = [line for line in log.splitlines() if "database.up" in line and f"process={process}" in line]
        assert (len(downs), len(ups)) == (1, 1), log
    assert log.count("database.down") == 3 and log.count("database.up") == 3, log
    assert "Traceback" not in log
    assert len(log.splitlines()) <= 12, log
