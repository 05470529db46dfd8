"""Model controls: deployments recorded, freezes set and lifted."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.core import oplog
from bot.core.actor import Actor
from bot.core.audit import AuditEvent
from bot.core.authorization import Act
from bot.core.blocking import Override, VersionBlocked, superseded_text
from bot.core.durations import format_duration
from bot.core.errors import RollbackError, UnknownModel
from bot.core.events import AuditAction, CardEvent
from bot.core.ports import Intent
from bot.core.proposal import Proposal, State
from bot.core.selection import Block, Deployment
from bot.core.usecase import UseCase


class ModelControls(UseCase):
    # ---- deployments ------------------------------------------------------------------------------------

    def deploy(self, model: str, version: str, *, actor: str, deployed_by: str | None = None,
               source: str | None = None, metadata: dict[str, Any] | None = None,
               stable: bool = False, override: Override | None = None) -> Deployment:
        """Record a deployment; a blocked version only with an override. Waiting proposals are superseded."""
        try:
            policy = self.model_policy(model)
        except UnknownModel as exc:
            self.store.append_audit(AuditEvent(actor=actor, action=AuditAction.DEPLOY_REFUSED, model=model,
                                               to_version=version, reason=str(exc)))
            raise
        version = version.strip()
        if not version:
            raise RollbackError("version must not be empty")
        if override is not None and not override.reason.strip():
            raise RollbackError("override: a reason is required (why this blocked version is deployed anyway)")
        history = self.store.history(model)
        previous = history[-1].version if history else None
        who = deployed_by or actor
        also, announce = self._blocked_check(model, version, actor, who, previous, source, override)
        waiting = self.store.open_proposal(model)
        oplog.event("deployment.recorded", model=model, from_version=previous, to_version=version,
                    deployed_by=who, source=source, stable=stable or None, override=bool(also) or None)
        try:
            dep = self.store.record_deployment(
                model, version, deployed_by=deployed_by, source=source, metadata=metadata or {},
                stable=stable, set_served=policy.target == "local",
                audit=AuditEvent(actor=actor, action=AuditAction.DEPLOY, model=model, from_version=previous,
                                 to_version=version, reason=f"deployed by {who}"
                                 + (f" via {source}" if source else "") + (" (marked stable)" if stable else ""),
                                 inputs={"metadata": metadata or {}}),
                also=also, announce=announce, supersede=superseded_text(version, who),
                refuse_blocked=override is None,
            )
        except VersionBlocked as exc:  # a rollback of this version finished between the check and the write
            raise self._refuse_blocked(exc.block, actor, who, previous, source) from None
        self._tell_superseded(waiting, announce)
        return dep

    def _blocked_check(self, model: str, version: str, actor: str, who: str, previous: str | None,
                       source: str | None, override: Override | None,
                       ) -> tuple[list[AuditEvent], tuple[int, Intent] | None]:
        """Refuse a blocked version (audited) unless overridden; an override's audit row and channel post."""
        block = next((b for b in self.store.blocks(model, version) if b.active), None)
        if block is None:
            return [], None
        if override is None:
            raise self._refuse_blocked(block, actor, who, previous, source)
        why = override.reason.strip()
        audit = AuditEvent(actor=actor, action=AuditAction.DEPLOYMENT_OVERRIDE, model=model, from_version=previous,
                           to_version=version, proposal_id=block.proposal_id, reason=why,
                           inputs={"deployed_by": who, "source": source, "blocked": block.why()})
        if block.proposal_id is None:
            return [audit], None
        post = f"{who} deployed blocked version {version} of {model} anyway (override by {actor}): {why}"
        return [audit], (block.proposal_id, Intent(CardEvent.OVERRIDE, post))

    def _refuse_blocked(self, block: Block, actor: str, who: str, previous: str | None,
                        source: str | None) -> VersionBlocked:
        oplog.event("deployment.refused_blocked", model=block.model, version=block.version, actor=actor)
        self.store.append_audit(AuditEvent(
            actor=actor, action=AuditAction.DEPLOYMENT_REFUSED_BLOCKED, model=block.model, from_version=previous,
            to_version=block.version, reason=block.why(), proposal_id=block.proposal_id,
            inputs={"deployed_by": who, "source": source}))
        return VersionBlocked(block)

    def _tell_superseded(self, waiting: Proposal | None, announce: tuple[int, Intent] | None) -> None:
        """The store wrote the outbox rows with the deployment; wake the sender (or tell a plain notifier)."""
        if waiting is not None and waiting.state is State.PROPOSED:
            now = self.store.get_proposal(waiting.id)
            if now.state is State.CANCELLED:
                oplog.event("proposal.superseded", proposal=now.id, model=now.model, why=now.result)
                self._notify(now, CardEvent.SUPERSEDED, now.result, written=True)
        if announce is not None:
            self._notify(self.store.get_proposal(announce[0]), announce[1].event, announce[1].detail, written=True)

    # ---- freeze -----------------------------------------------------------------------------------------

    def freeze(self, model: str, *, actor: Actor | str, duration: timedelta, reason: str | None) -> datetime:
        """Checked here, whoever calls (Slack, CLI, API): freezing stops rollbacks, so only approvers may."""
        who = Actor.of(actor)
        actor = str(who)
        self._authorize(who, Act.FREEZE, self.model_policy(model))
        until = self.clock.now() + duration
        self.store.set_freeze(model, until, reason, actor, AuditEvent(
            actor=actor, action=AuditAction.MODEL_FROZEN, model=model,
            reason=f"frozen for {format_duration(duration)}" + (f": {reason}" if reason else "")))
        oplog.event("model.frozen", model=model, actor=actor, until=f"{until:%Y-%m-%dT%H:%MZ}", reason=reason)
        return until

    def unfreeze(self, model: str, *, actor: Actor | str) -> None:
        who = Actor.of(actor)
        actor = str(who)
        self._authorize(who, Act.UNFREEZE, self.model_policy(model))
        self.store.set_freeze(model, None, None, None, AuditEvent(actor=actor, action=AuditAction.MODEL_UNFROZEN,
                                                                  model=model, reason="unfrozen"))
        oplog.event("model.unfrozen", model=model, actor=actor)


__all__ = ["ModelControls"]
