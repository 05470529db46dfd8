"""The authorization rules without I/O: one ``authorize`` per action, the actor's kind instead of string
prefixes, groups answered by the directory port, and each refusal audited once by the core (``unblock``
included, whose Slack command arrives with a later change)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest
from slack_sdk import WebClient

from bot.core.actor import Actor, ActorKind, is_bot, kind_of
from bot.core.authorization import REFUSED_AUDIT, Act, authorize, undo_approvals
from bot.core.clock import ManualClock
from bot.core.errors import Refused
from bot.core.policy import ModelPolicy
from bot.core.ports import StaticDirectory
from bot.core.service import RollbackService
from bot.slack.directory import SlackDirectory
from tests.conftest import make_policy
from tests.fakes.memory_store import MemoryStore
from tests.fakes.ports import FakeTarget

POLICY = ModelPolicy(name="m", approvers=("U0LEAD", "S0ONCALL"), required_approvals=2)
DIRECTORY = StaticDirectory({"S0ONCALL": {"U0CAROL"}})
LEAD, CAROL, MALLORY = Actor.slack_user("U0LEAD"), Actor.slack_user("U0CAROL"), Actor.slack_user("U0MALLORY")
APPROVER_ACTS = [Act.APPROVE, Act.DENY, Act.UNDO, Act.FREEZE, Act.UNFREEZE, Act.UNBLOCK]
NOT_APPROVERS = [MALLORY, Actor.cli_user("root"), Actor.bot("policy"), Actor.api("ci"), Actor.alert("grafana"),
                 Actor.parse("slack:"), Actor.parse("nobody")]


class AskedDirectory:
    """A directory whose groups need not look like Slack ids: proves the core asks instead of guessing."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def is_group(self, approver: str) -> bool:
        return approver == "oncall-team"

    def is_member(self, user: str, group: str) -> bool:
        self.asked.append((user, group))
        return (user, group) == ("U0DAVE", "oncall-team")


@pytest.mark.parametrize("act", APPROVER_ACTS)
def test_approver_acts_need_an_approver(act: Act) -> None:
    assert authorize(LEAD, act, POLICY, DIRECTORY).via == "listed"
    assert authorize(CAROL, act, POLICY, DIRECTORY).via == "group S0ONCALL"
    for actor in NOT_APPROVERS:
        verdict = authorize(actor, act, POLICY, DIRECTORY)
        assert not verdict.allowed and "U0LEAD, group S0ONCALL" in verdict.reason, actor


def test_no_approvers_listed_means_anyone_in_the_channel() -> None:
    open_policy = ModelPolicy(name="m")
    assert authorize(Actor.slack_user("U0ANYONE"), Act.UNBLOCK, open_policy, DIRECTORY).allowed
    assert not authorize(Actor.cli_user("root"), Act.UNBLOCK, open_policy, DIRECTORY).allowed


def test_groups_are_the_directorys_answer_not_an_id_shape() -> None:
    directory = AskedDirectory()
    policy = ModelPolicy(name="m", approvers=("U0LEAD", "oncall-team", "S0LOOKSLIKEAGROUP"))
    assert authorize(Actor.slack_user("U0DAVE"), Act.APPROVE, policy, directory).via == "group oncall-team"
    refused = authorize(MALLORY, Act.APPROVE, policy, directory)
    assert not refused.allowed and "U0LEAD, group oncall-team, S0LOOKSLIKEAGROUP" in refused.reason
    assert directory.asked == [("U0DAVE", "oncall-team"), ("U0MALLORY", "oncall-team")]


