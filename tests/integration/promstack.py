"""A real Prometheus 2.42 + Alertmanager 0.25 on loopback, driven from Python, for integration tests.

Why this shape: Prometheus discovers its scrape targets about 5 s after it starts, so the stack is
started once per test session (the ``promstack`` fixture in ``conftest.py``) and each test raises the
errors of a model of its own. The bot's URL is only known per test, so Alertmanager does not call it
directly: it calls the in-process ``Receiver``, which records every request and, once a test calls
``forward_to(url)``, passes each one on byte for byte with Alertmanager's own headers (including
``Authorization: Bearer <webhook_token>``) and answers Alertmanager with the bot's status, so the
retry-on-5xx behaviour stays real.

    def test_rollback_on_real_alert(promstack, bot_server):
        # the bot must accept promstack.webhook_token as ALERT_WEBHOOK_TOKEN
        promstack.receiver.forward_to(f"{bot_server.url}/alerts/alertmanager")
        model = promstack.unique_model("fraud")
        promstack.exporter.set_error_rate(model, 0.8)      # above CRITICAL_RATIO: severity critical
        body = promstack.receiver.wait_for_alert(model, "firing")
        promstack.exporter.set_error_rate(model, 0.0)
        promstack.receiver.wait_for_alert(model, "resolved")

Error ratio above ``WARNING_RATIO`` (0.1) fires ``ModelErrorRateHigh`` with ``severity=warning``; above
``CRITICAL_RATIO`` (0.5) with ``severity=critical``; labels ``model`` (and ``version`` when the exporter
sets one). Lowering the ratio to 0 drains the 5 s rate window through the warning band, so a
short warning alert may join the group before both resolve; ``stop_traffic(model)`` resolves without
that. Without the fixture, ``start_promstack(workdir, webhook_url=..., webhook_token=...)`` makes
Alertmanager call ``webhook_url`` directly (``receiver`` is then None). Everything binds 127.0.0.1 and
is stopped by PID.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PROMETHEUS_BIN = "prometheus"
ALERTMANAGER_BIN = "prometheus-alertmanager"
DEBIAN_PACKAGES = ("prometheus", "prometheus-alertmanager")
INSTALL_HINT = "apt-get install -y --no-install-recommends " + " ".join(DEBIAN_PACKAGES)

ALERT_NAME = "ModelErrorRateHigh"
WARNING_RATIO = 0.1
CRITICAL_RATIO = 0.5
TICK_SECONDS = 0.2
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

# No proxy, ever: every request here goes to loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def missing_binaries() -> list[str]:
    """Names of the binaries this harness needs that are not on PATH."""
    return [name for name in (PROMETHEUS_BIN, ALERTMANAGER_BIN) if shutil.which(name) is None]


def free_port() -> int:
    """A port free on 127.0.0.1 now, for the servers that must be told their port up front."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    _require_loopback(url)
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _require_loopback(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"{url}: only loopback URLs are allowed in tests")


def _quiet_server(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name=f"{handler.__name__}", daemon=True).start()
    return server


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# --- exporter -------------------------------------------------------------------------------------


@dataclass
class _Series:
    requests: float = 0.0
    errors: float = 0.0
    requests_per_second: float = 0.0
    error_rate: float = 0.0


