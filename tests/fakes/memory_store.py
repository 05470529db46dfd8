"""An in-memory store implementing the core's store Protocols, so the rules are unit-tested without a database.

It keeps the same guarantees the SQL store gives the core: compare-and-set transitions, one open proposal per
model, a stale proposal refused, leases by compare-and-set, an audit row with every change (not hash-chained:
the chain is the SQL store's business). `tests/integration/test_store_contract.py` runs one scenario against
this fake, SQLite and PostgreSQL, so the fake cannot drift from the real thing unnoticed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from bot.core.alert import Alert, AlertStatus
from bot.core.audit import AuditEvent, AuditRecord
from bot.core.blocking import VersionBlocked
from bot.core.clock import Clock
from bot.core.drill import ChannelPost
from bot.core.errors import NotFound
from bot.core.events import AuditAction, CardEvent
from bot.core.intake import AlertBatch, AlertRecord, Stored, StoreOutcome
from bot.core.policy import ModelState
from bot.core.ports import Intent, NewProposal, OpenProposalExists, StaleProposal
from bot.core.proposal import (
    EXECUTOR_STATES,
    NO_CHANGE,
    NO_EXPECT,
    OPEN_STATES,
    Kind,
    Proposal,
    ProposalChange,
    ProposalExpect,
    State,
    states_that_may_become,
)
from bot.core.selection import Block, Deployment
from bot.core.severity import Severity


class _ThreadUnit(threading.local):
    def __init__(self) -> None:
        self.depth = 0
        self.after: list[Callable[[], None]] = []


class MemoryStore:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._lock = threading.RLock()
        self.audit: list[AuditRecord] = []
        self.models: dict[str, ModelState] = {}
        self.served: dict[str, str] = {}
        self.deployments: list[Deployment] = []
        self.proposals: dict[int, Proposal] = {}
        self.alerts: dict[int, AlertRecord] = {}
        self.decided: dict[int, tuple[str, str] | None] = {}
        self.leases: dict[str, tuple[str | None, datetime | None, int]] = {}
        self.outbox: list[tuple[int, str, str | None]] = []
        self.blocked: list[Block] = []
        self.posts: list[ChannelPost] = []
        self._uow = _ThreadUnit()

    # ---- audit --------------------------------------------------------------------------------------

    def append_audit(self, event: AuditEvent) -> None:
        with self._lock:
            self.audit.append(AuditRecord(len(self.audit) + 1, self.clock.now(), event.actor, event.action,
                                          event.model, event.proposal_id, event.from_version, event.to_version,
                                          event.reason, dict(event.inputs), "", ""))

    # ---- unit of work -------------------------------------------------------------------------------

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Holds the store's lock for the block, so the unit is atomic to other threads; a failing block's
        writes are not undone (the SQL store's are: its contract test covers that), its after-commit work
        is dropped."""
        unit = self._uow
        with self._lock:
            outer = unit.depth == 0
            unit.depth += 1
            try:
                yield
            except BaseException:
                if outer:
                    unit.after = []
                raise
            finally:
                unit.depth -= 1
            if not outer:
                return
            after, unit.after = unit.after, []
        for action in after:
            action()

    def after_commit(self, action: Callable[[], None]) -> None:
        if self._uow.depth:
            self._uow.after.append(action)
        else:
            action()

    def in_unit_of_work(self) -> bool:
        return self._uow.depth > 0

    def record_drill(self, audit: AuditEvent, post: ChannelPost | None) -> None:
        with self._lock:
            self.append_audit(audit)
            if post is not None:
                self.posts.append(post)

    def audit_records(self, *, proposal_id: int | None = None, **_: Any) -> list[AuditRecord]:
        return [r for r in self.audit if proposal_id is None or r.proposal_id == proposal_id]

    # ---- models and deployments ---------------------------------------------------------------------

    def model_state(self, model: str) -> ModelState:
        return self.models.get(model, ModelState())

    def history(self, model: str) -> list[Deployment]:
        return [d for d in self.deployments if d.model == model]

    def record_deployment(self, model: str, version: str, *, deployed_by: str | None, source: str | None,
                          metadata: dict[str, Any], stable: bool, set_served: bool,
                          audit: AuditEvent, also: Sequence[AuditEvent] = (),
                          announce: tuple[int, Intent] | None = None,
                          supersede: str | None = None, refuse_blocked: bool = False) -> Deployment:
        with self._lock:
            active = [b for b in self.blocks(model, version) if b.active]
            if refuse_blocked and active:
                raise VersionBlocked(active[0])
            now = self.clock.now()
            dep = Deployment(len(self.deployments) + 1, model, version, now, deployed_by, source,
                             now if stable else None)
            self.deployments.append(dep)
            self.models[model] = replace(self.model_state(model), auto_blocked_reason=None)
            if set_served:
                self.served[model] = version
            self.append_audit(audit)
            for event in also:
                self.append_audit(event)
            if announce is not None:
                self._intent(*announce)
            if supersede is not None:
                may_cancel = states_that_may_become(State.CANCELLED)
                for p in [p for p in self.proposals.values() if p.model == model and p.state in may_cancel]:
                    self.proposals[p.id] = replace(p, state=State.CANCELLED, decided_by=audit.actor,
                                                   decided_at=now, result=supersede)
                    self.append_audit(AuditEvent(actor=audit.actor, action=AuditAction.PROPOSAL_SUPERSEDED, model=model,
                                                 proposal_id=p.id, from_version=p.from_version,
                                                 to_version=p.to_version, reason=supersede))
                    self._intent(p.id, Intent(CardEvent.SUPERSEDED, supersede))
            return dep

    # ---- blocked versions ---------------------------------------------------------------------------

    def blocks(self, model: str, version: str | None = None) -> list[Block]:
        return [b for b in reversed(self.blocked) if b.model == model and version in (None, b.version)]

    def active_blocks(self) -> list[Block]:
        return [b for b in reversed(self.blocked) if b.active]

    def unblock(self, model: str, version: str, *, by: str, reason: str, audit: AuditEvent) -> Block | None:
        with self._lock:
            for i, b in enumerate(self.blocked):
                if b.model == model and b.version == version and b.active:
                    self.blocked[i] = replace(b, unblocked_at=self.clock.now(), unblocked_by=by, unblock_reason=reason)
                    self.append_audit(replace(audit, proposal_id=b.proposal_id))
                    return self.blocked[i]
            return None

    def _block_after_rollback(self, p: Proposal, by: str) -> None:
        now = self.clock.now()
        if p.kind is Kind.UNDO:
            for i, b in enumerate(self.blocked):
                if b.model == p.model and b.version == p.to_version and b.active:
                    self.blocked[i] = replace(b, unblocked_at=now, unblocked_by=by,
                                              unblock_reason=f"undo of rollback #{p.undo_of}")
                    self.append_audit(AuditEvent(actor=by, action=AuditAction.VERSION_UNBLOCKED, model=p.model,
                                                 proposal_id=p.id, to_version=p.to_version))
            return
        for i, b in enumerate(self.blocked):
            if b.model == p.model and b.version == p.from_version and b.active:
                self.blocked[i] = replace(b, unblocked_at=now, unblocked_by=by,
                                          unblock_reason=f"blocked again by rollback #{p.id}")
        self.blocked.append(Block(len(self.blocked) + 1, p.model, p.from_version, now, by, p.reason, p.id))
        self.append_audit(AuditEvent(actor=by, action=AuditAction.DEPLOYMENT_BLOCKED, model=p.model, proposal_id=p.id,
                                     from_version=p.from_version, to_version=p.to_version))

    def served_version(self, model: str) -> str | None:
        return self.served.get(model)

    def set_served_version(self, model: str, version: str) -> None:
        self.served[model] = version

    def set_freeze(self, model: str, until: datetime | None, reason: str | None, by: str | None,
                   audit: AuditEvent) -> None:
        with self._lock:
            self.models[model] = replace(self.model_state(model), frozen_until=until, frozen_reason=reason,
                                         frozen_by=by)
            self.append_audit(audit)

    def set_auto_blocked(self, model: str, reason: str | None, audit: AuditEvent) -> None:
        with self._lock:
            self.models[model] = replace(self.model_state(model), auto_blocked_reason=reason)
            self.append_audit(audit)

    def current_deployments(self, models: Sequence[str]) -> list[Deployment]:
        return [h[-1] for m in models if (h := self.history(m))]

    def mark_stable_due(self, due: dict[str, datetime], audit_actor: str) -> list[Deployment]:
        marked = []
        with self._lock:
            for i, dep in enumerate(self.deployments):
                if str(dep.id) in due and dep.stable_at is None and dep.rolled_back_at is None:
                    self.deployments[i] = replace(dep, stable_at=self.clock.now())
                    self.append_audit(AuditEvent(actor=audit_actor, action=AuditAction.DEPLOYMENT_STABLE,
                                                 model=dep.model, to_version=dep.version))
                    marked.append(self.deployments[i])
        return marked

    def quiet_since(self, model: str, since: datetime, version: str | None = None) -> datetime | None:
        alerts = [a for a in self.alerts.values()
                  if a.model == model and (version is None or a.version in (None, version))]
        if any(a.status is AlertStatus.FIRING for a in alerts):
            return None
        ends = [a.resolved_at for a in alerts if a.resolved_at is not None]
        return max([since, *ends])

    # ---- proposals ----------------------------------------------------------------------------------

    def get_proposal(self, proposal_id: int) -> Proposal:
        found = self.proposals.get(proposal_id)
        if found is None:
            raise NotFound(f"no proposal #{proposal_id}")
        return found

    def open_proposal(self, model: str) -> Proposal | None:
        return next((p for p in self.proposals.values() if p.model == model and p.state in OPEN_STATES), None)

    def latest_proposal(self, model: str) -> Proposal | None:
        mine = [p for p in self.proposals.values() if p.model == model]
        return max(mine, key=lambda p: p.id) if mine else None

    def create_proposal(self, new: NewProposal, audit: AuditEvent, intent: Intent | None = None) -> Proposal:
        with self._lock:
            history = self.history(new.model)
            if history and history[-1].version != new.from_version:
                raise StaleProposal(f"{new.model} now runs {history[-1].version}, not {new.from_version}")
            if self.model_state(new.model).last_rollback_at != new.seen_last_rollback_at:
                raise StaleProposal(f"{new.model} was rolled back meanwhile")
            if self.open_proposal(new.model) is not None:
                raise OpenProposalExists(new.model, self.open_proposal(new.model))
            pid = len(self.proposals) + 1
            self.proposals[pid] = Proposal(
                id=pid, model=new.model, from_version=new.from_version, to_version=new.to_version,
                state=State.PROPOSED, kind=new.kind, requested_by=new.requested_by, reason=new.reason,
                target_note=new.target_note, severity=new.severity, decision_reason=new.decision_reason,
                required_approvals=new.required_approvals, dry_run=new.dry_run, created_at=self.clock.now(),
                deadline_at=new.deadline_at, summary=dict(new.summary), undo_of=new.undo_of,
                action=new.action)
            self.append_audit(replace(audit, proposal_id=pid))
            self._intent(pid, intent)
            return self.proposals[pid]

    def transition(self, proposal_id: int, to_state: State, audit: AuditEvent, *, intent: Intent | None = None,
                   change: ProposalChange = NO_CHANGE) -> Proposal | None:
        with self._lock:
            current = self.get_proposal(proposal_id)
            if current.state not in states_that_may_become(to_state):
                return None
            self.proposals[proposal_id] = replace(current, state=to_state, **change.values())
            self.append_audit(replace(audit, proposal_id=proposal_id))
            self._intent(proposal_id, intent)
            return self.proposals[proposal_id]

    def update_open(self, proposal_id: int, audit: AuditEvent | None, expect: ProposalExpect = NO_EXPECT,
                    *, intent: Intent | None = None, change: ProposalChange) -> Proposal | None:
        with self._lock:
            current = self.get_proposal(proposal_id)
            if current.state not in OPEN_STATES:
                return None
            for key, value in expect.values().items():
                have = getattr(current, key)
                if (have.value if isinstance(have, State) else have) != value:
                    return None
            self.proposals[proposal_id] = replace(current, **change.values())
            if audit is not None:
                self.append_audit(replace(audit, proposal_id=proposal_id))
            self._intent(proposal_id, intent)
            return self.proposals[proposal_id]

    def add_approval(self, proposal_id: int, user: str, audit: AuditEvent) -> tuple[bool, list[str]]:
        with self._lock:
            current = self.get_proposal(proposal_id)
            if current.state not in states_that_may_become(State.APPROVED) or user in current.approvals:
                return False, list(current.approvals)
            self.proposals[proposal_id] = replace(current, approvals=[*current.approvals, user])
            self.append_audit(replace(audit, proposal_id=proposal_id))
            return True, list(self.proposals[proposal_id].approvals)

    def record_denial(self, proposal_id: int, user: str, reason: str | None) -> None:
        return None

    def complete_rollback(self, proposal_id: int, *, result: str, served: str | None,
                          verify_at: datetime | None, audit: AuditEvent, deployed_by: str,
                          intent: Intent | None = None) -> Proposal | None:
        with self._lock:
            current = self.get_proposal(proposal_id)
            if current.state not in states_that_may_become(State.SUCCEEDED):
                return None
            now = self.clock.now()
            self.proposals[proposal_id] = replace(current, state=State.SUCCEEDED, finished_at=now, result=result,
                                                  verify_at=verify_at)
            if not current.dry_run:
                for i, dep in enumerate(self.deployments):
                    if dep.model == current.model and dep.version == current.from_version and not dep.rolled_back_at:
                        self.deployments[i] = replace(dep, rolled_back_at=now)
                self.deployments.append(Deployment(len(self.deployments) + 1, current.model, current.to_version,
                                                   now, deployed_by, f"rollback #{proposal_id}"))
                self.models[current.model] = replace(self.model_state(current.model), last_rollback_at=now)
            self.append_audit(replace(audit, proposal_id=proposal_id))
            if not current.dry_run:
                self._block_after_rollback(current, deployed_by)
            self._intent(proposal_id, intent)
            return self.proposals[proposal_id]

    def due_deadlines(self, now: datetime) -> list[Proposal]:
        may_expire = states_that_may_become(State.EXPIRED)
        return [p for p in self.proposals.values() if p.state in may_expire and p.deadline_at is not None]

    def proposals_to_execute(self, limit: int = 50) -> list[int]:
        return sorted(p.id for p in self.proposals.values() if p.state in EXECUTOR_STATES)

    # ---- leases -------------------------------------------------------------------------------------

    def claim_lease(self, name: str, owner: str, seconds: float) -> int | None:
        with self._lock:
            holder, until, fencing = self.leases.get(name, (None, None, 0))
            now = self.clock.now()
            if holder is not None and holder != owner and until is not None and until >= now:
                return None
            self.leases[name] = (owner, now + timedelta(seconds=seconds), fencing + 1)
            return fencing + 1

    def renew_lease(self, name: str, owner: str, fencing: int, seconds: float) -> bool:
        with self._lock:
            holder, _, have = self.leases.get(name, (None, None, 0))
            if holder != owner or have != fencing:
                return False
            self.leases[name] = (owner, self.clock.now() + timedelta(seconds=seconds), fencing)
            return True

    def release_lease(self, name: str, owner: str, fencing: int) -> None:
        with self._lock:
            holder, _, have = self.leases.get(name, (None, None, 0))
            if holder == owner and have == fencing:
                self.leases[name] = (None, None, fencing)

    # ---- alerts -------------------------------------------------------------------------------------

    def store_batches(self, batches: Sequence[AlertBatch]) -> list[list[Stored]]:
        with self._lock:
            return [self._store_batch(b.source, b.alerts, b.received_at) for b in batches]

    def _store_batch(self, source: str, alerts: Sequence[tuple[Alert, str | None]],
                     received_at: datetime) -> list[Stored]:
        out = []
        with self._lock:
            for alert, model in alerts:
                starts = alert.starts_at or received_at
                existing = next((a for a in self.alerts.values() if (a.source, a.fingerprint, a.starts_at)
                                 == (source, alert.fingerprint, starts)), None)
                if existing is None:
                    resolved = alert.status is AlertStatus.RESOLVED
                    rec = AlertRecord(len(self.alerts) + 1, source, alert.fingerprint, alert.name, model,
                                      alert.status, alert.severity, starts, alert.ends_at, received_at,
                                      (alert.ends_at or received_at) if resolved else None, None, alert.summary,
                                      dict(alert.labels), dict(alert.links), dict(alert.values),
                                      dict(alert.annotations), alert.version)
                    self.alerts[rec.id] = rec
                    self.decided[rec.id] = None if model is not None and not resolved else ("closed", "")
                    out.append(Stored(StoreOutcome.NEW, rec))
                elif existing.status is alert.status:
                    out.append(Stored(StoreOutcome.DUPLICATE, existing))
                elif alert.status is AlertStatus.FIRING:
                    out.append(Stored(StoreOutcome.STALE, existing))
                else:
                    ended = alert.ends_at or received_at
                    rec = replace(existing, status=AlertStatus.RESOLVED, ends_at=ended, resolved_at=ended)
                    self.alerts[rec.id] = rec
                    if rec.proposal_id is not None:
                        self.decided[rec.id] = None
                        self.append_audit(AuditEvent(actor=f"alert:{source}", action=AuditAction.ALERT_RESOLVED,
                                                     model=rec.model, proposal_id=rec.proposal_id))
                    out.append(Stored(StoreOutcome.RESOLVED, rec))
        return out

    def attach_alerts(self, proposal_id: int, alert_ids: Sequence[int], audit: AuditEvent) -> int:
        with self._lock:
            attached = 0
            for alert_id in alert_ids:
                rec = self.alerts[alert_id]
                if rec.proposal_id is None:
                    self.alerts[alert_id] = replace(rec, proposal_id=proposal_id)
                    attached += 1
            if attached:
                self.append_audit(replace(audit, proposal_id=proposal_id))
            return attached

    def alerts_for_proposal(self, proposal_id: int) -> list[AlertRecord]:
        return [replace(a, outcome=(self.decided.get(a.id) or (None, ""))[0])
                for a in self.alerts.values() if a.proposal_id == proposal_id]

    def pending_alerts(self, model: str) -> list[AlertRecord]:
        return [a for a in self.alerts.values() if a.model == model and self.decided.get(a.id) is None]

    def pending_models(self, limit: int = 100, *, urgent_only: bool = False) -> list[str]:
        waiting = [a for a in self.alerts.values() if a.model and self.decided.get(a.id) is None]
        critical = {a.model for a in waiting if a.severity is Severity.CRITICAL}
        models = {a.model for a in waiting if a.model and (a.model in critical or not urgent_only)}
        return sorted(models, key=lambda m: (m not in critical, m))[:limit]

    def mark_decided(self, outcomes: dict[int, tuple[str, str]]) -> None:
        with self._lock:
            self.decided.update(outcomes)

    def add_outbox(self, proposal_id: int, event: str, detail: str | None) -> None:
        self.outbox.append((proposal_id, event, detail))

    def _intent(self, proposal_id: int, intent: Intent | None) -> None:
        if intent is not None:
            self.outbox.append((proposal_id, intent.event, intent.detail))


__all__ = ["MemoryStore"]
