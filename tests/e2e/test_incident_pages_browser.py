"""The incident pages in headless Chromium: opened from the link the bot posted in the card's thread, each
page screenshotted and checked with axe-core; a tampered or expired link gets 403, no link gets 401."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from bot.core.clock import ManualClock
from bot.report.links import LinkSigner
from bot.slack.cards import ACTION_APPROVE
from tests.conftest import make_policy
from tests.e2e.browser import Pages
from tests.e2e.slackbot import SlackBot, slack_bot
from tests.integration.alert_helpers import am_alert, am_body

KEY = "browser-test-link-key-0123456789"
PUBLIC = "https://rollback-bot.example.org"
MODEL = "fraud-detector"


@pytest.fixture
def bot(tmp_path: Any, clock: ManualClock) -> Iterator[SlackBot]:
    from bot.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    policy = make_policy({"approvers": ["U0LEAD"]}, models={MODEL: {"target": "fake"}})
    with slack_bot(url, policy, clock, env={"PAGE_LINK_KEY": KEY, "PUBLIC_URL": PUBLIC}) as b:
        yield b


def thread_link(bot: SlackBot, pid: int) -> str:
    """The incident page link in the report summary the bot posted in the card's thread."""
    for text in bot.thread(pid):
        found = re.search(r"<(https://[^|>]+/incidents/\d+\?[^|>]+)\|Open the incident page>", text)
        if found:
            return found.group(1).replace("&amp;", "&")
    raise AssertionError(f"no incident link in the thread: {bot.thread(pid)}")


def test_pages_from_the_posted_link(bot: SlackBot, pages: Pages, clock: ManualClock) -> None:
    svc = bot.container.service
    svc.deploy(MODEL, "6", actor="api:ci", stable=True, metadata={"commit": "a1f0c3e", "image": "fraud:6"})
    clock.advance(timedelta(minutes=30))
    svc.deploy(MODEL, "7", actor="api:ci", metadata={"commit": "b7c1e9d", "image": "fraud:7"})
    clock.advance(timedelta(minutes=4))
    alert = am_alert(MODEL, "fp-browser", severity="warning", starts="2026-11-02T12:33:00Z")
    r = httpx.post(f"{bot.url}/alerts/alertmanager", json=am_body(alert),
                   headers={"Authorization": "Bearer e2e-alert-token"})
    assert r.status_code == 202, r.text
    opened = bot.container.store.open_proposal(MODEL)
    assert opened is not None
    pid = opened.id
    clock.advance(timedelta(minutes=3))
    bot.press(ACTION_APPROVE, "U0LEAD", pid)
    bot.wait_card(pid, "Rolled back")
    # no metrics source: no verification follows, so the report is posted when the switch ends
    upload = bot.slack.wait_for("files.completeUploadExternal", 1, timeout=10)[-1]
    report_file = bot.slack.file(str(upload.body["files"][0]["id"]))
    assert report_file is not None and report_file["name"] == f"rollback-{pid}-report.md"
    assert bytes(report_file["content"]).decode().startswith(f"# Rollback #{pid}: {MODEL} 7 → 6")
    link = thread_link(bot, pid)
    local = link.replace(PUBLIC, bot.url)

    assert pages.open(local) == 200
    body = pages.text()
    assert "Time to detect" in body and "b7c1e9d" in body and "a1f0c3e" in body
    pages.screenshot("incident")
    assert pages.serious_violations() == []

    incidents = next(h for h in pages.links() if "/incidents?" in h)
    assert pages.open(incidents) == 200 and f"#{pid}" in pages.text()
    pages.screenshot("incidents")
    assert pages.serious_violations() == []
    pages.page.select_option("#f-state", "succeeded")  # the filter form works without JavaScript
    with pages.page.expect_navigation():
        pages.page.click("button[type=submit]")
    assert "state=succeeded" in pages.page.url and f"#{pid}" in pages.text()
    model = next(h for h in pages.links() if f"/models/{MODEL}?" in h)
    pages.page.select_option("#f-state", "denied")
    with pages.page.expect_navigation():
        pages.page.click("button[type=submit]")
    assert "No incident matches" in pages.text()

    assert pages.open(model) == 200
    assert "live" in pages.text() and "bad: rolled back" in pages.text()
    pages.screenshot("model")
    assert pages.serious_violations() == []

    tampered = local.replace(f"/incidents/{pid}?", f"/incidents/{pid + 1}?")
    assert pages.open(tampered) == 403 and "altered" in pages.text()
    pages.screenshot("refused-tampered")
    assert pages.serious_violations() == []
    expired = LinkSigner(KEY, clock).sign(f"/incidents/{pid}", expires=int(clock.now().timestamp()) - 60)
    assert pages.open(bot.url + expired) == 403 and "expired" in pages.text()
    assert pages.open(f"{bot.url}/incidents/{pid}") == 401
    clock.advance(timedelta(days=7, minutes=1))  # the posted link itself expires after the default 7 days
    assert pages.open(local) == 403 and "expired" in pages.text()
