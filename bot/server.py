"""`rollback-bot serve`: the web app, the sweepers and Slack, in one process."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler
from slack_bolt.async_app import AsyncApp
from starlette.applications import Starlette

from bot.bootstrap import Container, build, verifier
from bot.config import Settings, check_settings
from bot.scheduler import start_scheduler
from bot.store.migrate import upgrade
from bot.web.app import create_app

log = logging.getLogger(__name__)


@dataclass
class Running:
    app: Starlette
    container: Container
    jobs: dict[str, tuple[Callable[[], object], float]]
    socket_mode: bool = False


def assemble(container: Container, *, with_slack: bool, sweep_every: float = 5.0) -> Running:
    """The whole product around a built container: HTTP routes, Slack (if configured) and the sweepers."""
    service = container.service
    extra = []
    jobs: dict[str, tuple[Callable[[], object], float]] = {
        "deadlines": (service.sweep_deadlines, sweep_every),
        "stable": (service.sweep_stable, 30.0),
        "stuck": (service.sweep_stuck, 60.0),
    }
    socket_bolt: AsyncApp | None = None
    if with_slack:
        from bot.slack.wiring import attach_slack

        parts = attach_slack(container)
        if container.settings.socket_mode:
            socket_bolt = parts.bolt  # Slack's requests arrive over the socket; alerts stay on HTTP
        else:
            extra.append(parts.route)
        jobs["cards"] = (parts.notifier.sync_pending, sweep_every)
        poster = container.extras.get("report_poster")  # report hook: reports a crash or Slack outage missed
        if poster is not None:
            jobs["reports"] = (poster.sweep, 30.0)
    lifespan = None
    if socket_bolt is not None:
        bolt, app_token = socket_bolt, container.settings.slack_app_token

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            # Built inside the running loop: its aiohttp session must belong to the server's event loop.
            handler = AsyncSocketModeHandler(bolt, app_token)
            await handler.connect_async()  # type: ignore[no-untyped-call]
            try:
                yield
            finally:
                await handler.close_async()  # type: ignore[no-untyped-call]

    if service.verification_enabled:
        jobs["verify"] = (verifier(container).sweep, sweep_every)
    app = create_app(container, extra_routes=extra, lifespan=lifespan)
    return Running(app, container, jobs, socket_bolt is not None)


def serve(settings: Settings, *, host: str, port: int) -> int:
    problems = [p for p in check_settings(settings, command="serve") if not p.startswith("ALERT_WEBHOOK_TOKEN")]
    if problems:
        for problem in problems:
            print(f"cannot start: {problem}", file=sys.stderr)
        return 1
    from bot.slack.wiring import SlackStartError, check_auth

    assert settings.slack_bot_token
    try:
        who = check_auth(settings.slack_bot_token, settings.slack_api_url)
    except SlackStartError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    log.info("Slack: connected as %s (%s mode)", who, "Socket" if settings.socket_mode else "HTTP")
    if settings.database_url.startswith("sqlite"):
        upgrade(settings.database_url)
    container = build(settings)
    running = assemble(container, with_slack=True)
    scheduler: BackgroundScheduler = start_scheduler(running.jobs)
    try:
        uvicorn.run(running.app, host=host, port=port, log_level="info")
    finally:
        scheduler.shutdown(wait=False)
        container.close()
    return 0


__all__ = ["Running", "assemble", "serve"]
