"""Group commit for the alert inbox: requests that arrive while one transaction commits share the next.

Why: under a storm a request's cost is mostly its transaction (a pooled connection, a thread hop, BEGIN, a
read, an insert, COMMIT and its fsync) and fifty senders each paying it queue behind each other for the
interpreter lock, the pool and, on SQLite, the single writer. One writer thread instead takes everything
that is waiting, writes it in one transaction and answers every request from the result: a request costs
its parsing, and a 202 still means committed, because no request is answered before its transaction is.

When a shared transaction fails for a reason that belongs to one request (a constraint, a deadlock with a
replica), each request is written again on its own, so one bad batch never costs the others their 202; when
the database is away, every request of the group gets the error (503, not stored) at once.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Waiting(Generic[T, R]):
    item: T
    future: asyncio.Future[R]
    loop: asyncio.AbstractEventLoop


class GroupCommit(Generic[T, R]):
    def __init__(self, write: Callable[[list[T]], list[R]], *, retry_alone: Callable[[BaseException], bool],
                 max_items: int = 100, name: str = "inbox-writer") -> None:
        """``write`` stores a list of items in one transaction and answers one result per item, in order;
        ``retry_alone`` says whether an error of a shared transaction may be one item's fault."""
        self.write = write
        self.retry_alone = retry_alone
        self.max_items = max_items
        self.name = name
        self.groups = 0  # transactions written, for tests and /metrics-style curiosity
        self._queue: queue.SimpleQueue[_Waiting[T, R] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    async def submit(self, item: T) -> R:
        """Wait until ``item`` is committed (its result) or its transaction failed (the error is raised)."""
        self._ensure_started()
        loop = asyncio.get_running_loop()
        waiting: _Waiting[T, R] = _Waiting(item, loop.create_future(), loop)
        self._queue.put(waiting)
        return await waiting.future

    def close(self) -> None:
        """Stop the writer after what is queued; used when the server stops."""
        with self._guard:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(5.0)

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._guard:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            while len(group) < self.max_items:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this group
                    break
                group.append(more)
            # A request answered already (its deadline passed, its client went away) was told its alerts
            # may not be stored and will send them again: its batch is not written late.
            group = [w for w in group if not w.future.done()]
            if group:
                self._write(group)

    def _write(self, group: list[_Waiting[T, R]]) -> None:
        try:
            results = self.write([w.item for w in group])
        except Exception as exc:  # noqa: BLE001  answered to the requests, which map it to a status
            if len(group) > 1 and self.retry_alone(exc):
                for waiting in group:
                    self._write([waiting])
                return
            for waiting in group:
                _settle(waiting, partial(_fail, exc))
            return
        self.groups += 1
        for waiting, result in zip(group, results, strict=True):
            _settle(waiting, partial(_succeed, result))


def _settle(waiting: _Waiting[T, R], outcome: Callable[[asyncio.Future[R]], None]) -> None:
    def run() -> None:
        if not waiting.future.done():  # the request went away (client gone, deadline): nothing to tell it
            outcome(waiting.future)

    try:
        waiting.loop.call_soon_threadsafe(run)
    except RuntimeError:  # the event loop has closed (the server stopped)
        log.debug("inbox answer dropped: the server's event loop is closed")


def _fail(error: BaseException, future: asyncio.Future[R]) -> None:
    future.set_exception(error)


def _succeed(result: R, future: asyncio.Future[R]) -> None:
    future.set_result(result)


__all__ = ["GroupCommit"]
