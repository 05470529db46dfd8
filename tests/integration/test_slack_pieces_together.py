"""The product's own Bolt listeners, reached without a server: a card posted by the Slack sender, a signed
button press dispatched by the app `build_bolt_app` builds, the rollback it causes and the card updated in
place, read back as text. Nothing here is test code standing in for the product but Slack itself."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.bootstrap import Container, build
from bot.config import settings_from
from bot.core.clock import ManualClock
from bot.core.proposal import State
from bot.core.requests import RollbackRequest
from bot.slack.app import build_bolt_app
from bot.slack.cards import ACTION_APPROVE
from bot.store.db import make_engine
from bot.store.migrate import upgrade
from devkit.text_render import render_message
from tests.conftest import make_policy
from tests.e2e.slackbot import deploy_versions
from tests.fakes.ports import FakeTarget
from tests.slack_api import FakeSlackApi, fake_slack
from tests.slack_signing import SignedRequest, payload_body, press_button_payload, sign

__all__ = ["fake_slack"]

SECRET = "pieces-secret"
TOKEN = "xoxb-pieces"


@pytest.fixture
def container(tmp_path: Path, fake_slack: FakeSlackApi) -> Iterator[Container]:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    settings = settings_from({"DATABASE_URL": url, "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET,
                              "SLACK_API_URL": fake_slack.base_url, "ALERT_WEBHOOK_TOKEN": "pieces-alert-token"})
    built = build(settings, policy=make_policy(), clock=ManualClock(datetime(2026, 11, 2, 12, 0, tzinfo=UTC)),
                  engine=make_engine(url), targets={"fake": FakeTarget({"fraud-detector": "7"})})
    yield built
    built.close()


def deliver(container: Container) -> None:
    """What the Slack sender worker does when woken: send everything the outbox holds."""
    assert container.slack_sender is not None
    while container.slack_sender.tick():
        pass


async def press(app: AsyncApp, signed: SignedRequest) -> int:
    """Dispatch as Bolt's adapters do, then wait for the listener Bolt keeps running after its ack."""
    response = await app.async_dispatch(
        AsyncBoltRequest(body=signed.body, headers={k.lower(): [v] for k, v in signed.headers.items()}))
    listeners = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    await asyncio.gather(*listeners)
    return response.status


def card(container: Container, fake_slack: FakeSlackApi, proposal_id: int) -> dict[str, Any]:
    p = container.store.get_proposal(proposal_id)
    assert p.slack_channel and p.slack_ts, "the sender posted no card"
    message = fake_slack.message(p.slack_channel, p.slack_ts)
    assert message is not None
    return {**message, "channel": p.slack_channel}


def click(fake_slack: FakeSlackApi, message: dict[str, Any], user: str) -> SignedRequest:
    payload = press_button_payload(message, ACTION_APPROVE, user_id=user,
                                   response_url=fake_slack.response_url(message["channel"], message["ts"]))
    return sign(SECRET, payload_body(payload))


def test_press_approve_and_read_the_updated_card(container: Container, fake_slack: FakeSlackApi) -> None:
    deploy_versions(container)
    pid = container.service.request_rollback(RollbackRequest("fraud-detector", actor="slack:U0BOB", reason="errors")).id
    deliver(container)
    before = card(container, fake_slack, pid)
    assert "[ Approve ] [ Deny ]" in render_message(before)
    app = build_bolt_app(container, AsyncWebClient(token=TOKEN, base_url=fake_slack.base_url), SECRET)

    assert asyncio.run(press(app, click(fake_slack, before, "U0LEAD"))) == 200
    assert container.store.get_proposal(pid).state is State.SUCCEEDED
    deliver(container)
    after = card(container, fake_slack, pid)
    text = render_message(after)
    assert after["ts"] == before["ts"] and "Rolled back to `6`" in text and "@U0LEAD" in text
    assert "[ Approve ]" not in text
    assert fake_slack.ephemerals() == []  # an approval that rolled back is answered by the card itself


def test_a_press_by_someone_who_may_not_approve_is_refused_and_changes_nothing(
        container: Container, fake_slack: FakeSlackApi) -> None:
    deploy_versions(container)
    pid = container.service.request_rollback(RollbackRequest("fraud-detector", actor="slack:U0BOB", reason="errors")).id
    deliver(container)
    app = build_bolt_app(container, AsyncWebClient(token=TOKEN, base_url=fake_slack.base_url), SECRET)

    assert asyncio.run(press(app, click(fake_slack, card(container, fake_slack, pid), "U0MALLORY"))) == 200
    assert container.store.get_proposal(pid).state is State.PROPOSED
    (answer,) = fake_slack.ephemerals()
    assert answer["text"].startswith(":no_entry:") and "U0LEAD" in answer["text"]


def test_changes_that_land_in_one_tick_update_the_card_once(container: Container, fake_slack: FakeSlackApi) -> None:
    """approved, executing and succeeded written before the sender looks: the card is drawn once, at its
    final state, and each step still gets its thread message."""
    deploy_versions(container)
    pid = container.service.request_rollback(RollbackRequest("fraud-detector", actor="slack:U0BOB", reason="errors")).id
    deliver(container)
    before = card(container, fake_slack, pid)
    threads_before = len(fake_slack.replies(before["channel"], before["ts"]))
    updates_before = len(fake_slack.calls("chat.update"))
    app = build_bolt_app(container, AsyncWebClient(token=TOKEN, base_url=fake_slack.base_url), SECRET)

    assert asyncio.run(press(app, click(fake_slack, before, "U0LEAD"))) == 200
    assert container.store.get_proposal(pid).state is State.SUCCEEDED
    deliver(container)

    assert len(fake_slack.calls("chat.update")) == updates_before + 1
    assert "Rolled back to `6`" in render_message(card(container, fake_slack, pid))
    replies = fake_slack.replies(before["channel"], before["ts"])
    assert len(replies) - threads_before >= 3  # approved, executing, succeeded: each said in the thread
    version, drawn = container.store.card_state(pid)
    assert drawn == version
