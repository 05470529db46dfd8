"""Alembic is the only way the schema changes: the models and the migrations must agree."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import bot.store.tables  # noqa: F401
from bot.store.db import make_engine
from bot.store.migrate import is_current


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
