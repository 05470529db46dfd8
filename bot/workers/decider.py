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


URGENT_RETRY_S = 0.02


def lease_name(model: str) -> str:
    return f"decide:{model}"


class Decider:
    def __init__(self, intake: AlertIntake, inbox: Inbox, owner: str, lease_s: float, per_tick: int = 8) -> None:
        self.per_tick = per_tick
        self.intake = intake
        self.inbox = inbox
        self.owner = owner
        self.lease_s = lease_s
        self._again = threading.Event()  # never set: a wait that a stopping process does not need to cut short

    def tick(self) -> bool:
        """Decide a few models with new alerts whose lease is free; True when something was decided (the
        loop then runs again at once). A few, not all: the list is read critical first, and under a storm a
        critical alert that arrives during a pass over every model would wait for all of them."""
        busy = False
        for model in self.inbox.pending_models(limit=self.per_tick):
            with held(self.inbox, lease_name(model), self.owner, self.lease_s) as fencing:
                if fencing is None:
                    continue  # another replica decides this model right now; it re-reads the inbox after
                decision = self.intake.decide(model)
                busy = busy or bool(decision.outcomes)
        return busy

    def urgent_tick(self) -> bool:
        """The second lane: only models with a critical alert waiting, so a critical alert that arrives while
        the first lane works through a storm of warnings is decided now, not after them. A model the other
        lane holds is left to it (its next pass reads critical models first); this lane looks again shortly."""
        busy = False
        held_elsewhere = False
        for model in self.inbox.pending_models(limit=self.per_tick, urgent_only=True):
            with held(self.inbox, lease_name(model), self.owner, self.lease_s) as fencing:
                if fencing is None:
                    held_elsewhere = True
                    continue
                decision = self.intake.decide(model)
                busy = busy or bool(decision.outcomes)
        if held_elsewhere and not busy:
            self._again.wait(URGENT_RETRY_S)  # not at once: the other lane needs a moment to finish that model
        return busy or held_elsewhere

    def decide_now(self, model: str, wait_s: float = 10.0) -> ModelDecision:
        """For builds without a decider thread: wait for the model's lease, then decide in this thread."""
        with waited(self.inbox, lease_name(model), self.owner, self.lease_s, wait_s) as fencing:
            if fencing is None:
                log.warning("the inbox of %s stays queued: its lease is held elsewhere", model)
                return ModelDecision()
            return self.intake.decide(model)


__all__ = ["Decider", "lease_name"]
