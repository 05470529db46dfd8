"""`rollback-bot serve`: the web app, the sweepers and (when configured) Slack, in one process."""

from __future__ import annotations

import logging
import sys

import uvicorn

from bot.bootstrap import build
from bot.config import Settings, check_settings
from bot.store.migrate import upgrade
from bot.web.app import create_app

log = logging.getLogger(__name__)


def serve(settings: Settings, *, host: str, port: int) -> int:
    problems = [p for p in check_settings(settings, command="serve") if not p.startswith("ALERT_WEBHOOK_TOKEN")]
    if problems:
        for problem in problems:
            print(f"cannot start: {problem}", file=sys.stderr)
        return 1
    if settings.database_url.startswith("sqlite"):
        upgrade(settings.database_url)
    container = build(settings)
    app = create_app(container)
    from bot.scheduler import start_scheduler

    service = container.service
    scheduler = start_scheduler({
        "deadlines": (service.sweep_deadlines, 5),
        "stable": (service.sweep_stable, 30),
        "stuck": (service.sweep_stuck, 60),
    })
    try:
        uvicorn.run(app, host=host, port=port, log_level="info")
    finally:
        scheduler.shutdown(wait=False)
        container.close()
    return 0
