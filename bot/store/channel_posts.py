"""Messages owed to a channel outside any proposal (a drill's card and thread). Mixed into SqlStore.

Written in the transaction of the audit row that explains them; delivered by the Slack sender worker like
the proposal outbox, so no request ever calls Slack.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, or_, select

from bot.core.audit import AuditEvent, AuditRecord
from bot.core.clock import Clock, SystemClock
from bot.core.drill import ChannelPost
from bot.store.tables import ChannelPostRow


@dataclass(frozen=True)
class PendingPost:
    id: int
    kind: str
    channel: str
    message: dict[str, Any]
    replies: list[str]
    ts: str | None
    replies_sent: int
    attempts: int


class ChannelPosts:
    engine: Engine
    wall: Clock = SystemClock()

    if TYPE_CHECKING:
        @property
        def reads(self) -> Engine: ...  # SqlStore's: on PostgreSQL without a transaction
        def session(self) -> AbstractContextManager[Session]: ...
        def _audit(self, session: Session, event: AuditEvent, at: datetime | None = None) -> AuditRecord: ...
        def notify_workers(self, session: Session, worker: str) -> None: ...

    def record_drill(self, audit: AuditEvent, post: ChannelPost | None) -> None:
        """The drill's audit row and its post, together or not at all."""
        with self.session() as s:
            self._audit(s, audit)
            if post is not None:
                s.add(ChannelPostRow(kind=post.kind, channel=post.channel, message=dict(post.message),
                                     replies=list(post.replies), created_at=self.wall.now()))
                self.notify_workers(s, "slack")

    def posts_due(self, limit: int = 50) -> list[PendingPost]:
        now = self.wall.now()
        with Session(self.reads) as s:
            rows = s.exec(select(ChannelPostRow)
                          .where(col(ChannelPostRow.done_at).is_(None), col(ChannelPostRow.permanent).is_(False),
                                 or_(col(ChannelPostRow.next_at).is_(None), col(ChannelPostRow.next_at) <= now))
                          .order_by(col(ChannelPostRow.id)).limit(limit)).all()
        return [PendingPost(r.id, r.kind, r.channel, dict(r.message), list(r.replies), r.ts, r.replies_sent,
                            r.attempts) for r in rows if r.id is not None]

    def post_progress(self, post_id: int, *, ts: str | None = None, replies_sent: int | None = None,
                      done: bool = False) -> None:
        values: dict[str, Any] = {"error": None}
        if ts is not None:
            values["ts"] = ts
        if replies_sent is not None:
            values["replies_sent"] = replies_sent
        if done:
            values["done_at"] = self.wall.now()
        with self.session() as s:
            s.execute(update(ChannelPostRow).where(col(ChannelPostRow.id) == post_id).values(**values))

    def post_failed(self, post_id: int, error: str, *, permanent: bool, delay_s: float = 0.0) -> None:
        with self.session() as s:
            s.execute(update(ChannelPostRow).where(col(ChannelPostRow.id) == post_id).values(
                error=error[:500], permanent=permanent, attempts=ChannelPostRow.attempts + 1,
                next_at=self.wall.now() + timedelta(seconds=delay_s)))

    def posts_resume(self) -> int:
        """Give stopped posts another chance (at start-up: the channel may have been fixed)."""
        with self.session() as s:
            result = s.execute(update(ChannelPostRow)
                               .where(col(ChannelPostRow.permanent).is_(True), col(ChannelPostRow.done_at).is_(None))
                               .values(permanent=False, next_at=None))
            return int(result.rowcount)  # type: ignore[attr-defined]

    def stopped_posts(self, limit: int = 10) -> list[tuple[str, str, str]]:
        """(kind, channel, error) of posts Slack refused for good, for /readyz."""
        with Session(self.reads) as s:
            rows = s.exec(select(ChannelPostRow).where(col(ChannelPostRow.permanent).is_(True),
                                                       col(ChannelPostRow.done_at).is_(None))
                          .order_by(col(ChannelPostRow.id)).limit(limit)).all()
        return [(r.kind, r.channel, r.error or "") for r in rows]


__all__ = ["ChannelPosts", "PendingPost"]
