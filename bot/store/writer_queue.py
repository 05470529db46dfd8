"""SQLite's writers of one process, one at a time, a rollback's before the inbox's.

SQLite allows one writer at a time, so the store queues this process's writers here before SQLite's busy
handler would (it waits by sleeping). A plain lock left the order to chance, and under an alert storm the
inbox writer, which commits one group of requests after another, took it back almost every time: a critical
alert's decision and switch, seven short transactions, each waited behind the storm's inserts. Here the
inbox gives way to any other writer that is waiting, but never more than ``max_skips`` turns in a row (then
it is next), so the 202s keep coming. Measured side by side (SQLite, one alert per request): critical →
switched in the storm 594-655 ms at the median against 1,147-1,960 ms with four turns and 1,302-1,569 ms
with the plain lock; the 202 p99 stayed within the runs' spread (170-246 ms against 152-188 ms).

PostgreSQL's writers are not queued at all (``enabled=False``): its row locks order them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType


class WriterQueue:
    """A lock for SQLite's writers of this process, with the inbox last; not reentrant."""

    def __init__(self, *, enabled: bool = True, max_skips: int = 16) -> None:
        self.enabled = enabled
        self.max_skips = max_skips
        self._turn = threading.Condition(threading.Lock())
        self._busy = False
        self._waiting = {True: 0, False: 0}  # by "gives way"
        self._skipped = 0  # turns taken by others while the inbox waited
        self._mode = threading.local()

    @contextmanager
    def giving_way(self) -> Iterator[None]:
        """The writes of this block (the inbox's) go after every other writer waiting."""
        before = getattr(self._mode, "gives_way", False)
        self._mode.gives_way = True
        try:
            yield
        finally:
            self._mode.gives_way = before

    def waiting(self) -> tuple[int, int]:
        """(other writers, inbox writers) waiting for their turn, for tests and curiosity."""
        with self._turn:
            return self._waiting[False], self._waiting[True]

    def __enter__(self) -> WriterQueue:
        if not self.enabled:
            return self
        gives_way = bool(getattr(self._mode, "gives_way", False))
        with self._turn:
            self._waiting[gives_way] += 1
            try:
                while self._busy or self._not_yet(gives_way):
                    self._turn.wait()
            finally:
                self._waiting[gives_way] -= 1
            self._busy = True
            if gives_way:
                self._skipped = 0
            elif self._waiting[True]:
                self._skipped += 1
        return self

    def _not_yet(self, gives_way: bool) -> bool:
        """The inbox waits while others do, until it has given way ``max_skips`` times; then it is next."""
        if gives_way:
            return bool(self._waiting[False]) and self._skipped < self.max_skips
        return bool(self._waiting[True]) and self._skipped >= self.max_skips

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if not self.enabled:
            return
        with self._turn:
            self._busy = False
            self._turn.notify_all()


__all__ = ["WriterQueue"]
