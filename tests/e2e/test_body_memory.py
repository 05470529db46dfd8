"""Oversized bodies cannot grow the server: four 100 MB bodies at once, streamed (chunked) or declared, to
``rollback-bot serve`` in its own process, keep its resident memory within 50 MB of idle.

The issue measured one unsigned 100 MB POST to /slack/events taking RSS from 103 MB to 733 MB, four at
once to 1.23 GB: the body was read whole before the signature check.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devkit.fake_api import FakeSlackApi
from devkit.serving import free_port
from tests.e2e.rawhttp import RawResponse, request

POLICY = '[defaults]\nchannel = "C0ALERTS"\napprovers = ["U0LEAD"]\n[models.fraud-detector]\ntarget = "local"\n'
MB = 1024 * 1024
BODY = 100 * MB
CONCURRENT = 4
HEADROOM = 50 * MB


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, int]]:
    (tmp_path / "rollback.toml").write_text(POLICY)
    with FakeSlackApi() as slack:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL", "ROLLBACK_"))}
        env.update({"DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}", "SLACK_BOT_TOKEN": "xoxb-memory-test",
                    "SLACK_SIGNING_SECRET": "memory-test-secret", "SLACK_API_URL": slack.base_url,
                    "ALERT_WEBHOOK_TOKEN": "memory-test-token", "ROLLBACK_POLICY": str(tmp_path / "rollback.toml"),
                    "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
        log = (tmp_path / "serve.log").open("wb")  # a file, not a pipe nobody reads: the server never blocks on it
        proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", str(port)], env=env, cwd=tmp_path,
                                stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            else:
                raise AssertionError("serve did not answer /healthz in 60 s:\n" + (tmp_path / "serve.log").read_text())
            yield url, proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


def stream(total: int) -> Iterator[bytes]:
    piece = b"x" * (256 * 1024)
    sent = 0
    while sent < total:
        yield piece
        sent += len(piece)


@pytest.mark.parametrize(("path", "declared"), [("/slack/events", False), ("/slack/events", True),
                                                ("/deployments", False), ("/alerts/alertmanager", False)])
def test_oversized_bodies_keep_memory_flat(served: tuple[str, int], path: str, declared: bool) -> None:
    url, pid = served
    headers = {"Content-Type": "application/x-www-form-urlencoded" if path.startswith("/slack") else
               "application/json", "Authorization": "Bearer memory-test-token"}
    for _ in range(3):  # warm every code path the storm takes, so idle includes what they load once
        assert request(url, "POST", path, headers, stream(2 * MB)).status == 413
    idle = rss(pid)
    answers: list[RawResponse] = []
    peak = idle
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss(pid))
            time.sleep(0.01)

    def one() -> None:
        # chunked: the server must count; declared: it must refuse on the header alone. Either way the client
        # streams all 100 MB unless the server answers first.
        extra = {"Content-Length": str(BODY)} if declared else {}
        answers.append(request(url, "POST", path, {**headers, **extra}, stream(BODY), timeout=120,
                               chunked=not declared))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    clients = [threading.Thread(target=one) for _ in range(CONCURRENT)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(150)
    stop.set()
    sampler.join(5)
    peak = max(peak, rss(pid))
    assert [a.status for a in answers] == [413] * CONCURRENT
    assert all("byte limit" in a.json()["error"] for a in answers)
    assert all(a.sent < 8 * MB for a in answers), [a.sent for a in answers]  # refused early, not drained
    growth = peak - idle
    print(f"{path} declared={declared}: idle {idle / MB:.1f} MB, peak {peak / MB:.1f} MB, "
          f"growth {growth / MB:.1f} MB")
    assert growth < HEADROOM, f"RSS grew {growth / MB:.1f} MB under {CONCURRENT} x {BODY // MB} MB bodies"
    assert httpx.get(f"{url}/healthz").status_code == 200
