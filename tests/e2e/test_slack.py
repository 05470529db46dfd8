"""Slack end to end: cards, buttons, approvals, modals, slash commands and signatures, through the real app."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from bot.core.clock import ManualClock
from bot.core.metrics import MetricLine
from bot.core.proposal import State
from bot.core.requests import RollbackRequest
from bot.slack.cards import ACTION_APPROVE, ACTION_DENY, ACTION_UNDO
from devkit.signing import post, sign, slash_command_body
from tests.conftest import make_policy
from tests.e2e.slackbot import SECRET, SlackBot, deploy_versions, slack_bot


@pytest.fixture
def bot(db_url: str, clock: ManualClock) -> Iterator[SlackBot]:
    with slack_bot(db_url, make_policy(), clock) as b:
        deploy_versions(b.container)
        yield b


def ask(bot: SlackBot, user: str = "U0BOB") -> int:
    reply = bot.command_reply("fraud-detector error rate 40% since v7", user)
    assert "proposal #" in reply, reply
    return int(reply.split("#", 1)[1].split()[0])


def test_card_content_then_approve_updates_it_in_place(bot: SlackBot) -> None:
    pid = ask(bot)
    card = bot.card(pid)
    assert "fraud-detector" in card and "`7` → `6`" in card and "last stable version" in card
    assert "[ Approve ]" in card and "[ Deny ]" in card and "Waiting for 1 approval" in card
    assert "Approvers: @U0LEAD, @U0BOB, @S0ONCALL" in card and "Deadline: 2026-11-02 14:15 UTC" in card
    posts = len(bot.slack.calls("chat.postMessage"))
    assert bot.press(ACTION_APPROVE, "U0LEAD", pid).status == 200
    card = bot.wait_card(pid, "Rolled back to `6`")
    assert "[ Approve ]" not in card and "@U0LEAD" in card
    assert [s.to_version for s in bot.target.switches] == ["6"]
    assert len([c for c in bot.slack.calls("chat.postMessage") if "thread_ts" not in c.body]) == posts
    assert bot.wait_thread(pid, "Done in").startswith("Done in")


def test_metric_line_is_on_the_card(bot: SlackBot) -> None:
    line = MetricLine("error_rate", "x", 0.42, 0.01, 0.41, 4100.0, "▁▂▃▅▇", False)
    bot.container.service.summarise = lambda policy, dep, hints: {"metrics": [line.to_dict()]}
    pid = ask(bot)
    assert "error_rate" in bot.card(pid) and "0.42" in bot.card(pid) and "▁▂▃▅▇" in bot.card(pid)


def test_deny_opens_a_modal_and_records_the_reason(bot: SlackBot) -> None:
    pid = ask(bot)
    bot.press(ACTION_DENY, "U0LEAD", pid)
    bot.slack.wait_for("views.open")
    assert bot.submit_deny("U0LEAD", pid, "load test, not users").status == 200
    card = bot.wait_card(pid, "load test, not users")
    assert "[ Approve ]" not in card
    assert bot.container.store.get_proposal(pid).state is State.DENIED
    assert bot.target.switches == []


def test_two_of_three_approvals(db_url: str, clock: ManualClock) -> None:
    with slack_bot(db_url, make_policy({"required_approvals": 2}), clock) as b:
        deploy_versions(b.container)
        pid = ask(b)
        b.press(ACTION_APPROVE, "U0LEAD", pid)
        b.wait_card(pid, "1 of 2")
        assert b.target.switches == []
        b.press(ACTION_APPROVE, "U0CAROL", pid)  # a member of the S0ONCALL group
        b.wait_card(pid, "Rolled back to `6`")
        assert len(b.target.switches) == 1


def test_self_approval_is_refused_with_an_ephemeral_answer(bot: SlackBot) -> None:
    pid = ask(bot, user="U0BOB")
    bot.press(ACTION_APPROVE, "U0BOB", pid)
    assert "allow_self_approval = false" in bot.wait_ephemeral("self-approval")
    assert bot.container.store.get_proposal(pid).state is State.PROPOSED


def test_unauthorised_clicker_is_told_who_may_approve_and_audited(bot: SlackBot) -> None:
    pid = ask(bot)
    bot.press(ACTION_APPROVE, "U0MALLORY", pid)
    text = bot.wait_ephemeral("may not approve")
    assert "<@U0LEAD>" in text and "<!subteam^S0ONCALL>" in text
    rows = bot.container.store.audit_records(proposal_id=pid)
    assert rows[-1].action == "approval.refused" and rows[-1].actor == "slack:U0MALLORY"
    bot.press(ACTION_DENY, "U0MALLORY", pid)
    bot.wait_ephemeral("may not deny")
    assert bot.slack.calls("views.open") == []
    refused = [(r.action, r.actor) for r in bot.container.store.audit_records(proposal_id=pid)
               if r.action.endswith(".refused")]
    assert refused == [("approval.refused", "slack:U0MALLORY"), ("denial.refused", "slack:U0MALLORY")]


def test_the_same_click_twice_and_two_approvers_at_once_execute_once(bot: SlackBot) -> None:
    pid = ask(bot)
    card = bot.card_message(pid)  # everyone clicks on the card as it was before anyone's click landed
    before = len(bot.slack.calls("response_url"))
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda u: bot.press(ACTION_APPROVE, u, pid, card), ["U0LEAD", "U0LEAD", "U0CAROL", "U0DAVE"]))
    bot.wait_card(pid, "Rolled back to `6`")
    # Every press that does not roll back is answered with an ephemeral line; the one that does is answered by
    # the card. So three answers mean all four listeners are done, and a second switch would leave only two.
    answers = bot.slack.wait_for("response_url", before + 3, timeout=10)[before:]
    assert len(bot.target.switches) == 1
    assert len(answers) == 3, [c.body.get("text") for c in answers]


@pytest.mark.parametrize("case", ["bad signature", "old timestamp", "no signature"])
def test_requests_not_signed_by_slack_are_refused(bot: SlackBot, case: str) -> None:
    body = slash_command_body("status", user_id="U0BOB")
    if case == "bad signature":
        status = post(f"{bot.url}/slack/events", sign("not-the-secret", body)).status
    elif case == "old timestamp":
        status = post(f"{bot.url}/slack/events", sign(SECRET, body, timestamp=int(time.time()) - 6 * 60)).status
    else:
        import httpx

        status = httpx.post(f"{bot.url}/slack/events", content=body,
                            headers={"content-type": "application/x-www-form-urlencoded"}).status_code
    assert status == 401
    assert bot.slack.calls("response_url") == []


def test_slash_subcommands(bot: SlackBot) -> None:
    assert "Usage" in bot.command_reply("help")
    assert "Usage" in bot.command_reply("")
    status = bot.command_reply("status")
    assert "*fraud-detector*: 7" in status and "last stable 6" in status
    versions = bot.command_reply("versions fraud-detector")
    assert "`7`" in versions and "(live)" in versions and "`6`" in versions and "stable" in versions
    assert "no rollbacks of fraud-detector yet" in bot.command_reply("history fraud-detector")
    pid = ask(bot)
    bot.press(ACTION_APPROVE, "U0LEAD", pid)
    bot.wait_card(pid, "Rolled back to `6`")
    history = bot.command_reply("history fraud-detector 5")
    assert f"#{pid}" in history and "*succeeded*" in history
    audit = bot.command_reply("audit fraud-detector since=1d by=<@U0LEAD|lead>")
    assert "proposal.approved" in audit and "rollback.succeeded" in audit and "*deploy*" not in audit
    assert "rolled back" in bot.command_reply("versions fraud-detector")
    frozen = bot.command_reply("freeze fraud-detector for 2h migrating features", user="U0LEAD")
    assert "frozen for 2h" in frozen
    assert "frozen until" in bot.command_reply("fraud-detector again", user="U0LEAD")
    assert "only approvers may unfreeze" in bot.command_reply("unfreeze fraud-detector", user="U0MALLORY")
    assert "no longer frozen" in bot.command_reply("unfreeze fraud-detector", user="U0LEAD")


@pytest.mark.parametrize(("text", "words"), [
    ("versions", "/rollback versions MODEL"),
    ("history fraud-detector many", "/rollback history MODEL [N]"),
    ("audit since=forever", "/rollback audit"),
    ("freeze fraud-detector for ages", "/rollback freeze MODEL"),
    ("status nope", "unknown model 'nope'"),
    ("nope to 3 because", "unknown model 'nope'"),
    ("fraud-detector to 99 please", "never ran version 99"),
])
def test_bad_slash_input_gets_an_ephemeral_usage_line(bot: SlackBot, text: str, words: str) -> None:
    reply = bot.command_reply(text)
    assert words in reply
    assert bot.container.store.open_proposal("fraud-detector") is None


def test_deadline_reminder_escalation_and_expiry(bot: SlackBot) -> None:
    pid = ask(bot)
    bot.clock.advance(timedelta(minutes=8))
    bot.sweep()
    assert bot.wait_thread(pid, "Reminder").startswith("Reminder")
    bot.clock.advance(timedelta(minutes=8))
    bot.sweep()
    bot.wait_thread(pid, "<!subteam^S0SRE>")
    bot.clock.advance(timedelta(minutes=16))
    bot.sweep()
    bot.wait_card(pid, "expired")
    assert "[ Approve ]" not in bot.card(pid)


def test_restart_with_a_pending_deadline_loses_nothing(db_url: str, clock: ManualClock) -> None:
    policy = make_policy({"on_timeout": "expire", "approval_timeout": "10m"})
    with slack_bot(db_url, policy, clock) as first:
        deploy_versions(first.container)
        pid = ask(first)
    # the process is gone; a new one starts against the same database and the same Slack
    from devkit.fake_api import FakeSlackApi

    with FakeSlackApi(usergroups={"S0ONCALL": ["U0CAROL"]}) as slack2, \
            slack_bot(db_url, policy, clock, slack=slack2) as second:
        clock.advance(timedelta(minutes=11))
        second.sweep()
        assert second.container.store.get_proposal(pid).state is State.EXPIRED
        # the restarted bot updates the card it found in the database (this stand-in never saw it: refused)
        slack2.wait_for("chat.update", 1)


def test_rate_limited_post_is_retried_after_retry_after(bot: SlackBot) -> None:
    bot.slack.rate_limit("chat.postMessage", times=1, retry_after=1)
    pid = ask(bot)
    assert "[ Approve ]" in bot.card(pid)
    assert [c.status for c in bot.slack.calls("chat.postMessage")][:2] == [429, 200]


def test_transient_post_failure_is_retried_with_backoff(bot: SlackBot) -> None:
    bot.slack.fail("chat.postMessage", "internal_error", times=2)
    reply = bot.command_reply("fraud-detector broken")
    pid = int(reply.split("#", 1)[1].split()[0])
    assert bot.container.store.get_proposal(pid).state is State.PROPOSED
    assert "[ Approve ]" in bot.card(pid)  # after two back-offs (0.5 s, 1 s): the same card, posted once
    posts = [c for c in bot.slack.calls("chat.postMessage") if "thread_ts" not in c.body]
    assert len(posts) == 3 and len(bot.slack.messages()) >= 1


def test_permanent_post_failure_stops_is_audited_once_and_shows_on_readyz(bot: SlackBot) -> None:
    import httpx

    bot.slack.fail("chat.postMessage", "channel_not_found", times=1)
    reply = bot.command_reply("fraud-detector broken")
    pid = int(reply.split("#", 1)[1].split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not httpx.get(f"{bot.url}/readyz").json().get("warnings"):
        time.sleep(0.05)
    ready = httpx.get(f"{bot.url}/readyz")
    assert ready.status_code == 200  # a bad channel must not take the bot out of service
    assert any("channel_not_found" in w and f"#{pid}" in w for w in ready.json()["warnings"])
    bot.container.service.deny(pid, "slack:U0LEAD", "noise")  # more intents for the same proposal: held
    assert bot.container.store.outbox_counts() == {"pending": 2, "stopped": 1}
    stopped = [r for r in bot.container.store.audit_records(proposal_id=pid) if r.action == "slack.delivery_stopped"]
    assert len(stopped) == 1 and "channel_not_found" in (stopped[0].reason or "")
    assert len([c for c in bot.slack.calls("chat.postMessage") if "thread_ts" not in c.body]) == 1


def test_auto_rollback_card_arrives_final_with_undo(bot: SlackBot) -> None:
    from bot.core.policy import Action, Decision
    from bot.core.proposal import Kind

    p = bot.container.service.request_rollback(RollbackRequest(
        "fraud-detector", actor="alert:alertmanager", reason="error rate 60%", kind=Kind.ALERT,
        severity="critical", decision=Decision(Action.AUTO_EXECUTE, "severity critical")))
    card = bot.card(p.id)
    assert "Rolled back to `6`" in card and "[ Undo" in card
    first_post = next(c for c in bot.slack.calls("chat.postMessage") if "thread_ts" not in c.body)
    assert ACTION_APPROVE not in str(first_post.body.get("blocks"))
    bot.press(ACTION_UNDO, "U0MALLORY", p.id)
    bot.wait_ephemeral("only approvers may undo")
    bot.press(ACTION_UNDO, "U0LEAD", p.id)
    deadline = time.monotonic() + 10
    while len(bot.target.switches) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [s.to_version for s in bot.target.switches] == ["6", "7"]


def test_retried_events_are_handled_once(bot: SlackBot) -> None:
    from devkit.signing import event_callback_body

    def mention(ts: str, event_id: str) -> str:
        return event_callback_body({"type": "app_mention", "user": "U0BOB", "text": "<@U0BOT> status", "ts": ts,
                                    "channel": "C0ALERTS"}, event_id=event_id)

    body = mention("1700000000.000100", "Ev0DUPLICATE")
    now = int(time.time())
    for attempt in range(3):  # Slack signs each retry anew (its own timestamp) and numbers it
        request = sign(SECRET, body, timestamp=now - attempt)
        if attempt:
            request.headers["X-Slack-Retry-Num"] = str(attempt)
        assert post(f"{bot.url}/slack/events", request).status == 200
    # A fresh event after the retries: once its reply is in, a retry that got through would have answered too.
    assert post(f"{bot.url}/slack/events", sign(SECRET, mention("1700000000.000200", "Ev0AFTER"))).status == 200
    seen = 1
    while not any(c.body.get("thread_ts") == "1700000000.000200" for c in bot.slack.calls("chat.postMessage")):
        seen = len(bot.slack.wait_for("chat.postMessage", seen + 1, timeout=10))
    replies = [c for c in bot.slack.calls("chat.postMessage") if c.body.get("thread_ts") == "1700000000.000100"]
    assert len(replies) == 1


def test_readyz_checks_slack(bot: SlackBot) -> None:
    import httpx

    assert httpx.get(f"{bot.url}/readyz").json()["checks"] == {"database": "ok", "slack": "ok"}
