"""Sticky rollbacks: a version the bot rolled back stays blocked for its model until an approver lifts it.

Without this, the next CI re-run or GitOps re-sync deploys the bad version again and nobody is told. The block
is written by the store in the same transaction that completes the rollback (``deployment.blocked``); a
deployment of a blocked version is refused (``deployment.refused_blocked``) unless it carries an override
with a reason (``deployment.override``, announced in the model's channel); ``/rollback unblock`` lifts it
(``version.unblocked``). The version stays *bad* for target selection either way (SPEC §5): unblocking lets
people deploy it, it never makes the bot choose it by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.core import oplog
from bot.core.actor import Actor
from bot.core.audit import AuditEvent
from bot.core.authorization import Act
from bot.core.errors import RollbackError
from bot.core.events import AuditAction
from bot.core.policy import Action, Decision
from bot.core.proposal import Proposal, State
from bot.core.requests import Requests, RollbackRequest
from bot.core.selection import Block, Deployment

DRIFT_ACTOR = "bot:drift"


@dataclass(frozen=True)
class Override:
    """A deployment of a blocked version on purpose; the reason is audited and posted to the channel."""

    reason: str


class VersionBlocked(RollbackError):
    """A deployment of a blocked version without an override: the HTTP API answers 409 with ``block``."""

    def __init__(self, block: Block) -> None:
        super().__init__(f"{block.why()}; it is blocked. Deploy it anyway with an override and a reason "
                         f"(\"override\": {{\"reason\": \"...\"}} or --override REASON), or ask an approver to run "
                         f"`/rollback unblock {block.model} {block.version}`")
        self.block = block


@dataclass(frozen=True)
class Deployability:
    """The answer to CI's "may I deploy this version?"."""

    deployable: bool
    reason: str
    block: Block | None = None


def deployability(model: str, version: str, blocks: Sequence[Block]) -> Deployability:
    """Blocked while an active block names the version; otherwise deployable, saying if it was lifted."""
    mine = [b for b in blocks if b.version == version]
    active = next((b for b in mine if b.active), None)
    if active is not None:
        return Deployability(False, f"{active.why()}; blocked until an approver runs "
                                    f"`/rollback unblock {model} {version}`", active)
    lifted = next((b for b in mine if b.unblocked_at is not None), None)
    if lifted is not None:
        assert lifted.unblocked_at is not None
        return Deployability(True, f"was blocked after rollback #{lifted.proposal_id}; unblocked by "
                                   f"{lifted.unblocked_by} at {lifted.unblocked_at:%Y-%m-%d %H:%M} UTC: "
                                   f"{lifted.unblock_reason or 'no reason given'}", lifted)
    return Deployability(True, f"version {version} of {model} is not blocked")


def drifted(current: Deployment | None, live: str | None, blocked: set[str]) -> bool:
    """The target runs a blocked version that no deployment report put there (someone re-applied it by hand)."""
    return current is not None and live is not None and live != current.version and live in blocked


class VersionBlocking(Requests):
    """Blocked versions: what CI may deploy, unblocking by approvers, and drift back to a blocked version."""

    def may_deploy(self, model: str, version: str) -> Deployability:
        self.model_policy(model)  # unknown model: 404
        return deployability(model, version, self.store.blocks(model, version))

    def blocked_versions(self, model: str) -> list[Block]:
        self.model_policy(model)
        return [b for b in self.store.blocks(model) if b.active]

    def unblock(self, model: str, version: str, *, actor: Actor | str, reason: str | None) -> Block:
        """Lift the block (approvers only; a refusal is audited once as ``unblock.refused``)."""
        who = Actor.of(actor)
        actor = str(who)
        policy = self.model_policy(model)
        self._authorize(who, Act.UNBLOCK, policy)
        why = reason or "no reason given"
        lifted = self.store.unblock(model, version, by=actor, reason=why, audit=AuditEvent(
            actor=actor, action=AuditAction.VERSION_UNBLOCKED, model=model, to_version=version, reason=why))
        if lifted is None:
            blocked = ", ".join(b.version for b in self.blocked_versions(model)) or "none"
            raise self._refuse(actor, model, f"version {version} of {model} is not blocked (blocked: {blocked})",
                               AuditAction.UNBLOCK_REFUSED)
        oplog.event("version.unblocked", model=model, version=version, actor=actor, reason=why)
        return lifted

    # ---- drift: a blocked version live again without a deployment report --------------------------------

    def sweep_drift(self) -> list[Proposal]:
        """Ask the target of each model with a blocked version which version is live; a blocked one nobody
        reported is recorded as a deployment (the bot's history must match what runs), posted, and offered for
        rollback again. One read finds the blocked versions of every model, one more their current
        deployments: a minute's sweep costs the database the same whatever the number of models."""
        blocked: dict[str, dict[str, Block]] = {}
        for b in self.store.active_blocks():
            if b.model in self.policy.models:
                blocked.setdefault(b.model, {}).setdefault(b.version, b)
        if not blocked:
            return []
        current = {d.model: d for d in self.store.current_deployments(sorted(blocked))}
        offered = []
        for model, blocks in sorted(blocked.items()):
            policy = self.policy.models[model]
            target = self.targets.get(policy.target)
            if target is None:
                continue
            try:
                live = target.current_version(model, policy.target_settings)
            except Exception as exc:  # noqa: BLE001  a target that cannot answer now is asked again next sweep
                oplog.event("deployment.drift_unknown", model=model, target=policy.target, why=type(exc).__name__)
                continue
            if not drifted(current.get(model), live, set(blocks)) or self._switching(model):
                continue  # never while a switch may be under way: the target may run it before the store says so
            assert live is not None
            proposal = self._offer_again(model, live, blocks[live], policy.target)
            if proposal is not None:
                offered.append(proposal)
        return offered

    def _switching(self, model: str) -> bool:
        """An approved or executing rollback: the target may already run its version before the store says so."""
        open_now = self.store.open_proposal(model)
        return open_now is not None and open_now.state is not State.PROPOSED

    def _offer_again(self, model: str, live: str, block: Block, target: str) -> Proposal | None:
        note = (f"{target} reports blocked version {live} live again, with no deployment reported "
                f"(re-applied by hand?); {block.why()}")
        oplog.event("deployment.drift", model=model, version=live, target=target)
        self.store.record_deployment(
            model, live, deployed_by="unknown (found live by the bot)", source=f"drift ({target})", metadata={},
            stable=False, set_served=False,
            audit=AuditEvent(actor=DRIFT_ACTOR, action=AuditAction.DEPLOYMENT_DRIFT, model=model, to_version=live,
                             reason=note, inputs={"target": target, "blocked_by_proposal": block.proposal_id}),
            supersede=superseded_text(live, f"hand (found live by {target})"))
        try:
            return self.request_rollback(RollbackRequest(model, actor=DRIFT_ACTOR, reason=note, decision=Decision(
                Action.PROPOSE, f"blocked version {live} is live again: waiting for approval to roll it back")))
        except RollbackError as exc:
            oplog.event("deployment.drift_not_offered", model=model, version=live, why=str(exc))
            return None


def superseded_text(version: str, by: str) -> str:
    return f"superseded by the deployment of version {version} by {by}"


__all__ = ["DRIFT_ACTOR", "Block", "Deployability", "Override", "VersionBlocked", "VersionBlocking",
           "deployability", "drifted", "superseded_text"]
