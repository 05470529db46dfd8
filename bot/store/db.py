"""Engine creation: SQLite with WAL and immediate transactions, or PostgreSQL through psycopg."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import create_engine

from bot.redact import mask_url


def normalise_url(url: str) -> str:
    """Accept the URLs people paste (``postgres://``, ``postgresql://``) and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def safe_url(url: str) -> str:
    """The URL with its password hidden (user-info and ``?password=`` alike), for logs and error messages."""
    return mask_url(url)


WRITE = "rollback_bot_write"  # execution option marking a connection that will write (SqlStore.session)
# Sized to the request threads (REQUEST_THREADS, 8 by default) plus the workers, so the steady state never
# opens a connection: an overflow connection is closed when it is returned, and on PostgreSQL every new
# connection is a new server process, which under a storm costs more than the request it serves.
POOL = {"pool_size": 24, "max_overflow": 16, "pool_timeout": 4}
# PostgreSQL: connect and socket-level limits so a partition is an error within seconds, not a hang.
# tcp_user_timeout bounds how long sent data may stay unacknowledged; keepalives find a silent peer.
PG_CONNECT_ARGS = {"connect_timeout": 3, "tcp_user_timeout": 4000, "keepalives": 1, "keepalives_idle": 5,
                   "keepalives_interval": 2, "keepalives_count": 2,
                   "options": "-c statement_timeout=15000 -c lock_timeout=10000"}


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        if "poolclass" not in kwargs and ":memory:" not in url and url not in ("sqlite://", "sqlite:///"):
            kwargs = {**POOL, **kwargs}
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    if "poolclass" not in kwargs:
        kwargs = {**POOL, **kwargs}
    # No pool_pre_ping: a dead pooled connection fails its statement, SQLAlchemy recognises the disconnect
    # and invalidates the pool, and the next checkout connects afresh; a ping per checkout costs a round trip.
    return create_engine(url, connect_args=PG_CONNECT_ARGS, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    memory = engine.url.database in (None, "", ":memory:")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin, so BEGIN IMMEDIATE below works.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front, so two of them queue instead of failing with "database is
        # locked"; readers begin a deferred transaction and, with WAL, never wait for a writer.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")
