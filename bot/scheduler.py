"""Periodic sweepers. Each asks the database what is due, so a restart or a second replica is safe."""

from __future__ import annotations

import logging
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler

from bot.database_health import OUTAGE, is_database_error

log = logging.getLogger(__name__)


def _safe(name: str, job: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        try:
            job()
        except Exception as exc:  # a failing sweep must not kill the scheduler; the next run retries
            if is_database_error(exc):
                OUTAGE.failed(exc, f"sweeper {name}")  # once per outage, not a traceback per tick
            else:
                log.exception("sweeper %s failed", name)
        else:
            OUTAGE.recovered()

    return run


def start_scheduler(jobs: dict[str, tuple[Callable[[], object], float]]) -> BackgroundScheduler:
    """Start a background scheduler running each ``name: (job, every_seconds)``."""
    scheduler = BackgroundScheduler(timezone="UTC")
    for name, (job, seconds) in jobs.items():
        scheduler.add_job(_safe(name, job), "interval", seconds=seconds, id=name, max_instances=1,
                          coalesce=True, misfire_grace_time=max(1, int(seconds)))
    scheduler.start()
    return scheduler
