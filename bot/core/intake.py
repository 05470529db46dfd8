"""Alert intake: normalised alerts in, one proposal per model incident out. No SQL, HTTP or Slack here.

Why this shape: senders repeat themselves (Alertmanager every ``repeat_interval``, two Alertmanagers in HA
both send everything) and give up after seconds, so a request only records each alert once, atomically
(the inbox), and answers. The decider then takes one model's inbox at a time under that model's lease, so
two replicas (or an HA pair hitting two replicas) end with one proposal and one decision, never one per
alert, per repeat or per request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.core.actor import Actor
from bot.core.alert import Alert, AlertStatus
from bot.core.audit import AuditEvent
from bot.core.clock import Clock
from bot.core.errors import Refused
from bot.core.events import AuditAction, CardEvent
from bot.core.policy import Action, no_data_severity
from bot.core.ports import AlertStore
from bot.core.proposal import Kind, Proposal, ProposalAction, ProposalChange, ProposalExpect, State
from bot.core.requests import AlertEvidence, RollbackRequest
from bot.core.service import SYSTEM, ApproveRequest, RollbackService
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
    version: str | None = None  # the version the alert names; None: it names none
    outcome: str | None = None  # what the decider last made of it (Outcome's value), None before it decided

    def names_other_than(self, live: str | None) -> bool:
        """True when the alert is about a version other than ``live``: it must not act on ``live``."""
        return self.version is not None and live is not None and self.version != live


MetricHints = Callable[[Sequence[AlertRecord]], Mapping[str, str]]


@dataclass(frozen=True)
class Stored:
    outcome: StoreOutcome
    record: AlertRecord


@dataclass(frozen=True)
class AlertBatch:
    """One request's alerts, each with its model (or None), as the inbox writes them."""

    source: str
    alerts: Sequence[tuple[Alert, str | None]]
    received_at: datetime


class Outcome(StrEnum):
    PROPOSED = "proposed"  # opened a new proposal
    JOINED = "joined"  # joined the model's open proposal
    EXECUTED = "executed"  # caused an automatic rollback
    DUPLICATE = "duplicate"
    IGNORED = "ignored"  # no model, below min_severity, frozen
    REFUSED = "refused"  # the policy could not propose (no earlier version, a rollback just finished…)
    STALE = "stale"  # names a version that is not live: recorded (and shown on the incident), never acted on
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
    stale: int = 0
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
            "refused": self.refused, "resolved": self.resolved, "stale": self.stale,
            "proposals_created": self.proposals_created,
            "proposals_updated": updated, "executed": self.executed,
            "alerts": [a.as_json() for a in self.alerts[:MAX_DETAILS]],
        }


@dataclass
class ModelDecision:
    """What one pass of the decider over one model's inbox did."""

    outcomes: dict[int, tuple[Outcome, str]] = field(default_factory=dict)
    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    executed: list[int] = field(default_factory=list)

    def set(self, records: Sequence[AlertRecord], outcome: Outcome, reason: str) -> None:
        for record in records:
            self.outcomes[record.id] = (outcome, reason)

    def add(self, bucket: list[int], proposal_id: int) -> None:
        if proposal_id not in bucket:
            bucket.append(proposal_id)


def _names(records: Sequence[AlertRecord], limit: int = 3) -> str:
    names = sorted({r.name for r in records})
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


