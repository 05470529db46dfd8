"""Shared fixtures: databases (SQLite file and a fresh PostgreSQL database), policies, the service graph."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.config import settings_from
from bot.core.clock import ManualClock
from bot.core.ports import StaticDirectory
from bot.policy_file import TARGETS, parse_policy
from bot.store.db import make_engine
from bot.store.migrate import upgrade
from tests.components import require
from tests.fakes.ports import FakeTarget, RecordingNotifier
from tests.integration import realservers
from tests.integration.promstack import INSTALL_HINT, PromStack, missing_binaries, start_promstack

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TABLES = ("blocked_versions", "approvals", "alerts", "proposals", "deployments", "models", "audit", "audit_head",
          "slack_events", "leases", "slack_outbox", "slack_signatures", "audit_notices", "watermarks", "channel_posts")

BASE_POLICY: dict[str, Any] = {
    "defaults": {
        "channel": "C0ALERTS",
        "approvers": ["U0LEAD", "U0BOB", "S0ONCALL"],
        "required_approvals": 1,
        "approval_timeout": "15m",
        "on_timeout": "escalate",
        "escalate_to": ["S0SRE"],
        "cooldown": "30m",
        "stable_after": "30m",
    },
    "models": {
        "fraud-detector": {"target": "fake"},
        "ranker": {"target": "fake"},
    },
}


def make_policy(overrides: dict[str, Any] | None = None, models: dict[str, Any] | None = None) -> Any:
    """A parsed policy; the test-only target name "fake" is accepted alongside the real ones."""
    data = {"defaults": {**BASE_POLICY["defaults"], **(overrides or {})},
            "models": models or BASE_POLICY["models"]}
    loaded = parse_policy(data, "test-policy.toml", known_targets=(*TARGETS, "fake"))
    assert loaded.policy is not None, loaded.problems
    return loaded.policy


def _pg_available() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    require(_pg_available(), "PostgreSQL at 127.0.0.1:5432",
            "start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "
            "or set TEST_POSTGRES_URL")
    # A name this run generated: the only database the suite creates and drops on that server (the Unleash
    # server gets another generated one, see tests/integration/realservers.py).
    name = f"rollback_bot_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'bot.db'}"
        upgrade(url)
        yield url
        return
    url = request.getfixturevalue("pg_database")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE " + ", ".join(TABLES) + " RESTART IDENTITY CASCADE"))
    engine.dispose()
    yield url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 2, 12, 0, tzinfo=UTC))


@pytest.fixture
def fake_target() -> FakeTarget:
    return FakeTarget()


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def directory() -> StaticDirectory:
    return StaticDirectory({"S0ONCALL": {"U0CAROL", "U0DAVE"}})


@pytest.fixture
def container(db_url: str, clock: ManualClock, fake_target: FakeTarget, notifier: RecordingNotifier,
              directory: StaticDirectory) -> Iterator[Any]:
    from bot.bootstrap import build

    settings = settings_from({"DATABASE_URL": db_url, "ALERT_WEBHOOK_TOKEN": "test-token"})
    engine = make_engine(db_url)
    c = build(settings, policy=make_policy(), clock=clock, engine=engine,
              targets={"fake": fake_target}, notifier=notifier, directory=directory)
    yield c
    c.close()


@pytest.fixture(scope="session")
def promstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromStack]:
    """Prometheus + Alertmanager + exporter + recording receiver, once per session (see promstack.py)."""
    missing = missing_binaries()
    require(not missing, ", ".join(missing), f"install the Debian packages: {INSTALL_HINT}")
    stack = start_promstack(tmp_path_factory.mktemp("promstack"))
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def mlflow_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with realservers.mlflow_server(tmp_path_factory.mktemp("mlflow")) as url:
        yield url


@pytest.fixture(scope="session")
def unleash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with realservers.unleash_server(tmp_path_factory.mktemp("unleash")) as info:
        yield info