class Exporter:
    """``/metrics`` with ``model_requests_total`` and ``model_errors_total`` counters per model.

    A background thread advances the counters every 0.2 s at each model's request rate and error
    ratio, so ``rate(...[5s])`` sees a steady ratio, as from a real model server.
    """

    def __init__(self, default_requests_per_second: float = 50.0) -> None:
        self.default_requests_per_second = default_requests_per_second
        self._series: dict[tuple[str, str | None], _Series] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = exporter.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _quiet_server(Handler)
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        self._ticker = threading.Thread(target=self._run, name="exporter-ticker", daemon=True)
        self._ticker.start()

    def set_error_rate(
        self,
        model: str,
        ratio: float,
        *,
        version: str | None = None,
        requests_per_second: float | None = None,
    ) -> None:
        """From now on, ``ratio`` of ``model``'s requests fail (0 stops the errors, not the traffic)."""
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"error ratio must be within 0..1, got {ratio}")
        with self._lock:
            series = self._series.setdefault((model, version), _Series())
            series.error_rate = ratio
            series.requests_per_second = (
                self.default_requests_per_second if requests_per_second is None else requests_per_second
            )

    def increment(self, model: str, requests: float, errors: float = 0.0, version: str | None = None) -> None:
        """Add to the counters directly (on top of the background traffic)."""
        with self._lock:
            series = self._series.setdefault((model, version), _Series())
            series.requests += requests
            series.errors += errors

    def stop_traffic(self, model: str, version: str | None = None) -> None:
        """No more requests at all: the ratio becomes NaN and the alert resolves."""
        with self._lock:
            series = self._series.get((model, version))
            if series:
                series.requests_per_second = 0.0

    def reset(self) -> None:
        """Every model back to error ratio 0 (counters keep their values, as counters do)."""
        with self._lock:
            for series in self._series.values():
                series.error_rate = 0.0

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            items = sorted(self._series.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
            for metric, attr, text in (
                ("model_requests_total", "requests", "Requests served by a model."),
                ("model_errors_total", "errors", "Requests a model failed."),
            ):
                lines += [f"# HELP {metric} {text}", f"# TYPE {metric} counter"]
                for (model, version), series in items:
                    labels = f'model="{_escape(model)}"'
                    if version is not None:
                        labels += f',version="{_escape(version)}"'
                    lines.append(f"{metric}{{{labels}}} {getattr(series, attr):.3f}")
        return "\n".join(lines) + "\n"

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(TICK_SECONDS):
            now = time.monotonic()
            elapsed, last = now - last, now
            with self._lock:
                for series in self._series.values():
                    served = series.requests_per_second * elapsed
                    series.requests += served
                    series.errors += served * series.error_rate

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()


# --- receiver -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One webhook request as Alertmanager sent it, and what the forward target answered."""

    at: float  # time.monotonic()
    path: str
    headers: dict[str, str]
    body: bytes
    forwarded_status: int | None = None

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Records every webhook request; forwards it to ``forward_to``'s URL when one is set."""

    def __init__(self) -> None:
        self._requests: list[Received] = []
        self._cond = threading.Condition()
        self._target: str | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {key: value for key, value in self.headers.items()}
                status, answer = receiver._forward(body, headers)
                receiver._record(Received(time.monotonic(), self.path, headers, body, status))
                self.send_response(status or 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _quiet_server(Handler)
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/alerts/alertmanager"

    def forward_to(self, url: str | None) -> None:
        """Pass each request on to ``url`` (the bot's ``/alerts/alertmanager``); None stops forwarding."""
        if url is not None:
            _require_loopback(url)
        with self._cond:
            self._target = url

    def _forward(self, body: bytes, headers: dict[str, str]) -> tuple[int | None, bytes]:
        with self._cond:
            target = self._target
        if target is None:
            return None, b'{"recorded": true}'
        keep = {
            k: v for k, v in headers.items() if k.lower() in {"authorization", "content-type", "user-agent"}
        }
        request = urllib.request.Request(target, data=body, headers=keep, method="POST")
        try:
            with _OPENER.open(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError as exc:  # target down: 502 makes Alertmanager retry, as it would against the bot
            return 502, json.dumps({"error": f"forward to {target} failed: {exc}"}).encode()

    def _record(self, request: Received) -> None:
        with self._cond:
            self._requests.append(request)
            self._cond.notify_all()

    @property
    def requests(self) -> list[Received]:
        with self._cond:
            return list(self._requests)

    def clear(self) -> None:
        with self._cond:
            self._requests.clear()

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float = 20.0) -> Received:
        """The first recorded request (earlier ones included) whose JSON body satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for request in self._requests[seen:]:
                    if predicate(request.json()):
                        return request
                seen = len(self._requests)
                left = deadline - time.monotonic()
                if left <= 0:
                    bodies = [r.body.decode(errors="replace")[:300] for r in self._requests[-5:]]
                    raise TimeoutError(f"no matching webhook within {timeout} s; last bodies: {bodies}")
                self._cond.wait(left)

    def wait_for_alert(
        self, model: str, status: str, severity: str | None = None, timeout: float = 20.0
    ) -> Received:
        """The first request carrying an alert for ``model`` in ``status`` (and ``severity`` when given)."""

        def matches(body: Any) -> bool:
            return any(
                alert.get("status") == status
                and alert.get("labels", {}).get("model") == model
                and (severity is None or alert.get("labels", {}).get("severity") == severity)
                for alert in body.get("alerts", [])
            )

        return self.wait_for(matches, timeout)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- configuration ---------------------------------------------------------------------------------


def _ratio_expr() -> str:
    return (
        "sum by (model, version) (rate(model_errors_total[5s]))"
        " / sum by (model, version) (rate(model_requests_total[5s]))"
    )


def prometheus_config(exporter_port: int, alertmanager_port: int) -> str:
    return f"""\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:{alertmanager_port}"]
scrape_configs:
  - job_name: model-server
    static_configs:
      - targets: ["127.0.0.1:{exporter_port}"]
"""


def rules_config() -> str:
    ratio = _ratio_expr()
    summary = "Error ratio for model {{ $labels.model }} is {{ $value | humanizePercentage }}"
    return f"""\
groups:
  - name: rollback-bot-tests
    rules:
      - alert: {ALERT_NAME}
        expr: ({ratio}) > {CRITICAL_RATIO}
        for: 0s
        labels: {{severity: critical}}
        annotations: {{summary: "{summary}"}}
      - alert: {ALERT_NAME}
        expr: ({ratio}) > {WARNING_RATIO} and ({ratio}) <= {CRITICAL_RATIO}
        for: 0s
        labels: {{severity: warning}}
        annotations: {{summary: "{summary}"}}
"""


def alertmanager_config(webhook_url: str, webhook_token: str) -> str:
    return f"""\
route:
  receiver: rollback-bot
  group_by: [alertname, model]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: rollback-bot
    webhook_configs:
      - url: {json.dumps(webhook_url)}
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {json.dumps(webhook_token)}
"""


# --- the stack --------------------------------------------------------------------------------------


@dataclass
class PromStack:
    """The running stack. Stop it with ``stop()`` (the fixture does, at session end)."""

    workdir: Path
    prometheus_url: str
    alertmanager_url: str
    exporter: Exporter
    receiver: Receiver | None
    webhook_token: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    _models: int = 0

    def unique_model(self, prefix: str = "model") -> str:
        """A model name no other test in this session uses, so alert groups never mix."""
        self._models += 1
        return f"{prefix}-{self._models}"

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's ``data.result``."""
        url = f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        status, body = http_get(url, timeout=5)
        if status != 200:
            raise RuntimeError(f"query {promql!r}: HTTP {status}: {body[:300]!r}")
        result: list[dict[str, Any]] = json.loads(body)["data"]["result"]
        return result

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.workdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Stop both servers by PID (TERM, then KILL after 10 s), then the in-process servers."""
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self.receiver is not None:
            self.receiver.close()
        self.exporter.close()


def _spawn(name: str, args: list[str], workdir: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    log = (workdir / f"{name}.log").open("wb")
    try:
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, env=env)
    finally:
        log.close()  # the child keeps its own descriptor


def _wait(check: Callable[[], bool], timeout: float, what: str, stack: PromStack) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in stack.processes.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{stack.log_tail(name)}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    logs = "\n".join(f"--- {name}\n{stack.log_tail(name)}" for name in stack.processes)
    raise TimeoutError(f"{what} not within {timeout} s\n{logs}")


def _ready(url: str) -> bool:
    return http_get(f"{url}/-/ready", timeout=1)[0] == 200


def _target_up(stack: PromStack) -> bool:
    status, body = http_get(f"{stack.prometheus_url}/api/v1/targets", timeout=1)
    targets = json.loads(body)["data"]["activeTargets"] if status == 200 else []
    return any(target.get("health") == "up" for target in targets)


def start_promstack(
    workdir: Path,
    webhook_url: str | None = None,
    webhook_token: str | None = None,
    ready_timeout: float = 30.0,
) -> PromStack:
    """Start exporter, Alertmanager and Prometheus; return once Prometheus scrapes the exporter.

    ``webhook_url`` None: Alertmanager calls the recording, forwarding ``Receiver``. Raises RuntimeError
    naming the Debian packages when the binaries are missing.
    """
    if missing := missing_binaries():
        raise RuntimeError(f"missing {', '.join(missing)}: {INSTALL_HINT}")
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    token = webhook_token or secrets.token_urlsafe(24)
    exporter = Exporter()
    receiver = Receiver() if webhook_url is None else None
    target = receiver.url if receiver is not None else webhook_url
    assert target is not None
    _require_loopback(target)
    prom_port, am_port = free_port(), free_port()
    stack = PromStack(
        workdir=workdir,
        prometheus_url=f"http://127.0.0.1:{prom_port}",
        alertmanager_url=f"http://127.0.0.1:{am_port}",
        exporter=exporter,
        receiver=receiver,
        webhook_token=token,
    )
    (workdir / "alertmanager.yml").write_text(alertmanager_config(target, token))
    (workdir / "prometheus.yml").write_text(prometheus_config(exporter.port, am_port))
    (workdir / "rules.yml").write_text(rules_config())
    try:
        stack.processes["alertmanager"] = _spawn(
            "alertmanager",
            [
                ALERTMANAGER_BIN,
                f"--config.file={workdir / 'alertmanager.yml'}",
                f"--storage.path={workdir / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                f"--web.external-url={stack.alertmanager_url}",
                "--cluster.listen-address=",
            ],
            workdir,
        )
        stack.processes["prometheus"] = _spawn(
            "prometheus",
            [
                PROMETHEUS_BIN,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                f"--web.external-url={stack.prometheus_url}",
                "--web.enable-lifecycle",
            ],
            workdir,
        )
        _wait(lambda: _ready(stack.alertmanager_url), ready_timeout, "Alertmanager /-/ready", stack)
        _wait(lambda: _ready(stack.prometheus_url), ready_timeout, "Prometheus /-/ready", stack)
        stack.timings["ready"] = time.monotonic() - started
        _wait(lambda: _target_up(stack), ready_timeout, "Prometheus scraping the exporter", stack)
        stack.timings["scraping"] = time.monotonic() - started
    except BaseException:
        stack.stop()
        raise
    return stack
