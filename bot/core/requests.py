"""Requests: a person, a CLI break-glass or the decider asks for a rollback; one proposal, decided once."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.core import oplog
from bot.core.actor import Actor
from bot.core.audit import AuditEvent
from bot.core.authorization import Act
from bot.core.errors import RollbackError, UnknownModel
from bot.core.events import AuditAction, CardEvent
from bot.core.execution import SYSTEM
from bot.core.metrics import MetricLine
from bot.core.policy import Action, Decision, ModelPolicy, decide
from bot.core.policy_record import policy_values  # report hook: the policy in force, kept with the proposal
from bot.core.ports import (
    Intent,
    NewProposal,
    OpenProposalExists,
    ReportsCanary,
    ReportsVersionMetrics,
    StaleProposal,
    TrafficSplit,
)
from bot.core.proposal import Kind, Proposal, ProposalAction, State, action_inputs
from bot.core.selection import Choice, Deployment, choose_target
from bot.core.severity import Severity
from bot.core.usecase import ApproveRequest, UseCase

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertEvidence:
    """What the alerts behind a request said. Their severity is decided on from the same model state the
    proposal is then checked against, so a rollback finishing in between makes the request stale instead of
    running it twice; ``expect_from`` is the version they name: if another version is live by now, nothing is
    proposed, so an alert about one version can never roll back another."""

    severity: Severity
    metric_hints: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, float] = field(default_factory=dict)
    expect_from: str | None = None


@dataclass(frozen=True)
class RollbackRequest:
    """Who asks to roll which model back, why, and how: one typed value from Slack, the CLI, the decider and
    the drift sweep alike.

    ``execute_now``: break-glass (runs at once); ``decision``: the caller decided already (the drift sweep);
    ``alerts``: decide from the alerts' severity; ``on_created`` runs after the proposal is written and before
    anyone is told or anything runs (the decider attaches its alerts there, so the first card lists them).
    """

    model: str
    actor: Actor | str
    reason: str
    to_version: str | None = None
    execute_now: bool = False
    force_cooldown: bool = False
    kind: Kind = Kind.MANUAL
    severity: str = "manual"
    decision: Decision | None = None
    alerts: AlertEvidence | None = None
    on_created: Callable[[Proposal], None] | None = None


class Requests(UseCase):
    # ---- requests ---------------------------------------------------------------------------------------

    def request_rollback(self, request: RollbackRequest) -> Proposal:
        """Open a proposal (and, for break-glass or automatic decisions, run it at once)."""
        r = request
        model, to_version, execute_now, kind = r.model, r.to_version, r.execute_now, r.kind
        actor: Actor | str = r.actor
        decision = r.decision
        evidence = r.alerts
        who = Actor.of(actor)
        actor = str(who)
        try:
            policy = self.model_policy(model)
        except UnknownModel as exc:
            raise self._refuse(actor, model, str(exc)) from None
        self._authorize(who, Act.BREAK_GLASS if execute_now else Act.ROLLBACK, policy)
        now = self.clock.now()
        state = self.store.model_state(model)
        if state.frozen(now):
            assert state.frozen_until is not None
            why = f" ({state.frozen_reason})" if state.frozen_reason else ""
            raise self._refuse(actor, model,
                               f"{model} is frozen until {state.frozen_until:%Y-%m-%d %H:%M} UTC by "
                               f"{state.frozen_by}{why}; run `/rollback unfreeze {model}` first")
        cooldown_ends = state.cooldown_ends(policy)
        in_cooldown = cooldown_ends is not None and cooldown_ends > now
        if execute_now and in_cooldown and not r.force_cooldown and kind is Kind.MANUAL:
            assert cooldown_ends is not None
            raise self._refuse(actor, model,
                               f"{model} was rolled back at {state.last_rollback_at:%H:%M} UTC and is in "
                               f"cooldown until {cooldown_ends:%H:%M} UTC; pass --force to roll back again now")
        history = self.store.history(model)
        try:
            choice = choose_target(model, history, to_version)
        except RollbackError as exc:
            raise self._refuse(actor, model, str(exc)) from None
        expect_from = evidence.expect_from if evidence is not None else None
        if expect_from is not None and choice.from_version != expect_from:
            raise self._refuse(actor, model, f"the alert names version {expect_from}, but {model} runs "
                                             f"{choice.from_version} now: not rolling back {choice.from_version}")
        canary = self._canary(policy, choice, asked_for=to_version)
        action = ProposalAction.ABORT_CANARY if canary is not None else ProposalAction.ROLLBACK
        if decision is None and evidence is not None:
            decision = decide(evidence.severity, policy, state, now, abort_canary=canary is not None)
            oplog.event("rollback.decision", model=model, severity=str(evidence.severity),
                        action=decision.action.value, why=decision.reason)
            if decision.action is Action.IGNORE:
                raise self._refuse(actor, model, decision.reason)
        if decision is None:
            wait = (f"asked by {actor}: waiting for {policy.required_approvals} approval(s)"
                    if not execute_now else f"break-glass rollback by {actor}")
            if in_cooldown and not execute_now:
                wait += f" (in cooldown after a rollback at {state.last_rollback_at:%H:%M} UTC)"
            decision = Decision(Action.AUTO_EXECUTE if execute_now else Action.PROPOSE, wait, policy.dry_run)
        auto = decision.action is Action.AUTO_EXECUTE
        summary = self._summary(policy, history[-1], evidence.metric_hints if evidence else {},
                                evidence.values if evidence else {})
        runs = self._version_metrics(policy, choice.from_version, choice.to_version)
        if runs:
            summary = {**summary, "version_metrics": runs}
        note = choice.note
        if canary is not None:
            summary = {**summary, "traffic": {"before": canary.as_dict(), "after": canary.aborted().as_dict()}}
            note = (f"abort the canary of {choice.from_version} at {canary.canary_percent} %: "
                    f"{choice.to_version} keeps serving, at 100 %")
        new = NewProposal(
            model=model, from_version=choice.from_version, to_version=choice.to_version, kind=kind,
            requested_by=actor, reason=r.reason, target_note=note, severity=r.severity, action=action,
            decision_reason=decision.reason, required_approvals=policy.required_approvals,
            dry_run=policy.dry_run, deadline_at=None if auto else now + policy.approval_timeout,
            summary=summary, seen_last_rollback_at=state.last_rollback_at,
        )
        created = AuditEvent(
            actor=actor, action=AuditAction.PROPOSAL_CREATED, model=model, from_version=choice.from_version,
            to_version=choice.to_version, reason=r.reason,
            inputs={"decision": decision.action.value, "why": decision.reason, "target": note,
                    **action_inputs(action),
                    "severity": r.severity, "kind": kind.value, "summary": summary,
                    "policy": policy_values(policy)},  # report hook: read back by bot/core/report.py
        )
        try:
            try:
                proposal = self.store.create_proposal(new, created, None if auto else Intent(CardEvent.CREATED))
            except OpenProposalExists as exc:
                # Break-glass while a proposal waits for people (chat may be down): that one is superseded.
                waiting = exc.existing
                if not (execute_now and waiting and waiting.state is State.PROPOSED and waiting.deadline_at
                        and self.cancel(waiting.id, actor, f"superseded by a break-glass rollback by {actor}")):
                    raise
                proposal = self.store.create_proposal(new, created, None if auto else Intent(CardEvent.CREATED))
        except OpenProposalExists as exc:
            other = exc.existing
            what = f"proposal #{other.id} is {other.state.value}" if other else "another proposal is open"
            raise self._refuse(actor, model, f"a rollback of {model} is already under way ({what}); "
                                             "approve or deny that one instead") from None
        except StaleProposal as exc:
            raise self._refuse(actor, model, f"{exc} (another rollback or deployment finished meanwhile); "
                                             "check `/rollback status` and ask again if still needed") from None
        oplog.event("proposal.created", proposal=proposal.id, model=model, kind=kind.value,
                    from_version=proposal.from_version, to_version=proposal.to_version, actor=actor,
                    decision=decision.action.value, dry_run=policy.dry_run or None, why=decision.reason,
                    action=action.value)
        if r.on_created is not None:
            r.on_created(proposal)
        if not auto:
            self._notify(proposal, CardEvent.CREATED, written=True)
            return proposal
        return self.approve_and_execute(ApproveRequest(
            proposal, actor if execute_now else SYSTEM, decision.reason, announce=False))

    def _canary(self, policy: ModelPolicy, choice: Choice, asked_for: str | None) -> TrafficSplit | None:
        """The canary this request would abort instead of rolling back, if the target shows one.

        Only when the canary runs the version being rolled back and the stable side runs the version we would
        return to: anything else (a person asking for an older version, a canary of something else) is a
        rollback, as before. A target that cannot answer leaves it a rollback too, and so does a target that
        cannot name its stable version (KServe) when a person asked for a specific version.
        """
        target = self.targets.get(policy.target)
        if not isinstance(target, ReportsCanary):
            return None
        try:
            split = target.canary(policy.name, policy.target_settings)
        except Exception:
            log.exception("reading the canary of %s from %s failed", policy.name, policy.target)
            return None
        if split is None or split.canary_version not in (None, choice.from_version):
            return None
        if split.stable_version is None and asked_for is not None:
            return None
        if split.stable_version is not None and split.stable_version != choice.to_version:
            return None
        return split

    def _summary(self, policy: ModelPolicy, current: Deployment, hints: Mapping[str, str],
                 values: Mapping[str, float]) -> dict[str, Any]:
        """Numbers for the card, computed once and stored with the proposal (the audit shows what was seen)."""
        if self.summarise is not None:
            try:
                return self.summarise(policy, current, hints)
            except Exception:  # a metrics outage must never stop a rollback proposal
                log.exception("metric summary for %s failed", policy.name)
        if values:  # no Prometheus: show what Grafana or Datadog put in the alert, as it is
            lines = [MetricLine(k, "", float(v), None, None, None, "", False) for k, v in list(values.items())[:10]]
            return {"metrics": [line.to_dict() for line in lines], "exprs": {}, "source": "alert"}
        return {}

    def _version_metrics(self, policy: ModelPolicy, from_version: str, to_version: str) -> dict[str, Any]:
        """Per-version run metrics, where the target's registry keeps them (MLflow)."""
        target = self.targets.get(policy.target)
        if not isinstance(target, ReportsVersionMetrics):
            return {}
        reader = target.version_metrics
        try:
            return {"from": reader(policy.name, from_version, policy.target_settings),
                    "to": reader(policy.name, to_version, policy.target_settings)}
        except Exception:  # the registry being slow or down must not stop a proposal
            log.exception("run metrics of %s from %s failed", policy.name, policy.target)
            return {}


__all__ = ["AlertEvidence", "Requests", "RollbackRequest"]
