"""Which audit settings `serve` and `check` refuse, with messages that never contain a key."""

from __future__ import annotations

from bot.audit_config import anchor_settings, problems
from bot.config import settings_from

PG = "postgresql+psycopg://bot@db/bot"
KEY = "0123456789abcdef0123"


def test_postgres_needs_a_key_sqlite_does_not() -> None:
    assert any(p.startswith("AUDIT_HMAC_KEY: not set") for p in problems(settings_from({"DATABASE_URL": PG}),
                                                                          command="serve"))
    assert problems(settings_from({"DATABASE_URL": PG, "AUDIT_HMAC_KEY": KEY}), command="serve") == []
    assert problems(settings_from({"DATABASE_URL": "sqlite:///x.db"}), command="serve") == []


def test_bad_settings_are_named() -> None:
    short = problems(settings_from({"DATABASE_URL": PG, "AUDIT_HMAC_KEY": "abc"}), command="serve")
    assert short == ["AUDIT_HMAC_KEY: shorter than 16 bytes; use e.g. `openssl rand -hex 32`"]
    interval = problems(settings_from({"AUDIT_ANCHOR_INTERVAL": "soon"}), command="check")
    assert interval == ["AUDIT_ANCHOR_INTERVAL: must be a number of seconds"]
    channel = problems(settings_from({"AUDIT_ANCHOR_CHANNEL": "C0AUDIT"}), command="check")
    assert channel == ["AUDIT_ANCHOR_CHANNEL: set, but there is no SLACK_BOT_TOKEN to post the anchors with"]


def test_anchor_settings() -> None:
    cfg = anchor_settings(settings_from({"AUDIT_ANCHOR_PATH": "/var/anchors.jsonl", "AUDIT_ANCHOR_INTERVAL": "30"}))
    assert cfg.enabled and cfg.path == "/var/anchors.jsonl" and cfg.interval == 30.0
    assert not anchor_settings(settings_from({})).enabled
