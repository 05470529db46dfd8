"""Sticky rollbacks and superseded proposals, through the real server as CI and Slack drive it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot.core.clock import ManualClock
from bot.core.proposal import State
from bot.slack.cards import ACTION_APPROVE
from tests.conftest import make_policy
from tests.e2e.dbstate import settle, table_digests
from tests.e2e.slackbot import CHANNEL, SlackBot, deploy_versions, slack_bot

MODEL = "fraud-detector"
AUTH = {"Authorization": "Bearer e2e-alert-token"}


@pytest.fixture
def bot(db_url: str, clock: ManualClock) -> Iterator[SlackBot]:
    with slack_bot(db_url, make_policy(), clock) as b:
        deploy_versions(b.container)
        yield b


def ask(bot: SlackBot, user: str = "U0BOB") -> int:
    reply = bot.command_reply(f"{MODEL} error rate 40% since v7", user)
    assert "proposal #" in reply, reply
    return int(reply.split("#", 1)[1].split()[0])


def rolled_back(bot: SlackBot) -> int:
    """7 rolled back to 6 by U0LEAD through the card's Approve button: 7 is now blocked."""
    pid = ask(bot)
    assert bot.press(ACTION_APPROVE, "U0LEAD", pid).status == 200
    bot.wait_card(pid, "Rolled back to `6`")
    return pid


def deploy(bot: SlackBot, version: str, **extra: Any) -> httpx.Response:
    return httpx.post(f"{bot.url}/deployments", headers=AUTH,
                      json={"model": MODEL, "version": version, "deployed_by": "ci-job-42", **extra})


def wait_channel_post(bot: SlackBot, words: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    texts: list[str] = []
    while time.monotonic() < deadline:
        texts = [str(m.get("text", "")) for m in bot.slack.messages(CHANNEL)]
        found = [t for t in texts if words in t]
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError(f"the channel never showed {words!r}: {texts}")


def test_redeploying_a_rolled_back_version_is_refused_with_who_when_and_why(bot: SlackBot, db_url: str) -> None:
    pid = rolled_back(bot)
    when = bot.container.store.get_proposal(pid).finished_at
    assert when is not None
    settle(db_url)  # the rollback's own Slack messages delivered: the only changes left to see are the answer's
    before = table_digests(db_url)
    answer = deploy(bot, "7")
    assert answer.status_code == 409, answer.text
    body = answer.json()
    blocked = body["blocked"]
    assert (blocked["version"], blocked["rolled_back_by"], blocked["proposal_id"]) == ("7", "slack:U0LEAD", pid)
    assert blocked["reason"] == "error rate 40% since v7" and blocked["rolled_back_at"] == when.isoformat()
    assert "slack:U0LEAD" in body["error"] and f"{when:%Y-%m-%d %H:%M} UTC" in body["error"]
    assert "error rate 40% since v7" in body["error"] and "override" in body["error"]
    after = table_digests(db_url)
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"audit", "audit_head"}  # the refusal is audited; nothing else moved
    refusal = bot.container.store.audit_records(model=MODEL, newest_first=True, limit=1)[0]
    assert refusal.action == "deployment.refused_blocked" and refusal.actor == "api:ci-job-42"
    assert bot.container.store.history(MODEL)[-1].version == "6"


def test_an_override_deploys_audits_and_is_posted_in_the_channel(bot: SlackBot) -> None:
    pid = rolled_back(bot)
    answer = deploy(bot, "7", override={"reason": "hotfix verified in staging"})
    assert answer.status_code == 201, answer.text
    assert answer.json()["deployment"]["version"] == "7"
    post = wait_channel_post(bot, "Override")
    assert "ci-job-42 deployed blocked version 7 of fraud-detector anyway" in post
    assert "hotfix verified in staging" in post and f"rollback #{pid}" in post
    rows = bot.container.store.audit_records(model=MODEL, newest_first=True, limit=2)
    assert [r.action for r in rows] == ["deployment.override", "deploy"]
    assert rows[0].reason == "hotfix verified in staging" and rows[0].proposal_id == pid


def test_an_empty_override_reason_is_a_422_naming_the_field(bot: SlackBot) -> None:
    rolled_back(bot)
    answer = deploy(bot, "7", override={"reason": "   "})
    assert answer.status_code == 422 and answer.json()["field"] == "override.reason"


