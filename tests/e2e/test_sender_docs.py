"""Every snippet in docs/sources/*.md is read out of the page and used as a user would paste it.

Alertmanager's receiver runs in a real Alertmanager (``amtool check-config`` first); Grafana's contact
point settings drive grafana/alerting's signing (``http/hmac.go``: hex HMAC-SHA256 of ``ts ":" body``);
Datadog's payload and headers and the generic mapping are posted to the running server. What a test
replaces (the bot's URL, tokens, a shorter ``group_wait``) is said where it does it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import shutil
import subprocess
import time
import tomllib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from dotenv import dotenv_values

from bot.bootstrap import Container, build
from bot.config import settings_from
from bot.core.clock import ManualClock, SystemClock
from bot.core.proposal import State
from bot.policy_file import TARGETS, parse_policy
from bot.store.db import make_engine
from bot.web.app import create_app
from devkit.serving import RunningServer, start_server
from tests.components import require
from tests.conftest import make_policy
from tests.e2e.slackbot import deploy_versions, slack_bot
from tests.fakes.ports import FakeTarget, RecordingNotifier
from tests.integration.promstack import ALERTMANAGER_BIN, INSTALL_HINT, free_port

DOCS = Path(__file__).resolve().parents[2] / "docs" / "sources"
UPSTREAM = Path(__file__).resolve().parent.parent / "fixtures" / "upstream"
PLACEHOLDER_URL = "https://rollback-bot.example.com"


def snippet(page: str, title: str) -> str:
    """The fenced block with ``title="…"`` on the page: the exact text a user copies."""
    text = (DOCS / page).read_text()
    match = re.search(rf'```\w+ title="{re.escape(title)}"\n(.*?)\n```', text, re.DOTALL)
    assert match, f"{page} has no block titled {title}"
    return match.group(1)


def code_block(page: str, language: str) -> str:
    match = re.search(rf"```{language}\n(.*?)\n```", (DOCS / page).read_text(), re.DOTALL)
    assert match, f"{page} has no {language} block"
    return match.group(1)


class Bot:
    """The real app under uvicorn with the environment a page documents."""

    def __init__(self, db_url: str, env: dict[str, str], policy: Any, clock: Any) -> None:
        self.target, self.notifier = FakeTarget(), RecordingNotifier()
        settings = settings_from({"DATABASE_URL": db_url, **env})
        self.container: Container = build(settings, policy=policy, clock=clock, engine=make_engine(db_url),
                                          targets={"fake": self.target}, notifier=self.notifier)
        self.server: RunningServer = start_server(create_app(self.container))

    def url(self, path: str) -> str:
        return self.server.url + path

    def close(self) -> None:
        self.server.stop()
        self.container.close()


@pytest.fixture
def make_bot(db_url: str) -> Iterator[Any]:
    bots: list[Bot] = []

    def make(env: dict[str, str], policy: Any = None, clock: Any = None) -> Bot:
        bot = Bot(db_url, env, policy or make_policy(), clock or ManualClock())
        bots.append(bot)
        return bot

    yield make
    for bot in bots:
        bot.close()


def deploy(container: Container, model: str) -> None:
    for version in ("5", "6", "7"):
        container.service.deploy(model, version, actor="api:ci", stable=version != "7")


# ---- Alertmanager ---------------------------------------------------------------------------------------

@pytest.mark.prometheus
def test_alertmanager_receiver_passes_amtool(tmp_path: Path) -> None:
    amtool = shutil.which("amtool")
    require(amtool is not None, "amtool", f"install the Debian packages: {INSTALL_HINT}")
    assert amtool is not None
    config = tmp_path / "alertmanager.yml"
    config.write_text(snippet("alertmanager.md", "alertmanager.yml"))
    assert "amtool check-config alertmanager.yml" in code_block("alertmanager.md", "sh")
    result = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.prometheus
def test_alertmanager_receiver_delivers_to_the_bot_with_truncated_alerts(db_url: str, tmp_path: Path) -> None:
    """The documented receiver in a real Alertmanager 0.25; three firing alerts, ``max_alerts`` set to 2."""
    require(shutil.which(ALERTMANAGER_BIN) is not None, ALERTMANAGER_BIN,
            f"install the Debian packages: {INSTALL_HINT}")
    token_file = tmp_path / "rollback-bot-token"
    token_file.write_text("e2e-alert-token\n")  # what the Slack harness sets as ALERT_WEBHOOK_TOKEN
    clock = SystemClock()
    with slack_bot(db_url, make_policy(), clock) as bot:
        deploy(bot.container, "fraud-detector")
        config = snippet("alertmanager.md", "alertmanager.yml")
        config = config.replace(f"{PLACEHOLDER_URL}/alerts/alertmanager", f"{bot.url}/alerts/alertmanager")
        config = config.replace("/etc/alertmanager/rollback-bot-token", str(token_file))
        config = config.replace("group_wait: 30s", "group_wait: 1s").replace("max_alerts: 20", "max_alerts: 2")
        (tmp_path / "alertmanager.yml").write_text(config)
        port = free_port()
        env = {"PATH": "/usr/bin:/bin"}  # no proxy variables: everything stays on loopback
        with (tmp_path / "alertmanager.log").open("wb") as log:
            proc = subprocess.Popen(
                [ALERTMANAGER_BIN, f"--config.file={tmp_path / 'alertmanager.yml'}",
                 f"--storage.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                 "--cluster.listen-address="], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
        try:
            alerts = [{"labels": {"alertname": "ModelErrorRateHigh", "model": "fraud-detector",
                                  "severity": "warning", "instance": f"pod-{i}"},
                       "annotations": {"summary": f"error ratio high on pod-{i}"}} for i in range(3)]
            deadline = time.monotonic() + 30
            while True:
                try:
                    r = httpx.post(f"http://127.0.0.1:{port}/api/v2/alerts", json=alerts, timeout=2)
                    if r.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None, (tmp_path / "alertmanager.log").read_text()
                assert time.monotonic() < deadline, "Alertmanager did not start"
                time.sleep(0.2)
            deadline = time.monotonic() + 30
            while not bot.container.store.proposals(model="fraud-detector"):
                assert time.monotonic() < deadline, (tmp_path / "alertmanager.log").read_text()
                time.sleep(0.2)
            [proposal] = bot.container.store.proposals(model="fraud-detector")
            card = bot.wait_card(proposal.id, "+1 more that Alertmanager did not send", timeout=30)
            assert "*Alerts* (2)" in json.dumps(bot.card_message(proposal.id)) or "Alerts (2)" in card
        finally:
            proc.terminate()
            proc.wait(timeout=10)


# ---- Grafana --------------------------------------------------------------------------------------------

def grafana_sends(settings: dict[str, Any], body: bytes, now: int) -> httpx.Response:
    """What grafana/alerting's webhook notifier and HMACRoundTripper put on the wire for these settings."""
    headers = {"Content-Type": "application/json",
               "Authorization": f"{settings['authorization_scheme']} {settings['authorization_credentials']}"}
    hmac_config = settings["hmacConfig"]
    mac = hmac.new(hmac_config["secret"].encode(), digestmod=hashlib.sha256)
    if hmac_config.get("timestampHeader"):
        headers[hmac_config["timestampHeader"]] = str(now)
        mac.update(f"{now}:".encode())
    mac.update(body)
    headers[hmac_config.get("header") or "X-Grafana-Alert-Signature"] = mac.hexdigest()
    return httpx.request(settings["httpMethod"], settings["url"], content=body, headers=headers, timeout=10)


