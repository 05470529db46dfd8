"""Signed requests verify with slack_sdk's verifier and dispatch through a real Bolt App."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs

from slack_bolt import App, BoltRequest
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from tests.slack_api import FakeSlackApi, fake_slack
from tests.slack_signing import (
    block_actions_payload,
    event_callback_body,
    payload_body,
    post,
    press_button_payload,
    sign,
    signature,
    slash_command_body,
    view_submission_payload,
)

__all__ = ["fake_slack"]

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def bolt_headers(signed: Any) -> dict[str, str | Sequence[str]]:
    return {k.lower(): [v] for k, v in signed.headers.items()}


def test_signature_matches_slack_sdk_and_known_vector() -> None:
    verifier = SignatureVerifier(SECRET)
    body = "token=x&text=hello"
    assert signature(SECRET, 1531420618, body) == verifier.generate_signature(
        timestamp="1531420618", body=body
    )
    # Slack's documented example (secret, timestamp and body from its verification guide).
    doc_body = (
        "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
        "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
        "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    assert (
        signature(SECRET, 1531420618, doc_body)
        == "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    )


def test_signed_request_verifies_and_tampering_does_not() -> None:
    verifier = SignatureVerifier(SECRET)
    signed = sign(SECRET, slash_command_body("status"))
    assert signed.content_type == "application/x-www-form-urlencoded"
    assert verifier.is_valid_request(signed.body, signed.headers)
    assert not verifier.is_valid_request(signed.body + "x", signed.headers)
    old = sign(SECRET, signed.body, timestamp=int(time.time()) - 600)
    assert not verifier.is_valid_request(old.body, old.headers)  # Slack's five-minute window


def test_slash_command_body_fields() -> None:
    body = slash_command_body(
        "fraud-detector to 6 errors",
        user_id="U1",
        channel_id="C1",
        response_url="http://127.0.0.1:1/response/R1",
    )
    fields = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
    assert fields["command"] == "/rollback"
    assert fields["text"] == "fraud-detector to 6 errors"
    assert fields["user_id"] == "U1" and fields["channel_id"] == "C1" and fields["team_id"]
    assert fields["response_url"] == "http://127.0.0.1:1/response/R1"
    assert fields["trigger_id"]


def test_interaction_payload_is_a_form_field_of_json() -> None:
    body = payload_body(block_actions_payload("rollback_approve", "12", user_id="U1", message_ts="1.2"))
    payload = json.loads(parse_qs(body)["payload"][0])
    assert payload["type"] == "block_actions"
    assert payload["user"]["id"] == "U1"
    action = payload["actions"][0]
    assert (action["action_id"], action["value"], action["type"]) == ("rollback_approve", "12", "button")
    assert payload["container"]["message_ts"] == "1.2" and payload["message"]["ts"] == "1.2"
    assert payload["channel"]["id"] == payload["container"]["channel_id"]


def test_event_callback_body_shape() -> None:
    body = json.loads(
        event_callback_body({"type": "app_mention", "text": "hi", "user": "U1"}, event_id="Ev1")
    )
    assert body["type"] == "event_callback" and body["event_id"] == "Ev1"
    assert body["event"]["type"] == "app_mention" and isinstance(body["event_time"], int)
    assert sign(SECRET, json.dumps(body)).content_type == "application/json"


def test_bolt_dispatches_signed_command_action_view_and_event(fake_slack: FakeSlackApi) -> None:
    """A real Bolt App accepts each body: the shapes are what Bolt's own matchers expect."""
    app = App(client=WebClient(token="xoxb-x", base_url=fake_slack.base_url), signing_secret=SECRET)
    seen: dict[str, Any] = {}

    @app.command("/rollback")
    def command(ack: Any, command: dict[str, Any]) -> None:
        seen["command"] = command["text"]
        ack()

    @app.action("rollback_approve")
    def approve(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        seen["action"] = (action["value"], body["user"]["id"], body["container"]["message_ts"])
        ack()

    @app.view("deny_reason")
    def view(ack: Any, view: dict[str, Any]) -> None:
        seen["view"] = view["state"]["values"]["reason"]["text"]["value"]
        ack()

    @app.event("app_mention")
    def mention(event: dict[str, Any]) -> None:
        seen["event"] = event["text"]

    def dispatch(body: str) -> int:
        signed = sign(SECRET, body)
        return int(app.dispatch(BoltRequest(body=signed.body, headers=bolt_headers(signed))).status)

    assert dispatch(slash_command_body("status")) == 200
    message = {
        "channel": "C0ALERTS",
        "ts": "1700000000.000200",
        "text": "card",
        "blocks": [
            {
                "type": "actions",
                "block_id": "rollback_actions_12",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "rollback_approve",
                        "value": "12",
                        "text": {"type": "plain_text", "text": "Approve"},
                    }
                ],
            }
        ],
    }
    payload = press_button_payload(
        message, "rollback_approve", user_id="U0LEAD", response_url=fake_slack.response_url()
    )
    assert dispatch(payload_body(payload)) == 200
    values = {"reason": {"text": {"type": "plain_text_input", "value": "metrics look fine"}}}
    assert dispatch(payload_body(view_submission_payload("deny_reason", values))) == 200
    assert (
        dispatch(event_callback_body({"type": "app_mention", "text": "hello", "user": "U1", "channel": "C1"}))
        == 200
    )

    bad = sign("wrong-secret", slash_command_body("status"))
    assert app.dispatch(BoltRequest(body=bad.body, headers=bolt_headers(bad))).status == 401

    deadline = time.monotonic() + 5
    while "event" not in seen and time.monotonic() < deadline:
        time.sleep(0.02)
    assert seen["command"] == "status"
    assert seen["action"] == ("12", "U0LEAD", "1700000000.000200")
    assert seen["view"] == "metrics look fine"
    assert seen["event"] == "hello"


def test_post_sends_a_signed_request_over_http(fake_slack: FakeSlackApi) -> None:
    signed = sign(SECRET, slash_command_body("help"))
    result = post(fake_slack.url + "/api/api.test", signed)
    assert result.status == 200 and result.json()["ok"] is True
    call = fake_slack.last("api.test")
    assert call is not None
    assert SignatureVerifier(SECRET).is_valid(
        body=signed.body,
        timestamp=call.headers["x-slack-request-timestamp"],
        signature=call.headers["x-slack-signature"],
    )
    assert post(fake_slack.url + "/nowhere", signed).status == 404
