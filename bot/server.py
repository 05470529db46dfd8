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

from bot.bootstrap import Container, build, start_workers, verifier
from bot.config import Settings, check_settings
from bot.scheduler import start_scheduler
from bot.store.migrate import upgrade
from bot.web.app import create_app
from bot.web.deadline import Deadline

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
    }
    if not container.run_workers:  # no executor thread: approved/executing proposals are swept here
        jobs["stuck"] = (service.sweep_stuck, 60.0)
    socket_bolt: AsyncApp | None = None
    if with_slack:
        from bot.slack.wiring import attach_slack

        parts = attach_slack(container)
        if container.settings.socket_mode:
            socket_bolt = parts.bolt  # Slack's requests arrive over the socket; alerts stay on HTTP
        else:
            extra.append(parts.route)
    bolt, app_token = socket_bolt, container.settings.slack_app_token

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The workers live as long as the server: started when it starts, stopped when it stops.
        workers = start_workers(container) if with_slack or container.run_workers else []
        handler = None
        try:
            if bolt is not None:
                from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

                # Built inside the running loop: its aiohttp session must belong to the server's event loop.
                handler = AsyncSocketModeHandler(bolt, app_token)
                await handler.connect_async()  # type: ignore[no-untyped-call]
            yield
        finally:
            if handler is not None:
                await handler.close_async()  # type: ignore[no-untyped-call]
            for worker in workers:
                worker.stop()

    if service.verification_enabled:
        jobs["verify"] = (verifier(container).sweep, sweep_every)
    app = create_app(container, extra_routes=extra, lifespan=lifespan)
    if container.run_workers:  # the request only records: anything slower than the deadline is the database
        app.add_middleware(Deadline, seconds=container.timings.deadline_s)
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
    container = build(settings, run_workers=True)
    running = assemble(container, with_slack=True)
    scheduler: BackgroundScheduler = start_scheduler(running.jobs)
    try:
        uvicorn.run(running.app, host=host, port=port, log_level="info")
    finally:
        scheduler.shutdown(wait=False)
        container.close()
    return 0


__all__ = ["Running", "assemble", "serve"]
