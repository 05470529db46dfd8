"""Undo through Slack obeys the model's approvals: one approver's click no longer rolls forward on its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.core.clock import ManualClock
from bot.core.policy import Action, Decision
from bot.core.proposal import Kind, State
from bot.core.requests import RollbackRequest
from bot.slack.cards import ACTION_APPROVE, ACTION_UNDO
from tests.conftest import make_policy
from tests.e2e.slackbot import SlackBot, deploy_versions, slack_bot


@pytest.fixture
def bot(db_url: str, clock: ManualClock) -> Iterator[SlackBot]:
    with slack_bot(db_url, make_policy({"required_approvals": 2}), clock) as b:
        deploy_versions(b.container)
        yield b


def test_undo_of_an_automatic_rollback_waits_for_the_second_approver(bot: SlackBot) -> None:
    store = bot.container.store
    auto = bot.container.service.request_rollback(RollbackRequest(
        "fraud-detector", actor="alert:alertmanager", reason="error rate 60%", kind=Kind.ALERT,
        severity="critical", decision=Decision(Action.AUTO_EXECUTE, "severity critical")))
    assert "[ Undo" in bot.card(auto.id)
    bot.press(ACTION_UNDO, "U0MALLORY", auto.id)
    bot.wait_ephemeral("only approvers may undo")
    assert [r.actor for r in store.audit_records() if r.action == "undo.refused"] == ["slack:U0MALLORY"]
    bot.press(ACTION_UNDO, "U0LEAD", auto.id)
    bot.wait_ephemeral("undo #2: proposed (6 → 7)")
    undo = store.get_proposal(2)
    assert undo.kind is Kind.UNDO and undo.state is State.PROPOSED and undo.approvals == ["slack:U0LEAD"]
    assert "[ Approve ]" in bot.card(undo.id)
    assert [s.to_version for s in bot.target.switches] == ["6"]  # one approver's click switched nothing
    bot.press(ACTION_APPROVE, "U0BOB", undo.id)
    bot.wait_card(undo.id, "Rolled forward again to `7`")
    assert [s.to_version for s in bot.target.switches] == ["6", "7"]


@pytest.mark.parametrize("command,refusal", [("freeze fraud-detector for 1h", "freeze.refused"),
                                             ("unfreeze fraud-detector", "unfreeze.refused")])
def test_slash_command_refusals_are_audited_once(bot: SlackBot, command: str, refusal: str) -> None:
    reply = bot.command_reply(command, user="U0MALLORY")
    assert "only approvers may" in reply
    rows = [r for r in bot.container.store.audit_records() if r.action.endswith(".refused")]
    assert [(r.action, r.actor) for r in rows] == [(refusal, "slack:U0MALLORY")]
