"""Charts go to the card's thread with the files upload v2 flow; when Slack refuses, the thread says why."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.core.clock import ManualClock
from bot.core.requests import RollbackRequest
from tests.conftest import make_policy
from tests.e2e.slackbot import SlackBot, deploy_versions, slack_bot

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def bot(tmp_path: object, clock: ManualClock) -> Iterator[SlackBot]:
    from bot.store.migrate import upgrade

    url = f"sqlite:///{tmp_path}/bot.db"
    upgrade(url)
    with slack_bot(url, make_policy(), clock) as b:
        deploy_versions(b.container)
        assert b.container.slack_sender is not None  # charts without a Prometheus: a stand-in provider
        b.container.slack_sender.charts = lambda p: [
            ("error_rate", PNG), ("latency", "no chart for latency: prometheus timed out")]
        yield b


def test_chart_is_uploaded_into_the_thread(bot: SlackBot) -> None:
    p = bot.container.service.request_rollback(RollbackRequest("fraud-detector", actor="slack:U0BOB", reason="r"))
    done = bot.slack.wait_for("files.completeUploadExternal", 1)
    assert done[0].body["thread_ts"] == bot.container.store.get_proposal(p.id).slack_ts
    stored = bot.slack.file(str(done[0].body["files"][0]["id"]))
    assert stored is not None and bytes(stored["content"]) == PNG
    bot.wait_thread(p.id, "no chart for latency: prometheus timed out")


def test_refused_upload_says_why_in_the_thread(bot: SlackBot) -> None:
    bot.slack.fail("files.getUploadURLExternal", "missing_scope", times=1)
    p = bot.container.service.request_rollback(RollbackRequest("fraud-detector", actor="slack:U0BOB", reason="r"))
    text = bot.wait_thread(p.id, "error_rate")
    assert "Could not attach the error_rate chart: Slack said `missing_scope`" in text
    assert "files:write" in text
