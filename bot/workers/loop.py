"""One background thread per worker: woken at once in-process, by PostgreSQL NOTIFY, or by its poll timer."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bot.database_health import OUTAGE, outage_failure

log = logging.getLogger(__name__)

DECIDE, EXECUTE, SLACK = "decide", "execute", "slack"
# The Slack sender waits this long after a wake-up: an automatic rollback's "executing" and "succeeded" are
# then usually delivered in one tick, and the card is drawn (CPU work) after the switch, not beside it.
SLACK_SETTLE_S = 0.05


class Signals:
    """Named wake-ups shared by whoever writes work (requests, workers) and the worker that does it."""

    def __init__(self) -> None:
        self._events = {name: threading.Event() for name in (DECIDE, EXECUTE, SLACK)}

    def event(self, name: str) -> threading.Event:
        return self._events[name]

    def wake(self, name: str) -> None:
        self._events[name].set()

    def wake_all(self) -> None:
        for event in self._events.values():
            event.set()

    def wake_named(self, name: str) -> None:
        """Wake the worker a notification names; every worker when the name is unknown (or empty)."""
        if name in self._events:
            self.wake(name)
        else:
            self.wake_all()


class Loop:
    """Runs ``tick`` whenever woken, and every ``poll_s`` seconds as the fallback when a wake-up is lost.

    ``tick`` returns True when it did something, so a busy worker runs again at once instead of waiting.
    ``settle_s``: after a wake-up from idle, wait that long before the tick, so what arrives meanwhile is
    taken in the same tick (the Slack sender: see SLACK_SETTLE_S).
    """

    def __init__(self, name: str, tick: Callable[[], bool], poll_s: float, signals: Signals,
                 settle_s: float = 0.0) -> None:
        self.name = name
        self.tick = tick
        self.poll_s = poll_s
        self.settle_s = settle_s
        self._wake = signals.event(name)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0

    def start(self) -> Loop:
        self._thread = threading.Thread(target=self._run, name=f"worker-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            busy = False
            try:
                busy = self.tick()
            except Exception as exc:  # noqa: BLE001  a database outage: log once per outage and poll again
                self.errors += 1
                if not outage_failure(exc, f"worker {self.name}"):
                    log.warning("worker %s: %s: %s (retrying)", self.name, type(exc).__name__, str(exc)[:200])
            else:
                OUTAGE.recovered()
            if not busy and self._wake.wait(self.poll_s) and self.settle_s:
                self._stop.wait(self.settle_s)


__all__ = ["DECIDE", "EXECUTE", "SLACK", "SLACK_SETTLE_S", "Loop", "Signals"]
