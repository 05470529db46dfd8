"""The audit table: appending keyed, chained rows, and reading them back from one consistent snapshot.

Appends happen inside the caller's transaction (state change and audit row commit together) and are ordered
by a lock on the single head row. Reads for verification and export stream rows from one snapshot: on
PostgreSQL a REPEATABLE READ, read-only transaction with a server-side cursor; on SQLite one deferred read
transaction (WAL gives it a snapshot and writers are not blocked). So a verification running while the bot
writes sees the head and the rows as of one instant, and memory stays flat in the row count.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, text, update
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, select

from bot.core.audit import GENESIS, AuditEvent, AuditKeyError, AuditRecord, KeyRing, row_hash
from bot.store.tables import AuditHeadRow, AuditRow, core, table_of

COLUMNS = ("id", "at", "actor", "action", "model", "proposal_id", "from_version", "to_version", "reason",
           "inputs", "prev_hash", "hash", "key_id")
FETCH = 2000

# Built once: every state change appends through these (see bot/store/unit_of_work.py).
_AUDIT, _HEAD = table_of(AuditRow), table_of(AuditHeadRow)
_READ_HEAD = core_select(_HEAD.c.last_id, _HEAD.c.last_hash).where(_HEAD.c.id == 1).with_for_update()
_NEW_HEAD = insert(_HEAD).values(id=1, last_id=0, last_hash=GENESIS)
_MOVE_HEAD = update(_HEAD).where(_HEAD.c.id == 1)
_APPEND = insert(_AUDIT)


def record_from_row(row: AuditRow) -> AuditRecord:
    return AuditRecord(
        id=row.id, at=row.at, actor=row.actor, action=row.action, model=row.model, proposal_id=row.proposal_id,
        from_version=row.from_version, to_version=row.to_version, reason=row.reason,
        inputs=dict(row.inputs or {}), prev_hash=row.prev_hash, hash=row.hash, key_id=row.key_id,
    )


def append_many(session: Session, ring: KeyRing, events: Sequence[tuple[AuditEvent, datetime]]) -> None:
    """Chain ``events`` onto the log inside the caller's transaction, in order: the head row is read under its
    lock and moved once, however many rows the transaction writes."""
    conn = core(session)  # the state change first
    head = conn.execute(_READ_HEAD).first()
    if head is None:
        conn.execute(_NEW_HEAD)
        last_id, last_hash = 0, GENESIS
    else:
        last_id, last_hash = int(head.last_id), str(head.last_hash)
    if not ring.keyed and last_id:
        _refuse_downgrade(session, last_id)
    rows: list[dict[str, Any]] = []
    for event, at in events:
        digest, key_id = row_hash(ring, last_hash, at, event)
        last_id += 1
        rows.append({
            "id": last_id, "at": at, "actor": event.actor, "action": event.action, "model": event.model,
            "proposal_id": event.proposal_id, "from_version": event.from_version, "to_version": event.to_version,
            "reason": event.reason, "inputs": event.inputs, "prev_hash": last_hash, "hash": digest,
            "key_id": key_id,
        })
        last_hash = digest
    conn.execute(_APPEND, rows)
    conn.execute(_MOVE_HEAD, {"last_id": last_id, "last_hash": last_hash})


def _refuse_downgrade(session: Session, last_id: int) -> None:
    """Without a key, never append to a keyed chain: the row would read as tampering (and nothing is saved)."""
    last_key = session.exec(select(AuditRow.key_id).where(AuditRow.id == last_id)).first()
    if last_key is not None:
        raise AuditKeyError(f"AUDIT_HMAC_KEY is not set here, but the audit chain is keyed (key id {last_key}): "
                            "set the same AUDIT_HMAC_KEY as the server; nothing was recorded")


@dataclass(frozen=True)
class Filters:
    model: str | None = None
    since: datetime | None = None
    actor: str | None = None
    proposal_id: int | None = None
    after_id: int = 0
    newest_first: bool = False
    limit: int | None = None


def _sqlite_time(at: datetime) -> str:
    """SQLAlchemy's SQLite DATETIME text form (naive UTC), so comparisons stay in the index's order."""
    if at.utcoffset() is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.isoformat(sep=" ", timespec="microseconds")


def _query(f: Filters, sqlite: bool) -> tuple[str, dict[str, Any]]:
    where: list[str] = ["id > :after_id"]
    params: dict[str, Any] = {"after_id": f.after_id}
    if f.model:
        where.append("model = :model")
        params["model"] = f.model
    if f.since:
        where.append("at >= :since")
        params["since"] = _sqlite_time(f.since) if sqlite else f.since
    if f.actor:
        where.append("actor = :actor")
        params["actor"] = f.actor
    if f.proposal_id is not None:
        where.append("proposal_id = :proposal_id")
        params["proposal_id"] = f.proposal_id
    columns = ", ".join("inputs::text" if c == "inputs" and not sqlite else c for c in COLUMNS)
    sql = (f"SELECT {columns} FROM audit WHERE {' AND '.join(where)} "
           f"ORDER BY id {'DESC' if f.newest_first else 'ASC'}")
    if f.limit:
        sql += " LIMIT :limit"
        params["limit"] = f.limit
    return sql, params


def _record(values: tuple[Any, ...] | Any, sqlite: bool) -> AuditRecord:
    (id_, at, actor, action, model, proposal_id, from_version, to_version, reason, inputs, prev_hash, hash_,
     key_id) = values
    if sqlite:
        at = datetime.fromisoformat(at)
    inputs = json.loads(inputs) if inputs else {}  # text on both: PostgreSQL's json loader sniffs bytes
    return AuditRecord(id=id_, at=at, actor=actor, action=action, model=model, proposal_id=proposal_id,
                       from_version=from_version, to_version=to_version, reason=reason, inputs=inputs or {},
                       prev_hash=prev_hash, hash=hash_, key_id=key_id)


class Snapshot:
    """The audit table as of one instant. Valid only inside `AuditLog.snapshot()`."""

    def __init__(self, sqlite_cursor: Any = None, connection: Connection | None = None) -> None:
        self._cur = sqlite_cursor
        self._conn = connection
        self.dialect = "sqlite" if sqlite_cursor is not None else "postgresql"

    def head(self) -> tuple[int, str]:
        """The head row as this snapshot sees it: (0, GENESIS) for an empty log."""
        sql = "SELECT last_id, last_hash FROM audit_head WHERE id = 1"
        if self._cur is not None:
            found = self._cur.execute(sql).fetchone()
        else:
            assert self._conn is not None
            found = self._conn.execute(text(sql)).first()
        return (int(found[0]), str(found[1])) if found else (0, GENESIS)

    def count(self) -> int:
        sql = "SELECT count(*) FROM audit"
        if self._cur is not None:
            return int(self._cur.execute(sql).fetchone()[0])
        assert self._conn is not None
        return int(self._conn.execute(text(sql)).scalar_one())

    def rows(self, filters: Filters | None = None) -> Iterator[AuditRecord]:
        """Stream rows in id order (or newest first), a batch at a time."""
        sql, params = _query(filters or Filters(), self._cur is not None)
        if self._cur is not None:
            cur = self._cur.connection.cursor()
            try:
                cur.execute(sql, params)
                while batch := cur.fetchmany(FETCH):
                    for values in batch:
                        yield _record(values, True)
            finally:
                cur.close()
            return
        assert self._conn is not None
        result = self._conn.execution_options(stream_results=True, yield_per=FETCH).execute(text(sql), params)
        try:
            for values in result:
                yield _record(tuple(values), False)
        finally:
            result.close()


class AuditLog:
    def __init__(self, engine: Engine, ring: KeyRing | None = None) -> None:
        self.engine = engine
        self.ring = ring or KeyRing()

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        """One read-only transaction: every read inside sees the same committed state."""
        if self.engine.dialect.name == "sqlite":
            raw = self.engine.raw_connection()
            try:
                cur = raw.cursor()
                cur.execute("BEGIN DEFERRED")  # a read snapshot in WAL mode; the write lock is never taken
                try:
                    yield Snapshot(sqlite_cursor=cur)
                finally:
                    cur.execute("ROLLBACK")
                    cur.close()
            finally:
                raw.close()
            return
        with self.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin() as tx:
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                yield Snapshot(connection=conn)
                tx.rollback()

    def records(self, filters: Filters | None = None) -> list[AuditRecord]:
        with self.snapshot() as snap:
            return list(snap.rows(filters))

    def head(self) -> tuple[int, str]:
        with self.snapshot() as snap:
            return snap.head()
