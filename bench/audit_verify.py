"""Audit verification and export at 1,000,000 rows: time and peak memory of the real CLI.

    python -m bench.audit_verify --db sqlite
    python -m bench.audit_verify --db postgres   # a throwaway database on TEST_POSTGRES_URL's server

The rows are bulk-inserted directly (chained and keyed exactly as the bot writes them, with the same
functions), then `rollback-bot audit verify` and `rollback-bot audit export --format jsonl` run as child
processes the way an auditor runs them; wall time and the child's peak RSS (getrusage) are measured.
Targets: verify under 30 s and under 150 MB RSS.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

from bot.core.audit import GENESIS, AuditEvent, canonical_time, key_ring_from, row_hash
from bot.store.migrate import upgrade

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
RESULTS = Path(__file__).resolve().parent / "results"
KEY = "bench-audit-key-0123456789abcdef"
ENV = {"AUDIT_HMAC_KEY": KEY, "AUDIT_HMAC_KEY_ID": "bench"}
ACTIONS = ("deploy", "proposal.created", "approval.added", "proposal.approved", "rollback.executing",
           "rollback.succeeded", "deployment.stable")
BATCH = 20_000


def rows(n: int) -> Iterator[tuple[object, ...]]:
    """Rows as the bot writes them: same event shapes, same chain, keyed with the bench key."""
    ring = key_ring_from(ENV)
    prev, t0 = GENESIS, datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(1, n + 1):
        model = f"model-{i % 50}"
        event = AuditEvent(actor=f"slack:U0{i % 97:04d}", action=ACTIONS[i % len(ACTIONS)], model=model,
                           proposal_id=i // 7 or None, from_version=str(i % 13), to_version=str(i % 11),
                           reason=f"error rate {i % 40}% over 5m on {model}; approved after review",
                           inputs={"severity": "critical", "seconds": round(i % 90 / 3, 3), "n": i})
        at = t0 + timedelta(milliseconds=i * 250)
        digest, key_id = row_hash(ring, prev, at, event)
        yield (i, at.replace(tzinfo=None), event.actor, event.action, event.model, event.proposal_id,
               event.from_version, event.to_version, event.reason, json.dumps(event.inputs), prev, digest, key_id)
        prev = digest


def fill(url: str, n: int) -> float:
    started = time.perf_counter()
    cols = ("id, at, actor, action, model, proposal_id, from_version, to_version, reason, inputs, prev_hash, "
            "hash, key_id")
    last: tuple[object, ...] | None = None
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        conn.execute("PRAGMA journal_mode=WAL")
        batch: list[tuple[object, ...]] = []
        for row in rows(n):
            batch.append((*row[:1], canonical_time(row[1]).replace("T", " "), *row[2:]))  # type: ignore[arg-type]
            if len(batch) == BATCH:
                conn.executemany(f"INSERT INTO audit ({cols}) VALUES ({', '.join('?' * 13)})", batch)
                last, batch = batch[-1], []
        if batch:
            conn.executemany(f"INSERT INTO audit ({cols}) VALUES ({', '.join('?' * 13)})", batch)
            last = batch[-1]
        assert last is not None
        conn.execute("INSERT INTO audit_head (id, last_id, last_hash) VALUES (1, ?, ?)", (last[0], last[11]))
        conn.commit()
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as pg:
            with pg.cursor() as cur, cur.copy(f"COPY audit ({cols}) FROM STDIN") as copy:
                for row in rows(n):
                    copy.write_row(row)
                    last = row
            assert last is not None
            pg.execute("INSERT INTO audit_head (id, last_id, last_hash) VALUES (1, %s, %s)", (last[0], last[11]))
            pg.execute("ANALYZE audit")
    return time.perf_counter() - started


def run_cli(url: str, *args: str, cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, this child's own peak RSS in MB (wait4), and its stdout."""
    env = {**os.environ, **ENV, "DATABASE_URL": url}
    env.pop("AUDIT_ANCHOR_PATH", None)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "bot", *args], env=env, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read()
        if proc.returncode != 0:
            raise SystemExit(f"`{' '.join(args)}` failed ({proc.returncode}):\n{stdout}\n{err.read()}")
    return seconds, usage.ru_maxrss / 1024, stdout


@contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/audit-bench.db"
            upgrade(url)
            yield url
        return
    name = f"rollback_bot_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with database(args.db) as url, tempfile.TemporaryDirectory() as tmp:
        fill_s = fill(url, args.rows)
        print(f"inserted {args.rows:,} rows in {fill_s:.1f} s", flush=True)
        # One process doing nothing but import the CLI: the floor under every number below.
        base_s, base_mb, _ = run_cli(url, "--help", cwd=Path(tmp))
        verify_s, verify_mb, out = run_cli(url, "audit", "verify", cwd=Path(tmp))
        assert f"audit chain intact: {args.rows} rows verified" in out, out
        export_s, export_mb, _ = run_cli(url, "audit", "export", "--format", "jsonl", "-o", "dump.jsonl",
                                         cwd=Path(tmp))
        against_s, against_mb, out = run_cli(url, "audit", "verify", "--against", "dump.jsonl", cwd=Path(tmp))
        assert "fully present" in out, out
        size_mb = (Path(tmp) / "dump.jsonl").stat().st_size / 1e6
    report = io.StringIO()
    ok = verify_s < 30 and verify_mb < 150
    report.write(f"## Audit verify on {args.db}\n\n{args.rows:,} keyed rows (HMAC-SHA256), bulk-inserted in "
                 f"{fill_s:.0f} s; each command run as a child process (`python -m bot ...`), peak RSS from "
                 "getrusage.\n\n| command | seconds | peak RSS MB | target |\n|---|---|---|---|\n")
    report.write(f"| `rollback-bot --help` (interpreter + imports) | {base_s:.1f} | {base_mb:.0f} | |\n")
    report.write(f"| `audit verify` | {verify_s:.1f} | {verify_mb:.0f} | < 30 s, < 150 MB: "
                 f"{'met' if ok else 'MISSED'} |\n")
    report.write(f"| `audit export --format jsonl` ({size_mb:.0f} MB file) | {export_s:.1f} | {export_mb:.0f} | |\n")
    report.write(f"| `audit verify --against` that export | {against_s:.1f} | {against_mb:.0f} | |\n")
    text_out = report.getvalue()
    print(text_out)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"audit_verify-{args.db}.md").write_text(text_out)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
