"""Alert intake: normalised alerts in, one proposal per model incident out. No SQL, HTTP or Slack here.

Why this shape: senders repeat themselves (Alertmanager every ``repeat_interval``, two Alertmanagers in HA
both send everything), so the store first records each alert once, atomically, and says what was new. Only
then does the policy look at a model, under a per-model lock, so two replicas (or an HA pair hitting two
replicas) end with one proposal, never one per alert or per repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from bot.core.alert import Alert, AlertStatus
from bot.core.audit import AuditEvent
from bot.core.clock import Clock
from bot.core.errors import IllegalTransition, Refused
from bot.core.policy import Action
from bot.core.proposal import Kind, Proposal, State
from bot.core.service import SYSTEM, RollbackService
from bot.core.severity import Severity, parse_severity

MAX_DETAILS = 100  # per-alert lines in the answer; a 1,000-alert payload still gets every count


class StoreOutcome(StrEnum):
    """What recording one alert did to the alerts table."""

    NEW = "new"  # a row was inserted
    DUPLICATE = "duplicate"  # the same alert in the same status was already there
    RESOLVED = "resolved"  # a firing row became resolved
    STALE = "stale"  # a firing repeat of an alert already resolved: changes nothing


@dataclass(frozen=True)
class AlertRecord:
    """One stored alert, as the store returns it."""

    id: int
    source: str
    fingerprint: str
    name: str
    model: str | None
    status: AlertStatus
    severity: Severity
    starts_at: datetime
    ends_at: datetime | None
    received_at: datetime
    resolved_at: datetime | None
    proposal_id: int | None
    summary: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, float] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


MetricHints = Callable[[Sequence[AlertRecord]], Mapping[str, str]]


@dataclass(frozen=True)
class Stored:
    outcome: StoreOutcome
    record: AlertRecord


class AlertStore(Protocol):
    """What intake needs from persistence, beyond what RollbackService already uses."""

    def store_alerts(self, source: str, alerts: Sequence[tuple[Alert, str | None]],
                     received_at: datetime) -> list[Stored]:
        """Record a batch in one transaction (alert, model or None); one result per input, in order.

        A resolution of an alert attached to a proposal writes an ``alert.resolved`` audit row for that
        proposal in the same transaction (the incident timeline).
        """
        ...

    def attach_alerts(self, proposal_id: int, alert_ids: Sequence[int], audit: AuditEvent) -> int:
        """Attach still-unattached alerts to a proposal (bumping its card); how many were attached."""
        ...

    def alerts_for_proposal(self, proposal_id: int) -> list[AlertRecord]: ...
    def firing_alerts(self, model: str) -> list[AlertRecord]: ...
    def model_lock(self, model: str) -> AbstractContextManager[None]:
        """Serialise intake decisions for one model (across replicas where the database allows)."""
        ...

    def get_proposal(self, proposal_id: int) -> Proposal: ...
    def open_proposal(self, model: str) -> Proposal | None: ...
    def transition(self, proposal_id: int, from_states: Sequence[State], to_state: State,
                   audit: AuditEvent, **updates: Any) -> Proposal | None: ...
    def update_open(self, proposal_id: int, audit: AuditEvent | None, expect: Mapping[str, Any] | None = None,
                    **updates: Any) -> Proposal | None: ...


class Outcome(StrEnum):
    PROPOSED = "proposed"  # opened a new proposal
    JOINED = "joined"  # joined the model's open proposal
    EXECUTED = "executed"  # caused an automatic rollback
    DUPLICATE = "duplicate"
    IGNORED = "ignored"  # no model, below min_severity, frozen
    REFUSED = "refused"  # the policy could not propose (no earlier version, a rollback just finished…)
    RESOLVED = "resolved"
    STORED = "stored"  # recorded; nothing else to do


@dataclass
class AlertOutcome:
    fingerprint: str
    model: str | None
    outcome: Outcome
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "model": self.model, "outcome": self.outcome.value,
                "reason": self.reason}


@dataclass
class IntakeResult:
    """What one payload did, for the 202 answer and the metrics."""

    stored: int = 0
    duplicates: int = 0
    ignored: int = 0
    refused: int = 0
    resolved: int = 0
    proposals_created: list[int] = field(default_factory=list)
    proposals_updated: list[int] = field(default_factory=list)
    executed: list[int] = field(default_factory=list)
    alerts: list[AlertOutcome] = field(default_factory=list)

    def _add(self, bucket: list[int], proposal_id: int) -> None:
        if proposal_id not in bucket:
            bucket.append(proposal_id)

    def as_json(self) -> dict[str, Any]:
        updated = [p for p in self.proposals_updated if p not in self.proposals_created]
        return {
            "status": "accepted", "stored": self.stored, "duplicates": self.duplicates, "ignored": self.ignored,
            "refused": self.refused, "resolved": self.resolved, "proposals_created": self.proposals_created,
            "proposals_updated": updated, "executed": self.executed,
            "alerts": [a.as_json() for a in self.alerts[:MAX_DETAILS]],
        }


def _names(records: Sequence[AlertRecord], limit: int = 3) -> str:
    names = sorted({r.name for r in records})
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


class AlertIntake:
    """Turns a payload's alerts into stored rows, proposals, joins, escalations, cancellations."""

    def __init__(self, service: RollbackService, store: AlertStore, clock: Clock,
                 metric_hints: MetricHints | None = None) -> None:
        """``metric_hints`` names the alerts' own expressions (from generatorURL) for models whose policy
        lists no metrics, so the card can still show numbers."""
        self.service = service
        self.store = store
        self.clock = clock
        self.metric_hints = metric_hints

    def model_for(self, alert: Alert) -> str | None:
        policy = self.service.policy.model_for_labels(alert.labels)
        return policy.name if policy else None

    def ingest(self, source: str, alerts: list[Alert], received_at: datetime) -> IntakeResult:
        result = IntakeResult()
        stored = self.store.store_alerts(source, [(a, self.model_for(a)) for a in alerts], received_at)
        by_id: dict[int, list[AlertOutcome]] = {}
        for alert, item in zip(alerts, stored, strict=True):
            outcome = self._first_outcome(alert, item, result)
            result.alerts.append(outcome)
            by_id.setdefault(item.record.id, []).append(outcome)
        actor = f"alert:{source}"
        resolved: dict[int, list[AlertRecord]] = {}
        for item in stored:
            if item.outcome is StoreOutcome.RESOLVED and item.record.proposal_id is not None:
                resolved.setdefault(item.record.proposal_id, []).append(item.record)
        for proposal_id, records in sorted(resolved.items()):
            self._on_resolved(proposal_id, records, actor, result, by_id)
        pending_models = sorted({
            item.record.model for item in stored
            if item.record.model and item.record.status is AlertStatus.FIRING and item.record.proposal_id is None
            and item.outcome in (StoreOutcome.NEW, StoreOutcome.DUPLICATE)
        })
        for model in pending_models:
            with self.store.model_lock(model):
                self._group(model, actor, result, by_id)
        return result

    # ---- recording ----------------------------------------------------------------------------------

    def _first_outcome(self, alert: Alert, item: Stored, result: IntakeResult) -> AlertOutcome:
        rec = item.record
        out = AlertOutcome(alert.fingerprint, rec.model, Outcome.STORED, "recorded")
        if item.outcome is StoreOutcome.DUPLICATE:
            result.duplicates += 1
            out.outcome, out.reason = Outcome.DUPLICATE, f"already received as {rec.status} (same fingerprint " \
                                                         "and start time): nothing new"
            return out
        if item.outcome is StoreOutcome.STALE:
            result.duplicates += 1
            out.outcome, out.reason = Outcome.DUPLICATE, "already resolved: a late firing repeat changes nothing"
            return out
        if item.outcome is StoreOutcome.NEW:
            result.stored += 1
        if rec.status is AlertStatus.RESOLVED:
            result.resolved += 1
            out.outcome = Outcome.RESOLVED
            out.reason = ("resolved" if item.outcome is StoreOutcome.RESOLVED
                          else "resolved, never seen firing: nothing to undo")
            if rec.proposal_id is None and item.outcome is StoreOutcome.RESOLVED:
                out.reason += " (it was not part of any proposal)"
            return out
        if rec.model is None:
            result.ignored += 1
            shown = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items())[:8]) or "none"
            out.outcome, out.reason = Outcome.IGNORED, f"no model in the policy matches its labels ({shown})"
            return out
        return out

    # ---- grouping -----------------------------------------------------------------------------------

    def _group(self, model: str, actor: str, result: IntakeResult, by_id: dict[int, list[AlertOutcome]]) -> None:
        """All unattached firing alerts of ``model`` join its open proposal, or open one. Under the model lock."""
        pending = [r for r in self.store.firing_alerts(model) if r.proposal_id is None]
        if not pending:
            return  # another request attached them meanwhile
        severity = max(r.severity for r in pending)
        current = self.store.open_proposal(model)
        if current is not None:
            self._join(current, pending, severity, actor, result, by_id)
            return
        decision = self.service.decide_for(model, severity)
        if decision.action is Action.IGNORE:
            self._mark(pending, by_id, Outcome.IGNORED, decision.reason, result)
            return
        top = max(pending, key=lambda r: (r.severity, r.received_at))
        reason = top.summary if len(pending) == 1 else f"{len(pending)} alerts firing: {top.summary}"

        def attach(proposal: Proposal) -> None:
            self.store.attach_alerts(proposal.id, [r.id for r in pending], AuditEvent(
                actor=actor, action="proposal.alerts_joined", model=model, proposal_id=proposal.id,
                reason=f"{len(pending)} alert(s) opened this proposal: {_names(pending)}",
                inputs={"fingerprints": [r.fingerprint for r in pending][:50]}))

        try:
            proposal = self.service.request_rollback(
                model, actor=actor, reason=reason, kind=Kind.ALERT, severity=str(severity),
                metric_hints=self.metric_hints(pending) if self.metric_hints else None,
                alert_values=top.values or None, alert_severity=severity, on_created=attach)
        except Refused as exc:
            current = self.store.open_proposal(model)
            if current is not None:  # someone (a person, another bot) opened one first: join it
                self._join(current, pending, severity, actor, result, by_id)
            else:
                self._mark(pending, by_id, Outcome.REFUSED, str(exc), result)
            return
        result._add(result.proposals_created, proposal.id)
        if proposal.state is State.PROPOSED:
            self._mark(pending, by_id, Outcome.PROPOSED,
                       f"opened proposal #{proposal.id}: {proposal.decision_reason}", result)
        else:
            result._add(result.executed, proposal.id)
            self._mark(pending, by_id, Outcome.EXECUTED,
                       f"rolled back automatically (proposal #{proposal.id}, {proposal.state}): "
                       f"{proposal.decision_reason}", result)

    def _join(self, proposal: Proposal, pending: list[AlertRecord], severity: Severity, actor: str,
              result: IntakeResult, by_id: dict[int, list[AlertOutcome]]) -> None:
        joined = self.store.attach_alerts(proposal.id, [r.id for r in pending], AuditEvent(
            actor=actor, action="proposal.alerts_joined", model=proposal.model, proposal_id=proposal.id,
            reason=f"{len(pending)} alert(s) joined: {_names(pending)}",
            inputs={"fingerprints": [r.fingerprint for r in pending][:50]}))
        if not joined:
            return
        result._add(result.proposals_updated, proposal.id)
        detail = f"{len(pending)} alert(s) joined: {_names(pending)} (highest {severity})"
        self._mark(pending, by_id, Outcome.JOINED, f"joined proposal #{proposal.id} ({proposal.state})", result)
        if proposal.state is not State.PROPOSED:
            self.service.notify(self.store.get_proposal(proposal.id), "alerts", detail)
            return
        decision = self.service.decide_for(proposal.model, severity)
        if decision.action is Action.AUTO_EXECUTE:
            approved = self.store.transition(
                proposal.id, [State.PROPOSED], State.APPROVED,
                AuditEvent(actor=SYSTEM, action="proposal.approved", model=proposal.model,
                           from_version=proposal.from_version, to_version=proposal.to_version,
                           reason=f"a {severity} alert joined while it waited: {decision.reason}"),
                decided_by=SYSTEM, decided_at=self.clock.now(), severity=str(severity),
                decision_reason=decision.reason,
            )
            if approved is not None:
                self.service.notify(approved, "alerts", detail)
                try:
                    done = self.service.execute(proposal.id, SYSTEM)
                except IllegalTransition:  # another caller started it first; it runs once either way
                    done = self.store.get_proposal(proposal.id)
                result._add(result.executed, proposal.id)
                self._mark(pending, by_id, Outcome.EXECUTED,
                           f"joined proposal #{proposal.id} and turned it into an automatic rollback "
                           f"({done.state}): {decision.reason}", result)
                return
        updated: Proposal | None = None
        if severity > parse_severity(proposal.severity, Severity.INFO):
            updated = self.store.update_open(
                proposal.id,
                AuditEvent(actor=actor, action="proposal.severity_raised", model=proposal.model,
                           reason=f"severity {proposal.severity} → {severity}: {decision.reason}"),
                expect={"state": State.PROPOSED.value, "severity": proposal.severity},
                severity=str(severity), decision_reason=decision.reason,
            )
        self.service.notify(updated or self.store.get_proposal(proposal.id), "alerts", detail)

    def _mark(self, records: Sequence[AlertRecord], by_id: dict[int, list[AlertOutcome]], outcome: Outcome,
              reason: str, result: IntakeResult) -> None:
        """Set the outcome of this payload's alerts among ``records`` (earlier alerts only get attached)."""
        for out in self._outcomes(records, by_id):
            if out.outcome is Outcome.DUPLICATE:
                continue  # a repeat stays a duplicate in the answer even when it is attached now
            if out.outcome is Outcome.STORED and outcome in (Outcome.IGNORED, Outcome.REFUSED):
                if outcome is Outcome.IGNORED:
                    result.ignored += 1
                else:
                    result.refused += 1
            out.outcome, out.reason = outcome, reason

    @staticmethod
    def _outcomes(records: Sequence[AlertRecord], by_id: dict[int, list[AlertOutcome]]) -> Iterator[AlertOutcome]:
        for record in records:
            yield from by_id.get(record.id, [])

    # ---- resolution ---------------------------------------------------------------------------------

    def _on_resolved(self, proposal_id: int, records: list[AlertRecord], actor: str, result: IntakeResult,
                     by_id: dict[int, list[AlertOutcome]]) -> None:
        model = self.store.get_proposal(proposal_id).model
        with self.store.model_lock(model):
            proposal = self.store.get_proposal(proposal_id)
            when = max(r.resolved_at or r.ends_at or r.received_at for r in records)
            result._add(result.proposals_updated, proposal_id)
            if proposal.state is State.PROPOSED and proposal.kind is Kind.ALERT:
                alerts = self.store.alerts_for_proposal(proposal_id)
                firing = [a for a in alerts if a.status is AlertStatus.FIRING]
                if not firing:
                    why = f"all {len(alerts)} alert(s) resolved at {when:%H:%M} UTC before anyone decided"
                    cancelled = self.service.cancel(proposal_id, actor=actor, reason=why)
                    text = (f"resolved; proposal #{proposal_id} cancelled: {why}" if cancelled is not None
                            else f"resolved; proposal #{proposal_id} was decided meanwhile")
                else:
                    text = f"resolved; {len(firing)} of {len(alerts)} alert(s) of proposal #{proposal_id} still firing"
                    self.service.notify(proposal, "alerts",
                                        f"{_names(records)} resolved at {when:%H:%M} UTC; {len(firing)} of "
                                        f"{len(alerts)} still firing")
            elif proposal.state is State.PROPOSED:
                text = f"resolved; proposal #{proposal_id} was asked for by a person and stays open"
                self.service.notify(proposal, "alerts", f"{_names(records)} resolved at {when:%H:%M} UTC")
            else:
                text = f"resolved after proposal #{proposal_id} was {proposal.state}: added to its timeline"
                self.service.notify(proposal, "timeline", f"{_names(records)} resolved at {when:%H:%M} UTC")
            for out in self._outcomes(records, by_id):
                out.reason = text


__all__ = [
    "AlertIntake",
    "AlertOutcome",
    "AlertRecord",
    "AlertStore",
    "IntakeResult",
    "Outcome",
    "StoreOutcome",
    "Stored",
]
