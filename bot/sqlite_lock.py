"""Notice a second `serve` on the same SQLite file (unsupported: sweepers and Slack would run twice over).

`serve` holds an advisory lock on ``<database>.lock`` for its lifetime; the lock goes away with the process,
even after ``kill -9``, so a stale file never blocks anything. A second process only warns: the first may be
a stuck one the operator is about to stop.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import IO

from bot.core import oplog

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no check
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)


class SqliteLock:
    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".lock")
        self._file: IO[str] | None = None
        self.holder: str | None = None

    def acquire(self) -> bool:
        """True when this process is the only `serve` on the file; otherwise warn once and return False."""
        if fcntl is None:
            return True
        handle = open(self.path, "a+")  # held open for the life of the process
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            self.holder = handle.read().strip() or "unknown"
            handle.close()
            oplog.event("serve.sqlite_shared", level=logging.WARNING, database=str(self.path.with_suffix("")),
                        other_pid=self.holder,
                        advice="another rollback-bot serve uses this SQLite file; two processes on one SQLite "
                               "file are unsupported (use PostgreSQL to run several replicas)")
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


__all__ = ["SqliteLock"]
