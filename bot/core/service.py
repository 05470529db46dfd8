"""Rollback orchestration, composed of its use cases: requests, approvals (here), model controls, sweeps,
blocked versions.

Every state change goes through the Store as one compare-and-set with its audit row (and its Slack intent);
approved proposals go to the executor through the one `approve_and_execute` path, so nothing runs twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.core import oplog
from bot.core.actor import Actor
from bot.core.audit import AuditEvent
from bot.core.authorization import Act, undo_approvals
from bot.core.blocking import VersionBlocking
from bot.core.controls import ModelControls
from bot.core.events import AuditAction, CardEvent
from bot.core.execution import SYSTEM
from bot.core.ports import Intent, NewProposal, OpenProposalExists, StaleProposal
from bot.core.proposal import Kind, Proposal, ProposalAction, ProposalChange, State, check_transition
from bot.core.requests import Requests
from bot.core.sweeps import Sweeps
from bot.core.usecase import TIMEOUT_ACTOR, ApproveRequest, UseCase

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApprovalOutcome:
    proposal: Proposal
    message: str
    executed: bool = False


class RollbackService(VersionBlocking, Requests, ModelControls, Sweeps, UseCase):
    # ---- approvals --------------------------------------------------------------------------------------

    def approve(self, proposal_id: int, actor: Actor | str) -> ApprovalOutcome:
        who = Actor.of(actor)
        actor = str(who)
        proposal = self.store.get_proposal(proposal_id)
        policy = self.model_policy(proposal.model)
        if proposal.state is not State.PROPOSED:
            return ApprovalOutcome(proposal, f"proposal #{proposal_id} is already {proposal.state.value}")
        self._authorize(who, Act.APPROVE, policy, proposal_id, requested_by=proposal.requested_by)
        new, approvers = self.store.add_approval(proposal_id, actor, AuditEvent(
            actor=actor, action=AuditAction.APPROVAL_ADDED, model=proposal.model, from_version=proposal.from_version,
            to_version=proposal.to_version, reason=f"approval from {actor}"))
        current = self.store.get_proposal(proposal_id)
        if not new:
            already = actor in approvers
            msg = "you already approved this rollback" if already else f"proposal is {current.state.value}"
            return ApprovalOutcome(current, msg)
        if len(approvers) < proposal.required_approvals:
            self._notify(current, CardEvent.APPROVAL, f"{len(approvers)} of {proposal.required_approvals} approvals")
            return ApprovalOutcome(current, f"approval recorded: {len(approvers)} of "
                                            f"{proposal.required_approvals}")
        done = self.approve_and_execute(ApproveRequest(
            current, actor, f"{len(approvers)} approval(s): {', '.join(approvers)}"))
        if done.decided_by != actor:
            return ApprovalOutcome(done, "someone else decided first")
        return ApprovalOutcome(done, f"rollback {done.state.value}", executed=True)

    def deny(self, proposal_id: int, actor: Actor | str, reason: str | None = None) -> Proposal:
        who = Actor.of(actor)
        actor = str(who)
        proposal = self.store.get_proposal(proposal_id)
        policy = self.model_policy(proposal.model)
        if proposal.state is not State.PROPOSED:
            return proposal
        self._authorize(who, Act.DENY, policy, proposal_id)
        denied = self.store.transition(
            proposal_id, State.DENIED,
            AuditEvent(actor=actor, action=AuditAction.PROPOSAL_DENIED, model=proposal.model,
                       from_version=proposal.from_version, to_version=proposal.to_version,
                       reason=reason or "no reason given"),
            change=ProposalChange(decided_by=actor, decided_at=self.clock.now(), error=reason),
            intent=Intent(CardEvent.DENIED, reason),
        )
        if denied is None:
            return self.store.get_proposal(proposal_id)
        self.store.record_denial(proposal_id, actor, reason)
        oplog.event("proposal.denied", proposal=proposal_id, model=proposal.model, actor=actor, reason=reason)
        self._notify(denied, CardEvent.DENIED, reason, written=True)
        return denied

    # ---- execution ---------------------------------------------------------------------------------------

    def execute(self, proposal_id: int, actor: str) -> Proposal:
        """Hand an approved proposal to the executor (at once or through the worker, as built)."""
        proposal = self.store.get_proposal(proposal_id)
        check_transition(proposal_id, proposal.state, State.EXECUTING)
        return self.queue.submit(proposal, actor)

    def undo(self, proposal_id: int, actor: Actor | str) -> Proposal:
        """Roll a finished rollback forward again: a new proposal through the same machine and audit."""
        who = Actor.of(actor)
        actor = str(who)
        original = self.store.get_proposal(proposal_id)
        policy = self.model_policy(original.model)
        if original.state is not State.SUCCEEDED or original.dry_run:
            raise self._refuse(actor, original.model, f"proposal #{proposal_id} is {original.state.value}; "
                               "only a completed rollback can be undone", AuditAction.UNDO_REFUSED, proposal_id)
        if original.action is ProposalAction.ABORT_CANARY:
            raise self._refuse(actor, original.model, f"proposal #{proposal_id} aborted a canary; the stable version "
                               "never changed, so there is nothing to roll forward: restart the canary from the "
                               "deployment tool if it should run again", AuditAction.UNDO_REFUSED, proposal_id)
        self._authorize(who, Act.UNDO, policy, proposal_id)
        history = self.store.history(original.model)
        if not history or history[-1].version != original.to_version:
            raise self._refuse(actor, original.model, f"{original.model} no longer runs {original.to_version}; "
                               "undo would overwrite a newer change", AuditAction.UNDO_REFUSED, proposal_id)
        required = undo_approvals(policy)  # the model's approvals, like any proposal (policy: undo_approvals)
        waits = required > 1
        try:
            proposal = self.store.create_proposal(NewProposal(
                model=original.model, from_version=original.to_version, to_version=original.from_version,
                kind=Kind.UNDO, requested_by=actor, reason=f"undo of rollback #{proposal_id}",
                target_note=f"roll forward to {original.from_version} (undo of #{proposal_id})",
                severity="manual", decision_reason=f"undo asked by {actor}: {required} approval(s) needed",
                required_approvals=required, dry_run=policy.dry_run,
                deadline_at=self.clock.now() + policy.approval_timeout if waits else None, summary={},
                undo_of=proposal_id, seen_last_rollback_at=self.store.model_state(original.model).last_rollback_at,
            ), AuditEvent(actor=actor, action=AuditAction.PROPOSAL_CREATED, model=original.model,
                          from_version=original.to_version, to_version=original.from_version,
                          reason=f"undo of rollback #{proposal_id}", inputs={"kind": "undo"}),
                Intent(CardEvent.CREATED) if waits else None)
        except (OpenProposalExists, StaleProposal):
            raise self._refuse(actor, original.model, f"a rollback of {original.model} is already under way",
                               AuditAction.UNDO_REFUSED, proposal_id) from None
        _, approvers = self.store.add_approval(proposal.id, actor, AuditEvent(
            actor=actor, action=AuditAction.APPROVAL_ADDED, model=original.model, from_version=proposal.from_version,
            to_version=proposal.to_version, reason=f"approval from {actor} (asked for the undo)"))
        if len(approvers) < required:
            waiting = self.store.get_proposal(proposal.id)
            self._notify(waiting, CardEvent.CREATED, written=True)
            return waiting
        return self.approve_and_execute(ApproveRequest(proposal, actor, "undo by an approver", announce=False))


__all__ = ["SYSTEM", "TIMEOUT_ACTOR", "ApprovalOutcome", "ApproveRequest", "RollbackService", "UseCase"]
