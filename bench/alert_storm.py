"""Alert storm: 10,000 Alertmanager alerts over 1,000 fingerprints and 50 models against `rollback-bot serve`.

    python -m bench.alert_storm --db sqlite --batch 20
    python -m bench.alert_storm --db postgres --batch 1 --replicas 2 --waves 3
    python -m bench.alert_storm --db postgres --batch 20 --worker-mode thread   # the workers in threads

What runs where: the bot is the real `rollback-bot serve` command in a process of its own (workers on: the
request only records, the decider, executor and Slack sender act; on PostgreSQL they run in serve's worker
process unless ``--worker-mode thread``), the Slack Web API stand-in runs in a
second process, and the bare endpoint (answers 202, does nothing) is a third, on the same uvicorn settings.
The client is this process: one asyncio loop speaking HTTP/1.1 keep-alive on 50 connections (50 concurrent
senders), fast enough to saturate the bare endpoint, which is run for at least 2 s. The mix is 10 % critical
alerts, the rest warnings, and every model sees at least one critical alert.

Reported: 202 p50/p99, alerts per second and the ratio to the bare endpoint; critical alert → model switched
(p50/p99, from the alert's receipt to the rollback's completion, both stamped by the server) during the storm
and, separately, with nothing else running (200 models, one critical alert each, one after another);
a signed slash command or Approve click every 50 ms during the storm (its acknowledgement p50/p99);
proposals, Slack cards, audit rows per incident, alerts stored, memory of serve and its worker process (RSS
idle and peak, summed; PSS idle, which counts the pages the two share once).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from bot.store.migrate import upgrade

TOKEN = "bench-token"
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]


# ---- the load -------------------------------------------------------------------------------------------


def make_bodies(alerts: int, fingerprints: int, models: int, batch: int, wave: int = 0,
                seed: int = 7) -> list[bytes]:
    """Alertmanager groups of up to ``batch`` alerts of one model; each fingerprint repeats alerts/fingerprints
    times (repeats and HA copies); a new wave is a new episode of every alert (a new startsAt)."""
    rng = random.Random(seed + wave)
    per_model: dict[str, list[dict[str, Any]]] = {f"model-{m:02d}": [] for m in range(models)}
    names = list(per_model)
    for i in range(alerts):
        fp = i % fingerprints
        model = names[fp % models]
        critical = (fp // models) % 10 == 0  # 10 % of fingerprints, spread so every model has some
        per_model[model].append({
            "status": "firing",
            "labels": {"alertname": f"ModelErrorRateHigh{fp % 3}", "model": model,
                       "severity": "critical" if critical else "warning", "instance": f"pod-{fp}"},
            "annotations": {"summary": f"error ratio high on {model} pod-{fp}"},
            "startsAt": f"2026-11-02T{10 + wave:02d}:{fp % 60:02d}:{(fp // 60) % 60:02d}.{fp:03d}Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=up",
            "fingerprint": f"{fp:016x}",
        })
    bodies: list[bytes] = []
    for model, items in per_model.items():
        rng.shuffle(items)
        for start in range(0, len(items), batch):
            chunk = items[start:start + batch]
            bodies.append(json.dumps({
                "receiver": "rollback-bot", "status": "firing", "alerts": chunk, "version": "4",
                "groupLabels": {"model": model}, "commonLabels": {"model": model},
                "externalURL": "http://127.0.0.1:9093", "groupKey": f"{{}}:{{model=\"{model}\"}}",
                "truncatedAlerts": 0}).encode())
    rng.shuffle(bodies)
    return bodies


# ---- the asyncio client ---------------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    seconds: float = 0.0
    requests: int = 0
    alerts: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def alerts_per_s(self) -> float:
        return self.alerts / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def _request(port: int, body: bytes) -> bytes:
    return (f"POST /alerts/alertmanager HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    """One request on a keep-alive connection; the answer's status once its whole body has arrived."""
    writer.write(raw)
    status_line = await reader.readline()
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return int(status_line.split()[1]) if status_line else 0


def _record(run: Run, started: float, status: int, alerts: int = 0) -> None:
    run.latencies.append(time.perf_counter() - started)
    run.statuses[status] = run.statuses.get(status, 0) + 1
    run.requests += 1
    run.alerts += alerts


