"""Payloads copied from the senders' own tests and docs, fed to the running app (real server, Slack stand-in).

Each fixture in tests/fixtures/upstream/ names its source in that folder's README; what a test changes
in a body before sending it (ids that must point at a real proposal, URLs that must reach the stand-in)
is listed there too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import httpx
import pytest

from bot.core.clock import ManualClock
from bot.core.proposal import State
from bot.slack.app import DENY_BLOCK, DENY_CALLBACK, DENY_INPUT
from bot.slack.cards import ACTION_APPROVE
from devkit.signing import post, sign
from tests.conftest import make_policy
from tests.e2e.slackbot import CHANNEL, SECRET, SlackBot, deploy_versions, slack_bot
from tests.integration.alert_helpers import table_counts

UPSTREAM = Path(__file__).resolve().parent.parent / "fixtures" / "upstream"
ALERTS = Path(__file__).resolve().parent.parent / "fixtures" / "alerts"
ALERT_TOKEN = "e2e-alert-token"  # what tests/e2e/slackbot.py configures as ALERT_WEBHOOK_TOKEN

MODELS: dict[str, Any] = {
    "fraud-detector": {"target": "fake"},
    # selected by the labels the upstream bodies carry, so they need no editing to reach a proposal
    "grafana-example": {"target": "fake", "match": {"lbl1": "val1"}},
    "datadog-example": {"target": "fake", "match": {"role": "computing-node"}},
}


@pytest.fixture
def bot(db_url: str, clock: ManualClock) -> Iterator[SlackBot]:
    with slack_bot(db_url, make_policy(models=MODELS), clock) as b:
        for model in MODELS:
            deploy_versions(b.container, model)
        yield b


def send_alert(bot: SlackBot, source: str, body: bytes, content_type: str = "application/json",
               method: str = "POST") -> dict[str, Any]:
    r = httpx.request(method, f"{bot.url}/alerts/{source}", content=body, timeout=10,
                      headers={"Authorization": f"Bearer {ALERT_TOKEN}", "Content-Type": content_type})
    assert r.status_code == 202, r.text
    result: dict[str, Any] = r.json()
    return result


def proposal_of(result: dict[str, Any]) -> int:
    ids = [*result["proposals_created"], *result["proposals_updated"], *result["executed"]]
    assert ids, result
    return int(ids[0])


# ---- Alertmanager ---------------------------------------------------------------------------------------

def alertmanager_documented_body(now: datetime) -> bytes:
    """The webhook format block of Alertmanager's docs/configuration.md, each placeholder filled by type."""
    text = (UPSTREAM / "alertmanager-webhook-format.txt").read_text()
    labels = {"alertname": "ModelErrorRateHigh", "model": "fraud-detector", "severity": "warning"}
    strings = {"groupKey": '{}:{alertname="ModelErrorRateHigh"}', "receiver": "rollback-bot",
               "externalURL": "http://127.0.0.1:9093", "notification_reason": "new_alerts",
               "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=up", "fingerprint": "9c1b0a7e2f3d4c5b"}
    objects = {"groupLabels": {"alertname": "ModelErrorRateHigh"}, "commonLabels": labels,
               "commonAnnotations": {}, "labels": labels,
               "annotations": {"summary": "error ratio above 10% for fraud-detector"}}
    times = iter([now.isoformat().replace("+00:00", "Z"), "0001-01-01T00:00:00Z"])
    lines = []
    for line in text.splitlines():
        line = re.sub(r"\s+//.*$", "", line)  # the docs annotate fields with // comments
        if line.strip() == "...":
            continue
        key = re.match(r'\s*"(\w+)":', line)
        name = key.group(1) if key else ""
        line = line.replace("<string>", json.dumps(strings.get(name, "")))
        line = line.replace("<int>", "1")  # truncatedAlerts: max_alerts left one alert out
        line = line.replace("<object>", json.dumps(objects.get(name, {})))
        line = line.replace('"<resolved|firing>"', '"firing"')
        if '"<rfc3339>"' in line:
            line = line.replace('"<rfc3339>"', json.dumps(next(times)))
        lines.append(line)
    joined = re.sub(r",(\s*[}\]])", r"\1", "\n".join(lines))  # the removed "..." leaves a trailing comma
    return json.dumps(json.loads(joined)).encode()


def test_alertmanager_documented_format_reaches_a_card_with_the_alerts_it_left_out(bot: SlackBot) -> None:
    body = alertmanager_documented_body(bot.clock.now())
    assert json.loads(body)["truncatedAlerts"] == 1
    result = send_alert(bot, "alertmanager", body)
    assert result["stored"] == 1 and result["alerts"][0]["model"] == "fraud-detector"
    card = bot.wait_card(proposal_of(result), "+1 more that Alertmanager did not send")
    assert "ModelErrorRateHigh" in card


def test_alertmanager_captured_bodies(bot: SlackBot) -> None:
    firing = (ALERTS / "alertmanager-promstack-firing.json").read_bytes()
    result = send_alert(bot, "alertmanager", firing)
    assert result["alerts"][0]["model"] == "fraud-detector"
    assert send_alert(bot, "alertmanager", firing)["duplicates"] == 1


# ---- Grafana --------------------------------------------------------------------------------------------

def test_grafana_alerting_webhook_test_body_opens_a_proposal_over_put(bot: SlackBot) -> None:
    body = (UPSTREAM / "grafana-webhook-default-payload.json").read_bytes()
    result = send_alert(bot, "grafana", body, method="PUT")
    assert result["stored"] == 1 and result["alerts"][0]["model"] == "grafana-example"
    card = bot.wait_card(proposal_of(result), "alert1")
    assert "grafana-example" in card
    assert send_alert(bot, "grafana", body)["duplicates"] == 1


