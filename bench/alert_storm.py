"""Alert storm: 10,000 alerts over 1,000 fingerprints for 50 models, posted as Alertmanager would.

    python -m bench.alert_storm --db sqlite
    python -m bench.alert_storm --db postgres   # a throwaway database on TEST_POSTGRES_URL's server

The bot's real HTTP app runs under uvicorn on loopback (the same helper the end-to-end tests use) and
several client threads, in a process of their own, post Alertmanager-shaped groups of up to 20 alerts of
one model. The same load then goes to a bare endpoint that answers 202 without doing anything, on the
same uvicorn setup, so the cost of intake is a ratio rather than a number tied to this machine. Checks:
exactly one proposal per model, at most one Slack card per model (the real Slack notifier posting to the
local Web API stand-in), every distinct alert stored.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.bootstrap import build
from bot.config import settings_from
from bot.core.clock import SystemClock
from bot.policy_file import parse_policy
from bot.server import assemble
from bot.slack.fake_api import FakeSlackApi
from bot.store.db import make_engine
from bot.store.migrate import upgrade
from bot.web.serving import serving

TOKEN = "bench-token"
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Load:
    bodies: list[dict[str, Any]]
    alerts: int
    identities: int


@dataclass
class Run:
    name: str
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]

    def alerts_per_s(self, alerts: int) -> float:
        return alerts / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def make_load(alerts: int, fingerprints: int, models: int, batch: int, seed: int = 7) -> Load:
    """Alertmanager-style groups: each request carries up to ``batch`` alerts of one model (group_by model),
    each fingerprint is sent alerts/fingerprints times (repeats and HA copies) with its own startsAt."""
    rng = random.Random(seed)
    per_model: dict[str, list[dict[str, Any]]] = {f"model-{m:02d}": [] for m in range(models)}
    names = list(per_model)
    for i in range(alerts):
        fp = i % fingerprints
        model = names[fp % models]
        per_model[model].append({
            "status": "firing",
            "labels": {"alertname": f"ModelErrorRateHigh{fp % 3}", "model": model, "severity": "warning",
                       "instance": f"pod-{fp}"},
            "annotations": {"summary": f"error ratio high on {model} pod-{fp}"},
            "startsAt": f"2026-11-02T11:{fp % 60:02d}:{(fp // 60) % 60:02d}.{fp:03d}Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=up",
            "fingerprint": f"{fp:016x}",
        })
    bodies: list[dict[str, Any]] = []
    for model, items in per_model.items():
        rng.shuffle(items)
        for start in range(0, len(items), batch):
            chunk = items[start:start + batch]
            bodies.append({"receiver": "rollback-bot", "status": "firing", "alerts": chunk, "version": "4",
                           "groupLabels": {"model": model}, "commonLabels": {"model": model},
                           "externalURL": "http://127.0.0.1:9093", "groupKey": f"{{}}:{{model=\"{model}\"}}",
                           "truncatedAlerts": 0})
    rng.shuffle(bodies)
    return Load(bodies, alerts, fingerprints)


def post_all(url: str, bodies: list[dict[str, Any]], threads: int, name: str) -> Run:
    """Run the client threads in a process of their own, so they do not share the server's GIL."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_post_all, url, bodies, threads, name).result()


def _post_all(url: str, bodies: list[dict[str, Any]], threads: int, name: str) -> Run:
    local = threading.local()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def send(body: dict[str, Any]) -> None:
        client = getattr(local, "client", None)
        if client is None:
            # TCP_NODELAY: httpx writes headers and body separately; with Nagle plus delayed ACKs every
            # request would wait 40 ms for nothing, on both endpoints, and hide the real difference.
            transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
            client = local.client = httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60,
                                                 trust_env=False, transport=transport)
        started = time.perf_counter()
        r = client.post(f"{url}/alerts/alertmanager", json=body)
        took = time.perf_counter() - started
        with lock:
            latencies.append(took)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(send, bodies))
    return Run(name, time.perf_counter() - started, latencies, statuses)


def bare_app() -> Starlette:
    async def accept(request: Request) -> Response:
        await request.body()
        return JSONResponse({"status": "accepted"}, status_code=202)

    return Starlette(routes=[Route("/alerts/{source}", accept, methods=["POST"])])


@contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'storm.db'}"
            upgrade(url)
            yield url
        return
    name = f"rollback_bot_bench_{uuid.uuid4().hex[:8]}"
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


def run(kind: str, alerts: int, fingerprints: int, models: int, batch: int, threads: int) -> str:
    load = make_load(alerts, fingerprints, models, batch)
    policy_data = {"defaults": {"channel": "C0ALERTS", "approvers": ["U0LEAD"]},
                   "models": {f"model-{m:02d}": {"target": "local"} for m in range(models)}}
    loaded = parse_policy(policy_data, "bench.toml")
    assert loaded.policy is not None, loaded.problems
    with database(kind) as url, FakeSlackApi() as slack:
        # The real Slack notifier against the local Web API stand-in: every card post is a real HTTP call.
        settings = settings_from({"DATABASE_URL": url, "ALERT_WEBHOOK_TOKEN": TOKEN, "SLACK_BOT_TOKEN": "xoxb-bench",
                                  "SLACK_SIGNING_SECRET": "bench", "SLACK_API_URL": slack.base_url})
        container = build(settings, policy=loaded.policy, clock=SystemClock(), engine=make_engine(url))
        for m in range(models):
            for version in ("1", "2"):
                container.service.deploy(f"model-{m:02d}", version, actor="bench", stable=version == "1")
        with serving(assemble(container, with_slack=True).app) as server:
            bot = post_all(server.url, load.bodies, threads, f"bot ({kind})")
        counts = container.store.alert_counts()
        created = len([c for c in slack.calls("chat.postMessage") if not c.body.get("thread_ts")])
        container.close()
    with serving(bare_app()) as server:
        bare = post_all(server.url, load.bodies, threads, "bare 202")
    return report(kind, load, bot, bare, counts, created, models, batch, threads)


def report(kind: str, load: Load, bot: Run, bare: Run, counts: dict[str, int], created: int, models: int,
           batch: int, threads: int) -> str:
    def row(r: Run) -> str:
        non = sum(n for s, n in r.statuses.items() if s != 202)
        return (f"| {r.name} | {len(r.latencies)} | {r.seconds:.2f} | {r.alerts_per_s(load.alerts):,.0f} | "
                f"{r.pct(0.50):.1f} | {r.pct(0.99):.1f} | {non} |")

    ok = lambda good: "ok" if good else "FAILED"  # noqa: E731
    lines = [
        f"## Alert storm on {kind}",
        "",
        f"{load.alerts:,} alerts over {load.identities:,} fingerprints for {models} models, in "
        f"{len(load.bodies)} Alertmanager-style requests of up to {batch} alerts, {threads} client threads, "
        f"one uvicorn worker on 127.0.0.1.",
        "",
        "| endpoint | requests | seconds | alerts/s | p50 ms | p99 ms | non-202 |",
        "|---|---|---|---|---|---|---|",
        row(bot),
        row(bare),
        "",
        f"Overhead of intake: p50 {bot.pct(0.5) / bare.pct(0.5):.1f}x, p99 {bot.pct(0.99) / bare.pct(0.99):.1f}x, "
        f"throughput {bare.alerts_per_s(load.alerts) / bot.alerts_per_s(load.alerts):.1f}x lower.",
        "",
        "| check | value | expected | |",
        "|---|---|---|---|",
        f"| proposals | {counts['proposals']} | {models} | {ok(counts['proposals'] == models)} |",
        f"| Slack cards posted (chat.postMessage, not in a thread) | {created} | ≤ {models} | "
        f"{ok(created <= models)} |",
        f"| alerts in the database | {counts['alerts']} | {load.identities} distinct (fingerprint, startsAt) | "
        f"{ok(counts['alerts'] == load.identities)} |",
        f"| alerts attached to a proposal | {counts['attached']} | {load.identities} | "
        f"{ok(counts['attached'] == load.identities)} |",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--fingerprints", type=int, default=1_000)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    table = run(args.db, args.alerts, args.fingerprints, args.models, args.batch, args.threads)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"alert_storm-{args.db}.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