async def _sender(ports: list[int], queue: asyncio.Queue[tuple[bytes, int]], run: Run, index: int) -> None:
    """One keep-alive connection (the replicas take turns by sender), sending until the queue is empty."""
    port = ports[index % len(ports)]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            try:
                raw, count = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            started = time.perf_counter()
            _record(run, started, await _exchange(reader, writer, raw), count)
    finally:
        writer.close()


@dataclass
class Operator:
    """A person at Slack during the storm: a slash command or a button click every ``every`` seconds, each
    signed as Slack signs it; what is measured is the HTTP answer (Slack's 3-second acknowledgement)."""

    port: int
    secret: str
    response_url: str
    every: float = 0.05
    run: Run = field(default_factory=lambda: Run("Slack acknowledgements"))

    def request(self, index: int) -> bytes:
        from devkit.signing import block_actions_payload, payload_body, signed_headers, slash_command_body

        if index % 2 == 0:  # a read everybody runs in an incident
            body = slash_command_body(f"status model-{index % 50:02d}", user_id="U0LEAD",
                                      response_url=self.response_url)
        else:  # Approve pressed on a card (the idle models' proposals are finished: an ephemeral answer)
            body = payload_body(block_actions_payload("rollback_approve", str(1 + index % 50), user_id="U0LEAD",
                                                      response_url=self.response_url))
        headers = signed_headers(self.secret, body)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        data = body.encode()
        return (f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n{head}"
                f"Content-Length: {len(data)}\r\n\r\n").encode() + data

    async def press(self, done: asyncio.Event) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        index = 0
        try:
            while not done.is_set():
                started = time.perf_counter()
                _record(self.run, started, await _exchange(reader, writer, self.request(index)))
                index += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), self.every)
        finally:
            writer.close()


async def _blast(ports: list[int], bodies: list[tuple[bytes, int]], senders: int, name: str,
                 operator: Operator | None = None) -> Run:
    run = Run(name)
    queue: asyncio.Queue[tuple[bytes, int]] = asyncio.Queue()
    for index, (body, count) in enumerate(bodies):
        queue.put_nowait((_request(ports[index % len(ports)], body), count))
    done = asyncio.Event()
    pressing = asyncio.create_task(operator.press(done)) if operator is not None else None
    started = time.perf_counter()
    await asyncio.gather(*(_sender(ports, queue, run, i) for i in range(senders)))
    run.seconds = time.perf_counter() - started
    done.set()
    if pressing is not None:
        await pressing
    return run


def blast(ports: list[int], bodies: list[bytes], senders: int, name: str, min_seconds: float = 0.0,
          operator: Operator | None = None) -> Run:
    """Send every body once (or, for the bare endpoint, again and again for at least ``min_seconds``);
    ``operator`` clicks and types in Slack meanwhile."""
    counted = [(b, json.loads(b)["alerts"].__len__()) for b in bodies]
    total = Run(name)
    while True:
        run = asyncio.run(_blast(ports, counted, senders, name, operator))
        total.seconds += run.seconds
        total.requests += run.requests
        total.alerts += run.alerts
        total.latencies += run.latencies
        for k, v in run.statuses.items():
            total.statuses[k] = total.statuses.get(k, 0) + v
        if total.seconds >= min_seconds:
            return total


# ---- the processes --------------------------------------------------------------------------------------


def _slack_process(conn: Connection) -> None:
    from devkit.fake_api import FakeSlackApi

    with FakeSlackApi() as slack:
        conn.send(slack.base_url)
        while True:
            command = conn.recv()
            if command == "cards":
                conn.send(len([c for c in slack.calls("chat.postMessage") if not c.body.get("thread_ts")]))
            else:
                return


@contextmanager
def fake_slack() -> Iterator[tuple[str, Connection]]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_slack_process, args=(child,), daemon=True)
    proc.start()
    try:
        yield parent.recv(), parent
    finally:
        parent.send("stop")
        proc.join(10)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not start within {timeout} s")


