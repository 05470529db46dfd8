"""Unusual activity in the audit trail reaches the [audit] channel once each, through the running server.

The override of a blocked version is written as the `deployment.override` audit row the deployment-blocking
change produces (that change is not part of this branch); everything else is done the way people do it.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from bot.core.audit import AuditEvent
from bot.core.clock import ManualClock
from bot.core.requests import RollbackRequest
from bot.core.unusual import Notice, UnusualKind
from bot.policy_file import TARGETS, parse_policy
from tests.conftest import BASE_POLICY
from tests.e2e.slackbot import SlackBot, deploy_versions, slack_bot

AUDIT_CHANNEL = "C0AUDIT"
KEY = "an-e2e-page-link-key-of-32-chars"
PUBLIC = "https://bot.example.org"


def audit_policy() -> Any:
    data = {**BASE_POLICY, "audit": {"channel": AUDIT_CHANNEL,
                                     "repeated_rollbacks": {"max": 1, "window": "24h"},
                                     "off_hours": {"start": "08:00", "end": "19:00", "timezone": "UTC"}}}
    loaded = parse_policy(data, "test-policy.toml", known_targets=(*TARGETS, "fake"))
    assert loaded.policy is not None, loaded.problems
    return loaded.policy


@pytest.fixture
def bot(db_url: str, clock: ManualClock) -> Iterator[SlackBot]:
    with slack_bot(db_url, audit_policy(), clock, env={"PAGE_LINK_KEY": KEY, "PUBLIC_URL": PUBLIC}) as b:
        deploy_versions(b.container)  # by CI (`api:ci`), in working hours: nothing unusual
        yield b


def audit_channel(bot: SlackBot, count: int, timeout: float = 10) -> list[str]:
    """The audit channel's messages once ``count`` have arrived (polling what the Slack stand-in received)."""
    deadline = time.monotonic() + timeout
    texts: list[str] = []
    while time.monotonic() < deadline:
        texts = [str(m.get("text", "")) for m in bot.slack.messages(AUDIT_CHANNEL)]
        if len(texts) >= count:
            return texts
        bot.container.signals.wake_all()
        time.sleep(0.05)
    raise AssertionError(f"the audit channel has {len(texts)} message(s), expected {count}: {texts}")


def test_each_unusual_activity_posts_once_to_the_audit_channel(bot: SlackBot) -> None:
    svc, store = bot.container.service, bot.container.store
    store.append_audit(AuditEvent(actor="api:ci", action="deployment.override", model="fraud-detector",
                                  to_version="7", reason="hotfix approved by the release manager"))
    glass = svc.request_rollback(RollbackRequest(
        "fraud-detector", actor="cli:alice", reason="chat is down", execute_now=True))
    undo = svc.undo(glass.id, "slack:U0LEAD")  # the second rollback of the day: more than max = 1
    bot.clock.advance(timedelta(hours=9))  # Monday 23:00 UTC
    assert "frozen" in bot.command_reply("freeze fraud-detector for 1h", user="U0LEAD")

    texts = audit_channel(bot, 5)
    by_kind = {kind: [t for t in texts if words in t] for kind, words in {
        UnusualKind.OVERRIDE: "Override: api:ci deployed blocked version 7 of fraud-detector",
        UnusualKind.BREAK_GLASS: "Break-glass rollback of fraud-detector 7 → 6 by cli:alice",
        UnusualKind.UNDO: "Undo asked by <@U0LEAD>: fraud-detector back to 7",
        UnusualKind.REPEATED_ROLLBACKS: "fraud-detector rolled back 2 times in 1d (more than 1)",
        UnusualKind.OFF_HOURS: "Outside working hours: model.frozen on fraud-detector by <@U0LEAD> at Mon 23:00 "
                               "UTC (hours 08:00-19:00 UTC, mon/tue/wed/thu/fri)",
    }.items()}
    assert all(len(found) == 1 for found in by_kind.values()), "\n".join(texts)
    assert len(texts) == 5, texts
    # the link opens the incident (or, without one, the model) page, signed with PAGE_LINK_KEY
    assert f"<{PUBLIC}/incidents/{glass.id}?exp=" in by_kind[UnusualKind.BREAK_GLASS][0]
    assert f"<{PUBLIC}/incidents/{undo.id}?exp=" in by_kind[UnusualKind.UNDO][0]
    assert f"<{PUBLIC}/models/fraud-detector?exp=" in by_kind[UnusualKind.OVERRIDE][0]
    assert "&sig=" in by_kind[UnusualKind.OVERRIDE][0]

    # counted on /metrics, from the database
    with urllib.request.urlopen(f"{bot.url}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    for kind in UnusualKind:
        assert f'rollback_bot_unusual_activity_total{{kind="{kind.value}"}} 1.0' in metrics

    # sent once: another scan (a restart, a second replica) writes and posts nothing new
    watch, sender = bot.container.extras["audit_watch"]
    while watch.scan():  # rows written since the fifth post (card updates, deliveries): none is unusual
        pass
    assert sender.tick() is False
    stale = store.record_notices(0, store.watermark(), [Notice(1, UnusualKind.OVERRIDE, None, None, "x")],
                                 AUDIT_CHANNEL)
    assert stale is False  # the watermark moved on: a scanner that read an old position keeps nothing
    assert len(bot.slack.messages(AUDIT_CHANNEL)) == 5


def test_a_refused_audit_channel_shows_on_readyz_and_is_resent_once_after_a_restart(bot: SlackBot) -> None:
    store = bot.container.store
    bot.slack.fail("chat.postMessage", "not_in_channel")
    store.append_audit(AuditEvent(actor="api:ci", action="deployment.override", model="fraud-detector",
                                  to_version="7", reason="hotfix"))
    deadline = time.monotonic() + 10
    while not store.notice_failures() and time.monotonic() < deadline:
        bot.container.signals.wake_all()
        time.sleep(0.05)
    assert store.notice_failures() == [(AUDIT_CHANNEL, "chat.postMessage: not_in_channel")]  # as the cards say it
    with urllib.request.urlopen(f"{bot.url}/readyz", timeout=10) as response:
        ready = json.loads(response.read())
    assert any("audit channel C0AUDIT: chat.postMessage: not_in_channel" in w for w in ready["warnings"]), ready
    assert bot.slack.messages(AUDIT_CHANNEL) == []
    store.notices_resume()  # what a restarted sender does first (the bot was invited meanwhile)
    (text,) = audit_channel(bot, 1)
    assert "Override: api:ci deployed blocked version 7" in text
    assert store.notice_failures() == []
    sender = bot.container.extras["audit_watch"][1]
    assert sender.tick() is False and len(bot.slack.messages(AUDIT_CHANNEL)) == 1
