"""Several store calls committed as one transaction: the unit of work. Mixed into SqlStore.

Outside a unit of work every store call is its own transaction, as the core always had it. Inside
``atomic()`` the calls of this thread share one: the decider writes a decision (proposal, alerts joined,
approval, alerts marked decided and their audit rows) in one commit instead of one per call, and a crash
leaves all of it or none of it.

The transaction opens at the first write, not at ``atomic()``: a decision's reads and its calls to the
outside (metrics, the target's canary) happen before it, so no lock is held while Prometheus answers, and on
SQLite the one write lock is taken for the writes only. Reads after the first write go through the same
transaction and see its writes.

Audit rows are chained when the transaction commits, all at once: the chain's head row is locked for the
commit only (it orders every audit write of every replica), and a unit that writes several rows reads and
moves the head once. Work that must not start before the commit (waking the executor or the Slack sender of
this process) is handed to ``after_commit``; it runs at once outside a unit of work and never if it rolls back.

The statements the workers run for every alert (leases, the inbox, the executor's queue, the proposal and
model reads) are built once and run on the session's connection (``_rows``, ``_write``): measured on
PostgreSQL, a prebuilt Core statement costs 0.2 ms where building it and running it through the ORM cost
0.7 to 1.9 ms, almost all of it Python, and a critical alert's path runs about fifty of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable
from sqlmodel import Session

from bot.core.audit import AuditEvent
from bot.core.clock import Clock
from bot.store import audit_log
from bot.store.tables import core
from bot.store.writer_queue import WriterQueue

PENDING_AUDIT = "rollback_bot.audit"
NOTIFIED = "rollback_bot.notified"


class _Ambient(threading.local):
    """This thread's open unit of work, if any."""

    def __init__(self) -> None:
        self.depth = 0
        self.session: Session | None = None
        self.stack: ExitStack | None = None
        self.after: list[Callable[[], None]] = []
        self.failed: DBAPIError | None = None


class UnitOfWork:
    engine: Engine
    clock: Clock
    audit_log: audit_log.AuditLog
    _writers: WriterQueue

    if TYPE_CHECKING:
        @property
        def reads(self) -> Engine: ...
        @property
        def write_engine(self) -> Engine: ...

    @cached_property
    def _ambient(self) -> _Ambient:
        return _Ambient()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Every store call of this thread inside the block commits together, or not at all. Nests: an
        inner block joins the outer one."""
        amb = self._ambient
        if amb.depth:
            amb.depth += 1
            try:
                yield
            finally:
                amb.depth -= 1
            return
        amb.depth, amb.after, amb.failed = 1, [], None
        try:
            with ExitStack() as stack:
                amb.stack = stack
                yield
                if amb.failed is not None:  # a statement failed and a caller went on: nothing may commit
                    raise amb.failed
                if amb.session is not None:
                    self._write_audit(amb.session)
                    amb.session.commit()
        finally:
            after, amb.after = amb.after, []
            amb.depth, amb.session, amb.stack, amb.failed = 0, None, None, None
        for action in after:
            action()

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once this thread's unit of work commits; at once if none is open."""
        if self._ambient.depth:
            self._ambient.after.append(action)
        else:
            action()

    def in_unit_of_work(self) -> bool:
        return self._ambient.depth > 0

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One write transaction, or this thread's unit of work (opened here at its first write). On SQLite,
        writers of this process queue on a lock first: SQLite allows one writer anyway, and its busy handler
        waits by sleeping (up to 100 ms a try), which is what made a storm's p99 seconds long."""
        amb = self._ambient
        if not amb.depth:
            with self._writers, Session(self.write_engine, expire_on_commit=False) as s, s.begin():
                yield s
                self._write_audit(s)
            return
        if amb.session is None:
            assert amb.stack is not None
            amb.stack.enter_context(self._writers)
            amb.session = amb.stack.enter_context(Session(self.write_engine, expire_on_commit=False))
            amb.session.begin()
        else:
            self._fresh(amb.session)
        try:
            yield amb.session
        except DBAPIError as exc:
            amb.failed = exc
            raise

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        """A read: inside a unit of work that has written, its transaction (so it sees those writes);
        otherwise the read pool (on PostgreSQL without BEGIN and ROLLBACK)."""
        current = self._ambient.session
        if current is not None:
            self._fresh(current)
            yield current
            return
        with Session(self.reads) as s:
            yield s

    def _rows(self, statement: Executable, params: Mapping[str, Any]) -> Sequence[Row[Any]]:
        """A prebuilt read, run as Core on the connection ``_reading`` would use (the unit's, once it wrote)."""
        with self._reading() as s:
            return core(s).execute(statement, params).all()

    def _write(self, statement: Executable, params: Mapping[str, Any]) -> tuple[int, Sequence[Row[Any]]]:
        """A prebuilt write in this call's transaction (or the unit's): its row count and RETURNING rows."""
        with self.session() as s:
            result = core(s).execute(statement, params)
            return result.rowcount, (result.all() if result.returns_rows else ())

    @staticmethod
    def _fresh(session: Session) -> None:
        """Rows an earlier call loaded are read again when used: another transaction may have changed them,
        and a call's own UPDATE statements bypass the objects it holds."""
        session.flush()
        session.expire_all()

    def _audit(self, session: Session, event: AuditEvent, at: datetime | None = None) -> None:
        """An audit row of this transaction's change, chained when it commits (see the module docstring)."""
        pending: list[tuple[AuditEvent, datetime]] = session.info.setdefault(PENDING_AUDIT, [])
        pending.append((event, at or self.clock.now()))

    def _write_audit(self, session: Session) -> None:
        pending: list[tuple[AuditEvent, datetime]] | None = session.info.pop(PENDING_AUDIT, None)
        if pending:
            audit_log.append_many(session, self.audit_log.ring, pending)

    def once_per_transaction(self, session: Session, key: str) -> bool:
        """True the first time ``key`` is asked for in this transaction (one NOTIFY per worker, say)."""
        seen: set[str] = session.info.setdefault(NOTIFIED, set())
        if key in seen:
            return False
        seen.add(key)
        return True


__all__ = ["UnitOfWork"]