@contextmanager
def process(args: list[str], env: dict[str, str], cwd: Path, health: str) -> Iterator[subprocess.Popen[bytes]]:
    full = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    log = (cwd / f"{Path(args[-1]).name}-{uuid.uuid4().hex[:6]}.log").open("wb")
    proc = subprocess.Popen([sys.executable, *args], env=full, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(health, proc)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def family(pid: int) -> list[int]:
    """A serve process and its descendants (on PostgreSQL its worker process and that one's Slack process)."""
    listed = Path(f"/proc/{pid}/task/{pid}/children")
    children = [int(c) for c in listed.read_text().split()] if listed.exists() else []
    return [pid, *(p for child in children for p in family(child))]


def _status_mb(pid: int, field_name: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_mb(pid: int, field_name: str = "VmRSS") -> float:
    """Summed over the process and its worker process (pages they share are counted twice: see pss_mb)."""
    return sum(_status_mb(p, field_name) for p in family(pid))


def pss_mb(pid: int) -> float:
    """Proportional set size, summed: each page shared by the two processes counted once in all."""
    total = 0.0
    for p in family(pid):
        for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) / 1024
    return total


@contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        url = f"sqlite:///{tmp / 'storm.db'}"
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


def policy_toml(models: list[str]) -> str:
    lines = ['[defaults]', 'channel = "C0ALERTS"', 'approvers = ["U0LEAD"]', 'auto_rollback_severity = "critical"',
             'cooldown = "30m"', '']
    for model in models:
        lines += [f'[models.{model}]', 'target = "local"', '']
    return "\n".join(lines)


# ---- measuring --------------------------------------------------------------------------------------------


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


_ENGINES: dict[str, Any] = {}


def _engine(url: str) -> Any:
    if url not in _ENGINES:
        _ENGINES[url] = create_engine(url)
    return _ENGINES[url]


def switched(url: str, model: str) -> bool:
    """Cheap enough to poll while measuring: one indexed lookup (the latency is computed once, at the end)."""
    with _engine(url).connect() as conn:
        return conn.execute(text("SELECT 1 FROM proposals WHERE state = 'succeeded' AND model = :m"),
                            {"m": model}).first() is not None


def switch_latencies(url: str, model_prefix: str) -> list[float]:
    """Per rollback: its first critical alert's receipt → the rollback's completion (server timestamps)."""
    engine = _engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT p.finished_at, min(a.received_at) FROM proposals p JOIN alerts a ON a.proposal_id = p.id "
            "WHERE p.state = 'succeeded' AND a.severity = 'critical' AND p.model LIKE :m GROUP BY p.id, "
            "p.finished_at"), {"m": model_prefix + "%"}).all()
    return [(_dt(done) - _dt(received)).total_seconds() for done, received in rows if done and received]


def _dt(value: Any) -> datetime:
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(when, datetime)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def counts(url: str) -> dict[str, int]:
    engine = _engine(url)
    with engine.connect() as conn:
        def one(sql: str) -> int:
            return int(conn.execute(text(sql)).scalar_one())

        found = {
            "alerts": one("SELECT count(*) FROM alerts"),
            "undecided": one("SELECT count(*) FROM alerts WHERE decided_at IS NULL AND model IS NOT NULL"),
            "proposals": one("SELECT count(*) FROM proposals WHERE model LIKE 'model-%'"),
            "succeeded": one("SELECT count(*) FROM proposals WHERE model LIKE 'model-%' AND state = 'succeeded'"),
            "audit_storm": one("SELECT count(*) FROM audit WHERE model LIKE 'model-%' AND action NOT IN "
                               "('deploy', 'deployment.stable')"),
            "outbox_pending": one("SELECT count(*) FROM slack_outbox WHERE done_at IS NULL"),
        }
    engine.dispose()
    return found


def wait_drained(url: str, timeout: float = 300) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        found = counts(url)
        if found["undecided"] == 0 and found["outbox_pending"] == 0:
            return time.monotonic() - started
        time.sleep(0.2)
    return float("nan")


# ---- the run ----------------------------------------------------------------------------------------------


