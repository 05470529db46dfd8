"""The pieces as the demo uses them: a card posted to the local Slack, a signed button press
dispatched by Bolt, the card updated in place and read back as text."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from slack_bolt import App, BoltRequest
from slack_sdk import WebClient

from bot.core.proposal import Kind, Proposal, State
from bot.slack.cards import ACTION_APPROVE, CardData, card_message
from devkit.text_render import render_message
from tests.slack_api import FakeSlackApi, fake_slack
from tests.slack_signing import payload_body, press_button_payload, sign

__all__ = ["fake_slack"]

SECRET = "demo-secret"


def test_press_approve_and_read_the_updated_card(fake_slack: FakeSlackApi) -> None:
    web = WebClient(token="xoxb-demo", base_url=fake_slack.base_url)
    p = Proposal(
        id=3,
        model="ranker",
        from_version="9",
        to_version="8",
        state=State.PROPOSED,
        kind=Kind.ALERT,
        requested_by="bot:alertmanager",
        reason="latency",
        target_note="",
        severity="warning",
        decision_reason="waiting for 1 approval(s)",
        required_approvals=1,
        dry_run=False,
        created_at=datetime(2024, 5, 1, tzinfo=UTC),
    )
    posted = web.chat_postMessage(channel="C0ALERTS", **card_message(CardData(p)).to_dict())
    ts = posted["ts"]

    app = App(client=web, signing_secret=SECRET)

    @app.action(ACTION_APPROVE)
    def approve(
        ack: Any, body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Any
    ) -> None:
        ack()
        assert action["value"] == "3"
        done = replace(p, state=State.APPROVED, approvals=[body["user"]["id"]], decided_by=body["user"]["id"])
        client.chat_update(
            channel=body["channel"]["id"],
            ts=body["container"]["message_ts"],
            **card_message(CardData(done)).to_dict(),
        )
        respond(text="Thanks, approval recorded.", replace_original=False)

    message = fake_slack.message("C0ALERTS", ts)
    assert message is not None
    payload = press_button_payload(
        message, ACTION_APPROVE, user_id="U0LEAD", response_url=fake_slack.response_url()
    )
    signed = sign(SECRET, payload_body(payload))
    response = app.dispatch(
        BoltRequest(body=signed.body, headers={k.lower(): [v] for k, v in signed.headers.items()})
    )
    assert response.status == 200

    fake_slack.wait_for("chat.update", 1)
    fake_slack.wait_for("response_url", 1)
    text = render_message(fake_slack.message("C0ALERTS", ts) or {})
    assert "ranker: rollback approved" in text
    assert "Approved by @U0LEAD" in text
    assert "[ Approve ]" not in text
    assert fake_slack.ephemerals()[-1]["text"] == "Thanks, approval recorded."
