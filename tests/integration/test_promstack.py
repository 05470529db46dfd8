"""The harness end to end: a real error spike reaches a webhook as Alertmanager sends it, and so does
the recovery. Also checks the bodies parse with the production parser."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from adapters.alerts import parse_body
from bot.core.alert import AlertStatus
from bot.core.severity import Severity
from tests.integration.promstack import ALERT_NAME, PromStack, http_get

pytestmark = pytest.mark.prometheus


def test_firing_then_resolved_webhooks(promstack: PromStack) -> None:
    assert promstack.receiver is not None
    model = promstack.unique_model("fraud")
    started = time.monotonic()
    promstack.exporter.set_error_rate(model, 0.8, version="7")
    firing = promstack.receiver.wait_for_alert(model, "firing", severity="critical", timeout=30)
    fired_after = time.monotonic() - started

    assert firing.path == "/alerts/alertmanager"
    assert firing.headers["Authorization"] == f"Bearer {promstack.webhook_token}"
    assert firing.headers["User-Agent"].startswith("Alertmanager/")
    body = firing.json()
    assert body["version"] == "4"
    assert body["groupLabels"] == {"alertname": ALERT_NAME, "model": model}
    [alert] = [a for a in parse_body("alertmanager", firing.body) if a.labels["model"] == model]
    assert alert.status is AlertStatus.FIRING
    assert alert.name == ALERT_NAME
    assert alert.severity is Severity.CRITICAL
    assert alert.labels["version"] == "7"
    assert alert.summary.startswith(f"Error ratio for model {model} is ")
    assert alert.links["generatorURL"].startswith(promstack.prometheus_url + "/graph?g0.expr=")
    assert alert.ends_at is None

    promstack.exporter.set_error_rate(model, 0.0, version="7")
    lowered = time.monotonic()
    resolved = promstack.receiver.wait_for_alert(model, "resolved", severity="critical", timeout=30)
    resolved_after = time.monotonic() - lowered
    # The 5 s window drains through the warning band, so a warning alert may share this group.
    [done] = [a for a in parse_body("alertmanager", resolved.body) if a.fingerprint == alert.fingerprint]
    assert done.status is AlertStatus.RESOLVED
    assert (done.fingerprint, done.starts_at) == (alert.fingerprint, alert.starts_at)
    assert done.ends_at is not None and done.ends_at >= alert.starts_at  # type: ignore[operator]
    timings = promstack.timings
    print(
        f"\npromstack: ready {timings['ready']:.2f}s, scraping {timings['scraping']:.2f}s, firing webhook "
        f"{fired_after:.2f}s after the spike, resolved {resolved_after:.2f}s after errors stopped"
    )


def test_warning_threshold(promstack: PromStack) -> None:
    assert promstack.receiver is not None
    model = promstack.unique_model("ranker")
    promstack.exporter.set_error_rate(model, 0.3)
    received = promstack.receiver.wait_for_alert(model, "firing", severity="warning", timeout=30)
    [alert] = [a for a in parse_body("alertmanager", received.body) if a.labels["model"] == model]
    assert alert.severity is Severity.WARNING
    assert "version" not in alert.labels
    ratio = promstack.query(f'sum(rate(model_errors_total{{model="{model}"}}[5s]))'
                            f' / sum(rate(model_requests_total{{model="{model}"}}[5s]))')  # fmt: skip
    assert 0.2 < float(ratio[0]["value"][1]) < 0.4
    promstack.exporter.set_error_rate(model, 0.0)
    promstack.receiver.wait_for_alert(model, "resolved", timeout=30)


class _Bot:
    """A stand-in for the bot's endpoint: records what reached it through the forwarder."""

    def __init__(self, answers: list[int]) -> None:
        self.bodies: list[tuple[dict[str, str], bytes]] = []
        self.answers = answers
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.bodies.append(({k: v for k, v in self.headers.items()}, body))
                code = outer.answers.pop(0) if outer.answers else 202
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts/alertmanager"


def test_forwarding_to_the_bot_keeps_body_and_token_and_retries_5xx(promstack: PromStack) -> None:
    assert promstack.receiver is not None
    bot = _Bot(answers=[503])  # the first delivery fails: Alertmanager must retry
    promstack.receiver.forward_to(bot.url)
    try:
        model = promstack.unique_model("churn")
        promstack.exporter.set_error_rate(model, 0.9)
        first = promstack.receiver.wait_for_alert(model, "firing", timeout=30)
        assert first.forwarded_status == 503
        deadline = time.monotonic() + 30
        while len([b for _, b in bot.bodies if model.encode() in b]) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        delivered = [(h, b) for h, b in bot.bodies if model.encode() in b]
        assert len(delivered) >= 2, "Alertmanager did not retry after a 503"
        headers, body = delivered[0]
        assert body == first.body
        assert headers["Authorization"] == f"Bearer {promstack.webhook_token}"
        assert json.loads(delivered[1][1])["alerts"][0]["labels"]["model"] == model
        promstack.exporter.set_error_rate(model, 0.0)
        promstack.receiver.wait_for_alert(model, "resolved", timeout=30)
    finally:
        promstack.receiver.forward_to(None)
        bot.server.shutdown()
        bot.server.server_close()


def test_servers_listen_on_loopback_only(promstack: PromStack) -> None:
    assert http_get(f"{promstack.alertmanager_url}/-/ready")[0] == 200
    for name, proc in promstack.processes.items():
        assert proc.poll() is None, f"{name} died"
    with pytest.raises(ValueError, match="only loopback"):
        promstack.receiver.forward_to("http://example.com/alerts")  # type: ignore[union-attr]