def run(kind: str, alerts: int, fingerprints: int, models: int, batch: int, senders: int, replicas: int,
        waves: int, idle_models: int, worker_mode: str = "auto") -> str:
    storm = [f"model-{m:02d}" for m in range(models)]
    idle = [f"idle-{m:03d}" for m in range(idle_models)]
    with tempfile.TemporaryDirectory() as tmp_name, fake_slack() as (slack_url, slack):
        tmp = Path(tmp_name)
        (tmp / "rollback.toml").write_text(policy_toml(storm + idle))
        with database(kind, tmp) as url:
            env = {"DATABASE_URL": url, "ALERT_WEBHOOK_TOKEN": TOKEN, "SLACK_BOT_TOKEN": "xoxb-bench",
                   "SLACK_SIGNING_SECRET": "bench", "SLACK_API_URL": slack_url,
                   "ROLLBACK_POLICY": str(tmp / "rollback.toml"), "LOG_LEVEL": "WARNING",
                   # serve on PostgreSQL refuses to start without the audit chain's key (a fresh one per run)
                   "AUDIT_HMAC_KEY": uuid.uuid4().hex + uuid.uuid4().hex, "WORKER_MODE": worker_mode}
            ports = [free_port() for _ in range(replicas)]
            with ExitStack() as stack:
                procs = [stack.enter_context(process(["-m", "bot", "serve", "--port", str(p)], env, tmp,
                                                     f"http://127.0.0.1:{p}/healthz")) for p in ports]
                base = f"http://127.0.0.1:{ports[0]}"
                for model in storm + idle:
                    for version in ("1", "2"):
                        r = httpx.post(f"{base}/deployments", headers={"Authorization": f"Bearer {TOKEN}"},
                                       json={"model": model, "version": version, "stable": version == "1"})
                        assert r.status_code == 201, r.text
                time.sleep(1.0)  # let start-up settle before measuring the idle RSS
                idle_rss = rss_mb(procs[0].pid)
                idle_pss = pss_mb(procs[0].pid)
                processes = len(family(procs[0].pid))
                # Critical alert → switch with nothing else running: one model at a time.
                for model in idle:
                    body = json.dumps({"receiver": "r", "status": "firing", "version": "4", "alerts": [{
                        "status": "firing", "labels": {"alertname": "Down", "model": model, "severity": "critical"},
                        "annotations": {}, "startsAt": "2026-11-02T09:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                        "fingerprint": f"idle{model}"}]})
                    httpx.post(f"{base}/alerts/alertmanager", content=body,
                               headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
                    deadline = time.monotonic() + 10
                    while time.monotonic() < deadline and not switched(url, model):
                        time.sleep(0.005)  # polling faster would take the CPU the bot needs (2 cores)
                quiet = switch_latencies(url, "idle-")
                wave_runs: list[Run] = []
                drained: list[float] = []
                operator = Operator(ports[0], env["SLACK_SIGNING_SECRET"], slack_url.rsplit("/api", 1)[0] +
                                    "/response/R-bench")
                for wave in range(waves):
                    bodies = make_bodies(alerts, fingerprints, models, batch, wave)
                    wave_runs.append(blast(ports, bodies, senders, f"bot ({kind}, wave {wave + 1})",
                                           operator=operator if wave == 0 else None))
                    drained.append(wave_runs[-1].seconds + wait_drained(url))
                peak_rss = max(rss_mb(p.pid, "VmHWM") for p in procs)
                during = switch_latencies(url, "model-")
                found = counts(url)
                slack.send("cards")
                cards = int(slack.recv())
        bare_port = free_port()
        with process(["-m", "bench.bare", "--port", str(bare_port)], {}, tmp,
                     f"http://127.0.0.1:{bare_port}/healthz"):
            bare = blast([bare_port], make_bodies(alerts, fingerprints, models, batch), senders, "bare 202",
                         min_seconds=2.0)
    return report(kind, batch, senders, replicas, alerts, fingerprints, models, wave_runs, drained, bare, quiet,
                  during, found, cards, (idle_rss, idle_pss, peak_rss, processes), idle_models, operator.run)


def _processes(count: int) -> str:
    if count > 2:
        return "serve, its worker process and the Slack process"
    return "serve and its worker process" if count > 1 else "serve, workers in threads"


def _statuses(run: Run) -> str:
    return ", ".join(f"HTTP {s}: {n}" for s, n in sorted(run.statuses.items())) or "none"


def report(kind: str, batch: int, senders: int, replicas: int, alerts: int, fingerprints: int, models: int,
           waves: list[Run], drained: list[float], bare: Run, quiet: list[float], during: list[float],
           found: dict[str, int], cards: int, memory: tuple[float, float, float, int], idle_models: int,
           acks: Run) -> str:
    first = waves[0]
    idle_rss, idle_pss, peak_rss, processes = memory
    non = sum(n for s, n in first.statuses.items() if s != 202)
    def ok(good: bool) -> str:
        return "ok" if good else "MISSED"

    lines = [
        f"## Alert storm: {kind}, {batch} alert(s) per request, {replicas} serve process(es)",
        "",
        f"{alerts:,} alerts over {fingerprints:,} fingerprints for {models} models (10 % critical), "
        f"{senders} concurrent senders (asyncio, keep-alive), {datetime.now(UTC):%Y-%m-%d}, 2 cores.",
        "",
        "| measure | value | target | |",
        "|---|---|---|---|",
        f"| 202 p50 / p99 | {first.pct(0.5):.1f} / {first.pct(0.99):.1f} ms | p99 ≤ 100 ms | "
        f"{ok(first.pct(0.99) <= 100)} |",
        f"| alerts/s (bot) | {first.alerts_per_s:,.0f} | | |",
        f"| alerts/s (bare 202, {bare.seconds:.1f} s; p50 {bare.pct(0.5):.1f} ms, p99 {bare.pct(0.99):.1f} ms) | "
        f"{bare.alerts_per_s:,.0f} | | |",
        f"| throughput ratio bot / bare | {first.alerts_per_s / bare.alerts_per_s:.2f}x | ≥ 0.5x | "
        f"{ok(first.alerts_per_s / bare.alerts_per_s >= 0.5)} |",
        f"| non-202 answers | {non} | 0 | {ok(non == 0)} |",
        f"| critical → switched, nothing else running (p50 / p99 of {len(quiet)}) | {_ms(quiet, 0.5):.1f} / "
        f"{_ms(quiet, 0.99):.1f} ms | p99 ≤ 50 ms | {ok(_ms(quiet, 0.99) <= 50)} |",
        f"| critical → switched, during the storm (p50 / p99 of {len(during)}) | {_ms(during, 0.5):.1f} / "
        f"{_ms(during, 0.99):.1f} ms | p99 ≤ 250 ms | {ok(_ms(during, 0.99) <= 250)} |",
        f"| Slack click / slash command acknowledged, during the storm (p50 / p99 of {acks.requests}; "
        f"answers {_statuses(acks)}) | {acks.pct(0.5):.1f} / {acks.pct(0.99):.1f} ms | p99 ≤ 100 ms | "
        f"{ok(acks.requests > 0 and acks.pct(0.99) <= 100 and set(acks.statuses) == {200})} |",
        f"| proposals | {found['proposals']} | {models} | {ok(found['proposals'] == models)} |",
        f"| rollbacks completed | {found['succeeded']} | {models} | {ok(found['succeeded'] == models)} |",
        f"| Slack cards posted | {cards} | ≤ {models + idle_models} | {ok(cards <= models + idle_models)} |",
        f"| audit rows per incident | {found['audit_storm'] / max(1, found['proposals']):.1f} | | |",
        f"| alerts stored | {found['alerts'] - idle_models} | {fingerprints * len(waves)} | "
        f"{ok(found['alerts'] - idle_models == fingerprints * len(waves))} |",
        f"| RSS idle / peak ({_processes(processes)}; peak: the sum of each one's peak) | {idle_rss:.0f} / "
        f"{peak_rss:.0f} MB | ≤ 150 / ≤ 250 MB | {ok(idle_rss <= 150 and peak_rss <= 250)} |",
        f"| PSS idle (shared pages counted once) | {idle_pss:.0f} MB | ≤ 150 MB | {ok(idle_pss <= 150)} |",
    ]
    if len(waves) > 1:
        times = " · ".join(f"{d:.1f} s (202 p99 {w.pct(0.99):.0f} ms)" for w, d in zip(waves, drained, strict=True))
        spread = max(drained) / min(drained) - 1
        lines.append(f"| waves: sent and decided | {times} | within 20 % | {ok(spread <= 0.2)} |")
    else:
        lines.append(f"| sent and decided | {drained[0]:.1f} s | | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--fingerprints", type=int, default=1_000)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--waves", type=int, default=1)
    parser.add_argument("--idle-models", type=int, default=200)
    parser.add_argument("--worker-mode", choices=["auto", "process", "thread"], default="auto",
                        help="serve's WORKER_MODE (auto: a worker process on PostgreSQL, threads on SQLite)")
    args = parser.parse_args()
    table = run(args.db, args.alerts, args.fingerprints, args.models, args.batch, args.senders, args.replicas,
                args.waves, args.idle_models, args.worker_mode)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    mode = "" if args.worker_mode == "auto" else f"-{args.worker_mode}"
    name = f"alert_storm-{args.db}-b{args.batch}-r{args.replicas}-w{args.waves}{mode}.md"
    (RESULTS / name).write_text(table)


if __name__ == "__main__":
    main()
