"""The report in Slack: `/rollback report ID` as a signed slash command, and the thread post surviving a
Slack outage and a crash between the rollback and the post (the sweeper posts it, once)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from bot.core.clock import ManualClock
from bot.slack.cards import ACTION_APPROVE
from tests.conftest import make_policy
from tests.e2e.slackbot import SlackBot, deploy_versions, slack_bot

KEY = "slack-test-link-key-0123456789"


@pytest.fixture
def bot(tmp_path: Any, clock: ManualClock) -> Iterator[SlackBot]:
    from bot.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    with slack_bot(url, make_policy(), clock,
                   env={"PAGE_LINK_KEY": KEY, "PUBLIC_URL": "https://bot.example.org"}) as b:
        deploy_versions(b.container)
        yield b


def rolled_back(bot: SlackBot) -> int:
    reply = bot.command_reply("fraud-detector errors since v7")
    pid = int(reply.split("#", 1)[1].split()[0])
    bot.press(ACTION_APPROVE, "U0LEAD", pid)
    bot.wait_card(pid, "Rolled back")
    return pid


def report_files(bot: SlackBot) -> list[str]:
    names = []
    for call in bot.slack.calls("files.completeUploadExternal"):
        for item in call.body.get("files", []):
            found = bot.slack.file(str(item["id"]))
            if found is not None and str(found.get("name", "")).endswith("-report.md"):
                names.append(str(found["name"]))
    return names


def actions(bot: SlackBot, pid: int) -> list[str]:
    return [r.action for r in bot.container.store.audit_records(proposal_id=pid)]


def wait_for_action(bot: SlackBot, pid: int, action: str, timeout: float = 10) -> None:
    """The report is posted after the card shows the rollback, in the same notifier call: wait for its row."""
    deadline = time.monotonic() + timeout
    while action not in actions(bot, pid):
        assert time.monotonic() < deadline, f"no {action} for #{pid}: {actions(bot, pid)}"
        time.sleep(0.05)


def test_report_slash_command(bot: SlackBot) -> None:
    pid = rolled_back(bot)
    wait_for_action(bot, pid, "report.posted")
    first = bot.thread(pid)[0]
    assert first.startswith("Incident page (read-only; the link expires): <https://bot.example.org/incidents/")
    reply = bot.command_reply(f"report {pid}")
    assert f"*Post-incident report #{pid}*: fraud-detector 7 → 6, succeeded; decision approved by <@U0LEAD>" in reply
    assert f"<https://bot.example.org/incidents/{pid}?exp=" in reply and "|Open the incident page>" in reply
    assert bot.command_reply("report 999") == ":warning: no proposal #999"
    bad = bot.command_reply("report seven")
    assert "'seven' is not a proposal id" in bad and "/rollback report ID" in bad


def test_slack_outage_then_the_sweeper_posts_the_report_once(bot: SlackBot, clock: ManualClock) -> None:
    bot.slack.fail("files.getUploadURLExternal", "internal_error")
    pid = rolled_back(bot)
    wait_for_action(bot, pid, "slack.post_failed")
    assert report_files(bot) == []
    assert actions(bot, pid).count("slack.post_failed") == 1 and "report.posted" not in actions(bot, pid)
    bot.sweep()  # within the grace period: the inline path may still be at work
    assert report_files(bot) == []
    clock.advance(timedelta(minutes=2))
    bot.sweep()
    assert report_files(bot) == [f"rollback-{pid}-report.md"]
    bot.sweep()
    assert report_files(bot) == [f"rollback-{pid}-report.md"]
    assert actions(bot, pid).count("report.posted") == 1


def test_a_crash_before_the_post_is_made_good_by_the_sweeper(bot: SlackBot, clock: ManualClock) -> None:
    poster = bot.container.extras["report_poster"]
    sender = bot.container.slack_sender
    assert sender is not None
    sender.report = None  # the process dies after the switch, before the report
    pid = rolled_back(bot)
    deadline = time.monotonic() + 10
    while bot.container.store.outbox_due():  # the sender is done with this proposal's messages
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert report_files(bot) == []
    sender.report = poster  # restarted
    clock.advance(timedelta(minutes=2))
    bot.sweep()
    bot.sweep()
    assert report_files(bot) == [f"rollback-{pid}-report.md"]
    assert sum("Post-incident report" in t for t in bot.thread(pid)) == 1
    clock.advance(timedelta(hours=7))  # an old rollback never gets a late report
    assert poster.sweep() == 0
