"""Work the workers claim from the database: leases, the alert inbox, the Slack outbox. Mixed into SqlStore.

Leases are rows claimed by compare-and-set: ``INSERT … ON CONFLICT (name) DO UPDATE SET owner = me … WHERE
owner IS NULL OR expires_at < now OR owner = me``. On PostgreSQL (READ COMMITTED) the second of two concurrent
claims re-checks the row after the first commits and finds it taken; on SQLite writers are serialised. A
fencing number, bumped on every claim, lets a worker tell that its lease was taken over after it stalled.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import Select, Update, bindparam, case, func, insert, or_, text, update
from sqlalchemy import select as core_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.sql.dml import ReturningInsert
from sqlmodel import Session, col, select

from bot.core.alert import AlertStatus
from bot.core.audit import AuditEvent
from bot.core.clock import Clock, SystemClock
from bot.core.intake import AlertRecord
from bot.core.proposal import EXECUTOR_STATES
from bot.store import deliveries
from bot.store.alert_queries import _record as _alert_record
from bot.store.tables import AlertRow, LeaseRow, ProposalRow, SlackOutboxRow, core, state_in, table_of
from bot.store.unit_of_work import UnitOfWork

WAKE_CHANNEL = "rollback_bot_work"

# Built once (see bot/store/unit_of_work.py): every alert's decision and execution runs these.
_LEASES = table_of(LeaseRow)
_ALERTS = table_of(AlertRow)
_PROPOSALS = table_of(ProposalRow)


@cache
def _claim(dialect: str) -> ReturningInsert[tuple[int]]:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    lease = _LEASES.c
    claim = insert(_LEASES).values(name=bindparam("p_name"), owner=bindparam("p_owner"),
                                   expires_at=bindparam("p_expires"), fencing=1)
    return claim.on_conflict_do_update(
        index_elements=[lease.name],
        set_={"owner": claim.excluded.owner, "expires_at": claim.excluded.expires_at, "fencing": lease.fencing + 1},
        where=or_(lease.owner.is_(None), lease.expires_at < bindparam("p_now"), lease.owner == bindparam("p_me")),
    ).returning(lease.fencing)


def _this_claim() -> Update:
    lease = _LEASES.c
    return update(_LEASES).where(lease.name == bindparam("p_name"), lease.owner == bindparam("p_owner"),
                                 lease.fencing == bindparam("p_fencing"))


_RENEW = _this_claim().values(expires_at=bindparam("p_expires"))
_RELEASE = _this_claim().values(owner=None, expires_at=None)


def _pending_models(urgent_only: bool) -> Select[tuple[str | None, int]]:
    alert = _ALERTS.c
    oldest = func.min(alert.id)
    # Models with a critical alert waiting go first: they may be rolled back without asking.
    urgent = func.max(case((alert.severity == "critical", 1), else_=0))
    q = core_select(alert.model, oldest).where(alert.decided_at.is_(None), alert.model.is_not(None))
    if urgent_only:
        q = q.where(alert.severity == "critical")
    return q.group_by(alert.model).order_by(urgent.desc(), oldest).limit(bindparam("p_limit"))


_MARK_DECIDED = (update(_ALERTS).where(_ALERTS.c.id.in_(bindparam("p_ids", expanding=True)))
                 .values(decided_at=bindparam("p_now"), outcome=bindparam("p_outcome"),
                         outcome_reason=bindparam("p_reason")))
_NOTIFY = {worker: text(f"NOTIFY {WAKE_CHANNEL}, '{worker}'") for worker in ("decide", "execute", "slack")}
_OUTBOX = table_of(SlackOutboxRow)
_ADD_OUTBOX = insert(_OUTBOX)
_PENDING_MODELS = {urgent: _pending_models(urgent) for urgent in (False, True)}
_PENDING_ALERTS = (core_select(_ALERTS).where(_ALERTS.c.decided_at.is_(None), _ALERTS.c.model == bindparam("p_model"))
                   .order_by(_ALERTS.c.id))
_TO_EXECUTE = (core_select(_PROPOSALS.c.id).where(state_in(EXECUTOR_STATES))
               .order_by(_PROPOSALS.c.id).limit(bindparam("p_limit")))


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
        _, rows = self._write(_claim(self.engine.dialect.name), {
            "p_name": name, "p_owner": owner, "p_me": owner, "p_now": now,
            "p_expires": now + timedelta(seconds=seconds)})
        return int(rows[0][0]) if rows else None

    def renew_lease(self, name: str, owner: str, fencing: int, seconds: float) -> bool:
        """The heartbeat: extend the lease if it is still this claim's."""
        expires = self.wall.now() + timedelta(seconds=seconds)
        count, _ = self._write(_RENEW, {"p_name": name, "p_owner": owner, "p_fencing": fencing, "p_expires": expires})
        return count == 1

    def release_lease(self, name: str, owner: str, fencing: int) -> None:
        self._write(_RELEASE, {"p_name": name, "p_owner": owner, "p_fencing": fencing})

    def lease_holder(self, name: str) -> tuple[str | None, datetime | None]:
        with self._reading() as s:
            row = s.get(LeaseRow, name)
            return (row.owner, row.expires_at) if row else (None, None)

    # ---- the alert inbox ----------------------------------------------------------------------------

    def pending_models(self, limit: int = 100, *, urgent_only: bool = False) -> list[str]:
        """Models with alerts the decider has not looked at yet: critical first, then oldest first (with
        ``urgent_only``, only the models with a critical alert waiting)."""
        rows = self._rows(_PENDING_MODELS[urgent_only], {"p_limit": limit})
        return [str(row[0]) for row in rows if row[0]]

    def pending_alerts(self, model: str) -> list[AlertRecord]:
        return [_alert_record(r) for r in self._rows(_PENDING_ALERTS, {"p_model": model})]

    def mark_decided(self, outcomes: dict[int, tuple[str, str]]) -> None:
        """Close the inbox rows the decider handled, each with its outcome (one statement per outcome)."""
        if not outcomes:
            return
        now = self.clock.now()
        groups: dict[tuple[str, str], list[int]] = {}
        for alert_id, key in outcomes.items():
            groups.setdefault(key, []).append(alert_id)
        with self.session() as s:
            conn = core(s)
            for (outcome, reason), ids in groups.items():
                conn.execute(_MARK_DECIDED, {"p_ids": ids, "p_now": now, "p_outcome": outcome[:20],
                                             "p_reason": reason[:2000]})

    def alert_outcomes(self, alert_ids: Sequence[int]) -> dict[int, tuple[str | None, str | None, datetime | None]]:
        with self._reading() as s:
            rows = s.exec(select(AlertRow.id, AlertRow.outcome, AlertRow.outcome_reason, AlertRow.decided_at)
                          .where(col(AlertRow.id).in_(list(alert_ids)))).all()
        return {int(i): (o, r, d) for i, o, r, d in rows if i is not None}

    def notify_workers(self, session: Session, worker: str) -> None:
        """Wake that worker (``decide``, ``execute``, ``slack``) of every replica when this transaction commits
        (PostgreSQL NOTIFY; no-op on SQLite)."""
        if self.engine.dialect.name == "postgresql" and self.once_per_transaction(session, f"notify:{worker}"):
            core(session).execute(_NOTIFY[worker])

    # ---- proposals the executor owes --------------------------------------------------------------

    def proposals_to_execute(self, limit: int = 50) -> list[int]:
        """Approved proposals, and executing ones (whose executor may have died: the lease tells)."""
        return [int(i) for (i,) in self._rows(_TO_EXECUTE, {"p_limit": limit})]

    # ---- the Slack outbox ---------------------------------------------------------------------------

    def add_outbox(self, proposal_id: int, event: str, detail: str | None,
                   session: Session | None = None) -> None:
        row = {"proposal_id": proposal_id, "event": event[:40], "detail": detail, "created_at": self.wall.now(),
               "attempts": 0, "permanent": False}
        with nullcontext(session) if session is not None else self.session() as s:
            core(s).execute(_ADD_OUTBOX, row)  # after the proposal it belongs to
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
