"""Holding a lease while working: claim, heartbeat, release; and waiting for one (callers with no worker)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from bot.core.ports import Leases
from bot.database_health import outage_failure

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


def worker_id() -> str:
    """Unique per process and start: a restarted replica never mistakes an old lease for its own."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class InProcess(Generic[K]):
    """What the threads of this process work on right now. A lease keeps other processes out, not another
    thread of this one: it claims with the same owner, and a claim that is already ours succeeds."""

    def __init__(self) -> None:
        self._keys: set[K] = set()
        self._guard = threading.Lock()

    def claim(self, key: K) -> bool:
        """True if no thread of this process had ``key``; it is this caller's until ``release``."""
        with self._guard:
            if key in self._keys:
                return False
            self._keys.add(key)
            return True

    def release(self, key: K) -> None:
        with self._guard:
            self._keys.discard(key)


@contextmanager
def held(leases: Leases, name: str, owner: str, seconds: float) -> Iterator[int | None]:
    """Yield the fencing number while the lease is ours (renewed every third of it), or None if taken."""
    fencing = leases.claim_lease(name, owner, seconds)
    if fencing is None:
        yield None
        return
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(seconds / 3):
            try:
                if not leases.renew_lease(name, owner, fencing, seconds):
                    log.error("lease %s was taken over while %s still worked on it", name, owner)
                    return
            except Exception as exc:  # noqa: BLE001  the database may be briefly away; keep trying
                if not outage_failure(exc, f"renewing lease {name}"):
                    log.warning("renewing lease %s failed: %s", name, type(exc).__name__)

    heart = threading.Thread(target=beat, name=f"lease-{name}", daemon=True)
    heart.start()
    try:
        yield fencing
    finally:
        stop.set()
        heart.join(seconds)
        try:
            leases.release_lease(name, owner, fencing)
        except Exception as exc:  # noqa: BLE001  it expires by itself
            if not outage_failure(exc, f"releasing lease {name}"):
                log.warning("releasing lease %s failed: %s; it expires in %.0f s", name, type(exc).__name__,
                            seconds)


@contextmanager
def waited(leases: Leases, name: str, owner: str, seconds: float, wait_s: float) -> Iterator[int | None]:
    """Like ``held``, but wait up to ``wait_s`` for another holder to finish (polled every 10 ms)."""
    deadline = time.monotonic() + wait_s
    while True:
        with held(leases, name, owner, seconds) as fencing:
            if fencing is not None or time.monotonic() >= deadline:
                yield fencing
                return
        time.sleep(0.01)


__all__ = ["InProcess", "held", "waited", "worker_id"]
