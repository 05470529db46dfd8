"""How long a /metrics scrape (the rollback collector) and one report take as the proposals table grows.

Run: `.venv/bin/python -m bench.report_scrape [N ...]` (SQLite; set BENCH_DATABASE_URL for PostgreSQL — a
database this script may fill and empty). Prints one line per size: rows, median scrape ms, median report ms.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import text
from sqlmodel import Session

from bot.core.report import build_report
from bot.report.metrics import RollbackCollector
from bot.store.db import make_engine
from bot.store.migrate import upgrade
from bot.store.report_queries import ReportQueries
from bot.store.tables import AlertRow, ApprovalRow, DeploymentRow, ModelRow, ProposalRow

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def fill(url: str, n: int) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        for table in ("approvals", "alerts", "proposals", "deployments", "models"):
            conn.execute(text(f"DELETE FROM {table}"))
    with Session(engine) as s:
        for m in range(10):
            s.add(ModelRow(name=f"model-{m}", created_at=T0))
        s.commit()
        for i in range(1, n + 1):
            model, start = f"model-{i % 10}", T0 + timedelta(minutes=10 * i)
            s.add(DeploymentRow(model=model, version=str(i), deployed_at=start, meta={"commit": f"c{i}"}))
            state = ("succeeded", "denied", "expired", "failed")[i % 4]
            s.add(ProposalRow(id=i, model=model, from_version=str(i), to_version=str(i - 1), state=state, kind="alert",
                              requested_by="alert:am", severity="warning", created_at=start + timedelta(minutes=3),
                              updated_at=start, decided_by="slack:U1", decided_at=start + timedelta(minutes=5),
                              finished_at=start + timedelta(minutes=6), verification="recovered: ok", summary={}))
            s.flush()
            s.add(AlertRow(source="alertmanager", fingerprint=f"f{i}", starts_at=start + timedelta(minutes=2),
                           status="resolved", name="Errors", model=model, severity="warning", proposal_id=i,
                           received_at=start + timedelta(minutes=3)))
            s.add(ApprovalRow(proposal_id=i, user_id="slack:U1", decision="approve", at=start + timedelta(minutes=5)))
            if i % 1000 == 0:
                s.commit()
        s.commit()
    engine.dispose()


def measure(url: str, n: int, rounds: int = 7) -> tuple[float, float]:
    engine = make_engine(url)
    queries = ReportQueries(engine)
    registry = CollectorRegistry()
    registry.register(RollbackCollector(queries))
    scrapes, reports = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        generate_latest(registry)
        scrapes.append(time.perf_counter() - started)
        started = time.perf_counter()
        build_report(queries, n // 2, now=T0)
        reports.append(time.perf_counter() - started)
    engine.dispose()
    return statistics.median(scrapes) * 1000, statistics.median(reports) * 1000


def main(sizes: list[int]) -> None:
    url = os.environ.get("BENCH_DATABASE_URL")
    with tempfile.TemporaryDirectory() as tmp:
        url = url or f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        print("proposals  scrape_ms  report_ms")
        for n in sizes:
            fill(url, n)
            scrape, report = measure(url, n)
            print(f"{n:>9}  {scrape:>9.1f}  {report:>9.1f}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100, 1000, 10000])
