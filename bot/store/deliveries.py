"""The delivery state every Slack outbox shares: attempts, back-off, done, stopped for good, resumed.

Three tables hold messages the bot owes Slack: ``slack_outbox`` (a proposal's card and thread, in order per
proposal), ``audit_notices`` (the audit channel, once per audit row and kind) and ``channel_posts`` (messages
outside any proposal, such as a drill's card). What they owe differs, so each keeps its own table and its
own "what is due" query; how a delivery is tried, retried, stopped and resumed is the same for all three
and lives here, written once.

Every function runs inside the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import ColumnElement, update
from sqlmodel import Session, col, select

from bot.store.tables import AuditNoticeRow, ChannelPostRow, SlackOutboxRow

ERROR_CHARS = 500


class DeliveryRow(Protocol):
    """The columns the three outbox tables share (SQLModel classes, used as tables)."""

    id: int | None
    attempts: int
    next_at: datetime | None
    done_at: datetime | None
    error: str | None
    permanent: bool


Table = type[SlackOutboxRow] | type[AuditNoticeRow] | type[ChannelPostRow]


def _one(table: Table, row_id: int) -> ColumnElement[bool]:
    return col(table.id) == row_id


def count_attempt(s: Session, table: Table, row_id: int) -> int:
    """Count an attempt *before* calling Slack: after a crash mid-call the row is known to have maybe posted."""
    attempts = s.execute(update(table).where(_one(table, row_id)).values(attempts=table.attempts + 1)
                         .returning(col(table.attempts))).scalar()
    return int(attempts or 0)


def mark_done(s: Session, table: Table, row_id: int, now: datetime, **progress: Any) -> None:
    s.execute(update(table).where(_one(table, row_id)).values(done_at=now, error=None, **progress))


def mark_progress(s: Session, table: Table, row_id: int, **progress: Any) -> None:
    """A delivery of several calls (a card, then its replies) remembers how far it got; the error is cleared."""
    s.execute(update(table).where(_one(table, row_id)).values(error=None, **progress))


def retry_later(s: Session, table: Table, row_id: int, error: str, now: datetime, delay_s: float, *,
                permanent: bool = False, count: bool = False) -> None:
    """Back off: due again after ``delay_s``; ``permanent`` stops it until a restart resumes it."""
    values: dict[str, Any] = {"error": error[:ERROR_CHARS], "permanent": permanent,
                              "next_at": now + timedelta(seconds=delay_s)}
    if count:
        values["attempts"] = table.attempts + 1
    s.execute(update(table).where(_one(table, row_id)).values(**values))


def stop(s: Session, table: Table, row_id: int, error: str) -> bool:
    """Stopped for good (compare-and-set): True only for the call that stopped it, so it is audited once."""
    result = s.execute(update(table).where(_one(table, row_id), col(table.permanent).is_(False))
                       .values(permanent=True, error=error[:ERROR_CHARS]))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def resume(s: Session, table: Table) -> int:
    """Give every stopped, undelivered row another chance (at start-up: the cause may have been fixed)."""
    result = s.execute(update(table).where(col(table.permanent).is_(True), col(table.done_at).is_(None))
                       .values(permanent=False, next_at=None))
    return int(result.rowcount)  # type: ignore[attr-defined]


def stopped(s: Session, table: Table, limit: int) -> list[Any]:
    """Rows Slack refused for good and nobody resumed yet, oldest first (for /readyz)."""
    return list(s.exec(select(table).where(col(table.permanent).is_(True), col(table.done_at).is_(None))
                       .order_by(col(table.id)).limit(limit)).all())


def due_now(row: DeliveryRow, now: datetime) -> bool:
    return not row.permanent and (row.next_at is None or row.next_at <= now)


__all__ = ["DeliveryRow", "count_attempt", "due_now", "mark_done", "mark_progress", "resume", "retry_later",
           "stop", "stopped"]
