"""Model controls: deployments recorded, freezes set and lifted."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.core import oplog
from bot.core.actor import Actor
from bot.core.audit import AuditEvent
from bot.core.authorization import Act
from bot.core.durations import format_duration
from bot.core.errors import RollbackError, UnknownModel
from bot.core.selection import Deployment
from bot.core.usecase import UseCase


class ModelControls(UseCase):
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

    # ---- freeze -----------------------------------------------------------------------------------------

    def freeze(self, model: str, *, actor: Actor | str, duration: timedelta, reason: str | None) -> datetime:
        """Checked here, whoever calls (Slack, CLI, API): freezing stops rollbacks, so only approvers may."""
        who = Actor.of(actor)
        actor = str(who)
        self._authorize(who, Act.FREEZE, self.model_policy(model))
        until = self.clock.now() + duration
        self.store.set_freeze(model, until, reason, actor, AuditEvent(
            actor=actor, action="model.frozen", model=model,
            reason=f"frozen for {format_duration(duration)}" + (f": {reason}" if reason else "")))
        oplog.event("model.frozen", model=model, actor=actor, until=f"{until:%Y-%m-%dT%H:%MZ}", reason=reason)
        return until

    def unfreeze(self, model: str, *, actor: Actor | str) -> None:
        who = Actor.of(actor)
        actor = str(who)
        self._authorize(who, Act.UNFREEZE, self.model_policy(model))
        self.store.set_freeze(model, None, None, None, AuditEvent(actor=actor, action="model.unfrozen",
                                                                  model=model, reason="unfrozen"))
        oplog.event("model.unfrozen", model=model, actor=actor)


__all__ = ["ModelControls"]
