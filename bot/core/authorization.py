"""Who may do what to a model: one rule set for every action, whichever door (Slack, CLI, API) it comes through.

Actors are ``slack:<user id>`` (people in chat), ``cli:<os user>`` (an operator at a shell with the database
credentials: break-glass), ``alert:<source>`` / ``api:<who>`` (machines reporting), and ``bot:<job>`` (the
bot's own decisions, taken under the policy and never through this check).

- approve, deny, undo, freeze, unfreeze, unblock: a Slack user who is one of the model's ``approvers`` (a
  listed user, or a member of a listed user group); with no approvers listed, anyone in the channel.
  Approving a rollback one asked for oneself also needs ``allow_self_approval``.
- rollback (ask for one): anyone in chat or an alert source may *ask*; the proposal then waits for the
  model's approvals, so asking grants nothing by itself.
- break-glass (roll back at once, no approvals): the CLI only. Chat cannot skip approvals.
- drill (rehearse a rollback, nothing switched): an approver in chat, or an operator at the CLI.

Undo is not special: it opens a proposal that needs ``undo_approvals`` (default: ``required_approvals``)
approvals, the undoer's own click counting as the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.core.policy import ModelPolicy
from bot.core.ports import ApproverDirectory


class Act(StrEnum):
    APPROVE = "approve"
    DENY = "deny"
    UNDO = "undo"
    FREEZE = "freeze"
    UNFREEZE = "unfreeze"
    UNBLOCK = "unblock"  # `/rollback unblock` arrives with a later change; the rule is already here
    ROLLBACK = "rollback"
    BREAK_GLASS = "break_glass"
    DRILL = "drill"  # rehearse a rollback (nothing switched): approvers in chat, operators at the CLI


# The audit action written when each is refused.
REFUSED_AUDIT = {
    Act.APPROVE: "approval.refused",
    Act.DENY: "denial.refused",
    Act.UNDO: "undo.refused",
    Act.FREEZE: "freeze.refused",
    Act.UNFREEZE: "unfreeze.refused",
    Act.UNBLOCK: "unblock.refused",
    Act.ROLLBACK: "rollback.refused",
    Act.BREAK_GLASS: "rollback.refused",
    Act.DRILL: "drill.refused",
}
APPROVER_ACTS = frozenset({Act.APPROVE, Act.DENY, Act.UNDO, Act.FREEZE, Act.UNFREEZE, Act.UNBLOCK})
REQUESTERS = ("slack:", "alert:", "api:", "cli:", "bot:")
VERBS = {Act.APPROVE: "approve rollbacks of", Act.DENY: "deny rollbacks of", Act.UNDO: "undo a rollback of",
         Act.FREEZE: "freeze", Act.UNFREEZE: "unfreeze", Act.UNBLOCK: "unblock versions of",
         Act.DRILL: "run a rollback drill of"}


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str = ""


def slack_user(actor: str) -> str | None:
    return actor.split(":", 1)[1] if actor.startswith("slack:") and len(actor) > 6 else None


def is_approver(policy: ModelPolicy, actor: str, directory: ApproverDirectory) -> bool:
    user = slack_user(actor)
    if user is None:
        return False
    if not policy.approvers or user in policy.approvers:
        return True
    return any(user in directory.members(g) for g in policy.approvers if g.startswith("S"))


def approvers_text(policy: ModelPolicy) -> str:
    if not policy.approvers:
        return "anyone in the channel"
    return ", ".join(f"group {a}" if a.startswith("S") else a for a in policy.approvers)


def undo_approvals(policy: ModelPolicy) -> int:
    return policy.undo_approvals if policy.undo_approvals is not None else policy.required_approvals


def authorize(actor: str, action: Act, policy: ModelPolicy, directory: ApproverDirectory, *,
              requested_by: str | None = None) -> Verdict:
    """May ``actor`` do ``action`` to this model? The reason says why not, in words for the person refused."""
    model = policy.name
    if action is Act.DRILL and actor.startswith("cli:"):  # an operator with the database credentials
        return Verdict(True)
    if action in APPROVER_ACTS or action is Act.DRILL:
        if not is_approver(policy, actor, directory):
            if action in (Act.APPROVE, Act.DENY):
                return Verdict(False, f"you may not {VERBS[action]} {model}; approvers: {approvers_text(policy)}")
            return Verdict(False, f"only approvers may {VERBS[action]} {model}: {approvers_text(policy)}")
        if action is Act.APPROVE and requested_by == actor and not policy.allow_self_approval:
            return Verdict(False, "you asked for this rollback, and this model's policy does not allow "
                                  "self-approval (allow_self_approval = false); another approver must approve")
        return Verdict(True)
    if action is Act.BREAK_GLASS:
        if not actor.startswith("cli:"):
            return Verdict(False, f"an immediate rollback of {model} without approvals is only possible from the "
                                  "command line (`rollback-bot rollback`); ask here and an approver approves")
        return Verdict(True)
    if not actor.startswith(REQUESTERS) or actor.endswith(":"):
        return Verdict(False, f"'{actor[:60]}' is not a known kind of requester")
    return Verdict(True)
