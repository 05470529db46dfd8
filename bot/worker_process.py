"""`serve`'s workers in a process of their own: the request process only parses, commits and answers.

Python runs one thread at a time per process. With the decider, the executor, the Slack sender and the
sweepers beside the HTTP server, a request waited for the interpreter lock behind them (a statement that
PostgreSQL answers in 0.1 ms took 1 to 10 ms inside `serve`). Forked before either side starts a thread, the
worker process shares the imported code with the request process (copy-on-write) and has its own lock.

How the two keep in step, without a channel of their own:
- Work reaches the workers through the database and its ``NOTIFY`` (PostgreSQL only, hence ``auto`` turns
  this on for PostgreSQL alone): the inbox, approvals and Slack intents each notify in their transaction.
- A lifeline pipe: the worker process holds its read end. When the request process dies, even by
  ``kill -9``, the read returns end-of-file and the workers exit at once, as if killed with it, so no orphan
  keeps leases or switches models for a server that is gone; their leases expire as after any crash.
- When the worker process dies, the request process logs it and shuts down, so whatever restarts `serve`
  (Kubernetes, systemd) restarts both; requests never pile up for workers that are not there.
- The Slack sender is a third process, forked by the worker process and tied to it the same way
  (``run_workers``); both children live and die through ``_run_until_stopped``.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from bot.config import Settings, reveal
from bot.core import oplog
from bot.database_health import OUTAGE

if TYPE_CHECKING:
    from bot.bootstrap import Container

log = logging.getLogger(__name__)

# What a forked process started: how to stop each piece, in order, and what its ".started" line says.
Started = tuple[list[Callable[[], object]], dict[str, Any]]

LIFELINE_LOST = 70  # the worker process's exit code when the request process is gone (EX_SOFTWARE)


def uses_worker_process(settings: Settings) -> bool:
    """``WORKER_MODE``: ``process`` always, ``thread`` never, ``auto`` (default) on PostgreSQL only.

    SQLite stays in one process: its writers would then contend across processes through file locks and
    sleeping busy handlers, and cross-process wake-ups need PostgreSQL's NOTIFY.
    """
    if not hasattr(os, "fork"):  # Windows: threads, whatever was asked (mode_problem says so for `process`)
        return False
    if settings.worker_mode == "process":
        return True
    return settings.worker_mode == "auto" and settings.database_url.startswith("postgresql")


def mode_problem(settings: Settings) -> str | None:
    if settings.worker_mode == "process" and not hasattr(os, "fork"):
        return "WORKER_MODE=process needs an OS that can fork (not Windows); use WORKER_MODE=auto or thread"
    if settings.worker_mode == "process" and not settings.database_url.startswith("postgresql"):
        return ("WORKER_MODE=process needs PostgreSQL (DATABASE_URL is not postgresql://…): the workers are "
                "woken across processes by its NOTIFY; use WORKER_MODE=auto or thread with SQLite")
    return None


class WorkerProcess:
    """The forked worker process, seen from the request process."""

    def __init__(self, run: Callable[[int], int]) -> None:
        """``run(lifeline_fd)`` is the worker process's whole life; its return value is the exit code."""
        self._run = run
        self.pid = 0
        self.exit_code: int | None = None
        self._lifeline = -1
        self._stopping = threading.Event()
        self._exited = threading.Event()
        self._on_exit: Callable[[int], None] | None = None

    def start(self, on_exit: Callable[[int], None] | None = None) -> WorkerProcess:
        """Fork now, before this process starts any thread (a fork copies only the calling thread).

        ``on_exit(code)`` is called (in a thread) if the worker process ends while this one is not stopping.
        """
        self._on_exit = on_exit
        others = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
        if others:  # a lock one of them holds would stay held for ever in the child
            raise RuntimeError(f"the worker process must be forked before any thread starts (running: {others})")
        read_end, write_end = os.pipe()
        gc.freeze()  # objects made so far are never collected: their pages stay shared with the child
        pid = os.fork()
        if pid == 0:  # the worker process
            os.close(write_end)
            code = 1
            try:
                code = self._run(read_end)
            except BaseException:  # whatever ends it, never return into the caller's stack
                log.exception("the worker process failed")
            finally:
                logging.shutdown()
                os._exit(code)
        os.close(read_end)
        gc.unfreeze()
        self.pid, self._lifeline = pid, write_end
        threading.Thread(target=self._reap, name="worker-process-reaper", daemon=True).start()
        return self

    def _reap(self) -> None:
        _, status = os.waitpid(self.pid, 0)
        self.exit_code = os.waitstatus_to_exitcode(status)
        self._exited.set()
        if not self._stopping.is_set() and self._on_exit is not None:
            self._on_exit(self.exit_code)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then wait for the workers to finish their current step; SIGKILL after ``timeout``."""
        if not self.pid or self._stopping.is_set():
            return
        self._stopping.set()
        if not self._exited.is_set():
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                os.kill(self.pid, signal.SIGTERM)
            if not self._exited.wait(timeout):
                log.warning("the worker process did not stop within %.0f s: killing it", timeout)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self._exited.wait(5)
        os.close(self._lifeline)


def hold_lifeline(fd: int) -> None:
    """In the worker process: exit at once when the request process is gone (its end of the pipe closed)."""

    def wait() -> None:
        while True:
            try:
                if os.read(fd, 1) == b"":
                    break
            except InterruptedError:
                continue
        os._exit(LIFELINE_LOST)

    threading.Thread(target=wait, name="lifeline", daemon=True).start()


def stop_on_signals() -> threading.Event:
    """SIGTERM and SIGINT (Ctrl-C reaches the whole process group) ask the workers to stop."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def run_workers(settings: Settings, lifeline: int) -> int:
    """The worker process: the decider, the executor and the sweepers, until told to stop.

    The Slack sender runs in a process of its own, forked from this one before it starts a thread: drawing
    and posting cards is CPU work that, beside the decider and the executor, made an idle critical alert
    wait for the interpreter lock (switched in 61-64 ms at the median with the sender here, 35-36 ms
    without it). Its lifeline is this process, so it never outlives the workers; if it dies, the workers
    stop, and `serve` with them, so the supervisor restarts all three.
    """
    from bot.bootstrap import start_workers
    from bot.scheduler import start_scheduler
    from bot.server import sweeper_jobs

    stop = stop_on_signals()
    sender_failed = threading.Event()
    sender = None
    if reveal(settings.slack_bot_token):  # forked first: no thread of this process may exist yet
        sender = WorkerProcess(lambda fd: run_sender(settings, fd)).start(
            on_exit=lambda code: _sender_exited(code, stop, sender_failed))

    def start(container: Container) -> Started:
        workers = start_workers(container, send=sender is None)
        jobs = sweeper_jobs(container)
        scheduler = start_scheduler(jobs)
        stops: list[Callable[[], object]] = [lambda: scheduler.shutdown(wait=False), *(w.stop for w in workers)]
        if sender is not None:
            stops.append(sender.stop)
        return stops, {"jobs": ",".join(jobs), "slack": f"process {sender.pid}" if sender is not None else "thread"}

    _run_until_stopped(settings, lifeline, stop, "workers", "workers", start)
    return 1 if sender_failed.is_set() else 0


