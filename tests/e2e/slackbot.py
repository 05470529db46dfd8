"""The running product driven as Slack drives it: a real server, the local Web API stand-in, signed requests."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from bot.bootstrap import Container, build, remote_targets
from bot.config import settings_from
from bot.core.clock import ManualClock
from bot.core.policy import Policy
from bot.server import Running, assemble
from bot.store.db import make_engine
from devkit.fake_api import FakeSlackApi
from devkit.serving import serving
from devkit.signing import (
    PostResult,
    payload_body,
    post,
    press_button_payload,
    sign,
    slash_command_body,
    view_submission_payload,
)
from devkit.text_render import render_message
from tests.fakes.ports import FakeTarget

SECRET = "e2e-signing-secret"
TOKEN = "xoxb-e2e-token"
CHANNEL = "C0ALERTS"


@dataclass
class SlackBot:
    url: str
    slack: FakeSlackApi
    container: Container
    running: Running
    target: FakeTarget
    clock: ManualClock

    # ---- Slack → bot ------------------------------------------------------------------------------------

    def command(self, text: str, user: str = "U0BOB", timestamp: int | None = None) -> PostResult:
        body = slash_command_body(text, user_id=user, channel_id=CHANNEL,
                                  response_url=self.slack.response_url(channel=CHANNEL))
        return post(f"{self.url}/slack/events", sign(SECRET, body, timestamp=timestamp))

    def command_reply(self, text: str, user: str = "U0BOB") -> str:
        """Run a slash command and return what the user sees (the ack text, or the follow-up reply)."""
        before = len(self.slack.calls("response_url"))
        result = self.command(text, user)
        assert result.status == 200, result.body
        if result.body.strip():
            ack = json.loads(result.body)
            if ack.get("text"):
                return str(ack["text"])
        calls = self.slack.wait_for("response_url", before + 1, timeout=10)
        return str(calls[-1].body.get("text", ""))

    def press(self, action_id: str, user: str, proposal_id: int, message: dict[str, Any] | None = None) -> PostResult:
        message = message or self.card_message(proposal_id)
        payload = press_button_payload(message, action_id, user_id=user,
                                       response_url=self.slack.response_url(CHANNEL, message["ts"]))
        return post(f"{self.url}/slack/events", sign(SECRET, payload_body(payload)))

    def submit_deny(self, user: str, proposal_id: int, reason: str | None) -> PostResult:
        values = {"deny_reason": {"reason": {"type": "plain_text_input", "value": reason}}}
        payload = view_submission_payload("rollback_deny_modal", values, user_id=user,
                                          private_metadata=str(proposal_id))
        return post(f"{self.url}/slack/events", sign(SECRET, payload_body(payload)))

    # ---- what people see ----------------------------------------------------------------------------------

    def card_message(self, proposal_id: int, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            p = self.container.store.get_proposal(proposal_id)
            if p.slack_ts and p.slack_channel:
                msg = self.slack.message(p.slack_channel, p.slack_ts)
                if msg is not None:
                    return {**msg, "channel": p.slack_channel}
            time.sleep(0.05)
        raise AssertionError(f"no card for proposal #{proposal_id}")

    def card(self, proposal_id: int) -> str:
        return render_message(self.card_message(proposal_id), width=100)

    def wait_card(self, proposal_id: int, words: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.card(proposal_id)
            if words in text:
                return text
            time.sleep(0.05)
        raise AssertionError(f"card #{proposal_id} never showed {words!r}; it shows:\n{text}")

    def thread(self, proposal_id: int) -> list[str]:
        p = self.container.store.get_proposal(proposal_id)
        assert p.slack_channel and p.slack_ts
        return [str(m.get("text", "")) for m in self.slack.replies(p.slack_channel, p.slack_ts)]

    def wait_thread(self, proposal_id: int, words: str, timeout: float = 10) -> str:
        """The first thread message containing ``words``, once the Slack sender has delivered it."""
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while time.monotonic() < deadline:
            p = self.container.store.get_proposal(proposal_id)
            if p.slack_channel and p.slack_ts:
                seen = self.thread(proposal_id)
                for text in seen:
                    if words in text:
                        return text
            time.sleep(0.05)
        raise AssertionError(f"thread of #{proposal_id} never showed {words!r}: {seen}")

    def ephemeral_texts(self) -> list[str]:
        return [str(e.get("text", "")) for e in self.slack.ephemerals()]

    def wait_ephemeral(self, words: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for text in self.ephemeral_texts():
                if words in text:
                    return text
            time.sleep(0.05)
        raise AssertionError(f"no ephemeral message with {words!r}: {self.ephemeral_texts()}")

    def sweep(self) -> None:
        for job, _every in self.running.jobs.values():
            job()


def deploy_versions(container: Container, model: str = "fraud-detector") -> None:
    from datetime import timedelta

    container.service.deploy(model, "5", actor="api:ci", stable=True)
    container.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    container.service.deploy(model, "6", actor="api:ci", stable=True)
    container.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    container.service.deploy(model, "7", actor="api:ci")


@contextmanager
def slack_bot(db_url: str, policy: Policy, clock: Any, *, groups: dict[str, list[str]] | None = None,
              slack: FakeSlackApi | None = None, prometheus_url: str | None = None,
              env: dict[str, str] | None = None) -> Iterator[SlackBot]:
    with ExitStack() as stack:
        if slack is None:
            slack = stack.enter_context(FakeSlackApi(usergroups=groups or {"S0ONCALL": ["U0CAROL", "U0DAVE"]}))
        settings = settings_from({
            "DATABASE_URL": db_url, "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.base_url, "ALERT_WEBHOOK_TOKEN": "e2e-alert-token",
            **({"PROMETHEUS_URL": prometheus_url} if prometheus_url else {}), **(env or {}),
        })
        target = FakeTarget()
        container = build(settings, policy=policy, clock=clock, engine=make_engine(db_url),
                          targets={**remote_targets(), "fake": target})
        stack.callback(container.close)
        running = assemble(container, with_slack=True)
        url = stack.enter_context(serving(running.app)).url
        yield SlackBot(url, slack, container, running, target, clock)
