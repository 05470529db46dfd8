"""Is the database there, and is its schema the one this code needs? One line each, and once per outage.

`serve` and `check` ask before anything starts (``database_problem``), so a database that does not exist or
was never upgraded stops the bot with the reason instead of serving 500s. At run time ``OUTAGE`` turns a stream
of failures into one line when the database goes away and one when it is back.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from psycopg import errors as pg_errors
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from bot.core import oplog
from bot.redact import mask_url, redact
from bot.store.db import make_engine
from bot.store.migrate import alembic_config

log = logging.getLogger(__name__)


def is_database_error(exc: BaseException) -> bool:
    """True for "the database is not there" (connection refused, dropped, shut down), not for a bug in a query."""
    if isinstance(exc, OperationalError | InterfaceError | pg_errors.OperationalError):
        return True
    if isinstance(exc, DBAPIError) and isinstance(exc.orig, pg_errors.UndefinedTable):
        return True  # a database recreated and not yet upgraded: the schema is away, not a query bug
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def one_request_fault(exc: BaseException) -> bool:
    """Whether a transaction shared by several requests may have failed because of one of them (then each
    is written again alone): not when the database is away, except for a deadlock or serialisation failure."""
    if isinstance(getattr(exc, "orig", None), pg_errors.DeadlockDetected | pg_errors.SerializationFailure):
        return True
    return not is_database_error(exc)


def reason(exc: BaseException) -> str:
    """The driver's own reason in one line (``database "x" does not exist``), URLs masked."""
    orig = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    text = lines[0] if lines else type(orig).__name__
    for line in lines:  # PostgreSQL: `connection failed: connection to server at …: FATAL:  database "x" …`
        if "FATAL:" in line:
            text = line.rsplit("FATAL:", 1)[1].strip()
            break
    else:
        if "failed:" in text:
            text = text.rsplit("failed:", 1)[1].strip() or text
    return redact(" ".join(text.split()))


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None (PostgreSQL, in-memory)."""
    if not url.startswith("sqlite"):
        return None
    database = make_url(url).database
    return None if database in (None, "", ":memory:") else Path(database)


def code_heads(url: str) -> tuple[str, ...]:
    return tuple(sorted(ScriptDirectory.from_config(alembic_config(url)).get_heads()))


def schema_problem(engine: Engine, url: str) -> str | None:
    """None when the database is at the code's newest migration; otherwise what to do, in one line."""
    script = ScriptDirectory.from_config(alembic_config(url))
    heads = tuple(sorted(script.get_heads()))
    with engine.connect() as conn:
        current = tuple(sorted(MigrationContext.configure(conn).get_current_heads()))
    needs = ", ".join(heads)
    if current == heads:
        return None
    if not current:
        return f"schema is empty (never upgraded), code needs {needs}: run rollback-bot db upgrade"
    known = {rev.revision for rev in script.walk_revisions()}
    unknown = [rev for rev in current if rev not in known]
    if unknown:
        return (f"schema is at {', '.join(current)}, which this version of rollback-bot does not know (it needs "
                f"{needs}): the database was upgraded by a newer rollback-bot; run that version")
    return f"schema is at {', '.join(current)}, code needs {needs}: run rollback-bot db upgrade"


def database_problem(url: str, *, engine: Engine | None = None) -> str | None:
    """None when the database answers and its schema is current; otherwise the one line that says why."""
    own = engine is None
    try:
        engine = engine or make_engine(url)
    except Exception as exc:  # noqa: BLE001  a malformed URL or a missing driver, told as such
        return f"DATABASE_URL {mask_url(url)}: {redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)}"
    try:
        return schema_problem(engine, url)
    except DBAPIError as exc:
        if url.startswith("sqlite"):
            return f"cannot open the SQLite database {mask_url(url)}: {reason(exc)}"
        if "FATAL:" in str(getattr(exc, "orig", None) or exc):  # the server answered: no such database, bad role
            return f"{reason(exc)} (DATABASE_URL {mask_url(url)})"
        return f"database unreachable at {mask_url(url)}: {reason(exc)}"
    finally:
        if own:
            engine.dispose()


class Outage:
    """Remembers whether the database is down, so each outage is logged once when it starts and once when over."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: float | None = None
        self._failures = 0
        # Which of serve's processes this is, when it has two ("requests", "workers"): each notices and
        # logs an outage once, and says which one it is.
        self.process: str | None = None

    def _named(self) -> dict[str, str]:
        return {"process": self.process} if self.process else {}

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException, where: str) -> None:
        with self._lock:
            first = self._since is None
            if first:
                self._since = time.monotonic()
            self._failures += 1
        if first:
            oplog.event("database.down", level=logging.ERROR, reason=reason(exc), where=where, **self._named())
        else:
            log.debug("database still down (%s): %s", where, reason(exc))

    def recovered(self) -> None:
        if self._since is None:
            return
        with self._lock:
            if self._since is None:
                return
            seconds, failures = time.monotonic() - self._since, self._failures
            self._since, self._failures = None, 0
        oplog.event("database.up", level=logging.WARNING, down_seconds=round(seconds, 1), failures=failures,
                    **self._named())


OUTAGE = Outage()


def outage_failure(exc: BaseException, where: str) -> bool:
    """Count ``exc`` against the current outage if it is a database error (logged once per outage); else False."""
    if not is_database_error(exc):
        return False
    OUTAGE.failed(exc, where)
    return True

__all__ = ["OUTAGE", "Outage", "code_heads", "database_problem", "is_database_error", "outage_failure", "reason",
           "schema_problem", "sqlite_path"]