def run_sender(settings: Settings, lifeline: int) -> int:
    """The Slack process: the outbox sender (cards, thread messages, drill cards, the audit channel)."""
    from bot.bootstrap import start_workers

    def start(container: Container) -> Started:
        return [w.stop for w in start_workers(container, act=False)], {}

    _run_until_stopped(settings, lifeline, stop_on_signals(), "slack", "sender", start)
    return 0


def _run_until_stopped(settings: Settings, lifeline: int, stop: threading.Event, process: str, events: str,
                       start: Callable[[Container], Started]) -> None:
    """A forked process's life: exit with its parent, build, ``start`` what it runs (the stops, in order, and
    what ``<events>.started`` says), wait for SIGTERM, stop it all, close; ``process`` names it in outage logs."""
    from bot.bootstrap import build

    hold_lifeline(lifeline)
    OUTAGE.process = process
    container = build(settings, run_workers=True)
    stops, said = start(container)
    oplog.event(f"{events}.started", pid=os.getpid(), **said)
    try:
        stop.wait()
    finally:
        for stop_one in stops:
            stop_one()
        container.close()
        oplog.event(f"{events}.stopped", pid=os.getpid())


def _sender_exited(code: int, stop: threading.Event, failed: threading.Event) -> None:
    """The Slack process ended on its own: the workers stop too (exit 1), and `serve` with them."""
    if code != 0:
        failed.set()
        oplog.event("workers.sender_exited", level=logging.ERROR, code=code,
                    advice="the Slack sender stopped: the workers stop so that `serve`'s supervisor restarts it")
    stop.set()


__all__ = ["LIFELINE_LOST", "WorkerProcess", "mode_problem", "run_sender", "run_workers",
           "uses_worker_process"]
