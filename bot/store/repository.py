"""SqlStore: every read and every atomic state change the core asks of the database.

Each state change is one transaction that also appends its audit row, so a change without its audit row (or
the reverse) cannot exist. Proposal transitions are compare-and-set (``UPDATE … WHERE state IN (…)``): of two
replicas, a double click or a retried webhook, exactly one wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Update, and_, bindparam, func, insert, or_, true, update
from sqlalchemy import select as core_select
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.core.actor import is_bot
from bot.core.audit import AuditEvent, AuditRecord, KeyRing
from bot.core.blocking import VersionBlocked
from bot.core.clock import Clock, SystemClock
from bot.core.errors import NotFound
from bot.core.events import AuditAction, CardEvent
from bot.core.policy import ModelState
from bot.core.ports import Intent, NewProposal, OpenProposalExists, StaleProposal
from bot.core.proposal import (
    NO_CHANGE,
    NO_EXPECT,
    OPEN_STATES,
    Kind,
    Proposal,
    ProposalAction,
    ProposalChange,
    ProposalExpect,
    State,
    states_that_may_become,
)
from bot.core.selection import Block, Deployment
from bot.store import audit_log
from bot.store.alert_queries import AlertQueries
from bot.store.audit_notices import AuditNotices
from bot.store.channel_posts import ChannelPosts
from bot.store.db import WRITE
from bot.store.tables import (
    AlertRow,
    ApprovalRow,
    BlockedVersionRow,
    DeploymentRow,
    ModelRow,
    ProposalRow,
    SlackEventRow,
    core,
    state_in,
    table_of,
)
from bot.store.work_queues import WorkQueues
from bot.store.writer_queue import WriterQueue

# Built once (see bot/store/unit_of_work.py): every decision and execution reads these.
_MODELS, _PROPOSALS, _APPROVALS = table_of(ModelRow), table_of(ProposalRow), table_of(ApprovalRow)
_MODEL = core_select(_MODELS).where(_MODELS.c.name == bindparam("p_name"))
_PROPOSAL = core_select(_PROPOSALS).where(_PROPOSALS.c.id == bindparam("p_id"))
_OPEN_OF_MODEL = (_PROPOSALS.c.model == bindparam("p_model"), state_in(OPEN_STATES))
_OPEN_PROPOSAL = core_select(_PROPOSALS).where(*_OPEN_OF_MODEL).limit(1)
_DEPLOYMENTS, _BLOCKS = table_of(DeploymentRow), table_of(BlockedVersionRow)
_HISTORY = (core_select(*(_DEPLOYMENTS.c[name] for name in (
    "id", "model", "version", "deployed_at", "deployed_by", "source", "stable_at", "rolled_back_at")))
    .where(_DEPLOYMENTS.c.model == bindparam("p_model")).order_by(_DEPLOYMENTS.c.id))
_LOCK_MODEL = _MODEL.with_for_update()
# The model row is found through the proposal in the same statement (see complete_rollback).
_LOCK_MODEL_OF = (core_select(_MODELS).where(_MODELS.c.name == core_select(_PROPOSALS.c.model).where(
    _PROPOSALS.c.id == bindparam("p_id")).scalar_subquery()).with_for_update())
_NEWEST_VERSION = (core_select(_DEPLOYMENTS.c.version).where(_DEPLOYMENTS.c.model == bindparam("p_model"))
                   .order_by(_DEPLOYMENTS.c.id.desc()).limit(1))
_ANY_OPEN = core_select(_PROPOSALS.c.id).where(*_OPEN_OF_MODEL).limit(1)
_INSERT_PROPOSAL = insert(_PROPOSALS).returning(*_PROPOSALS.c)
_MARK_ROLLED_BACK = (update(_DEPLOYMENTS).where(_DEPLOYMENTS.c.model == bindparam("p_model"),
                                                _DEPLOYMENTS.c.version == bindparam("p_version"),
                                                _DEPLOYMENTS.c.rolled_back_at.is_(None))
                     .values(rolled_back_at=bindparam("p_now")))
_INSERT_DEPLOYMENT = insert(_DEPLOYMENTS)
_ROLLED_BACK_AT = update(_MODELS).where(_MODELS.c.name == bindparam("p_name")).values(
    last_rollback_at=bindparam("p_now"))
_ROLLED_BACK_BY_PERSON = _ROLLED_BACK_AT.values(auto_blocked_reason=None)  # a person acted: automatic ones resume
_ACTIVE_BLOCK = core_select(_BLOCKS.c.id).where(_BLOCKS.c.model == bindparam("p_model"),
                                                _BLOCKS.c.version == bindparam("p_version"),
                                                _BLOCKS.c.unblocked_at.is_(None)).limit(1)
_LIFT_BLOCK = update(_BLOCKS).where(_BLOCKS.c.id == bindparam("p_id")).values(
    unblocked_at=bindparam("p_now"), unblocked_by=bindparam("p_by"), unblock_reason=bindparam("p_reason"))
_INSERT_BLOCK = insert(_BLOCKS)
_CARD_STATE = (core_select(_PROPOSALS.c.card_version, _PROPOSALS.c.card_synced)
               .where(_PROPOSALS.c.id == bindparam("p_id")))
_APPROVERS = (core_select(_APPROVALS.c.user_id)
              .where(_APPROVALS.c.proposal_id == bindparam("p_id"), _APPROVALS.c.decision == "approve")
              .order_by(_APPROVALS.c.id))


def _deployment(row: DeploymentRow | Row[Any]) -> Deployment:
    assert row.id is not None
    return Deployment(
        id=row.id,
        model=row.model,
        version=row.version,
        deployed_at=row.deployed_at,
        deployed_by=row.deployed_by,
        source=row.source,
        stable_at=row.stable_at,
        rolled_back_at=row.rolled_back_at,
    )


def _block(row: BlockedVersionRow) -> Block:
    assert row.id is not None
    return Block(id=row.id, model=row.model, version=row.version, blocked_at=row.blocked_at,
                 blocked_by=row.blocked_by, reason=row.reason, proposal_id=row.proposal_id,
                 unblocked_at=row.unblocked_at, unblocked_by=row.unblocked_by, unblock_reason=row.unblock_reason)


def _proposal(row: ProposalRow | Row[Any], approvals: list[str]) -> Proposal:
    assert row.id is not None
    return Proposal(
        id=row.id,
        model=row.model,
        from_version=row.from_version,
        to_version=row.to_version,
        state=State(row.state),
        kind=Kind(row.kind),
        requested_by=row.requested_by,
        reason=row.reason,
        target_note=row.target_note,
        severity=row.severity,
        decision_reason=row.decision_reason,
        required_approvals=row.required_approvals,
        dry_run=row.dry_run,
        created_at=row.created_at,
        deadline_at=row.deadline_at,
        escalated=row.escalated,
        reminded=row.reminded,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        error=row.error,
        result=row.result,
        slack_channel=row.slack_channel,
        slack_ts=row.slack_ts,
        approvals=approvals,
        summary=dict(row.summary or {}),
        verification=row.verification,
        verify_at=row.verify_at,
        undo_of=row.undo_of,
        action=ProposalAction(row.action or ProposalAction.ROLLBACK.value),
    )


class SqlStore(AlertQueries, WorkQueues, AuditNotices, ChannelPosts):
    def __init__(self, engine: Engine, clock: Clock | None = None, audit_keys: KeyRing | None = None) -> None:
        self.engine = engine
        self.clock: Clock = clock or SystemClock()
        self.audit_log = audit_log.AuditLog(engine, audit_keys)  # AUDIT_HMAC_KEY(S): bot/store/audit_log.py
        self._writer: tuple[Engine, Engine] | None = None
        self._reader: tuple[Engine, Engine] | None = None
        self._writers = WriterQueue(enabled=engine.dialect.name == "sqlite")

    @property
    def reads(self) -> Engine:
        """The same pool for reads that write nothing. On PostgreSQL without BEGIN and ROLLBACK (autocommit,
        set on the client: no statement is sent for it), so a read costs one round trip instead of three;
        a read that needs a consistent snapshot of several statements takes a transaction of its own."""
        if self.engine.dialect.name != "postgresql":
            return self.engine
        if self._reader is None or self._reader[0] is not self.engine:
            self._reader = (self.engine, self.engine.execution_options(isolation_level="AUTOCOMMIT"))
        return self._reader[1]

    @property
    def write_engine(self) -> Engine:
        """The same pool, marked as writing: only these transactions take SQLite's write lock up front."""
        if self._writer is None or self._writer[0] is not self.engine:
            self._writer = (self.engine, self.engine.execution_options(**{WRITE: True}))
        return self._writer[1]

    # ---- plumbing -------------------------------------------------------------------------------------

    def append_audit(self, event: AuditEvent) -> None:
        with self.session() as s:
            self._audit(s, event)

    def ping(self) -> None:
        with self._reading() as s:
            s.exec(select(1)).one()

    # ---- models and deployments -----------------------------------------------------------------------

    def ensure_model(self, session: Session, model: str) -> ModelRow:
        row = session.get(ModelRow, model)
        if row is None:
            row = ModelRow(name=model, created_at=self.clock.now())
            session.add(row)
            session.flush()
        return row

    def model_state(self, model: str) -> ModelState:
        found = self._rows(_MODEL, {"p_name": model})
        if not found:
            return ModelState()
        row = found[0]
        return ModelState(
            frozen_until=row.frozen_until,
            frozen_reason=row.frozen_reason,
            frozen_by=row.frozen_by,
            last_rollback_at=row.last_rollback_at,
            auto_blocked_reason=row.auto_blocked_reason,
        )

    def history(self, model: str) -> list[Deployment]:
        return [_deployment(r) for r in self._rows(_HISTORY, {"p_model": model})]

    def record_deployment(
        self,
        model: str,
        version: str,
        *,
        deployed_by: str | None,
        source: str | None,
        metadata: dict[str, Any],
        stable: bool,
        set_served: bool,
        audit: AuditEvent,
        also: Sequence[AuditEvent] = (),
        announce: tuple[int, Intent] | None = None,
        supersede: str | None = None,
        refuse_blocked: bool = False,
    ) -> Deployment:
        now = self.clock.now()
        with self.session() as s:
            self.ensure_model(s, model)
            # The model row locked first, as create_proposal and complete_rollback do: a proposal being written
            # for the version this deployment replaces either commits before (and is superseded here) or finds
            # itself stale, and a rollback's block is either seen here or written after this deployment.
            mrow = s.exec(select(ModelRow).where(ModelRow.name == model).with_for_update()
                          .execution_options(populate_existing=True)).one()
            if refuse_blocked:
                blocked = s.exec(select(BlockedVersionRow).where(
                    BlockedVersionRow.model == model, BlockedVersionRow.version == version,
                    col(BlockedVersionRow.unblocked_at).is_(None))).first()
                if blocked is not None:
                    raise VersionBlocked(_block(blocked))
            row = DeploymentRow(
                model=model,
                version=version,
                deployed_at=now,
                deployed_by=deployed_by,
                source=source,
                meta=metadata,
                stable_at=now if stable else None,
            )
            s.add(row)
            mrow.auto_blocked_reason = None  # a person deployed: automatic rollbacks may resume
            if set_served:
                mrow.served_version = version
                s.add(mrow)
            s.flush()
            self._audit(s, audit, now)
            for event in also:
                self._audit(s, event, now)
            if announce is not None:
                self._intent(s, announce[0], announce[1])
            if supersede is not None:
                self._supersede(s, model, audit.actor, supersede, now)
            return _deployment(row)

    def _supersede(self, s: Session, model: str, actor: str, why: str, now: datetime) -> None:
        """Cancel the model's waiting proposals in the deployment's transaction; each audited, each card redrawn."""
        may_cancel = state_in(states_that_may_become(State.CANCELLED))
        waiting = s.exec(select(ProposalRow).where(ProposalRow.model == model, may_cancel)).all()
        for row in waiting:
            assert row.id is not None
            s.exec(
                update(ProposalRow)
                .where(col(ProposalRow.id) == row.id, may_cancel)
                .values(state=State.CANCELLED.value, updated_at=now, decided_by=actor, decided_at=now, result=why,
                        card_version=ProposalRow.card_version + 1)
            )
            self._audit(s, AuditEvent(actor=actor, action=AuditAction.PROPOSAL_SUPERSEDED, model=model,
                                      proposal_id=row.id, from_version=row.from_version, to_version=row.to_version,
                                      reason=why), now)
            self._intent(s, row.id, Intent(CardEvent.SUPERSEDED, why))

    # ---- blocked versions ---------------------------------------------------------------------------------

    def blocks(self, model: str, version: str | None = None) -> list[Block]:
        with self._reading() as s:
            q = select(BlockedVersionRow).where(BlockedVersionRow.model == model)
            if version is not None:
                q = q.where(BlockedVersionRow.version == version)
            return [_block(r) for r in s.exec(q.order_by(col(BlockedVersionRow.id).desc())).all()]

    def active_blocks(self) -> list[Block]:
        with self._reading() as s:
            q = select(BlockedVersionRow).where(col(BlockedVersionRow.unblocked_at).is_(None))
            return [_block(r) for r in s.exec(q.order_by(col(BlockedVersionRow.id).desc())).all()]

    def unblock(self, model: str, version: str, *, by: str, reason: str, audit: AuditEvent) -> Block | None:
        now = self.clock.now()
        with self.session() as s:
            row = s.exec(select(BlockedVersionRow).where(
                BlockedVersionRow.model == model, BlockedVersionRow.version == version,
                col(BlockedVersionRow.unblocked_at).is_(None)).with_for_update()
                .execution_options(populate_existing=True)).first()
            if row is None:
                return None
            row.unblocked_at, row.unblocked_by, row.unblock_reason = now, by, reason
            s.add(row)
            s.flush()
            self._audit(s, replace(audit, proposal_id=row.proposal_id), now)
            return _block(row)

    def _block_after_rollback(self, s: Session, row: Row[Any], by: str, now: datetime) -> None:
        """A rollback blocks the version it left; an undo (rolling forward to it on purpose) lifts that block."""
        conn = core(s)
        if row.kind == Kind.UNDO.value:
            lifted = conn.execute(_ACTIVE_BLOCK, {"p_model": row.model, "p_version": row.to_version}).scalar()
            if lifted is not None:
                why = f"undo of rollback #{row.undo_of}"
                conn.execute(_LIFT_BLOCK, {"p_id": lifted, "p_now": now, "p_by": by, "p_reason": why})
                self._audit(s, AuditEvent(actor=by, action=AuditAction.VERSION_UNBLOCKED, model=row.model,
                                          proposal_id=row.id, to_version=row.to_version, reason=why), now)
            return
        earlier = conn.execute(_ACTIVE_BLOCK, {"p_model": row.model, "p_version": row.from_version}).scalar()
        if earlier is not None:  # deployed again with an override and rolled back again: this rollback says why
            conn.execute(_LIFT_BLOCK, {"p_id": earlier, "p_now": now, "p_by": by,
                                       "p_reason": f"blocked again by rollback #{row.id}"})
        conn.execute(_INSERT_BLOCK, {"model": row.model, "version": row.from_version, "blocked_at": now,
                                     "blocked_by": by, "reason": row.reason, "proposal_id": row.id})
        self._audit(s, AuditEvent(actor=by, action=AuditAction.DEPLOYMENT_BLOCKED, model=row.model, proposal_id=row.id,
                                  from_version=row.from_version, to_version=row.to_version,
                                  reason=f"rolled back by {by}: {row.reason or 'no reason given'}; deployments of "
                                         f"{row.from_version} are refused until an approver unblocks it"), now)

    def quiet_since(self, model: str, since: datetime, version: str | None = None) -> datetime | None:
        """Since when no alert of this model has fired (not before ``since``); None while one fires.

        With ``version``, an alert that names another version does not count: it is about a version that is
        not live (after a rollback, the alerts about the rolled-back version may fire on for a while).
        """
        counts = and_(col(AlertRow.model) == model,
                      true() if version is None else or_(col(AlertRow.version).is_(None),
                                                         col(AlertRow.version) == version))
        with self._reading() as s:
            firing = s.exec(
                select(func.count()).select_from(AlertRow).where(counts, AlertRow.status == "firing")
            ).one()
            if firing:
                return None
            last_end = s.exec(
                select(func.max(AlertRow.resolved_at)).where(counts)
            ).one()
        if last_end is not None and last_end > since:
            return last_end
        return since

    def served_version(self, model: str) -> str | None:
        found = self._rows(_MODEL, {"p_name": model})
        return str(found[0].served_version) if found and found[0].served_version is not None else None

    def set_served_version(self, model: str, version: str) -> None:
        with self.session() as s:
            done = s.exec(update(ModelRow).where(col(ModelRow.name) == model).values(served_version=version))
            if done.rowcount != 1:
                row = self.ensure_model(s, model)
                row.served_version = version
                s.add(row)

    def set_freeze(self, model: str, until: datetime | None, reason: str | None, by: str | None,
                   audit: AuditEvent) -> None:
        with self.session() as s:
            row = self.ensure_model(s, model)
            row.frozen_until = until
            row.frozen_reason = reason
            row.frozen_by = by
            s.add(row)
            self._audit(s, audit)

    def set_auto_blocked(self, model: str, reason: str | None, audit: AuditEvent) -> None:
        with self.session() as s:
            row = self.ensure_model(s, model)
            row.auto_blocked_reason = reason
            s.add(row)
            self._audit(s, audit)

    def mark_stable_due(self, due: dict[str, datetime], audit_actor: str) -> list[Deployment]:
        """Mark each model's current deployment stable if it is still the one in ``due``'s view.

        ``due`` maps deployment id → the quiet-since time the caller computed; the update re-checks that the
        row is still unmarked, so two sweepers running at once mark it once.
        """
        marked: list[Deployment] = []
        now = self.clock.now()
        for dep_id_text, quiet_since in due.items():
            dep_id = int(dep_id_text)
            with self.session() as s:
                result = s.exec(
                    update(DeploymentRow)
                    .where(col(DeploymentRow.id) == dep_id, col(DeploymentRow.stable_at).is_(None),
                           col(DeploymentRow.rolled_back_at).is_(None))
                    .values(stable_at=now)
                )
                if result.rowcount != 1:
                    continue
                row = s.get(DeploymentRow, dep_id)
                assert row is not None
                self._audit(
                    s,
                    AuditEvent(
                        actor=audit_actor,
                        action=AuditAction.DEPLOYMENT_STABLE,
                        model=row.model,
                        to_version=row.version,
                        reason=f"served with no firing alert since {quiet_since:%Y-%m-%d %H:%M:%S} UTC",
                    ),
                    now,
                )
                marked.append(_deployment(row))
        return marked

    def current_deployments(self, models: Sequence[str]) -> list[Deployment]:
        """The newest deployment of each named model."""
        with self._reading() as s:
            newest = (
                select(DeploymentRow.model, func.max(DeploymentRow.id).label("mid"))
                .where(col(DeploymentRow.model).in_(list(models)))
                .group_by(DeploymentRow.model)
                .subquery()
            )
            rows = s.exec(select(DeploymentRow).join(newest, col(DeploymentRow.id) == newest.c.mid)).all()
        return [_deployment(r) for r in rows]

    # ---- proposals --------------------------------------------------------------------------------------

    @staticmethod
    def _approvals(s: Session, proposal_id: int) -> list[str]:
        return [str(user) for (user,) in core(s).execute(_APPROVERS, {"p_id": proposal_id}).all()]

    def get_proposal(self, proposal_id: int) -> Proposal:
        with self._reading() as s:
            found = core(s).execute(_PROPOSAL, {"p_id": proposal_id}).all()
            if not found:
                raise NotFound(f"no proposal #{proposal_id}")
            return _proposal(found[0], self._approvals(s, proposal_id))

    def open_proposal(self, model: str) -> Proposal | None:
        with self._reading() as s:
            found = core(s).execute(_OPEN_PROPOSAL, {"p_model": model}).all()
            if not found:
                return None
            return _proposal(found[0], self._approvals(s, int(found[0].id)))

    def latest_proposal(self, model: str) -> Proposal | None:
        found = self.proposals(model=model, limit=1)
        return found[0] if found else None

    def proposals(self, *, model: str | None = None, states: Sequence[State] | None = None,
                  limit: int = 50) -> list[Proposal]:
        with self._reading() as s:
            q = select(ProposalRow)
            if model:
                q = q.where(ProposalRow.model == model)
            if states:
                q = q.where(col(ProposalRow.state).in_([x.value for x in states]))
            rows = s.exec(q.order_by(col(ProposalRow.id).desc()).limit(limit)).all()
            return [_proposal(r, self._approvals(s, r.id)) for r in rows if r.id is not None]

    def create_proposal(self, new: NewProposal, audit: AuditEvent, intent: Intent | None = None) -> Proposal:
        """Insert a proposal and its audit row; raise OpenProposalExists if the model already has one."""
        now = self.clock.now()
        try:
            with self.session() as s:
                conn = core(s)
                # Lock the model row: proposals for one model are written one at a time, and each re-checks
                # that the version it rolls back from is still the live one.
                mrow = conn.execute(_LOCK_MODEL, {"p_name": new.model}).first()
                if mrow is None:  # a model never deployed through the bot: its row first
                    self.ensure_model(s, new.model)
                    mrow = conn.execute(_LOCK_MODEL, {"p_name": new.model}).one()
                newest = conn.execute(_NEWEST_VERSION, {"p_model": new.model}).scalar()
                if newest != new.from_version:
                    raise StaleProposal(f"{new.model} now runs {newest}, not {new.from_version}")
                if mrow.last_rollback_at != new.seen_last_rollback_at:
                    raise StaleProposal(f"{new.model} was rolled back at {mrow.last_rollback_at:%H:%M:%S} UTC")
                if conn.execute(_ANY_OPEN, {"p_model": new.model}).first() is not None:
                    # Checked under the model's lock rather than left to the unique index: a failed INSERT would
                    # end the caller's unit of work (the decider's) on PostgreSQL, where it only joins.
                    raise OpenProposalExists(new.model, self.open_proposal(new.model))
                row = conn.execute(_INSERT_PROPOSAL, {
                    "model": new.model, "from_version": new.from_version, "to_version": new.to_version,
                    "state": State.PROPOSED.value, "kind": new.kind.value, "requested_by": new.requested_by,
                    "reason": new.reason, "target_note": new.target_note, "severity": new.severity,
                    "decision_reason": new.decision_reason, "required_approvals": new.required_approvals,
                    "dry_run": new.dry_run, "created_at": now, "updated_at": now, "deadline_at": new.deadline_at,
                    "summary": new.summary, "undo_of": new.undo_of, "action": new.action.value, "card_version": 1,
                }).one()
                self._audit(s, replace(audit, proposal_id=row.id), now)
                self._intent(s, row.id, intent)
                return _proposal(row, [])
        except IntegrityError as exc:
            if "one_open_per_model" not in str(exc) and "UNIQUE" not in str(exc).upper():
                raise
            raise OpenProposalExists(new.model, self.open_proposal(new.model)) from None

    def transition(
        self,
        proposal_id: int,
        to_state: State,
        audit: AuditEvent,
        *,
        intent: Intent | None = None,
        change: ProposalChange = NO_CHANGE,
    ) -> Proposal | None:
        """Compare-and-set the state from any that may become ``to_state`` (the TRANSITIONS table); on success
        write ``change`` and the audit row. None if it lost."""
        now = self.clock.now()
        with self.session() as s:
            row = self._changed(s, update(ProposalRow).where(
                col(ProposalRow.id) == proposal_id,
                state_in(states_that_may_become(to_state)),
            ).values(
                state=to_state.value,
                updated_at=now,
                card_version=ProposalRow.card_version + 1,
                **change.values(),
            ))
            if row is None:
                return None
            self._audit(s, replace(audit, proposal_id=proposal_id), now)
            self._intent(s, proposal_id, intent)
            if to_state is State.APPROVED:  # the executor of any replica (or worker process) takes it from here
                self.notify_workers(s, "execute")
            return _proposal(row, self._approvals(s, proposal_id))

    def update_open(self, proposal_id: int, audit: AuditEvent | None, expect: ProposalExpect = NO_EXPECT,
                    *, intent: Intent | None = None, change: ProposalChange) -> Proposal | None:
        """Change fields of a still-open proposal without changing its state.

        ``expect`` adds compare-and-set conditions (``ProposalExpect(escalated=False)``), so a sweeper that
        runs twice escalates once.
        """
        now = self.clock.now()
        conditions = [col(getattr(ProposalRow, k)) == v for k, v in expect.values().items()]
        with self.session() as s:
            row = self._changed(s, update(ProposalRow).where(
                col(ProposalRow.id) == proposal_id,
                state_in(OPEN_STATES),
                *conditions,
            ).values(updated_at=now, card_version=ProposalRow.card_version + 1, **change.values()))
            if row is None:
                return None
            if audit is not None:
                self._audit(s, replace(audit, proposal_id=proposal_id), now)
            self._intent(s, proposal_id, intent)
            return _proposal(row, self._approvals(s, proposal_id))

    def add_approval(self, proposal_id: int, user: str, audit: AuditEvent) -> tuple[bool, list[str]]:
        """Record one person's approval of a still-proposed proposal. Returns (new?, all approvers)."""
        now = self.clock.now()
        try:
            with self.session() as s:
                row = s.exec(
                    select(ProposalRow).where(ProposalRow.id == proposal_id).with_for_update()
                    .execution_options(populate_existing=True)
                ).first()
                if row is None or State(row.state) not in states_that_may_become(State.APPROVED):
                    return False, self._approvals(s, proposal_id)
                s.add(ApprovalRow(proposal_id=proposal_id, user_id=user, decision="approve", at=now))
                row.card_version += 1
                row.updated_at = now
                s.add(row)
                s.flush()
                self._audit(s, replace(audit, proposal_id=proposal_id), now)
                return True, self._approvals(s, proposal_id)
        except IntegrityError:
            with self._reading() as s:
                return False, self._approvals(s, proposal_id)

    def complete_rollback(self, proposal_id: int, *, result: str, served: str | None,
                          verify_at: datetime | None, audit: AuditEvent,
                          deployed_by: str, intent: Intent | None = None) -> Proposal | None:
        """executing → succeeded, plus the new deployment row, the bad mark and the cooldown, atomically."""
        now = self.clock.now()
        with self.session() as s:
            # The model row first, as create_proposal does: taking it after the proposal row would let a new
            # proposal (waiting on this row's open state in the unique index) and this commit wait on each
            # other. Found through the proposal in the same statement.
            locked = core(s).execute(_LOCK_MODEL_OF, {"p_id": proposal_id}).first()
            row = self._changed(s, update(ProposalRow).where(
                col(ProposalRow.id) == proposal_id, state_in(states_that_may_become(State.SUCCEEDED))
            ).values(state=State.SUCCEEDED.value, finished_at=now, updated_at=now, result=result,
                     verify_at=verify_at, card_version=ProposalRow.card_version + 1))
            if row is None:
                return None
            if not row.dry_run:
                conn = core(s)
                conn.execute(_MARK_ROLLED_BACK, {"p_model": row.model, "p_version": row.from_version, "p_now": now})
                conn.execute(_INSERT_DEPLOYMENT, {
                    "model": row.model, "version": row.to_version, "deployed_at": now, "deployed_by": deployed_by,
                    "source": f"rollback #{proposal_id}", "metadata": {}, "stable_at": None})
                if locked is None:  # the model row was locked above (no second read) unless it had none
                    self.ensure_model(s, row.model)
                conn.execute(_ROLLED_BACK_AT if is_bot(deployed_by) else _ROLLED_BACK_BY_PERSON,
                             {"p_name": row.model, "p_now": now})
            self._audit(s, replace(audit, proposal_id=proposal_id), now)
            if not row.dry_run:
                self._block_after_rollback(s, row, deployed_by, now)
            self._intent(s, proposal_id, intent)
            return _proposal(row, self._approvals(s, proposal_id))

    @staticmethod
    def _changed(s: Session, change: Update) -> Row[Any] | None:
        """Run a proposal's compare-and-set UPDATE and return the row as it left it, in one statement
        (RETURNING, on PostgreSQL and SQLite alike); None when the condition matched nothing. Run as Core on
        the session's connection (see bot/store/unit_of_work.py), after what the session holds."""
        return core(s).execute(change.returning(*_PROPOSALS.c)).first()

    def _intent(self, s: Session, proposal_id: int, intent: Intent | None) -> None:
        """The Slack outbox row for a state change, in the change's own transaction."""
        if intent is not None:
            self.add_outbox(proposal_id, intent.event, intent.detail, session=s)

    def record_denial(self, proposal_id: int, user: str, reason: str | None) -> None:
        with self.session() as s:
            s.add(ApprovalRow(proposal_id=proposal_id, user_id=user, decision="deny", reason=reason,
                              at=self.clock.now()))

    def set_slack_ref(self, proposal_id: int, channel: str, ts: str) -> None:
        with self.session() as s:
            s.exec(
                update(ProposalRow)
                .where(col(ProposalRow.id) == proposal_id, col(ProposalRow.slack_ts).is_(None))
                .values(slack_channel=channel, slack_ts=ts)
            )

    def mark_card_synced(self, proposal_id: int, version: int) -> None:
        with self.session() as s:
            s.exec(
                update(ProposalRow)
                .where(col(ProposalRow.id) == proposal_id, col(ProposalRow.card_synced) < version)
                .values(card_synced=version)
            )

    def card_state(self, proposal_id: int) -> tuple[int, int]:
        """The card's version and the version Slack shows (drawn), 0 and 0 for no such proposal."""
        found = self._rows(_CARD_STATE, {"p_id": proposal_id})
        return (int(found[0].card_version), int(found[0].card_synced)) if found else (0, 0)

    def cards_to_sync(self, limit: int = 50) -> list[int]:
        with self._reading() as s:
            return [
                i
                for i in s.exec(
                    select(ProposalRow.id)
                    .where(col(ProposalRow.card_synced) < col(ProposalRow.card_version))
                    .order_by(col(ProposalRow.id))
                    .limit(limit)
                ).all()
                if i is not None
            ]

    def _proposals_where(self, *conditions: Any) -> list[Proposal]:
        with self._reading() as s:
            rows = s.exec(select(ProposalRow).where(*conditions).order_by(col(ProposalRow.id))).all()
            return [_proposal(r, self._approvals(s, r.id)) for r in rows if r.id is not None]

    def due_deadlines(self, now: datetime) -> list[Proposal]:
        """Every waiting proposal with a deadline (the sweeper decides: reminder, escalation, expiry)."""
        return self._proposals_where(state_in(states_that_may_become(State.EXPIRED)),
                                     col(ProposalRow.deadline_at).is_not(None))

    def due_verifications(self, now: datetime) -> list[Proposal]:
        return self._proposals_where(col(ProposalRow.state) == State.SUCCEEDED.value,
                                     col(ProposalRow.verify_at) <= now, col(ProposalRow.verification).is_(None))

    def stuck_executing(self, older_than: datetime) -> list[Proposal]:
        return self._proposals_where(col(ProposalRow.state) == State.EXECUTING.value,
                                     col(ProposalRow.started_at) < older_than)

    def set_verification(self, proposal_id: int, text: str, audit: AuditEvent) -> bool:
        with self.session() as s:
            res = s.exec(
                update(ProposalRow)
                .where(col(ProposalRow.id) == proposal_id, col(ProposalRow.verification).is_(None))
                .values(verification=text, card_version=ProposalRow.card_version + 1)
            )
            if res.rowcount != 1:
                return False
            self._audit(s, replace(audit, proposal_id=proposal_id))
            return True

    # ---- slack event dedup ------------------------------------------------------------------------------

    def first_time_event(self, event_id: str) -> bool:
        try:
            with self.session() as s:
                s.add(SlackEventRow(event_id=event_id, received_at=self.clock.now()))
            return True
        except IntegrityError:
            return False

    # ---- audit reads ------------------------------------------------------------------------------------

    def audit_records(self, *, model: str | None = None, since: datetime | None = None,
                      actor: str | None = None, proposal_id: int | None = None,
                      limit: int | None = None, newest_first: bool = False) -> list[AuditRecord]:
        return self.audit_log.records(audit_log.Filters(model=model, since=since, actor=actor,
                                                        proposal_id=proposal_id, limit=limit,
                                                        newest_first=newest_first))

    def audit_head(self) -> tuple[int, str]:
        return self.audit_log.head()
