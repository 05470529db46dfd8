"""The decider: each model's inbox decided by exactly one worker at a time, across replicas (a lease row)."""

from __future__ import annotations

import logging
from typing import Protocol

from bot.core.intake import AlertIntake, ModelDecision
from bot.core.ports import Leases
from bot.workers.leasing import InProcess, held, waited

log = logging.getLogger(__name__)


class Inbox(Leases, Protocol):
    def pending_models(self, limit: int = 100, *, urgent_only: bool = False) -> list[str]: ...


def lease_name(model: str) -> str:
    return f"decide:{model}"


class Decider:
    def __init__(self, intake: AlertIntake, inbox: Inbox, owner: str, lease_s: float, per_tick: int = 8) -> None:
        self.per_tick = per_tick
        self.intake = intake
        self.inbox = inbox
        self.owner = owner
        self.lease_s = lease_s
        self._deciding: InProcess[str] = InProcess()  # the decider threads of this process stay apart here

    def tick(self) -> bool:
        """Decide a few models with new alerts whose lease is free; True when something was decided (the
        loop then runs again at once). A few, not all, and critical first: the list is read with models
        that have a critical alert waiting at its head, and read again for those after each model, so a
        critical alert that arrives while a storm of warnings is decided waits for one decision, not a pass."""
        busy = False
        queue = self.inbox.pending_models(limit=self.per_tick)
        tried: set[str] = set()
        while queue:
            model = queue.pop(0)
            tried.add(model)
            busy = self._decide(model) or busy
            if queue:
                urgent = [m for m in self.inbox.pending_models(limit=self.per_tick, urgent_only=True)
                          if m not in tried]
                queue = urgent + [m for m in queue if m not in urgent]
        return busy

    def _decide(self, model: str) -> bool:
        if not self._deciding.claim(model):
            return False  # another thread of this process decides it; it re-reads the inbox after
        try:
            with held(self.inbox, lease_name(model), self.owner, self.lease_s) as fencing:
                if fencing is None:
                    return False  # another replica decides this model right now; it re-reads the inbox after
                return bool(self.intake.decide(model).outcomes)
        finally:
            self._deciding.release(model)

    def decide_now(self, model: str, wait_s: float = 10.0) -> ModelDecision:
        """For builds without a decider thread: wait for the model's lease, then decide in this thread."""
        with waited(self.inbox, lease_name(model), self.owner, self.lease_s, wait_s) as fencing:
            if fencing is None:
                log.warning("the inbox of %s stays queued: its lease is held elsewhere", model)
                return ModelDecision()
            return self.intake.decide(model)


__all__ = ["Decider", "lease_name"]
