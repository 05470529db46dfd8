"""The decider: each model's inbox decided by exactly one worker at a time, across replicas (a lease row)."""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from bot.core.intake import AlertIntake, ModelDecision
from bot.core.ports import Leases
from bot.workers.leasing import held, waited

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
        # Models a thread of this process decides right now. The lease keeps other processes out; it cannot
        # keep out another decider thread of this one, which claims with the same owner (a claim that is
        # already ours succeeds), so threads of one process stay apart here.
        self._deciding: set[str] = set()
        self._guard = threading.Lock()

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
        with self._guard:
            if model in self._deciding:
                return False  # another thread of this process decides it; it re-reads the inbox after
            self._deciding.add(model)
        try:
            with held(self.inbox, lease_name(model), self.owner, self.lease_s) as fencing:
                if fencing is None:
                    return False  # another replica decides this model right now; it re-reads the inbox after
                return bool(self.intake.decide(model).outcomes)
        finally:
            with self._guard:
                self._deciding.discard(model)

    def decide_now(self, model: str, wait_s: float = 10.0) -> ModelDecision:
        """For builds without a decider thread: wait for the model's lease, then decide in this thread."""
        with waited(self.inbox, lease_name(model), self.owner, self.lease_s, wait_s) as fencing:
            if fencing is None:
                log.warning("the inbox of %s stays queued: its lease is held elsewhere", model)
                return ModelDecision()
            return self.intake.decide(model)


__all__ = ["Decider", "lease_name"]
