"""The unusual-activity outbox: audit rows read in order past a watermark, one notice per (row, kind).

Mixed into SqlStore. Writing a batch's notices and moving the watermark is one transaction, and the
watermark only moves from the position the scan started at (compare-and-set): two replicas scanning the same
rows write the notices once (the unique key drops the second insert) and only one moves the watermark.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot.core.audit import AuditRecord
from bot.core.clock import Clock, SystemClock
from bot.core.events import AuditAction
from bot.core.unusual import Notice
from bot.store import deliveries
from bot.store.audit_log import record_from_row
from bot.store.tables import AuditNoticeRow, AuditRow, WatermarkRow
from bot.store.unit_of_work import UnitOfWork

WATERMARK = "audit:unusual"


class _Overtaken(Exception):
    """Another scanner moved the watermark since this scan read it."""


@dataclass(frozen=True)
class NoticeItem:
    id: int
    audit_id: int
    kind: str
    channel: str
    text: str
    attempts: int


class AuditNotices(UnitOfWork):
    """Relies on SqlStore's ``engine`` and ``session()``."""

    engine: Engine
    wall: Clock = SystemClock()

    # ---- scanning ---------------------------------------------------------------------------------------

    def watermark(self, name: str = WATERMARK) -> int:
        with self._reading() as s:
            row = s.get(WatermarkRow, name)
            return row.position if row else 0

    def audit_after(self, after_id: int, limit: int = 200) -> list[AuditRecord]:
        with self._reading() as s:
            rows = s.exec(select(AuditRow).where(col(AuditRow.id) > after_id)
                          .order_by(col(AuditRow.id)).limit(limit)).all()
            return [record_from_row(r) for r in rows]

    def rollback_times(self, model: str, since: datetime, before_id: int) -> list[datetime]:
        """When the model's earlier successful rollbacks happened (for "more than N in a window")."""
        with self._reading() as s:
            return list(s.exec(select(AuditRow.at).where(
                AuditRow.model == model, AuditRow.action == AuditAction.ROLLBACK_SUCCEEDED.value,
                col(AuditRow.at) >= since, col(AuditRow.id) < before_id)).all())

    def record_notices(self, start: int, end: int, notices: Sequence[Notice], channel: str,
                       name: str = WATERMARK) -> bool:
        """Write the notices of audit rows (start, end] and move the watermark to ``end``; False when
        another scanner moved it first (nothing of ours is kept then)."""
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        now = self.wall.now()
        try:
            with self.session() as s:
                s.execute(insert(WatermarkRow).values(name=name, position=0)
                          .on_conflict_do_nothing(index_elements=["name"]))
                moved = s.execute(update(WatermarkRow).where(col(WatermarkRow.name) == name,
                                                             col(WatermarkRow.position) == start)
                                  .values(position=end))
                if moved.rowcount != 1:  # type: ignore[attr-defined]
                    raise _Overtaken
                for n in notices:
                    s.execute(insert(AuditNoticeRow).values(
                        audit_id=n.audit_id, kind=n.kind.value, model=n.model, channel=channel, text=n.text,
                        created_at=now, attempts=0, permanent=False,
                    ).on_conflict_do_nothing(index_elements=["audit_id", "kind"]))
        except _Overtaken:  # rolled back: another scanner wrote these rows' notices
            return False
        return True

    # ---- delivery ---------------------------------------------------------------------------------------

    def notices_due(self, limit: int = 50) -> list[NoticeItem]:
        now = self.wall.now()
        with self._reading() as s:
            rows = s.exec(select(AuditNoticeRow).where(
                col(AuditNoticeRow.done_at).is_(None), col(AuditNoticeRow.permanent).is_(False))
                .order_by(col(AuditNoticeRow.id)).limit(limit)).all()
        return [NoticeItem(r.id, r.audit_id, r.kind, r.channel, r.text, r.attempts) for r in rows
                if r.id is not None and deliveries.due_now(r, now)]

    def notice_attempt(self, notice_id: int) -> int:
        with self.session() as s:
            return deliveries.count_attempt(s, AuditNoticeRow, notice_id)

    def notice_done(self, notice_id: int) -> None:
        with self.session() as s:
            deliveries.mark_done(s, AuditNoticeRow, notice_id, self.wall.now())

    def notice_retry(self, notice_id: int, error: str, delay_s: float, permanent: bool = False) -> None:
        with self.session() as s:
            deliveries.retry_later(s, AuditNoticeRow, notice_id, error, self.wall.now(), delay_s,
                                   permanent=permanent)

    def notice_failures(self, limit: int = 10) -> list[tuple[str, str]]:
        """Notices Slack refused for good (for /readyz): the channel is wrong or the bot is not in it."""
        with self._reading() as s:
            rows = deliveries.stopped(s, AuditNoticeRow, limit)
        return [(r.channel, r.error or "") for r in rows]

    def notices_resume(self) -> int:
        with self.session() as s:
            return deliveries.resume(s, AuditNoticeRow)


__all__ = ["WATERMARK", "AuditNotices", "NoticeItem"]
