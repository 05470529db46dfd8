"""Who may do what to a model: one rule set for every action, whichever door (Slack, CLI, API) it comes through.

Actors (bot/core/actor.py) are built where a request comes in: Slack users (people in chat), CLI users (an
operator at a shell with the database credentials: break-glass), alert sources and API clients (machines
reporting), and the bot itself (its own decisions, taken under the policy). This module looks at an actor's
kind, never at a string prefix, and asks the directory port which approvers are groups and who is in them.

- approve, deny, undo, freeze, unfreeze, unblock: a Slack user who is one of the model's ``approvers`` (a
  listed user, or a member of a listed group); with no approvers listed, anyone in the channel.
  Approving a rollback one asked for oneself also needs ``allow_self_approval``.
- rollback (ask for one): anyone in chat, an alert source, an API client, the CLI or the bot may *ask*; the
  proposal then waits for the model's approvals, so asking grants nothing by itself.
- break-glass (roll back at once, no approvals): the CLI only. Chat cannot skip approvals.
- drill (rehearse a rollback, nothing switched): an approver in chat, or an operator at the CLI.

Undo is not special: it opens a proposal that needs ``undo_approvals`` (default: ``required_approvals``)
approvals, the undoer's own click counting as the first. Refusals are audited by the use case that asked
(``UseCase.authorize``), once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.core.actor import Actor, ActorKind
from bot.core.events import AuditAction
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
    Act.APPROVE: AuditAction.APPROVAL_REFUSED,
    Act.DENY: AuditAction.DENIAL_REFUSED,
    Act.UNDO: AuditAction.UNDO_REFUSED,
    Act.FREEZE: AuditAction.FREEZE_REFUSED,
    Act.UNFREEZE: AuditAction.UNFREEZE_REFUSED,
    Act.UNBLOCK: AuditAction.UNBLOCK_REFUSED,
    Act.ROLLBACK: AuditAction.ROLLBACK_REFUSED,
    Act.BREAK_GLASS: AuditAction.ROLLBACK_REFUSED,
    Act.DRILL: AuditAction.DRILL_REFUSED,
}
APPROVER_ACTS = frozenset({Act.APPROVE, Act.DENY, Act.UNDO, Act.FREEZE, Act.UNFREEZE, Act.UNBLOCK})
REQUESTERS = frozenset({ActorKind.SLACK_USER, ActorKind.ALERT, ActorKind.API, ActorKind.CLI_USER, ActorKind.BOT})
VERBS = {Act.APPROVE: "approve rollbacks of", Act.DENY: "deny rollbacks of", Act.UNDO: "undo a rollback of",
         Act.FREEZE: "freeze", Act.UNFREEZE: "unfreeze", Act.UNBLOCK: "unblock versions of",
         Act.DRILL: "run a rollback drill of"}


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str = ""
    via: str = ""  # why allowed: "listed", "group <id>", "no approvers listed", "requester", "cli"


def approver_basis(policy: ModelPolicy, actor: Actor, directory: ApproverDirectory) -> str | None:
    """Why ``actor`` is one of the model's approvers ("listed", "group S…", ...), or None when not."""
    user = actor.slack_id
    if user is None:
        return None
    if not policy.approvers:
        return "no approvers listed"
    if user in policy.approvers:
        return "listed"
    for group in policy.approvers:
        if directory.is_group(group) and directory.is_member(user, group):
            return f"group {group}"
    return None


def approvers_text(policy: ModelPolicy, directory: ApproverDirectory) -> str:
    if not policy.approvers:
        return "anyone in the channel"
    return ", ".join(f"group {a}" if directory.is_group(a) else a for a in policy.approvers)


def undo_approvals(policy: ModelPolicy) -> int:
    return policy.undo_approvals if policy.undo_approvals is not None else policy.required_approvals


def authorize(actor: Actor, action: Act, policy: ModelPolicy, directory: ApproverDirectory, *,
              requested_by: Actor | str | None = None) -> Verdict:
    """May ``actor`` do ``action`` to this model? The reason says why not, in words for the person refused."""
    model = policy.name
    if action is Act.DRILL and actor.kind is ActorKind.CLI_USER:  # an operator with the database credentials
        return Verdict(True, via="cli")
    if action in APPROVER_ACTS or action is Act.DRILL:
        basis = approver_basis(policy, actor, directory)
        if basis is None:
            who = approvers_text(policy, directory)
            if action in (Act.APPROVE, Act.DENY):
                return Verdict(False, f"you may not {VERBS[action]} {model}; approvers: {who}")
            return Verdict(False, f"only approvers may {VERBS[action]} {model}: {who}")
        asked_self = requested_by is not None and Actor.of(requested_by) == actor
        if action is Act.APPROVE and asked_self and not policy.allow_self_approval:
            return Verdict(False, "you asked for this rollback, and this model's policy does not allow "
                                  "self-approval (allow_self_approval = false); another approver must approve")
        return Verdict(True, via=basis)
    if action is Act.BREAK_GLASS:
        if actor.kind is not ActorKind.CLI_USER:
            return Verdict(False, f"an immediate rollback of {model} without approvals is only possible from the "
                                  "command line (`rollback-bot rollback`); ask here and an approver approves")
        return Verdict(True, via="cli")
    if actor.kind not in REQUESTERS:
        return Verdict(False, f"'{str(actor)[:60]}' is not a known kind of requester")
    return Verdict(True, via="requester")
