"""Sweeps: each asks the database what is due, so running twice or on two replicas does nothing twice."""

from __future__ import annotations

from datetime import datetime

from bot.core import oplog
from bot.core.audit import AuditEvent
from bot.core.durations import format_duration
from bot.core.events import AuditAction, CardEvent
from bot.core.policy import ModelPolicy, OnTimeout
from bot.core.ports import Intent
from bot.core.proposal import Proposal, ProposalChange, ProposalExpect, State
from bot.core.selection import Deployment
from bot.core.usecase import TIMEOUT_ACTOR, ApproveRequest, UseCase


class Sweeps(UseCase):
    # ---- sweepers (each asks the database what is due; safe to run twice or on two replicas) -------------

    def sweep_stable(self) -> list[Deployment]:
        now = self.clock.now()
        due: dict[str, datetime] = {}
        for dep in self.store.current_deployments(list(self.policy.models)):
            if dep.stable_at is not None or dep.rolled_back_at is not None:
                continue
            policy = self.policy.models[dep.model]
            quiet = self.store.quiet_since(dep.model, dep.deployed_at, dep.version)
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
                detail = f"deadline {proposal.deadline_at:%H:%M} UTC"
                result = self.store.update_open(proposal.id, None, ProposalExpect(reminded=False),
                                                intent=Intent(CardEvent.REMINDER, detail),
                                                change=ProposalChange(reminded=True))
                self._notify(result, CardEvent.REMINDER, detail, written=True)
            else:
                continue
            if result is not None:
                touched.append(result)
        return touched

    def _on_timeout(self, proposal: Proposal, policy: ModelPolicy, now: datetime) -> Proposal | None:
        if policy.on_timeout is OnTimeout.ESCALATE and not proposal.escalated:
            result = self.store.update_open(
                proposal.id,
                AuditEvent(actor=TIMEOUT_ACTOR, action=AuditAction.PROPOSAL_ESCALATED, model=proposal.model,
                           reason=f"no decision within {format_duration(policy.approval_timeout)}; "
                                  f"escalated to {', '.join(policy.escalate_to) or 'nobody configured'}"),
                ProposalExpect(escalated=False), intent=Intent(CardEvent.ESCALATED, " ".join(policy.escalate_to)),
                change=ProposalChange(escalated=True, reminded=False, deadline_at=now + policy.approval_timeout),
            )
            if result is not None:
                oplog.event("proposal.escalated", proposal=proposal.id, model=proposal.model,
                            to=" ".join(policy.escalate_to))
            self._notify(result, CardEvent.ESCALATED, " ".join(policy.escalate_to), written=True)
            return result
        if policy.on_timeout is OnTimeout.ROLLBACK:
            done = self.approve_and_execute(ApproveRequest(
                proposal, TIMEOUT_ACTOR, f"no decision within {format_duration(policy.approval_timeout)}; "
                                         "on_timeout = rollback", announce=False))
            return done if done.decided_by == TIMEOUT_ACTOR else None
        expired = self.store.transition(
            proposal.id, State.EXPIRED,
            AuditEvent(actor=TIMEOUT_ACTOR, action=AuditAction.PROPOSAL_EXPIRED, model=proposal.model,
                       from_version=proposal.from_version, to_version=proposal.to_version,
                       reason=f"no decision by {proposal.deadline_at:%H:%M} UTC"),
            change=ProposalChange(decided_by=TIMEOUT_ACTOR, decided_at=now), intent=Intent(CardEvent.EXPIRED),
        )
        if expired is not None:
            oplog.event("proposal.expired", proposal=proposal.id, model=proposal.model)
        self._notify(expired, CardEvent.EXPIRED, written=True)
        return expired

    def sweep_stuck(self) -> list[Proposal]:
        """Approved or executing proposals nobody works on (their executor died): the executor finishes them.

        An executing one is never simply re-run: the executor first asks the target which version is live.
        """
        finished = []
        for proposal_id in self.store.proposals_to_execute():
            done = self.queue.submit(self.store.get_proposal(proposal_id), "bot:recovery")
            if done.state not in (State.APPROVED, State.EXECUTING):
                finished.append(done)
        return finished


__all__ = ["Sweeps"]
