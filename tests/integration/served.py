"""Real `rollback-bot serve` processes for crash and outage tests, and the stand-ins they talk to.

A process is started with ``subprocess.Popen`` (so a test can ``kill -9`` it), waited for by polling
``/healthz`` with a deadline, and driven over HTTP like Alertmanager and CI drive it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.httpserver import FakeService, LoopbackServer, Request, Response

ROOT = Path(__file__).resolve().parents[2]
ALERT_TOKEN = "crash-alert-token"
AUTH = {"Authorization": f"Bearer {ALERT_TOKEN}"}
WEBHOOK_SECRET = "whsec-crash-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except Exception as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Deployer(FakeService):
    """A deployer behind the webhook target: POST switches, GET (status_url) tells the live version.

    ``hold`` makes the next POSTs wait until ``release`` is set, having applied the switch first
    (``apply_first``) or not: a switch caught mid-way by a crash, either side of the point of no return.
    """

    def __init__(self, live: dict[str, str]) -> None:
        self.live = dict(live)
        self.posts: list[dict[str, Any]] = []
        self.hold = False
        self.apply_first = True
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.server = LoopbackServer(self.handle)

    def handle(self, request: Request) -> Response:
        if request.method == "GET":
            model = (request.query.get("model") or [""])[0]
            return Response(200, {"version": self.live.get(model)})
        body = request.json()
        self.posts.append(body)
        if self.hold and self.apply_first:
            self.live[body["model"]] = body["to_version"]
        if self.hold:
            self.arrived.set()
            self.release.wait(60)
        self.live[body["model"]] = body["to_version"]
        return Response(200, {"accepted": True})


def policy_text(deployer_url: str, *, channel: str = "C0ALERTS") -> str:
    return f'''[defaults]
channel = "{channel}"
approvers = ["U0LEAD"]
auto_rollback_severity = "critical"
cooldown = "30m"

[models.fraud-detector]
target = "webhook"
[models.fraud-detector.webhook]
url = "{deployer_url}/rollback"
status_url = "{deployer_url}/status"
timeout = "60s"
attempts = 1
'''


class Serve:
    """One `rollback-bot serve` child process."""

    def __init__(self, env: dict[str, str], cwd: Path, port: int | None = None) -> None:
        self.env = env
        self.cwd = cwd
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = cwd / f"serve-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Serve:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL", "ROLLBACK_"))}
        env.update(self.env)
        env["PYTHONPATH"] = str(ROOT)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", str(self.port)],
                                         env=env, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT)
        wait_until(self._healthy, 30, f"serve on port {self.port} to answer /healthz")
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"serve exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
        return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def post(self, path: str, body: Any, timeout: float = 10.0) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", json=body, headers=AUTH, timeout=timeout)

    def get(self, path: str, timeout: float = 10.0) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers=AUTH, timeout=timeout)


@contextmanager
def serving(env: dict[str, str], cwd: Path) -> Iterator[Serve]:
    serve = Serve(env, cwd).start()
    try:
        yield serve
    finally:
        serve.stop()


def serve_env(db_url: str, slack_url: str, policy: Path, **extra: str) -> dict[str, str]:
    return {"DATABASE_URL": db_url, "SLACK_BOT_TOKEN": "xoxb-crash-test", "SLACK_SIGNING_SECRET": "crash-secret",
            "SLACK_API_URL": slack_url, "ROLLBACK_POLICY": str(policy), "ALERT_WEBHOOK_TOKEN": ALERT_TOKEN,
            "ROLLBACK_WEBHOOK_SECRET": WEBHOOK_SECRET, "EXECUTOR_LEASE_SECONDS": "2",
            "WORKER_POLL_SECONDS": "0.5", "REQUEST_DEADLINE_SECONDS": "30", **extra}


__all__ = ["AUTH", "Deployer", "Serve", "policy_text", "serve_env", "serving", "wait_until"]
