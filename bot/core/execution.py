"""Execution: approved → executing → succeeded | failed, and finishing what a dead executor left behind.

Only a worker holding the proposal's lease calls `run` (see bot/workers/executor.py), so two replicas never
switch the same proposal. A proposal found `executing` belongs to an executor whose lease expired (it died or
stalled): before anything else the target is asked which version is live, so a switch that completed is
recorded, one that never happened is done once, and anything else is failed naming the live version.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.core import oplog
from bot.core.audit import AuditEvent
from bot.core.clock import Clock
from bot.core.errors import RollbackError, TargetError
from bot.core.events import AuditAction, CardEvent
from bot.core.policy import ModelPolicy, Policy
from bot.core.ports import (
    ApprovedQueue,
    DeploymentTarget,
    Intent,
    Notifier,
    NullNotifier,
    ProposalWrites,
    ReportsCanary,
    SwitchRequest,
    SwitchResult,
    tell,
)
from bot.core.proposal import Proposal, ProposalAction, ProposalChange, State, action_inputs

log = logging.getLogger(__name__)

SYSTEM = "bot:policy"
RECOVERY_ACTOR = "bot:recovery"


@dataclass(frozen=True)
class Switched:
    detail: str
    served: str | None


class Executor:
    def __init__(self, store: ProposalWrites, policy: Policy, targets: Mapping[str, DeploymentTarget],
                 clock: Clock, notifier: Notifier | None = None, verification_enabled: bool = False) -> None:
        self.store = store
        self.policy = policy
        self.targets = targets
        self.clock = clock
        self.notifier: Notifier = notifier or NullNotifier()
        self.verification_enabled = verification_enabled

    def _notify(self, proposal: Proposal | None, event: CardEvent, detail: str | None = None) -> None:
        """Every call follows a store write that carried this intent in its own transaction."""
        tell(self.notifier, proposal, event, detail, written=True)

    def run(self, proposal_id: int, actor: str | None = None) -> Proposal:
        """Do whatever the proposal's state still owes; a no-op for any other state. Caller holds the lease."""
        proposal = self.store.get_proposal(proposal_id)
        if proposal.state is State.APPROVED:
            return self._start(proposal, actor or proposal.decided_by or SYSTEM)
        if proposal.state is State.EXECUTING:
            return self._resume(proposal)
        return proposal

    # ---- the normal path --------------------------------------------------------------------------------

    def _start(self, proposal: Proposal, actor: str) -> Proposal:
        started = self.clock.now()
        running = self.store.transition(
            proposal.id, State.EXECUTING,
            AuditEvent(actor=actor, action=AuditAction.ROLLBACK_EXECUTING, model=proposal.model,
                       from_version=proposal.from_version, to_version=proposal.to_version, reason=proposal.reason,
                       inputs=action_inputs(proposal.action)),
            change=ProposalChange(started_at=started), intent=Intent(CardEvent.EXECUTING),
        )
        if running is None:  # someone else started it; the lease makes this rare
            return self.store.get_proposal(proposal.id)
        oplog.event("rollback.switching", proposal=proposal.id, model=proposal.model,
                    from_version=proposal.from_version, to_version=proposal.to_version, actor=actor,
                    dry_run=proposal.dry_run or None)
        self._notify(running, CardEvent.EXECUTING)
        with self.store.atomic():  # "executing" is committed above; the switch and its outcome commit together
            return self._switch(running, actor, check_live=True)

    def _switch(self, running: Proposal, actor: str, *, check_live: bool, note: str = "") -> Proposal:
        policy = self.policy.model(running.model)
        if policy is None:
            return self._fail(running, actor, f"{running.model} is no longer in the policy; nothing was switched",
                              {}, None)
        request = SwitchRequest(model=running.model, from_version=running.from_version,
                                to_version=running.to_version, proposal_id=running.id,
                                reason=running.reason, settings=policy.target_settings)
        target: DeploymentTarget | None = None
        try:
            target = self._target(policy)
            canary = self._canary_target(target, running, policy.target)
            if running.dry_run:
                what = canary.describe_abort(request) if canary is not None else target.describe(request)
                done = Switched(f"dry run: would {what}; nothing was switched", None)
            else:
                if check_live:
                    live = target.current_version(running.model, policy.target_settings)
                    if live is not None and live not in (running.from_version, running.to_version):
                        raise TargetError(
                            f"{policy.target} reports version {live} live, not {running.from_version}: the model "
                            "changed since this proposal was made; nothing was switched")
                result = self._act(target, canary, request)
                done = Switched(note + result.detail, result.served_version)
        except TargetError as exc:
            return self._fail(running, actor, str(exc), {"status": exc.status, "body": (exc.body or "")[:2000]},
                              target, policy)
        except Exception as exc:  # an adapter bug must still end in `failed`, never stuck in `executing`
            log.exception("target %s failed for proposal #%s", policy.target, running.id)
            return self._fail(running, actor, f"unexpected error from target {policy.target}: "
                                              f"{type(exc).__name__}: {exc}", {}, target, policy)
        return self._complete(running, actor, policy, done)

    @staticmethod
    def _canary_target(target: DeploymentTarget, running: Proposal, name: str) -> ReportsCanary | None:
        """The target's canary ability when the proposal aborts a canary; it must have it."""
        if running.action is not ProposalAction.ABORT_CANARY:
            return None
        if not isinstance(target, ReportsCanary):
            raise TargetError(f"{name} cannot abort a canary; nothing was switched")
        return target

    @staticmethod
    def _act(target: DeploymentTarget, canary: ReportsCanary | None, request: SwitchRequest) -> SwitchResult:
        return canary.abort_canary(request) if canary is not None else target.switch(request)

    def _complete(self, running: Proposal, actor: str, policy: ModelPolicy, done: Switched) -> Proposal:
        finished = self.clock.now()
        seconds = (finished - (running.started_at or finished)).total_seconds()
        verify_at = finished + policy.verify_after if self.verification_enabled and not running.dry_run else None
        completed = self.store.complete_rollback(
            running.id, result=done.detail, served=done.served, verify_at=verify_at, deployed_by=actor,
            audit=AuditEvent(actor=actor,
                             action=AuditAction.ROLLBACK_DRY_RUN if running.dry_run else AuditAction.ROLLBACK_SUCCEEDED,
                             model=running.model, from_version=running.from_version,
                             to_version=running.to_version, reason=done.detail,
                             inputs={"seconds": round(seconds, 3), "served_version": done.served,
                                     "target": policy.target, **action_inputs(running.action)}),
            intent=Intent(CardEvent.SUCCEEDED, done.detail),
        )
        final = completed or self.store.get_proposal(running.id)
        oplog.event("rollback.dry_run" if running.dry_run else "rollback.succeeded", proposal=running.id,
                    model=running.model, target=policy.target, from_version=running.from_version,
                    to_version=running.to_version, seconds=round(seconds, 3), detail=done.detail)
        self._notify(final, CardEvent.SUCCEEDED, done.detail)
        return final

    def _fail(self, running: Proposal, actor: str, message: str, inputs: dict[str, Any],
              target: DeploymentTarget | None, policy: ModelPolicy | None = None) -> Proposal:
        live = self._live(target, running, policy) if target is not None and policy is not None else None
        if target is not None and policy is not None:  # name what the target says now, never a guess
            if live is None:
                message = f"{message}; {policy.target} could not say which version is live"
            elif f"version {live} live" not in message:
                message = f"{message}; {policy.target} reports version {live} live"
        failed = self.store.transition(
            running.id, State.FAILED,
            AuditEvent(actor=actor, action=AuditAction.ROLLBACK_FAILED, model=running.model,
                       from_version=running.from_version, to_version=running.to_version, reason=message,
                       inputs={**inputs, **action_inputs(running.action),
                               **({"live_version": live} if live is not None else {})}),
            change=ProposalChange(finished_at=self.clock.now(), error=message),
            intent=Intent(CardEvent.FAILED, message),
        )
        final = failed or self.store.get_proposal(running.id)
        oplog.event("rollback.failed", level=logging.ERROR, proposal=running.id, model=running.model,
                    from_version=running.from_version, to_version=running.to_version, error=message)
        self._notify(final, CardEvent.FAILED, message)
        return final

    # ---- recovery ---------------------------------------------------------------------------------------

    def _resume(self, running: Proposal) -> Proposal:
        """An executor died (or stalled past its lease) mid-switch: ask the target before doing anything."""
        with self.store.atomic():
            return self._recover(running)

    def _recover(self, running: Proposal) -> Proposal:
        policy = self.policy.model(running.model)
        if policy is None:
            return self._fail(running, RECOVERY_ACTOR, f"interrupted while executing; {running.model} is no "
                              "longer in the policy", {}, None)
        try:
            target = self._target(policy)
            live = None if running.dry_run else target.current_version(running.model, policy.target_settings)
        except Exception as exc:  # noqa: BLE001  a target that cannot answer: fail, naming why
            return self._fail(running, RECOVERY_ACTOR, f"interrupted while executing (the bot stopped) and "
                              f"{policy.target} could not say which version is live ({type(exc).__name__}); "
                              f"check which version of {running.model} is live before acting again", {}, None)
        actor = running.decided_by or RECOVERY_ACTOR
        if running.dry_run:
            return self._switch(running, actor, check_live=False)
        if live == running.to_version:
            return self._complete(running, actor, policy, Switched(
                f"{policy.target} reports version {live} live: the switch completed before the bot restarted "
                "(not switched again)", live))
        if live == running.from_version:
            return self._switch(running, actor, check_live=False,
                                note="resumed after the bot restarted (the target still ran "
                                     f"{running.from_version}): ")
        what = f"reports version {live} live" if live is not None else "cannot tell which version is live"
        return self._fail(running, RECOVERY_ACTOR,
                          f"interrupted while executing (the bot stopped); {policy.target} {what}: check which "
                          f"version of {running.model} is live before acting again", {"live_version": live}, None)

    def _live(self, target: DeploymentTarget, running: Proposal, policy: ModelPolicy) -> str | None:
        try:
            return target.current_version(running.model, policy.target_settings)
        except Exception:  # noqa: BLE001  only for the failure message
            return None

    def _target(self, policy: ModelPolicy) -> DeploymentTarget:
        target = self.targets.get(policy.target)
        if target is None:
            raise RollbackError(f"target '{policy.target}' of {policy.name} is not available in this build")
        return target


__all__ = ["RECOVERY_ACTOR", "SYSTEM", "ApprovedQueue", "Executor"]
