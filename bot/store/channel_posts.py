"""Messages owed to a channel outside any proposal (a drill's card and thread). Mixed into SqlStore.

Written in the transaction of the audit row that explains them; delivered by the Slack sender worker like
the proposal outbox, so no request ever calls Slack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, or_, select

from bot.core.audit import AuditEvent
from bot.core.clock import Clock, SystemClock
from bot.core.drill import ChannelPost
from bot.store import deliveries
from bot.store.tables import ChannelPostRow
from bot.store.unit_of_work import UnitOfWork


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


class ChannelPosts(UnitOfWork):
    engine: Engine
    wall: Clock = SystemClock()

    if TYPE_CHECKING:
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
        with self._reading() as s:
            rows = s.exec(select(ChannelPostRow)
                          .where(col(ChannelPostRow.done_at).is_(None), col(ChannelPostRow.permanent).is_(False),
                                 or_(col(ChannelPostRow.next_at).is_(None), col(ChannelPostRow.next_at) <= now))
                          .order_by(col(ChannelPostRow.id)).limit(limit)).all()
        return [PendingPost(r.id, r.kind, r.channel, dict(r.message), list(r.replies), r.ts, r.replies_sent,
                            r.attempts) for r in rows if r.id is not None]

    def post_progress(self, post_id: int, *, ts: str | None = None, replies_sent: int | None = None,
                      done: bool = False) -> None:
        """A post is a card and then its replies: how far it got, so a retry sends only the rest."""
        progress: dict[str, Any] = {}
        if ts is not None:
            progress["ts"] = ts
        if replies_sent is not None:
            progress["replies_sent"] = replies_sent
        with self.session() as s:
            if done:
                deliveries.mark_done(s, ChannelPostRow, post_id, self.wall.now(), **progress)
            else:
                deliveries.mark_progress(s, ChannelPostRow, post_id, **progress)

    def post_failed(self, post_id: int, error: str, *, permanent: bool, delay_s: float = 0.0) -> None:
        with self.session() as s:
            deliveries.retry_later(s, ChannelPostRow, post_id, error, self.wall.now(), delay_s,
                                   permanent=permanent, count=True)

    def posts_resume(self) -> int:
        with self.session() as s:
            return deliveries.resume(s, ChannelPostRow)

    def stopped_posts(self, limit: int = 10) -> list[tuple[str, str, str]]:
        """(kind, channel, error) of posts Slack refused for good, for /readyz."""
        with self._reading() as s:
            rows = deliveries.stopped(s, ChannelPostRow, limit)
        return [(r.kind, r.channel, r.error or "") for r in rows]


__all__ = ["ChannelPosts", "PendingPost"]