def test_ci_asks_whether_a_version_may_be_deployed(bot: SlackBot) -> None:
    pid = rolled_back(bot)
    blocked = httpx.get(f"{bot.url}/api/models/{MODEL}/versions/7", headers=AUTH)
    assert blocked.status_code == 200, blocked.text
    body = blocked.json()
    assert body["deployable"] is False and "slack:U0LEAD" in body["reason"] and f"#{pid}" in body["reason"]
    assert body["blocked"]["proposal_id"] == pid and [d["version"] for d in body["deployments"]] == ["7"]
    assert body["readiness"]["rollback_to"] == "6"  # readiness is its own field: blocked is not "not ready"
    assert body["rollback_ready"] is body["readiness"]["ready"] and "a rollback of" in body["reason"].lower()
    fine = httpx.get(f"{bot.url}/api/models/{MODEL}/versions/6", headers=AUTH).json()
    assert fine["deployable"] is True and fine["blocked"] is None and fine["current"] is True
    assert len(fine["deployments"]) == 2  # deployed by CI, then again by the rollback
    status = httpx.get(f"{bot.url}/api/models/{MODEL}", headers=AUTH).json()
    assert [b["version"] for b in status["blocked_versions"]] == ["7"]
    assert httpx.get(f"{bot.url}/api/models/{MODEL}/versions/7").status_code == 401
    assert httpx.get(f"{bot.url}/api/models/nope/versions/7", headers=AUTH).status_code == 404


def test_unblock_by_an_approver_and_a_refusal_audited_once(bot: SlackBot) -> None:
    rolled_back(bot)
    assert ":no_entry: blocked" in bot.command_reply(f"versions {MODEL}")
    assert ":no_entry: blocked 7" in bot.command_reply(f"status {MODEL}")
    refused = bot.command_reply(f"unblock {MODEL} 7 I need it", user="U0MALLORY")
    assert "only approvers may unblock" in refused
    refusals = [r for r in bot.container.store.audit_records(model=MODEL) if r.action == "unblock.refused"]
    assert len(refusals) == 1 and refusals[0].actor == "slack:U0MALLORY"
    assert deploy(bot, "7").status_code == 409
    lifted = bot.command_reply(f"unblock {MODEL} 7 fixed in the feature store", user="U0CAROL")  # via S0ONCALL
    assert "no longer blocked" in lifted
    row = bot.container.store.audit_records(model=MODEL, newest_first=True, limit=1)[0]
    assert (row.action, row.actor, row.reason) == ("version.unblocked", "slack:U0CAROL", "fixed in the feature store")
    answer = httpx.get(f"{bot.url}/api/models/{MODEL}/versions/7", headers=AUTH).json()
    assert answer["deployable"] is True and "unblocked by slack:U0CAROL" in answer["reason"]
    assert ":no_entry:" not in bot.command_reply(f"versions {MODEL}")
    assert deploy(bot, "7").status_code == 201


def test_a_new_deployment_closes_the_open_card_as_superseded(bot: SlackBot) -> None:
    pid = ask(bot)
    assert "[ Approve ]" in bot.card(pid)
    assert deploy(bot, "8").status_code == 201
    card = bot.wait_card(pid, "Superseded")
    assert "by the deployment of version 8 by ci-job-42; nothing was switched" in card
    assert "[ Approve ]" not in card and "[ Deny ]" not in card
    assert bot.container.store.get_proposal(pid).state is State.CANCELLED
    rows = bot.container.store.audit_records(proposal_id=pid)
    assert [r.action for r in rows].count("proposal.superseded") == 1
    assert bot.wait_thread(pid, "Closed: superseded")


def test_a_blocked_version_reapplied_by_hand_is_posted_and_offered_again(bot: SlackBot) -> None:
    pid = rolled_back(bot)
    bot.target.live[MODEL] = "7"  # someone re-applied 7 by hand; no deployment was reported
    [offer] = bot.container.service.sweep_drift()
    assert offer.id != pid and (offer.from_version, offer.to_version) == ("7", "6")
    card = bot.wait_card(offer.id, "[ Approve ]")
    assert "re-applied by hand" in card
    assert bot.container.store.history(MODEL)[-1].source == "drift (fake)"
