"""`/rollback drill MODEL` from Slack: approvers only, every step walked, nothing switched, result in the thread."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot.core.clock import ManualClock
from devkit.fake_api import FakeSlackApi
from tests.conftest import make_policy
from tests.e2e.slackbot import CHANNEL, SlackBot, deploy_versions, slack_bot


@pytest.fixture
def bot(db_url: str, clock: ManualClock) -> Iterator[SlackBot]:
    with slack_bot(db_url, make_policy(), clock) as b:
        deploy_versions(b.container)
        yield b


def drill_thread(slack: FakeSlackApi, timeout: float = 10) -> tuple[dict[str, Any], list[str]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in slack.messages(CHANNEL):
            if (message.get("metadata") or {}).get("event_type") == "rollback_bot_drill":
                replies = [str(m.get("text")) for m in slack.replies(CHANNEL, message["ts"])]
                if replies:
                    return message, replies
        time.sleep(0.05)
    raise AssertionError(f"no drill card with its thread: {slack.messages(CHANNEL)}")


def outbox_drained(bot: SlackBot, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while bot.container.store.outbox_counts()["pending"]:
        assert time.monotonic() < deadline, "the Slack outbox never drained"
        time.sleep(0.05)


def snapshot(bot: SlackBot) -> tuple[Any, ...]:
    """The model, its proposals, the Slack outbox and the incident counters on /metrics."""
    store = bot.container.store
    counters = [line for line in httpx.get(f"{bot.url}/metrics").text.splitlines()
                if 'model="fraud-detector"' in line]
    return (store.history("fraud-detector"), store.model_state("fraud-detector"),
            store.served_version("fraud-detector"), store.proposals(model="fraud-detector", limit=100),
            store.outbox_counts(), counters)


def test_an_approver_drills_and_the_thread_shows_each_step_with_its_time(bot: SlackBot) -> None:
    reply = bot.command_reply("fraud-detector errors since v7", "U0BOB")  # a real incident, still open
    bot.card(int(reply.split("#", 1)[1].split()[0]))  # waits until its card is posted
    outbox_drained(bot)
    before = snapshot(bot)
    assert before[-1], "the open proposal shows on the incident counters"
    reply = bot.command_reply("drill fraud-detector", "U0LEAD")
    assert "every step passed" in reply and "nothing was switched" in reply, reply
    card, replies = drill_thread(bot.slack)
    assert "Rollback drill" in card["text"] and "`7` → `6`" in str(card["blocks"])
    assert not any(b.get("type") == "actions" for b in card["blocks"]) and "Proposal #" not in str(card["blocks"])
    thread = replies[0]
    for step in ("alert", "decision", "version", "card", "approval", "switch", "verification"):
        assert f"*{step}* (" in thread, thread
    assert "slack:U0LEAD may approve" in thread and "would switch fraud-detector to 6" in thread
    assert bot.target.switches == [] and snapshot(bot) == before
    rows = bot.container.store.audit_records(model="fraud-detector", limit=5, newest_first=True)
    assert rows[0].action == "drill.passed" and rows[0].actor == "slack:U0LEAD" and rows[0].proposal_id is None


def test_a_member_of_an_approver_group_may_drill_but_others_are_refused_and_audited(bot: SlackBot) -> None:
    assert "every step passed" in bot.command_reply("drill fraud-detector", "U0CAROL")
    reply = bot.command_reply("drill fraud-detector", "U0MALLORY")
    assert "only approvers may run a rollback drill of fraud-detector" in reply, reply
    rows = bot.container.store.audit_records(model="fraud-detector", limit=5, newest_first=True)
    assert rows[0].action == "drill.refused" and rows[0].actor == "slack:U0MALLORY"


def test_drill_needs_a_model(bot: SlackBot) -> None:
    reply = bot.command_reply("drill", "U0LEAD")
    assert "drill needs a model" in reply and "/rollback drill MODEL" in reply