def test_grafana_documentation_example_is_recorded_for_no_model(bot: SlackBot) -> None:
    result = send_alert(bot, "grafana", (ALERTS / "grafana-firing.json").read_bytes())
    assert result["stored"] == 2 and result["ignored"] == 2
    assert all("no model in the policy matches" in a["reason"] for a in result["alerts"])


# ---- Datadog --------------------------------------------------------------------------------------------

def datadog_template_body(**choices: str) -> dict[str, str]:
    """docs/sources/datadog.md's payload template with Datadog's documented example values filled in."""
    from adapters.alerts.datadog import PAYLOAD_TEMPLATE

    examples: dict[str, Any] = json.loads((UPSTREAM / "datadog-webhook-variables.json").read_text())
    values = {k: (choices.get(k, v[0]) if isinstance(v, list) else v) for k, v in examples.items()}
    # A variable with no documented example stays as Datadog leaves an empty one: the literal "$NAME".
    return {key: str(values.get(var, var)) for key, var in PAYLOAD_TEMPLATE.items()}


def test_datadog_template_with_documented_values_json_and_form(bot: SlackBot) -> None:
    triggered = datadog_template_body(**{"$ALERT_TRANSITION": "Triggered", "$ALERT_TYPE": "error"})
    result = send_alert(bot, "datadog", json.dumps(triggered).encode())
    assert result["stored"] == 1 and result["alerts"][0]["model"] == "datadog-example"
    pid = proposal_of(result)
    assert bot.container.store.get_proposal(pid).model == "datadog-example"
    form = send_alert(bot, "datadog", urlencode(triggered).encode(), "application/x-www-form-urlencoded")
    assert form["duplicates"] == 1  # the same alert, sent with "Encode as form"
    null = datadog_template_body(**{"$ALERT_TRANSITION": "Null", "$ALERT_TYPE": "error"})
    assert send_alert(bot, "datadog", json.dumps(null).encode())["duplicates"] == 1
    recovered = datadog_template_body(**{"$ALERT_TRANSITION": "Recovered", "$ALERT_TYPE": "success"})
    assert send_alert(bot, "datadog", json.dumps(recovered).encode())["resolved"] == 1


def test_datadog_default_body_is_kept_not_refused(bot: SlackBot) -> None:
    result = send_alert(bot, "datadog", (UPSTREAM / "datadog-default-body.json").read_bytes())
    assert result["stored"] == 1 and result["ignored"] == 1  # no tags in a default body: no model to pick
    assert "no model in the policy matches" in result["alerts"][0]["reason"]
    assert table_counts(bot.container.engine)["alerts"] == 1
    again = send_alert(bot, "datadog", (UPSTREAM / "datadog-default-body.json").read_bytes())
    assert again["duplicates"] == 1  # the fingerprint comes from the monitor in the body, not the event id


# ---- Slack (bolt-python scenario bodies) ----------------------------------------------------------------

def open_proposal(bot: SlackBot) -> int:
    return proposal_of(send_alert(bot, "alertmanager", alertmanager_documented_body(bot.clock.now())))


def test_bolt_slash_command_body(bot: SlackBot) -> None:
    fields = dict(parse_qsl((UPSTREAM / "slack-slash-command.txt").read_text().strip(), keep_blank_values=True))
    before = len(bot.slack.calls("response_url"))
    fields.update(command="/rollback", text="status fraud-detector",
                  response_url=bot.slack.response_url(channel=fields["channel_id"]))
    result = post(f"{bot.url}/slack/events", sign(SECRET, urlencode(fields)))
    assert result.status == 200, result.body
    ack = json.loads(result.body) if result.body.strip() else {}
    text = ack.get("text") or str(bot.slack.wait_for("response_url", before + 1)[-1].body.get("text", ""))
    assert "fraud-detector" in text


def test_bolt_block_actions_body_approves_a_real_proposal(bot: SlackBot) -> None:
    pid = open_proposal(bot)
    message = bot.card_message(pid)
    payload = json.loads((UPSTREAM / "slack-block-actions.json").read_text())
    payload["user"]["id"] = "U0LEAD"
    payload["container"].update(message_ts=message["ts"], channel_id=CHANNEL)
    payload["channel"]["id"] = CHANNEL
    payload["response_url"] = bot.slack.response_url(CHANNEL, message["ts"])
    payload["actions"][0].update(action_id=ACTION_APPROVE, value=str(pid), block_id=f"rollback_actions_{pid}")
    result = post(f"{bot.url}/slack/events", sign(SECRET, f"payload={quote(json.dumps(payload))}"))
    assert result.status == 200, result.body
    bot.wait_card(pid, "Rolled back to `6`")
    assert [s.to_version for s in bot.target.switches] == ["6"]


def test_bolt_view_submission_body_denies_a_real_proposal(bot: SlackBot) -> None:
    pid = open_proposal(bot)
    payload = json.loads((UPSTREAM / "slack-view-submission.json").read_text())
    payload["user"]["id"] = "U0LEAD"
    view = payload["view"]
    view.update(callback_id=DENY_CALLBACK, private_metadata=str(pid))
    view["state"]["values"] = {DENY_BLOCK: {DENY_INPUT: view["state"]["values"]["hspI"]["maBWU"]}}
    result = post(f"{bot.url}/slack/events", sign(SECRET, f"payload={quote(json.dumps(payload))}"))
    assert result.status == 200, result.body
    bot.wait_card(pid, "test")
    assert bot.container.store.get_proposal(pid).state is State.DENIED
    assert bot.target.switches == []


def test_the_fixture_folder_names_a_source_for_every_file() -> None:
    readme = (UPSTREAM / "README.md").read_text()
    for path in UPSTREAM.iterdir():
        if path.name != "README.md":
            assert f"`{path.name}`" in readme, path.name