class UserGroupsApi:
    """``usergroups.users.list`` only, counting calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def usergroups_users_list(self, usergroup: str) -> dict[str, Any]:
        self.calls.append(usergroup)
        return {"ok": True, "users": ["U0CAROL"] if usergroup == "S0ONCALL" else []}


def test_the_slack_directory_answers_group_questions_through_the_port() -> None:
    api = UserGroupsApi()
    directory = SlackDirectory(cast(WebClient, api), clock=lambda: 0.0)
    assert directory.is_group("S0ONCALL") and not directory.is_group("U0LEAD") and not directory.is_group("Sx")
    assert authorize(CAROL, Act.FREEZE, POLICY, directory).via == "group S0ONCALL"
    assert not authorize(MALLORY, Act.FREEZE, POLICY, directory).allowed
    assert api.calls == ["S0ONCALL"]  # the second question was answered from the cache


def test_self_approval_follows_the_policy() -> None:
    verdict = authorize(LEAD, Act.APPROVE, POLICY, DIRECTORY, requested_by="slack:U0LEAD")
    assert not verdict.allowed and "allow_self_approval" in verdict.reason
    assert authorize(LEAD, Act.DENY, POLICY, DIRECTORY, requested_by="slack:U0LEAD").allowed
    lenient = ModelPolicy(name="m", approvers=("U0LEAD",), allow_self_approval=True)
    assert authorize(LEAD, Act.APPROVE, lenient, DIRECTORY, requested_by=LEAD).allowed


def test_break_glass_only_from_the_cli() -> None:
    assert authorize(Actor.cli_user("ops"), Act.BREAK_GLASS, POLICY, DIRECTORY).allowed
    for actor in (LEAD, Actor.api("ci"), Actor.alert("grafana"), Actor.bot("policy")):
        assert not authorize(actor, Act.BREAK_GLASS, POLICY, DIRECTORY).allowed, actor


def test_anyone_known_may_ask_for_a_rollback() -> None:
    for actor in (MALLORY, Actor.cli_user("ops"), Actor.api("ci"), Actor.alert("grafana"), Actor.bot("policy")):
        assert authorize(actor, Act.ROLLBACK, POLICY, DIRECTORY).allowed, actor
    for text in ("nobody", "slack:", "robot:x", ""):
        verdict = authorize(Actor.parse(text), Act.ROLLBACK, POLICY, DIRECTORY)
        assert not verdict.allowed and "not a known kind of requester" in verdict.reason, text


def test_undo_approvals_defaults_to_required_approvals() -> None:
    assert undo_approvals(POLICY) == 2
    assert undo_approvals(ModelPolicy(name="m", required_approvals=2, undo_approvals=1)) == 1


@pytest.mark.parametrize("text", ["slack:U0LEAD", "cli:ops", "api:github-actions", "alert:alertmanager",
                                  "bot:policy", "bot:timeout", "nobody", "slack:", "x:y"])
def test_actor_text_round_trips_unchanged_for_audit_rows(text: str) -> None:
    assert str(Actor.parse(text)) == text
    assert Actor.of(Actor.parse(text)) == Actor.parse(text)


def test_actor_kinds_replace_prefix_checks() -> None:
    assert Actor.parse("slack:U0LEAD") == LEAD and LEAD.slack_id == "U0LEAD"
    assert Actor.parse("cli:ops").kind is ActorKind.CLI_USER and Actor.cli_user("ops").slack_id is None
    assert is_bot("bot:verification") and not is_bot("slack:U0BOT") and not is_bot(None) and not is_bot("bot:")
    assert kind_of("cli:root") is ActorKind.CLI_USER and kind_of(None) is ActorKind.UNKNOWN
    assert Actor.slack_user("").kind is ActorKind.UNKNOWN


def _service() -> tuple[RollbackService, MemoryStore]:
    clock = ManualClock(datetime(2026, 11, 2, 12, 0, tzinfo=UTC))
    store = MemoryStore(clock)
    service = RollbackService(store, make_policy(), {"fake": FakeTarget({"fraud-detector": "7"})}, clock,
                              directory=StaticDirectory({"S0ONCALL": {"U0CAROL"}}))
    return service, store


@pytest.mark.parametrize("act", list(Act))
def test_the_core_audits_each_refusal_once(act: Act) -> None:
    service, store = _service()
    allowed = Actor.cli_user("ops") if act is Act.BREAK_GLASS else CAROL
    refused = Actor.parse("nobody") if act is Act.ROLLBACK else MALLORY
    assert service.authorize(allowed, act, "fraud-detector").allowed
    assert store.audit == []  # allowing writes nothing: the action's own row says who did it
    with pytest.raises(Refused):
        service.authorize(refused, act, "fraud-detector", proposal_id=3)
    rows = [(r.action, r.actor, r.model, r.proposal_id) for r in store.audit]
    assert rows == [(REFUSED_AUDIT[act], str(refused), "fraud-detector", 3)]


def test_unblock_is_decided_by_the_core_for_every_entry_point() -> None:
    """The `/rollback unblock` command arrives with a later change; whatever calls it gets this answer."""
    service, store = _service()
    for actor in (LEAD, CAROL, "slack:U0BOB"):
        assert service.authorize(actor, Act.UNBLOCK, "fraud-detector").allowed
    for actor in (MALLORY, Actor.cli_user("ops"), Actor.api("ci")):
        with pytest.raises(Refused, match="only approvers may unblock versions of fraud-detector"):
            service.authorize(actor, Act.UNBLOCK, "fraud-detector")
    assert [(r.action, r.actor) for r in store.audit] == [
        ("unblock.refused", "slack:U0MALLORY"), ("unblock.refused", "cli:ops"), ("unblock.refused", "api:ci")]
