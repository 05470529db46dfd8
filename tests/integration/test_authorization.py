"""Every action through the same policy: who may and who may not, each refusal audited exactly once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from bot.config import settings_from
from bot.core.actor import Actor
from bot.core.authorization import Act
from bot.core.clock import ManualClock
from bot.core.errors import Refused
from bot.core.ports import StaticDirectory
from bot.core.proposal import State
from bot.core.requests import RollbackRequest
from bot.store.db import make_engine
from tests.conftest import make_policy
from tests.fakes.ports import FakeTarget, RecordingNotifier

MALLORY = "slack:U0MALLORY"  # in the channel, not an approver
LEAD, BOB, CAROL = "slack:U0LEAD", "slack:U0BOB", "slack:U0CAROL"  # CAROL approves through group S0ONCALL


@pytest.fixture
def make(db_url: str, clock: ManualClock, fake_target: FakeTarget, notifier: RecordingNotifier,
         directory: StaticDirectory) -> Iterator[Callable[..., Any]]:
    from bot.bootstrap import build

    built: list[Any] = []

    def factory(**overrides: Any) -> Any:
        settings = settings_from({"DATABASE_URL": db_url})
        c = build(settings, policy=make_policy(overrides), clock=clock, engine=make_engine(db_url),
                  targets={"fake": fake_target}, notifier=notifier, directory=directory)
        built.append(c)
        svc = c.service
        svc.deploy("fraud-detector", "6", actor="api:ci", stable=True)
        clock.advance(timedelta(hours=1))
        svc.deploy("fraud-detector", "7", actor="api:ci")
        return c

    yield factory
    for c in built:
        c.close()


def refusals(c: Any, action: str) -> list[Any]:
    return [r for r in c.store.audit_records() if r.action == action]


def refused_once(c: Any, call: Callable[[], Any], action: str, match: str, actor: str) -> None:
    before = len(refusals(c, action))
    with pytest.raises(Refused, match=match):
        call()
    rows = refusals(c, action)
    assert len(rows) == before + 1, [r.action for r in c.store.audit_records()]
    assert rows[-1].actor == actor and rows[-1].model == "fraud-detector"


def test_approve(make: Callable[..., Any]) -> None:
    c = make(required_approvals=2)
    p = c.service.request_rollback(RollbackRequest("fraud-detector", actor=LEAD, reason="errors"))
    refused_once(c, lambda: c.service.approve(p.id, MALLORY), "approval.refused", "may not approve", MALLORY)
    refused_once(c, lambda: c.service.approve(p.id, LEAD), "approval.refused", "self-approval", LEAD)
    assert not c.service.approve(p.id, BOB).executed
    assert c.service.approve(p.id, CAROL).proposal.state is State.SUCCEEDED


def test_deny(make: Callable[..., Any]) -> None:
    c = make()
    p = c.service.request_rollback(RollbackRequest("fraud-detector", actor=MALLORY, reason="errors"))
    refused_once(c, lambda: c.service.deny(p.id, MALLORY, "no"), "denial.refused", "may not deny", MALLORY)
    assert c.store.get_proposal(p.id).state is State.PROPOSED
    assert c.service.deny(p.id, CAROL, "false alarm").state is State.DENIED


def test_undo_needs_the_models_approvals(make: Callable[..., Any], fake_target: FakeTarget) -> None:
    c = make(required_approvals=2)
    done = c.service.request_rollback(RollbackRequest("fraud-detector", actor="cli:ops", reason="r", execute_now=True))
    refused_once(c, lambda: c.service.undo(done.id, MALLORY), "undo.refused", "only approvers may undo", MALLORY)
    undo = c.service.undo(done.id, LEAD)  # one approver is no longer enough: it waits for a second
    assert undo.state is State.PROPOSED and undo.required_approvals == 2 and undo.approvals == [LEAD]
    assert undo.deadline_at is not None and [s.to_version for s in fake_target.switches] == ["6"]
    refused_once(c, lambda: c.service.approve(undo.id, LEAD), "approval.refused", "self-approval", LEAD)
    outcome = c.service.approve(undo.id, BOB)
    assert outcome.proposal.state is State.SUCCEEDED and [s.to_version for s in fake_target.switches] == ["6", "7"]


def test_undo_approvals_in_the_policy_overrides(make: Callable[..., Any]) -> None:
    c = make(required_approvals=2, undo_approvals=1)
    done = c.service.request_rollback(RollbackRequest("fraud-detector", actor="cli:ops", reason="r", execute_now=True))
    assert c.service.undo(done.id, CAROL).state is State.SUCCEEDED


def test_freeze_and_unfreeze(make: Callable[..., Any]) -> None:
    c = make()
    refused_once(c, lambda: c.service.freeze("fraud-detector", actor=MALLORY, duration=timedelta(hours=1),
                                             reason=None), "freeze.refused", "only approvers may freeze", MALLORY)
    assert c.store.model_state("fraud-detector").frozen_until is None
    # the check is the core's, so no door bypasses it: a shell user is not an approver either
    refused_once(c, lambda: c.service.freeze("fraud-detector", actor=Actor.cli_user("ops"),
                                             duration=timedelta(hours=1), reason=None),
                 "freeze.refused", "only approvers may freeze", "cli:ops")
    c.service.freeze("fraud-detector", actor=CAROL, duration=timedelta(hours=1), reason="release")
    refused_once(c, lambda: c.service.unfreeze("fraud-detector", actor=MALLORY), "unfreeze.refused",
                 "only approvers may unfreeze", MALLORY)
    assert c.store.model_state("fraud-detector").frozen_until is not None
    c.service.unfreeze("fraud-detector", actor=LEAD)
    assert c.store.model_state("fraud-detector").frozen_until is None


def test_unblock(make: Callable[..., Any]) -> None:
    """`/rollback unblock` arrives with a later change; the core's answer for it is already this one."""
    c = make()
    for actor in (LEAD, CAROL):
        assert c.service.authorize(Actor.parse(actor), Act.UNBLOCK, "fraud-detector").allowed
    for actor in (MALLORY, "cli:ops"):
        refused_once(c, lambda: c.service.authorize(Actor.parse(actor), Act.UNBLOCK, "fraud-detector"),
                     "unblock.refused", "only approvers may unblock versions of fraud-detector", actor)


