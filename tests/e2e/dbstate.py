"""A running bot (real app, uvicorn, local Slack stand-in) per database for a whole test module, and a digest of
every table so a test can prove a request changed nothing."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, inspect, text

from bot.core.clock import ManualClock
from bot.core.requests import RollbackRequest
from bot.store.migrate import upgrade
from tests.conftest import TABLES, make_policy
from tests.e2e.slackbot import SlackBot, deploy_versions, slack_bot


def table_digests(url: str) -> dict[str, tuple[int, str]]:
    """Row count and a hash of every row of every table but the workers' leases (ordered by the primary key)."""
    engine = create_engine(url)
    out: dict[str, tuple[int, str]] = {}
    try:
        # leases are the workers' heartbeats (renewed on a timer, whatever the requests do): not data
        names = [n for n in inspect(engine).get_table_names() if n not in {"alembic_version", "leases"}]
        with engine.connect() as conn:
            for name in sorted(names):
                rows = conn.execute(text(f'SELECT * FROM "{name}" ORDER BY 1')).all()
                digest = hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest()[:16]
                out[name] = (len(rows), digest)
    finally:
        engine.dispose()
    return out


def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated, empty database of the kind ``request.param`` names ("sqlite" or "postgres")."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / f'bot-{uuid.uuid4().hex[:6]}.db'}"
        upgrade(url)
        return url
    url = str(request.getfixturevalue("pg_database"))
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE " + ", ".join(TABLES) + " RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@contextmanager
def seeded_bot(url: str) -> Iterator[SlackBot]:
    """The bot with fraud-detector deployed three times and one proposal open."""
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    with slack_bot(url, make_policy(), clock) as bot:
        deploy_versions(bot.container)
        bot.container.service.request_rollback(RollbackRequest("fraud-detector", actor="alert:seed", reason="seed"))
        settle(url)
        yield bot


def settle(url: str, timeout: float = 30.0) -> None:
    """Wait until the workers have delivered what the seed owes Slack (the outbox drained), so the only
    changes a case can see are its own."""
    engine = create_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if "slack_outbox" not in inspect(engine).get_table_names():
                    return
                pending = conn.execute(text("SELECT count(*) FROM slack_outbox WHERE done_at IS NULL")).scalar()
            if not pending:
                return
            time.sleep(0.05)
        raise AssertionError("the seed's Slack messages were never delivered")
    finally:
        engine.dispose()


__all__ = ["database_url", "seeded_bot", "table_digests"]
