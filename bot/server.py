"""`rollback-bot serve`: the web app, the sweepers and Slack, in one process."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import FrameType

import anyio.to_thread
import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler
from slack_bolt.async_app import AsyncApp
from starlette.applications import Starlette

from bot.audit_anchors import anchor_job
from bot.audit_config import problems as audit_problems
from bot.bootstrap import Container, build, start_workers, verifier
from bot.config import Settings, check_settings, reveal
from bot.core import oplog
from bot.database_health import OUTAGE, database_problem, reason, sqlite_path
from bot.redact import mask_url, redact
from bot.scheduler import start_scheduler
from bot.sqlite_lock import SqliteLock
from bot.store.migrate import upgrade
from bot.web.app import create_app
from bot.web.deadline import Deadline
from bot.worker_process import WorkerProcess, mode_problem, run_workers, uses_worker_process
from bot.workers.leasing import held

log = logging.getLogger(__name__)


Jobs = dict[str, tuple[Callable[[], object], float]]


@dataclass
class Running:
    app: Starlette
    container: Container
    jobs: Jobs
    socket_mode: bool = False


def sweeper_jobs(container: Container, sweep_every: float = 5.0) -> Jobs:
    """The periodic sweepers, each ``name: (job, every_seconds)``; they run wherever the workers run."""
    service = container.service
    jobs: Jobs = {
        "deadlines": (service.sweep_deadlines, sweep_every),
        "stable": (service.sweep_stable, 30.0),
        "drift": (drift_sweep(container), 60.0),  # a blocked version re-applied by hand: offered again
    }
    if not container.run_workers:  # no executor thread: approved/executing proposals are swept here
        jobs["stuck"] = (service.sweep_stuck, 60.0)
    poster = container.extras.get("report_poster")  # report hook: reports a crash or a Slack outage missed
    if poster is not None:
        jobs["reports"] = (poster.sweep, 30.0)
    if service.verification_enabled:
        jobs["verify"] = (verifier(container).sweep, sweep_every)
    if anchors := anchor_job(container):  # audit chain heads written outside the database
        jobs["audit-anchor"] = anchors
    return jobs


def assemble(container: Container, *, with_slack: bool, sweep_every: float = 5.0,
             workers_elsewhere: bool = False) -> Running:
    """The whole product around a built container: HTTP routes, Slack (if configured) and the sweepers.

    ``workers_elsewhere``: the workers and sweepers run in a process of their own (bot/worker_process.py);
    this process only records and answers.
    """
    extra = []
    jobs = {} if workers_elsewhere else sweeper_jobs(container, sweep_every)
    socket_bolt: AsyncApp | None = None
    if with_slack:
        from bot.slack.wiring import attach_slack

        parts = attach_slack(container)
        if container.settings.socket_mode:
            socket_bolt = parts.bolt  # Slack's requests arrive over the socket; alerts stay on HTTP
        else:
            extra.append(parts.route)
    bolt, app_token = socket_bolt, reveal(container.settings.slack_app_token)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Requests' blocking work runs on a bounded thread pool (anyio's default is 40 threads).
        anyio.to_thread.current_default_thread_limiter().total_tokens = container.settings.request_threads
        # The workers live as long as the server: started when it starts, stopped when it stops.
        here = not workers_elsewhere and (with_slack or container.run_workers)
        workers = start_workers(container) if here else []
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

    app = create_app(container, extra_routes=extra, lifespan=lifespan)
    if container.run_workers:  # the request only records: anything slower than the deadline is the database
        app.add_middleware(Deadline, seconds=container.timings.deadline_s)
    return Running(app, container, jobs, socket_bolt is not None)


def drift_sweep(container: Container) -> Callable[[], object]:
    """One replica at a time asks the targets, so a version re-applied by hand is recorded and offered once."""

    def sweep() -> object:
        c = container
        with held(c.store, "sweep:drift", c.owner, c.timings.lease_s) as fencing:
            return fencing is not None and c.service.sweep_drift()

    return sweep


def preflight(settings: Settings, connected: list[str] | None = None) -> list[str]:
    """Everything that would stop `serve` from working, one line each, checked before the port is bound.

    ``connected`` receives who Slack says the bot is, when it says so.
    """
    connected = [] if connected is None else connected
    problems = check_settings(settings, command="serve")
    problems += audit_problems(settings, command="serve")  # AUDIT_HMAC_KEY on PostgreSQL (bot/audit_config.py)
    problems += _database_preflight(settings.database_url)
    if problem := mode_problem(settings):
        problems.append(problem)
    token = reveal(settings.slack_bot_token)
    if token and not any(p.startswith("SLACK_BOT_TOKEN") for p in problems):
        from bot.slack.wiring import SlackStartError, check_auth

        try:
            who = check_auth(token, settings.slack_api_url)
        except SlackStartError as exc:
            problems.append(str(exc))
        else:
            connected.append(who)
    return problems


def _database_preflight(url: str) -> list[str]:
    if url.startswith("sqlite"):  # serve keeps SQLite current by itself
        try:
            upgrade(url)
        except Exception as exc:  # noqa: BLE001  one line, whatever the reason (no directory, read-only file)
            return [f"cannot open the SQLite database {mask_url(url)}: {reason(exc)}"]
    problem = database_problem(url)
    return [problem] if problem else []


def serve(settings: Settings, *, host: str, port: int) -> int:
    connected: list[str] = []
    problems = preflight(settings, connected)
    if problems:
        for problem in problems:
            print(redact(f"cannot start: {problem}", settings.secret_values()), file=sys.stderr)
        return 1
    oplog.event("slack.connected", who=connected[0] if connected else None,
                mode="socket" if settings.socket_mode else "http")
    if settings.alert_webhook_token is None:
        oplog.event("serve.no_alert_token", level=logging.WARNING,
                    advice="ALERT_WEBHOOK_TOKEN is not set: /alerts/*, /deployments and /api/* refuse every "
                           "request until it is")
    lock = None
    path = sqlite_path(settings.database_url)
    if path is not None:
        lock = SqliteLock(path)
        lock.acquire()
    workers = None
    if uses_worker_process(settings):  # forked first: no thread of this process may exist yet
        workers = WorkerProcess(lambda lifeline: run_workers(settings, lifeline)).start(on_exit=_workers_exited)
        OUTAGE.process = "requests"
    container = build(settings, run_workers=True)
    running = assemble(container, with_slack=True, workers_elsewhere=workers is not None)
    scheduler: BackgroundScheduler = start_scheduler(running.jobs)
    oplog.event("serve.started", url=f"http://{host}:{port}", database=mask_url(settings.database_url),
                mode="socket" if settings.socket_mode else "http",
                workers=f"process {workers.pid}" if workers is not None else "threads",
                jobs=",".join(running.jobs) or "in the worker process")
    # uvicorn re-raises the SIGTERM it shut down on, once it has restored the handler it found: with the
    # default one the process would end there, before the workers are stopped and the pool closed below.
    signal.signal(signal.SIGTERM, _stopped_by_sigterm)
    try:
        uvicorn.run(running.app, host=host, port=port, log_config=None, access_log=False, log_level="warning")
    finally:
        scheduler.shutdown(wait=False)
        if workers is not None:
            workers.stop()
        container.close()
        if lock is not None:
            lock.release()
        oplog.event("serve.stopped")
    return 0 if workers is None or workers.exit_code in (0, None) else 1


def _stopped_by_sigterm(signum: int, frame: FrameType | None) -> None:
    """uvicorn has already shut the server down on this signal; what remains is serve's own clean-up."""


def _workers_exited(code: int) -> None:
    """The worker process died: stop serving (as SIGTERM would), so whatever restarts `serve` restarts both."""
    oplog.event("serve.workers_exited", level=logging.ERROR, code=code,
                advice="the workers stopped: `serve` shuts down so that its supervisor restarts it whole")
    os.kill(os.getpid(), signal.SIGTERM)


__all__ = ["Jobs", "Running", "assemble", "preflight", "serve", "sweeper_jobs"]