def test_manual_rollback_from_slack_asks_but_never_skips_approvals(make: Callable[..., Any]) -> None:
    c = make(required_approvals=2)
    refused_once(c, lambda: c.service.request_rollback(RollbackRequest("fraud-detector", actor=LEAD, reason="now",
                                                       execute_now=True)),
                 "rollback.refused", "only possible from the command line", LEAD)
    refused_once(c, lambda: c.service.request_rollback(RollbackRequest("fraud-detector", actor="nobody", reason="r")),
                 "rollback.refused", "not a known kind of requester", "nobody")
    p = c.service.request_rollback(RollbackRequest("fraud-detector", actor=MALLORY, reason="errors"))  # anyone may ask
    assert p.state is State.PROPOSED and p.required_approvals == 2


def test_break_glass_cli_obeys_the_policy(make: Callable[..., Any]) -> None:
    c = make(required_approvals=2)
    c.service.freeze("fraud-detector", actor=LEAD, duration=timedelta(hours=1), reason="incident")
    refused_once(c, lambda: c.service.request_rollback(RollbackRequest("fraud-detector", actor="cli:ops", reason="r",
                                                       execute_now=True)),
                 "rollback.refused", "is frozen", "cli:ops")
    c.service.unfreeze("fraud-detector", actor=LEAD)
    p = c.service.request_rollback(RollbackRequest("fraud-detector", actor="cli:ops", reason="r", execute_now=True))
    assert p.state is State.SUCCEEDED and p.decided_by == "cli:ops"
