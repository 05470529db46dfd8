"""Alembic is the only way the schema changes: the models and the migrations must agree."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

import bot.store.tables  # noqa: F401
from bot.store.db import make_engine
from bot.store.migrate import is_current, upgrade


def test_autogenerate_finds_no_drift(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, SQLModel.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ; write a migration: {diff}"


def test_database_is_at_head_with_named_constraints(db_url: str) -> None:
    engine = make_engine(db_url)
    assert is_current(engine, db_url)
    insp = inspect(engine)
    assert {"models", "deployments", "alerts", "proposals", "approvals", "audit", "audit_head",
            "slack_events"} <= set(insp.get_table_names())
    fks = {fk["name"] for fk in insp.get_foreign_keys("deployments")}
    assert fks == {"fk_deployments_model_models"}
    indexes = {ix["name"] for ix in insp.get_indexes("proposals")}
    assert "uq_proposals_one_open_per_model" in indexes
    engine.dispose()


def test_rollbacks_before_blocking_existed_stay_blocked_after_the_upgrade(tmp_path: Path) -> None:
    """0007 carries earlier rollbacks over: each blocks the version it left, unless an undo went back to it."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0005")
    engine = make_engine(url)
    at = "2026-11-02 12:00:00.000000"
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO models (name, created_at) VALUES ('m', :at)"), {"at": at})
        for pid, frm, to, kind in ((1, "7", "6", "alert"), (2, "6", "5", "manual"), (3, "5", "6", "undo")):
            conn.execute(text(
                "INSERT INTO proposals (id, model, from_version, to_version, state, kind, requested_by, reason, "
                "target_note, severity, decision_reason, required_approvals, dry_run, created_at, updated_at, "
                "escalated, reminded, decided_by, finished_at, card_version, card_synced, summary) VALUES "
                "(:id, 'm', :frm, :to, 'succeeded', :kind, 'x', :why, '', 'critical', '', 1, 0, :at, :at, 0, 0, "
                "'slack:U0LEAD', :at, 1, 1, '{}')"), {"id": pid, "frm": frm, "to": to, "kind": kind, "at": at,
                                                       "why": f"reason {pid}"})
    upgrade(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT version, blocked_by, reason, proposal_id FROM blocked_versions "
                                 "ORDER BY id")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("7", "slack:U0LEAD", "reason 1", 1)]
