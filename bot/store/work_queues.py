"""Work the workers claim from the database: leases, the alert inbox, the Slack outbox. Mixed into SqlStore.

Leases are rows claimed by compare-and-set: ``INSERT … ON CONFLICT (name) DO UPDATE SET owner = me … WHERE
owner IS NULL OR expires_at < now OR owner = me``. On PostgreSQL (READ COMMITTED) the second of two concurrent
claims re-checks the row after the first commits and finds it taken; on SQLite writers are serialised. A
fencing number, bumped on every claim, lets a worker tell that its lease was taken over after it stalled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, or_, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.core.alert import AlertStatus
from bot.core.audit import AuditEvent
from bot.core.clock import Clock, SystemClock
from bot.core.intake import AlertRecord
from bot.core.proposal import EXECUTOR_STATES
from bot.store import deliveries
from bot.store.alert_queries import _record as _alert_record
from bot.store.tables import AlertRow, LeaseRow, ProposalRow, SlackOutboxRow, state_in
from bot.store.unit_of_work import UnitOfWork

WAKE_CHANNEL = "rollback_bot_work"


@dataclass(frozen=True)
class OutboxItem:
    id: int
    proposal_id: int
    event: str
    detail: str | None
    attempts: int


@dataclass(frozen=True)
class OutboxFailure:
    proposal_id: int
    event: str
    error: str


class WorkQueues(UnitOfWork):
    """The worker half of SqlStore; relies on its ``engine``, ``clock``, ``session()`` and ``_audit()``."""

    engine: Engine
    clock: Clock
    # Leases and Slack back-off run on wall-clock time, whatever clock the domain uses (tests pin theirs).
    wall: Clock = SystemClock()

    # ---- leases -------------------------------------------------------------------------------------

    def claim_lease(self, name: str, owner: str, seconds: float) -> int | None:
        """Take ``name`` for ``seconds`` if it is free, expired or already ours: the fencing number, or None.

        One statement: insert the lease, or take over the existing row only where the condition holds (on
        PostgreSQL a concurrent claim waits for the row and re-checks the condition against the winner's)."""
        now = self.wall.now()
        dialect_insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        claim = dialect_insert(LeaseRow).values(name=name, owner=owner, expires_at=now + timedelta(seconds=seconds),
                                                fencing=1)
        claim = claim.on_conflict_do_update(
            index_elements=["name"],
            set_={"owner": claim.excluded.owner, "expires_at": claim.excluded.expires_at,
                  "fencing": LeaseRow.fencing + 1},
            where=or_(col(LeaseRow.owner).is_(None), col(LeaseRow.expires_at) < now, col(LeaseRow.owner) == owner),
        )
        with self.session() as s:
            fencing = s.execute(claim.returning(col(LeaseRow.fencing))).scalar()
        return int(fencing) if fencing is not None else None

    def renew_lease(self, name: str, owner: str, fencing: int, seconds: float) -> bool:
        """The heartbeat: extend the lease if it is still this claim's."""
        now = self.wall.now()
        with self.session() as s:
            result = s.execute(
                update(LeaseRow)
                .where(col(LeaseRow.name) == name, col(LeaseRow.owner) == owner, col(LeaseRow.fencing) == fencing)
                .values(expires_at=now + timedelta(seconds=seconds))
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def release_lease(self, name: str, owner: str, fencing: int) -> None:
        with self.session() as s:
            s.execute(
                update(LeaseRow)
                .where(col(LeaseRow.name) == name, col(LeaseRow.owner) == owner, col(LeaseRow.fencing) == fencing)
                .values(owner=None, expires_at=None)
            )

    def lease_holder(self, name: str) -> tuple[str | None, datetime | None]:
        with self._reading() as s:
            row = s.get(LeaseRow, name)
            return (row.owner, row.expires_at) if row else (None, None)

    # ---- the alert inbox ----------------------------------------------------------------------------

    def pending_models(self, limit: int = 100, *, urgent_only: bool = False) -> list[str]:
        """Models with alerts the decider has not looked at yet: critical first, then oldest first (with
        ``urgent_only``, only the models with a critical alert waiting)."""
        with self._reading() as s:
            oldest = func.min(AlertRow.id)
            # Models with a critical alert waiting go first: they may be rolled back without asking.
            urgent = func.max(case((col(AlertRow.severity) == "critical", 1), else_=0))
            q = select(AlertRow.model, oldest).where(col(AlertRow.decided_at).is_(None),
                                                      col(AlertRow.model).is_not(None))
            if urgent_only:
                q = q.where(col(AlertRow.severity) == "critical")
            rows = s.exec(q.group_by(col(AlertRow.model)).order_by(urgent.desc(), oldest).limit(limit)).all()
        return [str(model) for model, _ in rows if model]

    def pending_alerts(self, model: str) -> list[AlertRecord]:
        with self._reading() as s:
            rows = s.exec(select(AlertRow).where(col(AlertRow.decided_at).is_(None), AlertRow.model == model)
                          .order_by(col(AlertRow.id))).all()
            return [_alert_record(r) for r in rows]

    def mark_decided(self, outcomes: dict[int, tuple[str, str]]) -> None:
        """Close the inbox rows the decider handled, each with its outcome (one statement per outcome)."""
        if not outcomes:
            return
        now = self.clock.now()
        groups: dict[tuple[str, str], list[int]] = {}
        for alert_id, key in outcomes.items():
            groups.setdefault(key, []).append(alert_id)
        with self.session() as s:
            for (outcome, reason), ids in groups.items():
                s.execute(update(AlertRow).where(col(AlertRow.id).in_(ids))
                          .values(decided_at=now, outcome=outcome[:20], outcome_reason=reason[:2000]))

    def alert_outcomes(self, alert_ids: Sequence[int]) -> dict[int, tuple[str | None, str | None, datetime | None]]:
        with self._reading() as s:
            rows = s.exec(select(AlertRow.id, AlertRow.outcome, AlertRow.outcome_reason, AlertRow.decided_at)
                          .where(col(AlertRow.id).in_(list(alert_ids)))).all()
        return {int(i): (o, r, d) for i, o, r, d in rows if i is not None}

    def notify_workers(self, session: Session, worker: str) -> None:
        """Wake that worker (``decide``, ``execute``, ``slack``) of every replica when this transaction commits
        (PostgreSQL NOTIFY; no-op on SQLite)."""
        if self.engine.dialect.name == "postgresql" and self.once_per_transaction(session, f"notify:{worker}"):
            session.execute(text(f"NOTIFY {WAKE_CHANNEL}, '{worker}'"))

    # ---- proposals the executor owes --------------------------------------------------------------

    def proposals_to_execute(self, limit: int = 50) -> list[int]:
        """Approved proposals, and executing ones (whose executor may have died: the lease tells)."""
        with self._reading() as s:
            return [int(i) for i in s.exec(
                select(ProposalRow.id)
                .where(state_in(EXECUTOR_STATES))
                .order_by(col(ProposalRow.id)).limit(limit)
            ).all() if i is not None]

    # ---- the Slack outbox ---------------------------------------------------------------------------

    def add_outbox(self, proposal_id: int, event: str, detail: str | None,
                   session: Session | None = None) -> None:
        row = SlackOutboxRow(proposal_id=proposal_id, event=event[:40], detail=detail, created_at=self.wall.now(),
                             attempts=0, permanent=False)
        if session is not None:
            session.add(row)
            self.notify_workers(session, "slack")
            return
        with self.session() as s:
            s.add(row)
            self.notify_workers(s, "slack")

    def outbox_due(self, limit: int = 200) -> list[OutboxItem]:
        """Undelivered intents, oldest first, skipping every proposal whose next one must wait.

        Delivery is in order per proposal: a proposal whose oldest intent is backing off (or failed for good)
        holds its later intents back; other proposals go on.
        """
        now = self.wall.now()
        with self._reading() as s:
            rows = s.exec(select(SlackOutboxRow).where(col(SlackOutboxRow.done_at).is_(None))
                          .order_by(col(SlackOutboxRow.id)).limit(limit)).all()
        held: set[int] = set()
        due: list[OutboxItem] = []
        for row in rows:
            if row.proposal_id in held:
                continue
            if not deliveries.due_now(row, now):
                held.add(row.proposal_id)
                continue
            assert row.id is not None
            due.append(OutboxItem(row.id, row.proposal_id, row.event, row.detail, row.attempts))
        return due

    def outbox_attempt(self, item_id: int) -> int:
        with self.session() as s:
            return deliveries.count_attempt(s, SlackOutboxRow, item_id)

    def outbox_done(self, item_id: int) -> None:
        with self.session() as s:
            deliveries.mark_done(s, SlackOutboxRow, item_id, self.wall.now())

    def outbox_retry(self, item_id: int, error: str, delay_s: float) -> None:
        with self.session() as s:
            deliveries.retry_later(s, SlackOutboxRow, item_id, error, self.wall.now(), delay_s)

    def outbox_stop(self, item_id: int, error: str, audit: AuditEvent) -> None:
        """A permanent Slack error: stop retrying this proposal's messages; audit it once."""
        with self.session() as s:
            if deliveries.stop(s, SlackOutboxRow, item_id, error):
                self._audit(s, audit)

    def outbox_resume(self) -> int:
        with self.session() as s:
            return deliveries.resume(s, SlackOutboxRow)

    def outbox_failures(self, limit: int = 10) -> list[OutboxFailure]:
        with self._reading() as s:
            rows = deliveries.stopped(s, SlackOutboxRow, limit)
        return [OutboxFailure(r.proposal_id, r.event, r.error or "") for r in rows]

    def outbox_counts(self) -> dict[str, int]:
        with self._reading() as s:
            pending = s.exec(select(func.count()).select_from(SlackOutboxRow)
                             .where(col(SlackOutboxRow.done_at).is_(None))).one()
            stopped = s.exec(select(func.count()).select_from(SlackOutboxRow)
                             .where(col(SlackOutboxRow.permanent).is_(True),
                                    col(SlackOutboxRow.done_at).is_(None))).one()
        return {"pending": int(pending), "stopped": int(stopped)}


def firing(records: Sequence[AlertRecord]) -> list[AlertRecord]:
    return [r for r in records if r.status is AlertStatus.FIRING]


__all__ = ["WAKE_CHANNEL", "OutboxFailure", "OutboxItem", "WorkQueues", "firing"]