class AlertIntake:
    """Records payloads (the request) and decides each model's inbox (the decider worker)."""

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

    def prepared(self, source: str, alert: Alert) -> tuple[Alert, str | None]:
        """The alert as the decider needs it, with its model: the version it names (the source's
        ``version_label``) and, for a sender's "No Data", the severity the model's ``no_data`` gives."""
        model = self.model_for(alert)
        version = alert.version or self.service.policy.alert_source(source).version_of(alert.labels)
        severity = alert.severity
        policy = self.service.policy.model(model) if model else None
        if alert.no_data and policy is not None:
            severity = min(severity, no_data_severity(policy))
        if version == alert.version and severity == alert.severity:
            return alert, model
        return replace(alert, version=version, severity=severity), model

    # ---- the request: record, nothing else ------------------------------------------------------------

    def record(self, source: str, alerts: list[Alert], received_at: datetime) -> tuple[IntakeResult, list[int]]:
        """Store the batch in one transaction; the answer, and the ids of every alert in it (in order)."""
        return self.record_many([self.batch(source, alerts, received_at)])[0]

    def batch(self, source: str, alerts: list[Alert], received_at: datetime) -> AlertBatch:
        """A request's alerts ready to store: each with its model, version and effective severity."""
        return AlertBatch(source, [self.prepared(source, a) for a in alerts], received_at)

    def record_many(self, batches: Sequence[AlertBatch]) -> list[tuple[IntakeResult, list[int]]]:
        """Several requests' batches in one transaction; each request's answer and alert ids, in order."""
        answers = []
        for batch, stored in zip(batches, self.store.store_batches(batches), strict=True):
            result = IntakeResult()
            for (alert, _), item in zip(batch.alerts, stored, strict=True):
                result.alerts.append(self._first_outcome(alert, item, result))
            answers.append((result, [item.record.id for item in stored]))
        return answers

    @staticmethod
    def models_to_decide(result: IntakeResult) -> list[str]:
        return sorted({a.model for a in result.alerts
                       if a.model and a.outcome in (Outcome.STORED, Outcome.RESOLVED)})

    @staticmethod
    def merge(result: IntakeResult, ids: Sequence[int], decision: ModelDecision) -> None:
        """Fold a decision into a request's answer (when the request waited for it: no-worker builds)."""
        for out, alert_id in zip(result.alerts, ids, strict=True):
            found = decision.outcomes.get(alert_id)
            if found is None or out.outcome is Outcome.DUPLICATE:
                continue
            outcome, reason = found
            if out.outcome is Outcome.RESOLVED:
                out.reason = reason
                continue
            if out.outcome is Outcome.STORED and outcome is Outcome.IGNORED:
                result.ignored += 1
            elif out.outcome is Outcome.STORED and outcome is Outcome.REFUSED:
                result.refused += 1
            elif out.outcome is Outcome.STORED and outcome is Outcome.STALE:
                result.stale += 1
            out.outcome, out.reason = outcome, reason
        for pid in decision.created:
            result._add(result.proposals_created, pid)
        for pid in decision.updated:
            result._add(result.proposals_updated, pid)
        for pid in decision.executed:
            result._add(result.executed, pid)

    # ---- the decider: one model's inbox, under that model's lease ------------------------------------

    def decide(self, model: str) -> ModelDecision:
        """Group the model's new alerts into its incident and decide once. The caller holds the model's lease.

        One unit of work: the proposal, the alerts it took, its approval and the alerts marked decided commit
        together (one transaction, not one per write), and the executor and the Slack sender are woken after
        that commit, so neither looks before the decision is there to see."""
        with self.store.atomic():
            return self._decide(model)

    def _decide(self, model: str) -> ModelDecision:
        decision = ModelDecision()
        pending = self.store.pending_alerts(model)
        if not pending:
            return decision
        resolved: dict[int, list[AlertRecord]] = {}
        for r in pending:
            if r.status is AlertStatus.RESOLVED and r.proposal_id is not None:
                resolved.setdefault(r.proposal_id, []).append(r)
            elif r.status is AlertStatus.RESOLVED:
                decision.set([r], Outcome.RESOLVED, "resolved before the bot decided on it: nothing to do")
        for proposal_id, records in sorted(resolved.items()):
            self._on_resolved(proposal_id, records, decision)
        new = [r for r in pending if r.status is AlertStatus.FIRING and r.proposal_id is None]
        if new:
            self._group(model, new, decision)
        self.store.mark_decided({r.id: (decision.outcomes.get(r.id, (Outcome.STORED, "recorded"))[0].value,
                                        decision.outcomes.get(r.id, (Outcome.STORED, "recorded"))[1])
                                 for r in pending})
        return decision

    # ---- recording ----------------------------------------------------------------------------------

    def _first_outcome(self, alert: Alert, item: Stored, result: IntakeResult) -> AlertOutcome:
        rec = item.record
        out = AlertOutcome(alert.fingerprint, rec.model, Outcome.STORED, "recorded; the decider takes it from here")
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

    def _group(self, model: str, pending: list[AlertRecord], d: ModelDecision) -> None:
        """The model's new firing alerts join its open proposal, or open one (or are refused, once).

        An alert that names a version counts against that version only: one naming another version than
        the live one (the open proposal's ``from``) is recorded as stale and never moves the live one.
        """
        history = self.service.store.history(model)
        current = self.store.open_proposal(model)
        live = current.from_version if current is not None else (history[-1].version if history else None)
        stale = [r for r in pending if r.names_other_than(live)]
        if stale:
            self._stale(model, stale, live, {h.version for h in history}, current, d)
            pending = [r for r in pending if not r.names_other_than(live)]
            if not pending:
                return
        actor = str(Actor.alert(pending[0].source))
        severity = max(r.severity for r in pending)
        if current is not None:
            self._join(current, pending, severity, actor, d)
            return
        decision = self.service.decide_for(model, severity)
        if decision.action is Action.IGNORE:
            d.set(pending, Outcome.IGNORED, decision.reason)
            return
        top = max(pending, key=lambda r: (r.severity, r.received_at))
        reason = top.summary if len(pending) == 1 else f"{len(pending)} alerts firing: {top.summary}"

        def attach(proposal: Proposal) -> None:
            self.store.attach_alerts(proposal.id, [r.id for r in pending], AuditEvent(
                actor=actor, action=AuditAction.PROPOSAL_ALERTS_JOINED, model=model, proposal_id=proposal.id,
                reason=f"{len(pending)} alert(s) opened this proposal: {_names(pending)}",
                inputs={"fingerprints": [r.fingerprint for r in pending][:50]}))

        try:
            evidence = AlertEvidence(severity, self.metric_hints(pending) if self.metric_hints else {},
                                     top.values or {},
                                     live if any(r.version is not None for r in pending) else None)
            proposal = self.service.request_rollback(RollbackRequest(
                model, actor=actor, reason=reason, kind=Kind.ALERT, severity=str(severity), alerts=evidence,
                on_created=attach))
        except Refused as exc:
            current = self.store.open_proposal(model)
            if current is not None:  # someone (a person, another bot) opened one first: join it
                self._join(current, pending, severity, actor, d)
            else:
                self._refused(model, pending, str(exc), actor, d)
            return
        d.add(d.created, proposal.id)
        if proposal.state is State.PROPOSED:
            d.set(pending, Outcome.PROPOSED, f"opened proposal #{proposal.id}: {proposal.decision_reason}")
        else:
            d.add(d.executed, proposal.id)
            d.set(pending, Outcome.EXECUTED, f"rolled back automatically (proposal #{proposal.id}, "
                                             f"{proposal.state}): {proposal.decision_reason}")

    def _stale(self, model: str, stale: list[AlertRecord], live: str | None, deployed: set[str],
               current: Proposal | None, d: ModelDecision) -> None:
        """Alerts about a version that is not live: recorded with why, shown on the incident they concern."""
        for r in stale:
            never = "" if r.version in deployed else ", which was never deployed"
            d.set([r], Outcome.STALE, f"names version {r.version}{never}; live is {live}: recorded, not acted on")
        # Written before the incident hears of them, so its card (drawn by another worker) shows them as stale.
        self.store.mark_decided({r.id: (Outcome.STALE.value, d.outcomes[r.id][1]) for r in stale})
        target = current
        if target is None:  # no open incident: the finished one about that version, if it is the latest
            latest = self.store.latest_proposal(model)
            if latest is not None:
                stale = [r for r in stale if r.version == latest.from_version]
                target = latest if stale else None
        if target is None:
            return
        versions = ", ".join(sorted({str(r.version) for r in stale}))
        detail = (f"{len(stale)} alert(s) name version {versions}, live is {live}: shown as stale, "
                  f"not acted on ({_names(stale)})")
        actor = str(Actor.alert(stale[0].source))
        attached = self.store.attach_alerts(target.id, [r.id for r in stale], AuditEvent(
            actor=actor, action=AuditAction.PROPOSAL_ALERTS_JOINED, model=model, proposal_id=target.id,
            reason=detail, inputs={"fingerprints": [r.fingerprint for r in stale][:50], "stale": True,
                                   "versions": sorted({str(r.version) for r in stale}), "live": live}))
        if attached:
            d.add(d.updated, target.id)
            self.service.notify(self.store.get_proposal(target.id),
                                CardEvent.ALERTS if target.open else CardEvent.TIMELINE, detail)

    def _refused(self, model: str, pending: list[AlertRecord], why: str, actor: str, d: ModelDecision) -> None:
        """Refused once (one audit row, written by the refusal); the alerts join the incident that caused it."""
        d.set(pending, Outcome.REFUSED, why)
        latest = self.store.latest_proposal(model)
        policy = self.service.policy.model(model)
        if latest is None or policy is None or latest.finished_at is None:
            return
        if self.clock.now() - latest.finished_at > policy.cooldown:
            return
        self.store.attach_alerts(latest.id, [r.id for r in pending], AuditEvent(
            actor=actor, action=AuditAction.PROPOSAL_ALERTS_JOINED, model=model, proposal_id=latest.id,
            reason=f"{len(pending)} alert(s) joined after the rollback: {_names(pending)} (not acted on: {why})",
            inputs={"fingerprints": [r.fingerprint for r in pending][:50]}))
        d.add(d.updated, latest.id)

    def _join(self, proposal: Proposal, pending: list[AlertRecord], severity: Severity, actor: str,
              d: ModelDecision) -> None:
        joined = self.store.attach_alerts(proposal.id, [r.id for r in pending], AuditEvent(
            actor=actor, action=AuditAction.PROPOSAL_ALERTS_JOINED, model=proposal.model, proposal_id=proposal.id,
            reason=f"{len(pending)} alert(s) joined: {_names(pending)}",
            inputs={"fingerprints": [r.fingerprint for r in pending][:50]}))
        if not joined:
            return
        d.add(d.updated, proposal.id)
        detail = f"{len(pending)} alert(s) joined: {_names(pending)} (highest {severity})"
        d.set(pending, Outcome.JOINED, f"joined proposal #{proposal.id} ({proposal.state})")
        if proposal.state is not State.PROPOSED:
            self.service.notify(self.store.get_proposal(proposal.id), CardEvent.ALERTS, detail)
            return
        decision = self.service.decide_for(proposal.model, severity,
                                           abort_canary=proposal.action is ProposalAction.ABORT_CANARY)
        if decision.action is Action.AUTO_EXECUTE:
            done = self.service.approve_and_execute(ApproveRequest(
                proposal, SYSTEM, f"a {severity} alert joined while it waited: {decision.reason}",
                event=CardEvent.ALERTS, detail=detail,
                change=ProposalChange(severity=str(severity), decision_reason=decision.reason)))
            if done.decided_by == SYSTEM:
                d.add(d.executed, proposal.id)
                d.set(pending, Outcome.EXECUTED, f"joined proposal #{proposal.id} and turned it into an automatic "
                                                 f"rollback ({done.state}): {decision.reason}")
                return
        updated: Proposal | None = None
        if severity > parse_severity(proposal.severity, Severity.INFO):
            updated = self.store.update_open(
                proposal.id,
                AuditEvent(actor=actor, action=AuditAction.PROPOSAL_SEVERITY_RAISED, model=proposal.model,
                           reason=f"severity {proposal.severity} → {severity}: {decision.reason}"),
                ProposalExpect(state=State.PROPOSED, severity=proposal.severity),
                change=ProposalChange(severity=str(severity), decision_reason=decision.reason),
            )
        self.service.notify(updated or self.store.get_proposal(proposal.id), CardEvent.ALERTS, detail)

    # ---- resolution ---------------------------------------------------------------------------------

    def _on_resolved(self, proposal_id: int, records: list[AlertRecord], d: ModelDecision) -> None:
        actor = str(Actor.alert(records[0].source))
        proposal = self.store.get_proposal(proposal_id)
        when = max(r.resolved_at or r.ends_at or r.received_at for r in records)
        d.add(d.updated, proposal_id)
        if proposal.state is State.PROPOSED and proposal.kind is Kind.ALERT:
            alerts = [a for a in self.store.alerts_for_proposal(proposal_id)
                      if not a.names_other_than(proposal.from_version)]  # stale alerts never held it open
            firing = [a for a in alerts if a.status is AlertStatus.FIRING]
            if not firing:
                why = f"all {len(alerts)} alert(s) resolved at {when:%H:%M} UTC before anyone decided"
                cancelled = self.service.cancel(proposal_id, actor=actor, reason=why)
                text = (f"resolved; proposal #{proposal_id} cancelled: {why}" if cancelled is not None
                        else f"resolved; proposal #{proposal_id} was decided meanwhile")
            else:
                text = f"resolved; {len(firing)} of {len(alerts)} alert(s) of proposal #{proposal_id} still firing"
                self.service.notify(proposal, CardEvent.ALERTS,
                                    f"{_names(records)} resolved at {when:%H:%M} UTC; {len(firing)} of "
                                    f"{len(alerts)} still firing")
        elif proposal.state is State.PROPOSED:
            text = f"resolved; proposal #{proposal_id} was asked for by a person and stays open"
            self.service.notify(proposal, CardEvent.ALERTS, f"{_names(records)} resolved at {when:%H:%M} UTC")
        else:
            text = f"resolved after proposal #{proposal_id} was {proposal.state}: added to its timeline"
            self.service.notify(proposal, CardEvent.TIMELINE, f"{_names(records)} resolved at {when:%H:%M} UTC")
        d.set(records, Outcome.RESOLVED, text)


__all__ = [
    "AlertIntake",
    "AlertOutcome",
    "AlertRecord",
    "AlertStore",
    "IntakeResult",
    "ModelDecision",
    "Outcome",
    "StoreOutcome",
    "Stored",
]
