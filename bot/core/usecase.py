"""What every use case shares: the service's state, lookups, refusals, notifications and the one path from
"approved" to the executor. The use cases themselves live in requests.py, approvals (service.py),
controls.py and sweeps.py, composed into RollbackService.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bot.core import oplog
from bot.core.actor import Actor
from bot.core.audit import AuditEvent
from bot.core.authorization import REFUSED_AUDIT, Act, Verdict, authorize
from bot.core.clock import Clock
from bot.core.errors import Refused, RollbackError, UnknownModel
from bot.core.events import AuditAction, CardEvent
from bot.core.execution import SYSTEM, ApprovedQueue, Executor
from bot.core.policy import Decision, ModelPolicy, Policy, decide
from bot.core.ports import (
    ApproverDirectory,
    DeploymentTarget,
    Intent,
    Notifier,
    NullNotifier,
    StaticDirectory,
    Store,
    tell,
)
from bot.core.proposal import Proposal, ProposalChange, State
from bot.core.selection import Deployment
from bot.core.severity import Severity

log = logging.getLogger(__name__)

TIMEOUT_ACTOR = "bot:timeout"


@dataclass(frozen=True)
class ApproveRequest:
    """Everything approve_and_execute needs, typed: who approves which proposal, why, and what to announce."""

    proposal: Proposal
    actor: str
    reason: str
    announce: bool = True  # an automatic rollback's card appears in its final state: no "approved" card
    event: CardEvent = CardEvent.APPROVED
    detail: str | None = None
    change: ProposalChange = field(default_factory=ProposalChange)  # severity / decision_reason of an escalation


class _RunNow:
    """Approved proposals executed in the caller's thread (no workers: the CLI, embedded use, tests)."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    def submit(self, approved: Proposal, actor: str) -> Proposal:
        return self.executor.run(approved.id, actor)


class UseCase:
    """The state and helpers the use-case mixins share; built once, through the constructor."""

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
        executor: Executor | None = None,
        queue: ApprovedQueue | None = None,
    ) -> None:
        """``queue`` takes approved proposals: run at once (CLI, tests) or by the executor worker (serve)."""
        self.store = store
        self.policy = policy
        self.targets = targets
        self.clock = clock
        self.notifier: Notifier = notifier or NullNotifier()
        self.directory: ApproverDirectory = directory or StaticDirectory()
        self.summarise = summarise
        self.verification_enabled = verification_enabled
        self.executor = executor or Executor(store, policy, targets, clock, self.notifier, verification_enabled)
        self.queue: ApprovedQueue = queue or _RunNow(self.executor)

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

    def notify(self, proposal: Proposal | None, event: CardEvent, detail: str | None = None) -> None:
        """Tell people a proposal changed (its card); never raises. Public for intake's "alerts"/"timeline"."""
        self._notify(proposal, event, detail)

    def _notify(self, proposal: Proposal | None, event: CardEvent, detail: str | None = None, *,
                written: bool = False) -> None:
        """``written``: the store wrote this intent in the change's transaction (the outbox only needs a wake)."""
        tell(self.notifier, proposal, event, detail, written=written)

    def _refuse(self, actor: str, model: str | None, reason: str, action: str = AuditAction.ROLLBACK_REFUSED,
                proposal_id: int | None = None, inputs: dict[str, Any] | None = None) -> Refused:
        oplog.event(action, model=model, proposal=proposal_id, actor=actor, reason=reason)
        self.store.append_audit(AuditEvent(actor=actor, action=action, model=model, proposal_id=proposal_id,
                                           reason=reason, inputs=inputs or {}))
        return Refused(reason)

    # ---- authorization (rules in bot/core/authorization.py; one call per action) --------------------------

    def authorize(self, actor: Actor | str, action: Act, model: str, *, proposal_id: int | None = None,
                  requested_by: str | None = None) -> Verdict:
        """The one check every entry point (Slack, CLI, HTTP) goes through before acting on ``model``.

        Raises Refused, audited once here, unless the policy lets ``actor`` do ``action``; a Slack pre-check
        (the Deny button before its modal) asks the same question and so is audited the same way.
        """
        return self._authorize(actor, action, self.model_policy(model), proposal_id, requested_by)

    def _authorize(self, actor: Actor | str, action: Act, policy: ModelPolicy, proposal_id: int | None = None,
                   requested_by: str | None = None) -> Verdict:
        who = Actor.of(actor)
        verdict = authorize(who, action, policy, self.directory, requested_by=requested_by)
        if not verdict.allowed:
            raise self._refuse(str(who), policy.name, verdict.reason, REFUSED_AUDIT[action], proposal_id)
        return verdict

    def approve_and_execute(self, request: ApproveRequest) -> Proposal:
        """The one way a proposal becomes approved and reaches the executor (people, policy, timeouts, undo)."""
        p = request.proposal
        approved = self.store.transition(
            p.id, State.APPROVED,
            AuditEvent(actor=request.actor, action=AuditAction.PROPOSAL_APPROVED, model=p.model,
                       from_version=p.from_version, to_version=p.to_version, reason=request.reason),
            change=replace(request.change, decided_by=request.actor, decided_at=self.clock.now()),
            intent=Intent(request.event, request.detail) if request.announce else None,
        )
        if approved is None:
            return self.store.get_proposal(p.id)
        oplog.event("proposal.approved", proposal=p.id, model=p.model, actor=request.actor)
        if request.announce:
            self._notify(approved, request.event, request.detail, written=True)
        return self.queue.submit(approved, request.actor)

    def cancel(self, proposal_id: int, actor: str, reason: str) -> Proposal | None:
        proposal = self.store.get_proposal(proposal_id)
        cancelled = self.store.transition(
            proposal_id, State.CANCELLED,
            AuditEvent(actor=actor, action=AuditAction.PROPOSAL_CANCELLED, model=proposal.model,
                       from_version=proposal.from_version, to_version=proposal.to_version, reason=reason),
            change=ProposalChange(decided_by=actor, decided_at=self.clock.now(), result=reason),
            intent=Intent(CardEvent.CANCELLED, reason),
        )
        if cancelled is not None:
            oplog.event("proposal.cancelled", proposal=proposal_id, model=proposal.model, actor=actor, reason=reason)
        self._notify(cancelled, CardEvent.CANCELLED, reason, written=True)
        return cancelled

    # ---- alerts -----------------------------------------------------------------------------------------

    def decide_for(self, model: str, severity: Severity, *, abort_canary: bool = False) -> Decision:
        policy = self.model_policy(model)
        decision = decide(severity, policy, self.store.model_state(model), self.clock.now(),
                          abort_canary=abort_canary)
        oplog.event("rollback.decision", model=model, severity=str(severity), action=decision.action.value,
                    why=decision.reason)
        return decision


__all__ = ["SYSTEM", "TIMEOUT_ACTOR", "ApproveRequest", "UseCase"]
