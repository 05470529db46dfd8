"""Database round trips of one critical alert: the request (inbox), the decision, the execution.

    python -m bench.round_trips --db sqlite|postgres

Counts every statement and every commit the bot sends, by phase, with a `local` target and no Slack (the
Slack sender's own reads and writes are counted separately: they are off the alert's path). Reads outside a
write transaction commit nothing (on PostgreSQL they run without BEGIN), so commits count write transactions.
"""

from __future__ import annotations

import argparse
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text

from adapters.alerts import parse_body
from bench.alert_storm import PG_ADMIN_URL, make_bodies, policy_toml
from bot.bootstrap import build
from bot.config import settings_from
from bot.store.migrate import upgrade


@contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'rt.db'}"
            upgrade(url)
            yield url
        return
    name = f"rollback_bot_rt_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Counter:
    def __init__(self) -> None:
        self.statements = 0
        self.transactions = 0

    def take(self) -> tuple[int, int]:
        found = (self.statements, self.transactions)
        self.statements = self.transactions = 0
        return found


def main() -> None:
    parser = argparse.ArgumentParser(description="round trips of one critical alert")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    with database(args.db) as url, tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "p.toml").write_text(policy_toml(["model-00"]))
        env = {"DATABASE_URL": url, "ROLLBACK_POLICY": f"{tmp}/p.toml"}
        if args.db == "postgres":  # as serve there: it refuses to start without the audit chain's key
            env["AUDIT_HMAC_KEY"] = uuid.uuid4().hex + uuid.uuid4().hex
        c = build(settings_from(env), run_workers=True)
        for version in ("1", "2"):
            c.service.deploy("model-00", version, actor="bench", stable=version == "1")
        counter = Counter()

        def on_statement(*_: Any) -> None:
            counter.statements += 1

        def on_commit(*_: Any) -> None:
            counter.transactions += 1

        event.listen(c.engine, "before_cursor_execute", on_statement)
        event.listen(c.engine, "commit", on_commit)
        body = make_bodies(1, 1, 1, 1)[0].replace(b'"severity": "warning"', b'"severity": "critical"')
        alerts = parse_body("alertmanager", body)
        counter.take()
        c.intake.record("alertmanager", alerts, c.clock.now())
        request = counter.take()
        c.decider.tick()
        decision = counter.take()
        c.executor.tick()  # as in serve: the executor worker's pool thread runs it under the proposal's lease
        c.executor.pool.shutdown(wait=True)
        execution = counter.take()
        state = c.store.proposals(model="model-00")[0].state.value
        print(f"{args.db}: request {request[0]} statements / {request[1]} commits; decision {decision[0]} / "
              f"{decision[1]}; execution {execution[0]} / {execution[1]} (proposal {state})")
        c.close()


if __name__ == "__main__":
    main()
