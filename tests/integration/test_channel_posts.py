"""Drill posts in the database: written with their audit row, delivered once, resumed where they stopped."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from bot.core.audit import AuditEvent
from bot.core.clock import ManualClock, SystemClock
from bot.core.drill import ChannelPost
from bot.slack.channel_posts import ChannelPostSender
from bot.slack.client import outbox_client
from bot.store.db import make_engine
from bot.store.repository import SqlStore
from devkit.fake_api import FakeSlackApi

POST = ChannelPost("drill", "C0ALERTS", {"text": "Rollback drill of m", "blocks": []}, ("step 1", "step 2"))
AUDIT = AuditEvent(actor="cli:ops", action="drill.passed", model="m", reason="rehearsal")


@pytest.fixture
def world(db_url: str) -> Iterator[tuple[SqlStore, FakeSlackApi, ChannelPostSender]]:
    engine = make_engine(db_url)
    store = SqlStore(engine, SystemClock())
    with FakeSlackApi() as slack:
        yield store, slack, ChannelPostSender(outbox_client("xoxb-posts", slack.base_url), store)
    engine.dispose()


def test_the_card_and_its_replies_are_posted_once_with_the_audit_row(
        world: tuple[SqlStore, FakeSlackApi, ChannelPostSender]) -> None:
    store, slack, sender = world
    store.record_drill(AUDIT, POST)
    assert [r.action for r in store.audit_records(model="m")] == ["drill.passed"]
    assert sender.tick() is True
    (card,) = slack.messages("C0ALERTS")
    assert card["metadata"]["event_type"] == "rollback_bot_drill"
    assert [m["text"] for m in slack.replies("C0ALERTS", card["ts"])] == ["step 1", "step 2"]
    assert sender.tick() is False and len(slack.calls("chat.postMessage")) == 3


def test_a_retry_after_a_lost_reply_sends_only_what_is_still_owed(
        world: tuple[SqlStore, FakeSlackApi, ChannelPostSender]) -> None:
    store, slack, sender = world
    store.record_drill(AUDIT, POST)
    (pending,) = store.posts_due()
    store.post_progress(pending.id, ts="1700000000.000100", replies_sent=1)  # the card and one reply went out
    sender.tick()
    assert slack.messages("C0ALERTS") == []  # the card is not posted again
    assert [m["text"] for m in slack.replies("C0ALERTS", "1700000000.000100")] == ["step 2"]


def test_transient_errors_back_off_and_permanent_ones_stop(
        world: tuple[SqlStore, FakeSlackApi, ChannelPostSender]) -> None:
    store, slack, sender = world
    store.record_drill(AUDIT, POST)
    slack.fail("chat.postMessage", "internal_error")
    assert sender.tick() is False and store.posts_due() == []  # waiting for its back-off
    later = ManualClock(SystemClock().now() + timedelta(minutes=5))
    store.wall = later
    slack.fail("chat.postMessage", "not_in_channel")
    sender.tick()
    later.advance(timedelta(hours=1))
    assert store.posts_due() == [] and slack.messages("C0ALERTS") == []  # stopped for good, not retried
    assert store.stopped_posts() == [("drill", "C0ALERTS", "chat.postMessage: not_in_channel")]
    restarted = ChannelPostSender(outbox_client("xoxb-posts", slack.base_url), store)
    assert restarted.tick() is True and len(slack.messages("C0ALERTS")) == 1  # a new process tries again
