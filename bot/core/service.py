"""Rollback orchestration: requests, approvals, execution, deadlines, stability. No I/O of its own.

Every state change goes through the Store as one compare-and-set with its audit row; the target is called
only by the caller that won the change to `executing`, so nothing runs twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.core import oplog
from bot.core.audit import AuditEvent
from bot.core.clock import Clock
from bot.core.durations import format_duration
from bot.core.errors import (
    IllegalTransition,
    Refused,
    RollbackError,
    TargetError,
    UnknownModel,
)
from bot.core.metrics import MetricLine
from bot.core.policy import Action, Decision, ModelPolicy, OnTimeout, Policy, decide
from bot.core.ports import (
    ApproverDirectory,
    DeploymentTarget,
    NewProposal,
    Notifier,
    NullNotifier,
    OpenProposalExists,
    StaleProposal,
    StaticDirectory,
    Store,
    SwitchRequest,
)
from bot.core.proposal import Kind, Proposal, State, check_transition
from bot.core.selection import Deployment, choose_target
from bot.core.severity import Severity

log = logging.getLogger(__name__)

SYSTEM = "bot:policy"
TIMEOUT_ACTOR = "bot:timeout"
STUCK_AFTER = timedelta(minutes=30)


@dataclass(frozen=True)
class ApprovalOutcome:
    proposal: Proposal
    message: str
    executed: bool = False


def slack_user(actor: str) -> str | None:
    return actor.split(":", 1)[1] if actor.startswith("slack:") else None


class RollbackService:
    def __init__(
        self,
        store: Store,
        policy: Policy,
        targets: Mapping[str, DeploymentTarget],
        clock: Clock,
        notifier: Notifier | None = None,
        directory: ApproverDirectory | None = None,
        summarise: Callable[[ModelPolicy, Deployment | None, Mapping[str, str]], dict[str, Any]] | None = None,
        verification_enabled: bool = False,
    ) -> None:
        self.store = store
        self.policy = policy
        self.targets = targets
        self.clock = clock
        self.notifier: Notifier = notifier or NullNotifier()
        self.directory: ApproverDirectory = directory or StaticDirectory()
        self.summarise = summarise
        self.verification_enabled = verification_enabled

    # ---- lookups ----------------------------------------------------------------------------------------

    def model_policy(self, model: str) -> ModelPolicy:
        found = self.policy.model(model)
        if found is None:
            raise UnknownModel(model, list(self.policy.models))
        return found

    def target_for(self, policy: ModelPolicy) -> DeploymentTarget:
        target = self.targets.get(policy.target)
        if target is None:
            raise RollbackError(f"target '{policy.target}' of {policy.name} is not available in this build")
        return target

    def notify(self, proposal: Proposal | None, event: str, detail: str | None = None) -> None:
        """Tell people a proposal changed (its card); never raises. Public for intake's "alerts"/"timeline"."""
        self._notify(proposal, event, detail)

    def _notify(self, proposal: Proposal | None, event: str, detail: str | None = None) -> None:
        if proposal is None:
            return
        try:
            self.notifier.changed(proposal, event, detail)
        except Exception:  # the card is re-synced from the database later; never lose the state change
            log.exception("notifying about proposal #%s (%s) failed", proposal.id, event)

    def _refuse(self, actor: str, model: str | None, reason: str, action: str = "rollback.refused",
                proposal_id: int | None = None, inputs: dict[str, Any] | None = None) -> Refused:
        oplog.event(action, model=model, proposal=proposal_id, actor=actor, reason=reason)
        self.store.append_audit(AuditEvent(actor=actor, action=action, model=model, proposal_id=proposal_id,
                                           reason=reason, inputs=inputs or {}))
        return Refused(reason)

    # ---- deployments ------------------------------------------------------------------------------------

    def deploy(self, model: str, version: str, *, actor: str, deployed_by: str | None = None,
               source: str | None = None, metadata: dict[str, Any] | None = None,
               stable: bool = False) -> Deployment:
        try:
            policy = self.model_policy(model)
        except UnknownModel as exc:
            self.store.append_audit(AuditEvent(actor=actor, action="deploy.refused", model=model,
                                               to_version=version, reason=str(exc)))
            raise
        version = version.strip()
        if not version:
            raise RollbackError("version must not be empty")
        history = self.store.history(model)
        previous = history[-1].version if history else None
        oplog.event("deployment.recorded", model=model, from_version=previous, to_version=version,
                    deployed_by=deployed_by or actor, source=source, stable=stable or None)
        return self.store.record_deployment(
            model, version, deployed_by=deployed_by, source=source, metadata=metadata or {},
            stable=stable, set_served=policy.target == "local",
            audit=AuditEvent(actor=actor, action="deploy", model=model, from_version=previous,
                             to_version=version, reason=f"deployed by {deployed_by or actor}"
                             + (f" via {source}" if source else "") + (" (marked stable)" if stable else ""),
                             inputs={"metadata": metadata or {}}),
        )

    # ---- requests ---------------------------------------------------------------------------------------

    def request_rollback(
        self,
        model: str,
        *,
        actor: str,
        reason: str,
        to_version: str | None = None,
        execute_now: bool = False,
        force_cooldown: bool = False,
        kind: Kind = Kind.MANUAL,
        severity: str = "manual",
        decision: Decision | None = None,
        metric_hints: Mapping[str, str] | None = None,
        alert_values: Mapping[str, float] | None = None,
        alert_severity: Severity | None = None,
        on_created: Callable[[Proposal], None] | None = None,
    ) -> Proposal:
        """Open a proposal (and, for break-glass or automatic decisions, run it at once).

        ``alert_severity`` lets the policy decide from the same model state the proposal is then checked
        against, so a rollback finishing in between makes the request stale instead of running it twice.
        ``on_created`` runs after the proposal is written and before anyone is told or anything runs (alert
        intake attaches its alerts there, so the first card already lists them).
        """
        try:
            policy = self.model_policy(model)
        except UnknownModel as exc:
            raise self._refuse(actor, model, str(exc)) from None
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
        if execute_now and in_cooldown and not force_cooldown and kind is Kind.MANUAL:
            assert cooldown_ends is not None
            raise self._refuse(actor, model,
                               f"{model} was rolled back at {state.last_rollback_at:%H:%M} UTC and is in "
                               f"cooldown until {cooldown_ends:%H:%M} UTC; pass --force to roll back again now")
        history = self.store.history(model)
        try:
            choice = choose_target(model, history, to_version)
        except RollbackError as exc:
            raise self._refuse(actor, model, str(exc)) from None
        if decision is None and alert_severity is not None:
            decision = decide(alert_severity, policy, state, now)
            oplog.event("rollback.decision", model=model, severity=str(alert_severity),
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
        summary = self._summary(policy, history[-1], metric_hints or {}, alert_values or {})
        runs = self._version_metrics(policy, choice.from_version, choice.to_version)
        if runs:
            summary = {**summary, "version_metrics": runs}
        new = NewProposal(
            model=model, from_version=choice.from_version, to_version=choice.to_version, kind=kind,
            requested_by=actor, reason=reason, target_note=choice.note, severity=severity,
            decision_reason=decision.reason, required_approvals=policy.required_approvals,
            dry_run=policy.dry_run, deadline_at=None if auto else now + policy.approval_timeout,
            summary=summary, seen_last_rollback_at=state.last_rollback_at,
        )
        created = AuditEvent(
            actor=actor, action="proposal.created", model=model, from_version=choice.from_version,
            to_version=choice.to_version, reason=reason,
            inputs={"decision": decision.action.value, "why": decision.reason, "target": choice.note,
                    "severity": severity, "kind": kind.value, "summary": summary},
        )
        try:
            try:
                proposal = self.store.create_proposal(new, created)
            except OpenProposalExists as exc:
                # Break-glass while a proposal waits for people (chat may be down): that one is superseded.
                waiting = exc.existing
                if not (execute_now and waiting and waiting.state is State.PROPOSED and waiting.deadline_at
                        and self.cancel(waiting.id, actor, f"superseded by a break-glass rollback by {actor}")):
                    raise
                proposal = self.store.create_proposal(new, created)
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
                    decision=decision.action.value, dry_run=policy.dry_run or None, why=decision.reason)
        if on_created is not None:
            on_created(proposal)
        if not auto:
            self._notify(proposal, "created")
            return proposal
        approved = self.store.transition(
            proposal.id, [State.PROPOSED], State.APPROVED,
            AuditEvent(actor=actor if execute_now else SYSTEM, action="proposal.approved", model=model,
                       from_version=proposal.from_version, to_version=proposal.to_version,
                       reason=decision.reason),
            decided_by=actor if execute_now else SYSTEM, decided_at=now,
        )
        if approved is None:
            return self.store.get_proposal(proposal.id)
        return self.execute(proposal.id, actor=approved.decided_by or SYSTEM)

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
        reader = getattr(target, "version_metrics", None)
        if reader is None:
            return {}
        try:
            return {"from": reader(policy.name, from_version, policy.target_settings),
                    "to": reader(policy.name, to_version, policy.target_settings)}
        except Exception:  # the registry being slow or down must not stop a proposal
            log.exception("run metrics of %s from %s failed", policy.name, policy.target)
            return {}

    # ---- approvals --------------------------------------------------------------------------------------

    def may_approve(self, policy: ModelPolicy, actor: str) -> bool:
        user = slack_user(actor)
        if user is None:
            return False
        if not policy.approvers:
            return True
        if user in policy.approvers:
            return True
        return any(user in self.directory.members(g) for g in policy.approvers if g.startswith("S"))

    def approvers_text(self, policy: ModelPolicy) -> str:
        if not policy.approvers:
            return "anyone in the channel"
        return ", ".join(f"group {a}" if a.startswith("S") else a for a in policy.approvers)

    def approve(self, proposal_id: int, actor: str) -> ApprovalOutcome:
        proposal = self.store.get_proposal(proposal_id)
        policy = self.model_policy(proposal.model)
        if proposal.state is not State.PROPOSED:
            return ApprovalOutcome(proposal, f"proposal #{proposal_id} is already {proposal.state.value}")
        if not self.may_approve(policy, actor):
            raise self._refuse(actor, proposal.model,
                               f"you may not approve rollbacks of {proposal.model}; approvers: "
                               f"{self.approvers_text(policy)}", "approval.refused", proposal_id)
        if not policy.allow_self_approval and actor == proposal.requested_by:
            raise self._refuse(actor, proposal.model,
                               "you asked for this rollback, and this model's policy does not allow "
                               "self-approval (allow_self_approval = false); another approver must approve",
                               "approval.refused", proposal_id)
        new, approvers = self.store.add_approval(proposal_id, actor, AuditEvent(
            actor=actor, action="approval.added", model=proposal.model, from_version=proposal.from_version,
            to_version=proposal.to_version, reason=f"approval from {actor}"))
        current = self.store.get_proposal(proposal_id)
        if not new:
            already = actor in approvers
            msg = "you already approved this rollback" if already else f"proposal is {current.state.value}"
            return ApprovalOutcome(current, msg)
        if len(approvers) < proposal.required_approvals:
            self._notify(current, "approval", f"{len(approvers)} of {proposal.required_approvals} approvals")
            return ApprovalOutcome(current, f"approval recorded: {len(approvers)} of "
                                            f"{proposal.required_approvals}")
        approved = self.store.transition(
            proposal_id, [State.PROPOSED], State.APPROVED,
            AuditEvent(actor=actor, action="proposal.approved", model=proposal.model,
                       from_version=proposal.from_version, to_version=proposal.to_version,
                       reason=f"{len(approvers)} approval(s): {', '.join(approvers)}"),
            decided_by=actor, decided_at=self.clock.now(),
        )
        if approved is None:
            return ApprovalOutcome(self.store.get_proposal(proposal_id), "someone else decided first")
        oplog.event("proposal.approved", proposal=proposal_id, model=approved.model, actor=actor)
        self._notify(approved, "approved")
        done = self.execute(proposal_id, actor=actor)
        return ApprovalOutcome(done, f"rollback {done.state.value}", executed=True)

    def deny(self, proposal_id: int, actor: str, reason: str | None = None) -> Proposal:
        proposal = self.store.get_proposal(proposal_id)
        policy = self.model_policy(proposal.model)
        if proposal.state is not State.PROPOSED:
            return proposal
        if not self.may_approve(policy, actor):
            raise self._refuse(actor, proposal.model,
                               f"you may not deny rollbacks of {proposal.model}; approvers: "
                               f"{self.approvers_text(policy)}", "denial.refused", proposal_id)
        denied = self.store.transition(
            proposal_id, [State.PROPOSED], State.DENIED,
            AuditEvent(actor=actor, action="proposal.denied", model=proposal.model,
                       from_version=proposal.from_version, to_version=proposal.to_version,
                       reason=reason or "no reason given"),
            decided_by=actor, decided_at=self.clock.now(), error=reason,
        )
        if denied is None:
            return self.store.get_proposal(proposal_id)
        self.store.record_denial(proposal_id, actor, reason)
        oplog.event("proposal.denied", proposal=proposal_id, model=proposal.model, actor=actor, reason=reason)
        self._notify(denied, "denied", reason)
        return denied

    def cancel(self, proposal_id: int, actor: str, reason: str) -> Proposal | None:
        proposal = self.store.get_proposal(proposal_id)
        cancelled = self.store.transition(
            proposal_id, [State.PROPOSED], State.CANCELLED,
            AuditEvent(actor=actor, action="proposal.cancelled", model=proposal.model,
                       from_version=proposal.from_version, to_version=proposal.to_version, reason=reason),
            decided_by=actor, decided_at=self.clock.now(), result=reason,
        )
        if cancelled is not None:
            oplog.event("proposal.cancelled", proposal=proposal_id, model=proposal.model, actor=actor, reason=reason)
        self._notify(cancelled, "cancelled", reason)
        return cancelled

    # ---- execution --------------------------------------------------------------------------------------

    def execute(self, proposal_id: int, actor: str) -> Proposal:
        """approved → executing → succeeded | failed. Only the caller that wins `executing` switches."""
        proposal = self.store.get_proposal(proposal_id)
        check_transition(proposal_id, proposal.state, State.EXECUTING)
        started = self.clock.now()
        running = self.store.transition(
            proposal_id, [State.APPROVED], State.EXECUTING,
            AuditEvent(actor=actor, action="rollback.executing", model=proposal.model,
                       from_version=proposal.from_version, to_version=proposal.to_version,
                       reason=proposal.reason),
            started_at=started,
        )
        if running is None:
            latest = self.store.get_proposal(proposal_id)
            raise IllegalTransition(proposal_id, latest.state.value, State.EXECUTING.value)
        self._notify(running, "executing")
        policy = self.model_policy(running.model)
        request = SwitchRequest(model=running.model, from_version=running.from_version,
                                to_version=running.to_version, proposal_id=proposal_id,
                                reason=running.reason, settings=policy.target_settings)
        oplog.event("rollback.switching", proposal=proposal_id, model=running.model, target=policy.target,
                    from_version=running.from_version, to_version=running.to_version, actor=actor,
                    dry_run=running.dry_run or None)
        try:
            target = self.target_for(policy)
            if running.dry_run:
                detail = f"dry run: would {target.describe(request)}; nothing was switched"
                served = None
            else:
                live = target.current_version(running.model, policy.target_settings)
                if live is not None and live not in (running.from_version, running.to_version):
                    raise TargetError(
                        f"{policy.target} reports version {live} live, not {running.from_version}: the model "
                        "changed since this proposal was made; nothing was switched"
                    )
                result = target.switch(request)
                detail, served = result.detail, result.served_version
        except TargetError as exc:
            return self._fail(running, actor, str(exc), {"status": exc.status, "body": (exc.body or "")[:2000]})
        except Exception as exc:  # an adapter bug must still end in `failed`, never stuck in `executing`
            log.exception("target %s failed for proposal #%s", policy.target, proposal_id)
            return self._fail(running, actor, f"unexpected error from target {policy.target}: "
                                              f"{type(exc).__name__}: {exc}", {})
        finished = self.clock.now()
        seconds = (finished - started).total_seconds()
        verify_at = finished + policy.verify_after if self.verification_enabled and not running.dry_run else None
        done = self.store.complete_rollback(
            proposal_id, result=detail, served=served, verify_at=verify_at, deployed_by=actor,
            audit=AuditEvent(actor=actor, action="rollback.dry_run" if running.dry_run else "rollback.succeeded",
                             model=running.model, from_version=running.from_version,
                             to_version=running.to_version, reason=detail,
                             inputs={"seconds": round(seconds, 3), "served_version": served,
                                     "target": policy.target}),
        )
        final = done or self.store.get_proposal(proposal_id)
        oplog.event("rollback.dry_run" if running.dry_run else "rollback.succeeded", proposal=proposal_id,
                    model=running.model, target=policy.target, from_version=running.from_version,
                    to_version=running.to_version, seconds=round(seconds, 3), detail=detail)
        self._notify(final, "succeeded", detail)
        return final

    def _fail(self, running: Proposal, actor: str, message: str, inputs: dict[str, Any]) -> Proposal:
        failed = self.store.transition(
            running.id, [State.EXECUTING], State.FAILED,
            AuditEvent(actor=actor, action="rollback.failed", model=running.model,
                       from_version=running.from_version, to_version=running.to_version, reason=message,
                       inputs=inputs),
            finished_at=self.clock.now(), error=message,
        )
        final = failed or self.store.get_proposal(running.id)
        oplog.event("rollback.failed", level=logging.ERROR, proposal=running.id, model=running.model,
                    from_version=running.from_version, to_version=running.to_version, error=message)
        self._notify(final, "failed", message)
        return final

    def undo(self, proposal_id: int, actor: str) -> Proposal:
        """Roll a finished rollback forward again: a new proposal through the same machine and audit."""
        original = self.store.get_proposal(proposal_id)
        policy = self.model_policy(original.model)
        if original.state is not State.SUCCEEDED or original.dry_run:
            raise self._refuse(actor, original.model, f"proposal #{proposal_id} is {original.state.value}; "
                               "only a completed rollback can be undone", "undo.refused", proposal_id)
        if not self.may_approve(policy, actor):
            raise self._refuse(actor, original.model, f"only approvers may undo a rollback of {original.model}: "
                               f"{self.approvers_text(policy)}", "undo.refused", proposal_id)
        history = self.store.history(original.model)
        if not history or history[-1].version != original.to_version:
            raise self._refuse(actor, original.model, f"{original.model} no longer runs {original.to_version}; "
                               "undo would overwrite a newer change", "undo.refused", proposal_id)
        now = self.clock.now()
        try:
            proposal = self.store.create_proposal(NewProposal(
                model=original.model, from_version=original.to_version, to_version=original.from_version,
                kind=Kind.UNDO, requested_by=actor, reason=f"undo of rollback #{proposal_id}",
                target_note=f"roll forward to {original.from_version} (undo of #{proposal_id})",
                severity="manual", decision_reason=f"undo asked by {actor}", required_approvals=1,
                dry_run=policy.dry_run, deadline_at=None, summary={}, undo_of=proposal_id,
                seen_last_rollback_at=self.store.model_state(original.model).last_rollback_at,
            ), AuditEvent(actor=actor, action="proposal.created", model=original.model,
                          from_version=original.to_version, to_version=original.from_version,
                          reason=f"undo of rollback #{proposal_id}", inputs={"kind": "undo"}))
        except (OpenProposalExists, StaleProposal):
            raise self._refuse(actor, original.model, f"a rollback of {original.model} is already under way",
                               "undo.refused", proposal_id) from None
        approved = self.store.transition(
            proposal.id, [State.PROPOSED], State.APPROVED,
            AuditEvent(actor=actor, action="proposal.approved", model=original.model,
                       from_version=proposal.from_version, to_version=proposal.to_version,
                       reason="undo by an approver"),
            decided_by=actor, decided_at=now,
        )
        if approved is None:
            return self.store.get_proposal(proposal.id)
        return self.execute(proposal.id, actor=actor)

    # ---- freeze -----------------------------------------------------------------------------------------

    def freeze(self, model: str, *, actor: str, duration: timedelta, reason: str | None) -> datetime:
        self.model_policy(model)
        until = self.clock.now() + duration
        self.store.set_freeze(model, until, reason, actor, AuditEvent(
            actor=actor, action="model.frozen", model=model,
            reason=f"frozen for {format_duration(duration)}" + (f": {reason}" if reason else "")))
        oplog.event("model.frozen", model=model, actor=actor, until=f"{until:%Y-%m-%dT%H:%MZ}", reason=reason)
        return until

    def unfreeze(self, model: str, *, actor: str) -> None:
        self.model_policy(model)
        self.store.set_freeze(model, None, None, None, AuditEvent(actor=actor, action="model.unfrozen",
                                                                  model=model, reason="unfrozen"))
        oplog.event("model.unfrozen", model=model, actor=actor)

    # ---- sweepers (each asks the database what is due; safe to run twice or on two replicas) -------------

    def sweep_stable(self) -> list[Deployment]:
        now = self.clock.now()
        due: dict[str, datetime] = {}
        for dep in self.store.current_deployments(list(self.policy.models)):
            if dep.stable_at is not None or dep.rolled_back_at is not None:
                continue
            policy = self.policy.models[dep.model]
            quiet = self.store.quiet_since(dep.model, dep.deployed_at)
            if quiet is not None and now - quiet >= policy.stable_after:
                due[str(dep.id)] = quiet
        return self.store.mark_stable_due(due, "bot:stability") if due else []

    def sweep_deadlines(self) -> list[Proposal]:
        now = self.clock.now()
        touched: list[Proposal] = []
        for proposal in self.store.due_deadlines(now):
            policy = self.policy.model(proposal.model)
            if policy is None or proposal.deadline_at is None:
                continue
            halfway = proposal.deadline_at - (policy.approval_timeout / 2)
            if proposal.deadline_at <= now:
                result = self._on_timeout(proposal, policy, now)
            elif not proposal.reminded and now >= halfway:
                result = self.store.update_open(proposal.id, None, expect={"reminded": False}, reminded=True)
                self._notify(result, "reminder", f"deadline {proposal.deadline_at:%H:%M} UTC")
            else:
                continue
            if result is not None:
                touched.append(result)
        return touched

    def _on_timeout(self, proposal: Proposal, policy: ModelPolicy, now: datetime) -> Proposal | None:
        if policy.on_timeout is OnTimeout.ESCALATE and not proposal.escalated:
            result = self.store.update_open(
                proposal.id,
                AuditEvent(actor=TIMEOUT_ACTOR, action="proposal.escalated", model=proposal.model,
                           reason=f"no decision within {format_duration(policy.approval_timeout)}; "
                                  f"escalated to {', '.join(policy.escalate_to) or 'nobody configured'}"),
                expect={"escalated": False}, escalated=True, reminded=False,
                deadline_at=now + policy.approval_timeout,
            )
            if result is not None:
                oplog.event("proposal.escalated", proposal=proposal.id, model=proposal.model,
                            to=" ".join(policy.escalate_to) or "nobody configured")
            self._notify(result, "escalated", " ".join(policy.escalate_to))
            return result
        if policy.on_timeout is OnTimeout.ROLLBACK:
            approved = self.store.transition(
                proposal.id, [State.PROPOSED], State.APPROVED,
                AuditEvent(actor=TIMEOUT_ACTOR, action="proposal.approved", model=proposal.model,
                           from_version=proposal.from_version, to_version=proposal.to_version,
                           reason=f"no decision within {format_duration(policy.approval_timeout)}; "
                                  "on_timeout = rollback"),
                decided_by=TIMEOUT_ACTOR, decided_at=now,
            )
            if approved is None:
                return None
            return self.execute(proposal.id, TIMEOUT_ACTOR)
        expired = self.store.transition(
            proposal.id, [State.PROPOSED], State.EXPIRED,
            AuditEvent(actor=TIMEOUT_ACTOR, action="proposal.expired", model=proposal.model,
                       from_version=proposal.from_version, to_version=proposal.to_version,
                       reason=f"no decision by {proposal.deadline_at:%H:%M} UTC"),
            decided_by=TIMEOUT_ACTOR, decided_at=now,
        )
        if expired is not None:
            oplog.event("proposal.expired", proposal=proposal.id, model=proposal.model)
        self._notify(expired, "expired")
        return expired

    def sweep_stuck(self) -> list[Proposal]:
        """A rollback left `executing` by a crash is failed, never re-run: the target's state is unknown."""
        failed = []
        for proposal in self.store.stuck_executing(self.clock.now() - STUCK_AFTER):
            message = ("interrupted while executing (the bot stopped); the target's state is unknown: check "
                       f"which version of {proposal.model} is live before acting again")
            done = self.store.transition(
                proposal.id, [State.EXECUTING], State.FAILED,
                AuditEvent(actor="bot:recovery", action="rollback.failed", model=proposal.model,
                           from_version=proposal.from_version, to_version=proposal.to_version, reason=message),
                finished_at=self.clock.now(), error=message)
            if done is not None:
                oplog.event("rollback.failed", level=logging.ERROR, proposal=proposal.id, model=proposal.model,
                            from_version=proposal.from_version, to_version=proposal.to_version, error=message)
            self._notify(done, "failed", message)
            if done:
                failed.append(done)
        return failed

    # ---- alerts -----------------------------------------------------------------------------------------

    def decide_for(self, model: str, severity: Severity) -> Decision:
        policy = self.model_policy(model)
        decision = decide(severity, policy, self.store.model_state(model), self.clock.now())
        oplog.event("rollback.decision", model=model, severity=str(severity), action=decision.action.value,
                    why=decision.reason)
        return decision


__all__ = ["ApprovalOutcome", "RollbackService"]
