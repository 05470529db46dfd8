"""The authorization rules without I/O, including `unblock`, whose command arrives with a later change."""

from __future__ import annotations

import pytest

from bot.core.authorization import Act, authorize, undo_approvals
from bot.core.policy import ModelPolicy
from bot.core.ports import StaticDirectory

POLICY = ModelPolicy(name="m", approvers=("U0LEAD", "S0ONCALL"), required_approvals=2)
DIRECTORY = StaticDirectory({"S0ONCALL": {"U0CAROL"}})


@pytest.mark.parametrize("act", [Act.APPROVE, Act.DENY, Act.UNDO, Act.FREEZE, Act.UNFREEZE, Act.UNBLOCK])
def test_approver_acts_need_an_approver(act: Act) -> None:
    assert authorize("slack:U0LEAD", act, POLICY, DIRECTORY).allowed
    assert authorize("slack:U0CAROL", act, POLICY, DIRECTORY).allowed
    for actor in ("slack:U0MALLORY", "cli:root", "bot:policy", "slack:"):
        verdict = authorize(actor, act, POLICY, DIRECTORY)
        assert not verdict.allowed and "U0LEAD, group S0ONCALL" in verdict.reason


def test_no_approvers_listed_means_anyone_in_the_channel() -> None:
    open_policy = ModelPolicy(name="m")
    assert authorize("slack:U0ANYONE", Act.UNBLOCK, open_policy, DIRECTORY).allowed
    assert not authorize("cli:root", Act.UNBLOCK, open_policy, DIRECTORY).allowed


def test_break_glass_only_from_the_cli() -> None:
    assert authorize("cli:ops", Act.BREAK_GLASS, POLICY, DIRECTORY).allowed
    assert not authorize("slack:U0LEAD", Act.BREAK_GLASS, POLICY, DIRECTORY).allowed


def test_undo_approvals_defaults_to_required_approvals() -> None:
    assert undo_approvals(POLICY) == 2
    assert undo_approvals(ModelPolicy(name="m", required_approvals=2, undo_approvals=1)) == 1
