"""`rollback-bot demo`: the whole loop offline, in seconds, on SQLite with no Slack account.

It starts the real server, a local stand-in for Slack's Web API, reports two deployments, sends a
real-format Alertmanager alert, shows the proposal card as a person reads it, presses Approve as a signed
Slack request, and prints the card again and the audit trail.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bot.bootstrap import build
from bot.config import settings_from
from bot.server import assemble
from bot.store.migrate import upgrade
from devkit.fake_api import FakeSlackApi
from devkit.serving import serving
from devkit.signing import payload_body, post, press_button_payload, sign
from devkit.text_render import render_message

MODEL = "fraud-detector"
CHANNEL = "C0DEMOALERTS"
APPROVER = "U0LEAD"

POLICY = f'''
[defaults]
channel = "{CHANNEL}"
min_severity = "warning"
auto_rollback_severity = "critical"
approvers = ["{APPROVER}", "S0ONCALL"]
required_approvals = 1
approval_timeout = "15m"
on_timeout = "escalate"
escalate_to = ["S0SRE"]
cooldown = "30m"

[models.{MODEL}]
target = "local"
'''


def alertmanager_payload(model: str, severity: str, version: str) -> dict[str, Any]:
    """A firing notification in the exact shape Alertmanager 0.25 sends."""
    labels = {"alertname": "ModelErrorRateHigh", "model": model, "severity": severity, "version": version}
    summary = f"Error ratio for model {model} v{version} is 41.7%"
    starts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "receiver": "rollback-bot", "status": "firing",
        "alerts": [{
            "status": "firing", "labels": labels, "annotations": {"summary": summary},
            "startsAt": starts, "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example:9090/graph?g0.expr=model_error_ratio+%3E+0.1&g0.tab=1",
            "fingerprint": secrets.token_hex(8),
        }],
        "groupLabels": {"alertname": "ModelErrorRateHigh", "model": model}, "commonLabels": labels,
        "commonAnnotations": {"summary": summary}, "externalURL": "http://alertmanager.example:9093",
        "version": "4", "groupKey": f'{{}}:{{alertname="ModelErrorRateHigh", model="{model}"}}',
        "truncatedAlerts": 0,
    }


def say(step: str) -> None:
    bold, plain = ("\033[1m", "\033[0m") if sys.stdout.isatty() else ("", "")
    print(f"\n{bold}▶ {step}{plain}", flush=True)


def wait_for(check: Any, what: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError(f"demo: timed out waiting for {what}")


def run_demo(*, keep: bool = False) -> int:
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="rollback-bot-demo-"))
    policy_path = workdir / "rollback.toml"
    policy_path.write_text(POLICY)
    db_url = f"sqlite:///{workdir / 'demo.db'}"
    signing_secret, alert_token = secrets.token_hex(16), secrets.token_hex(16)
    try:
        with FakeSlackApi(usergroups={"S0ONCALL": ["U0CAROL"]}) as slack:
            settings = settings_from({
                "DATABASE_URL": db_url, "ROLLBACK_POLICY": str(policy_path), "SLACK_BOT_TOKEN": "xoxb-demo",
                "SLACK_SIGNING_SECRET": signing_secret, "SLACK_API_URL": slack.base_url,
                "ALERT_WEBHOOK_TOKEN": alert_token,
            })
            upgrade(db_url)
            container = build(settings)
            running = assemble(container, with_slack=True)
            with serving(running.app) as server:
                url = server.url
                auth = {"Authorization": f"Bearer {alert_token}"}
                print(f"rollback-bot demo: server on {url}, Slack stand-in on {slack.url}, database {db_url}")
                say("CI/CD reports two deployments of fraud-detector: v6 (stable for weeks), then v7")
                for version, stable in (("6", True), ("7", False)):
                    r = httpx.post(f"{url}/deployments", headers=auth, json={
                        "model": MODEL, "version": version, "deployed_by": "ci", "source": "demo",
                        "stable": stable})
                    print(f"  POST /deployments {version} → {r.status_code}")
                say("Alertmanager reports: error ratio of v7 at 41.7% (severity warning)")
                r = httpx.post(f"{url}/alerts/alertmanager", headers=auth,
                               json=alertmanager_payload(MODEL, "warning", "7"))
                print(f"  POST /alerts/alertmanager → {r.status_code} {r.text}")
                r.raise_for_status()
                proposal_id = int(r.json()["proposals_created"][0])
                card = wait_for(lambda: _card(container, slack, proposal_id), "the proposal card")
                say(f"The card in #{CHANNEL}, as the on-call engineer sees it")
                print(_indent(render_message(card, width=96)))
                say(f"<@{APPROVER}> presses Approve (a request signed exactly as Slack signs it)")
                payload = press_button_payload(card, "rollback_approve", user_id=APPROVER,
                                               response_url=slack.response_url(CHANNEL, card["ts"]))
                result = post(f"{url}/slack/events", sign(signing_secret, payload_body(payload)))
                print(f"  POST /slack/events (block_actions) → {result.status}")
                done = wait_for(lambda: _card(container, slack, proposal_id, "Rolled back"), "the rollback")
                say("The same card, updated in place")
                print(_indent(render_message(done, width=96)))
                for reply in slack.replies(CHANNEL, card["ts"]):
                    print(f"  thread: {reply.get('text')}")
                status = httpx.get(f"{url}/api/models/{MODEL}", headers=auth).json()
                say("What serving code polling GET /api/models/fraud-detector now reads")
                print(f"  current_version={status['current_version']} served_version={status['served_version']} "
                      f"last_stable_version={status['last_stable_version']}")
                say("The audit trail (hash-chained; `rollback-bot audit verify` checks it)")
                for rec in container.store.audit_records():
                    versions = f" {rec.from_version or '·'}→{rec.to_version}" if rec.to_version else ""
                    print(f"  {rec.id:>2} {rec.at:%H:%M:%S} {rec.actor:<22} {rec.action:<20}{versions}  "
                          f"{(rec.reason or '')[:70]}")
            container.close()
        print(f"\ndemo finished in {time.monotonic() - started:.1f} s"
              + (f"; files kept in {workdir}" if keep else ""))
        return 0
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _card(container: Any, slack: FakeSlackApi, proposal_id: int, words: str = "") -> dict[str, Any] | None:
    p = container.store.get_proposal(proposal_id)
    if not (p.slack_channel and p.slack_ts):
        return None
    message = slack.message(p.slack_channel, p.slack_ts)
    if message is None or words not in render_message(message):
        return None
    return {**message, "channel": p.slack_channel}


def _indent(text: str) -> str:
    return "\n".join(f"  │ {line}" for line in text.rstrip().splitlines())
