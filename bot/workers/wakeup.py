"""Cross-replica wake-ups: a PostgreSQL ``LISTEN`` connection that wakes this process's workers.

Requests and state changes ``NOTIFY rollback_bot_work, '<worker>'`` in their transaction, so every replica
hears of new work when it commits, and only the worker named wakes: under a storm every inbox commit used to
wake the Slack sender and the executor too, each to find nothing and pay a dozen statements for it. A
notification without a known name (an older replica) wakes every worker. A lost connection only delays work
until the workers' poll timer; it reconnects by itself with a growing pause.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import psycopg
from sqlalchemy.engine import make_url

from bot.database_health import outage_failure
from bot.store.work_queues import WAKE_CHANNEL

log = logging.getLogger(__name__)


def _conninfo(url: str) -> str:
    u = make_url(url)
    parts = {"host": u.host or "127.0.0.1", "port": str(u.port or 5432), "dbname": u.database or "",
             "user": u.username or "", "password": u.password or "", "connect_timeout": "5"}
    return " ".join(f"{k}={v}" for k, v in parts.items() if v)


class PgListener:
    def __init__(self, url: str, wake: Sequence[Callable[[str], None]]) -> None:
        """``wake`` is called with each notification's payload: the name of the worker it is for."""
        self.url = url
        self.wake = list(wake)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.heard = 0

    def start(self) -> PgListener:
        self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        pause = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(_conninfo(self.url), autocommit=True) as conn:
                    conn.execute(f"LISTEN {WAKE_CHANNEL}")
                    pause = 0.5
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self.heard += 1
                            for wake in self.wake:
                                wake(note.payload)
            except Exception as exc:  # noqa: BLE001  the database is away: poll until it is back
                if not outage_failure(exc, f"LISTEN {WAKE_CHANNEL}"):
                    log.warning("LISTEN %s: %s; workers poll until it reconnects", WAKE_CHANNEL, type(exc).__name__)
                self._stop.wait(pause)
                pause = min(pause * 2, 10.0)


__all__ = ["PgListener"]