def test_grafana_contact_point_and_env_from_the_page(make_bot: Any, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(snippet("grafana.md", ".env"))
    env = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
    policy = make_policy(models={"grafana-example": {"target": "fake", "match": {"lbl1": "val1"}}})
    bot = make_bot(env, policy, SystemClock())  # signatures are checked against the real clock
    deploy(bot.container, "grafana-example")
    contact_point = json.loads(snippet("grafana.md", "contact-point.json"))
    settings = contact_point["settings"]
    settings["url"] = settings["url"].replace(PLACEHOLDER_URL, bot.server.url)
    body = (UPSTREAM / "grafana-webhook-default-payload.json").read_bytes()
    now = int(time.time())
    r = grafana_sends(settings, body, now)
    assert r.status_code == 202, r.text
    assert r.json()["alerts"][0]["model"] == "grafana-example"
    assert grafana_sends({**settings, "httpMethod": "PUT"}, body, now).json()["duplicates"] == 1
    stale = grafana_sends(settings, body, now - 6 * 60)
    assert stale.status_code == 401 and "refused as replays" in stale.json()["error"]
    other_secret = {**settings, "hmacConfig": {**settings["hmacConfig"], "secret": "not-the-secret"}}
    wrong = grafana_sends(other_secret, body, now)
    assert wrong.status_code == 401 and "wrong Grafana signature" in wrong.json()["error"]
    assert "not-the-secret" not in wrong.text and env["GRAFANA_WEBHOOK_SECRET"] not in wrong.text


# ---- Datadog --------------------------------------------------------------------------------------------

def test_datadog_payload_and_headers_from_the_page(make_bot: Any) -> None:
    from adapters.alerts.datadog import PAYLOAD_TEMPLATE

    template = json.loads(snippet("datadog.md", "payload.json"))
    assert template == PAYLOAD_TEMPLATE  # the page and the parser agree on every key
    headers = json.loads(snippet("datadog.md", "custom-headers.json"))
    token = headers["Authorization"].split(" ", 1)[1]
    policy = make_policy(models={"datadog-example": {"target": "fake", "match": {"role": "computing-node"}}})
    bot = make_bot({"ALERT_WEBHOOK_TOKEN": token}, policy)
    deploy_versions(bot.container, "datadog-example")
    examples: dict[str, Any] = json.loads((UPSTREAM / "datadog-webhook-variables.json").read_text())

    def filled(transition: str, alert_type: str) -> dict[str, str]:
        values = {k: v for k, v in examples.items() if isinstance(v, str)}
        values |= {"$ALERT_TRANSITION": transition, "$ALERT_TYPE": alert_type, "$ALERT_PRIORITY": "P3"}
        return {key: values.get(var, var) for key, var in template.items()}

    url = bot.url("/alerts/datadog")
    # Warn: a warning whatever the priority (P3 here), so a proposal, not an automatic rollback
    r = httpx.post(url, json=filled("Warn", "warning"), headers=headers, timeout=10)
    assert r.status_code == 202 and r.json()["alerts"][0]["outcome"] == "proposed", r.text
    form = urlencode(filled("Re-Warn", "warning")).encode()
    r = httpx.post(url, content=form, headers={**headers, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 202 and r.json()["duplicates"] == 1, r.text
    r = httpx.post(url, json=filled("Recovered", "success"), headers=headers, timeout=10)
    assert r.status_code == 202 and r.json()["resolved"] == 1, r.text
    [proposal] = bot.container.store.proposals(model="datadog-example")
    assert proposal.state is not State.SUCCEEDED and bot.target.switches == []
    r = httpx.post(url, json=filled("Triggered", "error"), headers={"Authorization": "Bearer wrong"}, timeout=10)
    assert r.status_code == 401 and "wrong bearer token" in r.json()["error"]


# ---- generic JSON ---------------------------------------------------------------------------------------

def test_generic_mapping_and_example_from_the_page(make_bot: Any) -> None:
    data = tomllib.loads(snippet("generic.md", "rollback.toml"))
    loaded = parse_policy(data, "rollback.toml", known_targets=(*TARGETS, "fake"))
    assert loaded.policy is not None, loaded.problems
    clock = ManualClock()
    bot = make_bot({"ALERT_WEBHOOK_TOKEN": "docs-token"}, loaded.policy, clock)
    for version in ("5", "6", "7"):
        bot.container.service.deploy("fraud-detector", version, actor="api:ci", stable=version != "7")
        clock.advance(timedelta(hours=1))
    curl = code_block("generic.md", "sh")
    assert "/alerts/generic" in curl and "Bearer $ALERT_WEBHOOK_TOKEN" in curl and "@example.json" in curl
    example = snippet("generic.md", "example.json")
    auth = {"Authorization": "Bearer docs-token", "Content-Type": "application/json"}
    r = httpx.post(bot.url("/alerts/generic"), content=example, headers=auth, timeout=10)
    assert r.status_code == 202, r.text
    [outcome] = r.json()["alerts"]
    assert outcome["model"] == "fraud-detector" and outcome["fingerprint"] == "evt-42"
    assert r.json()["executed"], r.text  # priority "critical" rolls back on its own under the page's policy
    assert bot.container.store.served_version("fraud-detector") == "6"
    closed = json.loads(example)
    closed["events"][0]["state"] = "closed"
    r = httpx.post(bot.url("/alerts/generic"), json=closed, headers=auth, timeout=10)
    assert r.status_code == 202 and r.json()["resolved"] == 1, r.text
    bad = json.loads(example)
    bad["events"][0]["state"] = "pending"
    r = httpx.post(bot.url("/alerts/generic"), json=bad, headers=auth, timeout=10)
    assert r.status_code == 400
    assert r.json()["error"] == "events[0].state: unknown status 'pending' (expected one of: open, closed)"
