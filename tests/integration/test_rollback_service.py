"""The rollback core against a real database (SQLite file and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.core.errors import IllegalTransition, Refused, TargetError
from bot.core.proposal import ProposalChange, State
from bot.core.requests import RollbackRequest
from tests.fakes.ports import FakeTarget


def actions(container: Any, **kw: Any) -> list[str]:
    return [r.action for r in container.store.audit_records(**kw)]


def deploy_history(container: Any, model: str = "fraud-detector") -> None:
    svc = container.service
    svc.deploy(model, "5", actor="api:ci", stable=True)
    container.clock.advance(timedelta(hours=1))
    svc.deploy(model, "6", actor="api:ci", stable=True)
    container.clock.advance(timedelta(hours=1))
    svc.deploy(model, "7", actor="api:ci")


def test_manual_proposal_approved_executes_once_and_records_everything(container: Any, fake_target: FakeTarget,
                                                                       notifier: Any) -> None:
    deploy_history(container)
    fake_target.live["fraud-detector"] = "7"
    svc = container.service
    p = svc.request_rollback(RollbackRequest("fraud-detector", actor="slack:U0BOB", reason="error rate up"))
    assert p.state is State.PROPOSED and (p.from_version, p.to_version) == ("7", "6")
    assert p.deadline_at == container.clock.now() + timedelta(minutes=15)
    outcome = svc.approve(p.id, "slack:U0LEAD")
    assert outcome.executed and outcome.proposal.state is State.SUCCEEDED
    assert [s.to_version for s in fake_target.switches] == ["6"]
    again = svc.approve(p.id, "slack:U0LEAD")
    assert not again.executed and "already succeeded" in again.message
    assert len(fake_target.switches) == 1
    history = container.store.history("fraud-detector")
    assert [d.version for d in history] == ["5", "6", "7", "6"]
    assert history[2].rolled_back_at is not None and history[-1].source == f"rollback #{p.id}"
    assert actions(container, proposal_id=p.id) == [
        "proposal.created", "approval.added", "proposal.approved", "rollback.executing", "rollback.succeeded",
        "deployment.blocked"]
    assert [e for e in notifier.names()] == ["created", "approved", "executing", "succeeded"]
    # The rolled-back version is never chosen again and the model is in cooldown.
    state = container.store.model_state("fraud-detector")
    assert state.last_rollback_at == container.clock.now()


def test_self_approval_refused_and_audited(container: Any) -> None:
    deploy_history(container)
    p = container.service.request_rollback(RollbackRequest("fraud-detector", actor="slack:U0LEAD", reason="r"))
    with pytest.raises(Refused, match="allow_self_approval = false"):
        container.service.approve(p.id, "slack:U0LEAD")
    assert actions(container, proposal_id=p.id)[-1] == "approval.refused"
    assert container.store.get_proposal(p.id).state is State.PROPOSED


def test_unauthorised_user_is_told_who_may_approve(container: Any) -> None:
    deploy_history(container)
    p = container.service.request_rollback(RollbackRequest("fraud-detector", actor="slack:U0BOB", reason="r"))
    with pytest.raises(Refused, match=r"approvers: U0LEAD, U0BOB, group S0ONCALL"):
        container.service.approve(p.id, "slack:U0MALLORY")
    # group members may approve
    assert container.service.approve(p.id, "slack:U0CAROL").executed


def test_two_of_three_approvals(db_url: str, clock: Any, fake_target: FakeTarget) -> None:
    from bot.bootstrap import build
    from bot.config import settings_from
    from tests.conftest import make_policy

    c = build(settings_from({"DATABASE_URL": db_url}), policy=make_policy({"required_approvals": 2}),
              clock=clock, targets={"fake": fake_target})
    try:
        deploy_history(c)
        p = c.service.request_rollback(RollbackRequest("fraud-detector", actor="alert:alertmanager", reason="r"))
        first = c.service.approve(p.id, "slack:U0LEAD")
        assert not first.executed and first.message == "approval recorded: 1 of 2"
        dup = c.service.approve(p.id, "slack:U0LEAD")
        assert "already approved" in dup.message
        second = c.service.approve(p.id, "slack:U0BOB")
        assert second.executed and second.proposal.approvals == ["slack:U0LEAD", "slack:U0BOB"]
        assert len(fake_target.switches) == 1
    finally:
        c.close()


def test_deny_records_reason(container: Any, fake_target: FakeTarget) -> None:
    deploy_history(container)
    p = container.service.request_rollback(RollbackRequest("fraud-detector", actor="alert:x", reason="r"))
    denied = container.service.deny(p.id, "slack:U0LEAD", "false alarm: load test")
    assert denied.state is State.DENIED and denied.error == "false alarm: load test"
    assert container.service.approve(p.id, "slack:U0BOB").message.endswith("already denied")
    assert fake_target.switches == []


def test_target_failure_is_recorded_with_the_remote_message(container: Any, fake_target: FakeTarget) -> None:
    deploy_history(container)
    fake_target.fail_with = TargetError("webhook answered 502", status=502, body="bad gateway")
    p = container.service.request_rollback(RollbackRequest("fraud-detector", actor="slack:U0BOB", reason="r"))
    done = container.service.approve(p.id, "slack:U0LEAD").proposal
    # the target is asked again after the failure: what it says (here: nothing) is named, never guessed
    assert done.state is State.FAILED and done.error == "webhook answered 502; fake could not say which version is live"
    rec = container.store.audit_records(proposal_id=p.id)[-1]
    assert rec.action == "rollback.failed" and rec.inputs == {"status": 502, "body": "bad gateway"}
    assert [d.version for d in container.store.history("fraud-detector")] == ["5", "6", "7"]
    assert container.store.model_state("fraud-detector").last_rollback_at is None


def test_live_version_changed_underneath_is_refused(container: Any, fake_target: FakeTarget) -> None:
    deploy_history(container)
    fake_target.live["fraud-detector"] = "8"
    p = container.service.request_rollback(RollbackRequest("fraud-detector", actor="slack:U0BOB", reason="r"))
    done = container.service.approve(p.id, "slack:U0LEAD").proposal
    assert done.state is State.FAILED and "reports version 8 live, not 7" in (done.error or "")
    assert fake_target.switches == []


@pytest.mark.parametrize("case", ["unknown model", "unknown version", "nothing earlier", "frozen", "cooldown",
                                  "already open"])
def test_bad_requests_change_nothing_and_leave_an_audit_row(container: Any, fake_target: FakeTarget,
                                                            case: str) -> None:
    svc = container.service
    deploy_history(container)
    kwargs: dict[str, Any] = {"actor": "cli:ops", "reason": "r", "execute_now": True}
    model = "fraud-detector"
    if case == "unknown model":
        model, expected = "nope", "unknown model 'nope'"
    elif case == "unknown version":
        kwargs["to_version"], expected = "99", "never ran version 99"
    elif case == "nothing earlier":
        svc.deploy("ranker", "1", actor="api:ci")
        model, expected = "ranker", "nothing to roll back to"
    elif case == "frozen":
        svc.freeze(model, actor="slack:U0LEAD", duration=timedelta(hours=2), reason="migration")
        expected = "frozen until"
    elif case == "cooldown":
        svc.request_rollback(RollbackRequest(model, **kwargs))
        svc.deploy(model, "8", actor="api:ci")
        expected = "cooldown until"
    else:  # a person asking in Slack while a proposal waits (break-glass would supersede it instead)
        svc.request_rollback(RollbackRequest(model, actor="alert:x", reason="r"))
        kwargs["execute_now"] = False
        expected = "already under way (proposal #1 is proposed)"
    switches = len(fake_target.switches)
    history = [d.version for d in container.store.history(model)]
    with pytest.raises(Refused, match=expected.replace("(", r"\(").replace(")", r"\)")):
        svc.request_rollback(RollbackRequest(model, **kwargs))
    assert len(fake_target.switches) == switches
    assert [d.version for d in container.store.history(model)] == history
    last = container.store.audit_records(newest_first=True, limit=1)[0]
    assert last.action == "rollback.refused" and last.actor == "cli:ops" and expected.split(" (")[0] in last.reason


def test_cooldown_can_be_forced_by_break_glass(container: Any, fake_target: FakeTarget) -> None:
    deploy_history(container)
    svc = container.service
    svc.request_rollback(RollbackRequest("fraud-detector", actor="cli:ops", reason="r", execute_now=True))
    svc.deploy("fraud-detector", "8", actor="api:ci")
    p = svc.request_rollback(RollbackRequest(
        "fraud-detector", actor="cli:ops", reason="r2", execute_now=True, force_cooldown=True))
    assert p.state is State.SUCCEEDED and (p.from_version, p.to_version) == ("8", "6")  # 7 is marked bad


def test_illegal_transition_is_a_clear_error(container: Any) -> None:
    deploy_history(container)
    p = container.service.request_rollback(RollbackRequest("fraud-detector", actor="alert:x", reason="r"))
    with pytest.raises(IllegalTransition, match=f"proposal #{p.id} is proposed; it cannot become executing"):
        container.service.execute(p.id, "slack:U0LEAD")


def test_dry_run_announces_and_switches_nothing(db_url: str, clock: Any, fake_target: FakeTarget) -> None:
    from bot.bootstrap import build
    from bot.config import settings_from
    from tests.conftest import make_policy

    c = build(settings_from({"DATABASE_URL": db_url}), policy=make_policy({"dry_run": True}), clock=clock,
              targets={"fake": fake_target})
    try:
        deploy_history(c)
        p = c.service.request_rollback(RollbackRequest("fraud-detector", actor="cli:ops", reason="r", execute_now=True))
        assert p.state is State.SUCCEEDED and p.dry_run
        assert p.result == "dry run: would switch fraud-detector to 6 in the fake target; nothing was switched"
        assert fake_target.switches == []
        assert [d.version for d in c.store.history("fraud-detector")] == ["5", "6", "7"]
        assert actions(c, proposal_id=p.id)[-1] == "rollback.dry_run"
    finally:
        c.close()


def test_undo_rolls_forward_through_the_same_machine(container: Any, fake_target: FakeTarget) -> None:
    deploy_history(container)
    p = container.service.request_rollback(RollbackRequest(
        "fraud-detector", actor="cli:ops", reason="r", execute_now=True))
    with pytest.raises(Refused, match="only approvers may undo"):
        container.service.undo(p.id, "slack:U0MALLORY")
    u = container.service.undo(p.id, "slack:U0LEAD")
    assert u.state is State.SUCCEEDED and (u.from_version, u.to_version) == ("6", "7") and u.undo_of == p.id
    assert [s.to_version for s in fake_target.switches] == ["6", "7"]
    assert container.service.blocked_versions("fraud-detector") == []  # the undo lifted 7's block, and blocked none
    [lifted] = container.store.blocks("fraud-detector", "7")
    assert (lifted.unblocked_by, lifted.unblock_reason) == ("slack:U0LEAD", f"undo of rollback #{p.id}")


def test_stability_sweeper_marks_quiet_deployments_once(container: Any) -> None:
    svc = container.service
    svc.deploy("fraud-detector", "5", actor="api:ci")
    container.clock.advance(timedelta(minutes=29))
    assert svc.sweep_stable() == []
    container.clock.advance(timedelta(minutes=2))
    marked = svc.sweep_stable()
    assert [d.version for d in marked] == ["5"]
    assert svc.sweep_stable() == []  # running twice marks nothing twice
    assert actions(container, model="fraud-detector")[-1] == "deployment.stable"


def test_deadline_escalates_then_expires(container: Any, notifier: Any) -> None:
    deploy_history(container)
    svc = container.service
    p = svc.request_rollback(RollbackRequest("fraud-detector", actor="alert:x", reason="r"))
    container.clock.advance(timedelta(minutes=8))
    assert [x.reminded for x in svc.sweep_deadlines()] == [True]
    assert svc.sweep_deadlines() == []
    container.clock.advance(timedelta(minutes=8))
    escalated = svc.sweep_deadlines()
    assert escalated[0].escalated and escalated[0].deadline_at == container.clock.now() + timedelta(minutes=15)
    assert ("escalated" in notifier.names())
    container.clock.advance(timedelta(minutes=16))
    expired = svc.sweep_deadlines()
    assert expired[0].state is State.EXPIRED
    assert actions(container, proposal_id=p.id)[-2:] == ["proposal.escalated", "proposal.expired"]


def test_stuck_execution_is_failed_not_rerun(container: Any, fake_target: FakeTarget) -> None:
    deploy_history(container)
    p = container.service.request_rollback(RollbackRequest("fraud-detector", actor="alert:x", reason="r"))
    container.store.transition(p.id, State.APPROVED,
                               __import__("bot.core.audit", fromlist=["AuditEvent"]).AuditEvent("t", "t"))
    container.store.transition(p.id, State.EXECUTING,
                               __import__("bot.core.audit", fromlist=["AuditEvent"]).AuditEvent("t", "t"),
                               change=ProposalChange(started_at=container.clock.now()))
    container.clock.advance(timedelta(minutes=31))
    failed = container.service.sweep_stuck()
    assert [f.state for f in failed] == [State.FAILED] and "interrupted" in (failed[0].error or "")
    assert fake_target.switches == []


def test_break_glass_supersedes_a_proposal_waiting_for_people(container: Any, fake_target: FakeTarget) -> None:
    deploy_history(container)
    waiting = container.service.request_rollback(RollbackRequest(
        "fraud-detector", actor="alert:alertmanager", reason="r"))
    done = container.service.request_rollback(RollbackRequest("fraud-detector", actor="cli:ops", reason="chat is down",
                                              execute_now=True))
    assert done.state is State.SUCCEEDED and len(fake_target.switches) == 1
    old = container.store.get_proposal(waiting.id)
    assert old.state is State.CANCELLED and old.result == "superseded by a break-glass rollback by cli:ops"


def test_a_version_rolled_back_twice_is_blocked_by_the_newest_rollback(container: Any, fake_target: FakeTarget) -> None:
    from bot.core.blocking import Override

    deploy_history(container)
    fake_target.live["fraud-detector"] = "7"
    svc = container.service
    first = svc.request_rollback(RollbackRequest("fraud-detector", actor="slack:U0BOB", reason="error rate up"))
    assert svc.approve(first.id, "slack:U0LEAD").executed
    container.clock.advance(timedelta(hours=2))
    svc.deploy("fraud-detector", "7", actor="api:ci", override=Override("hotfix"))
    fake_target.live["fraud-detector"] = "7"
    second = svc.request_rollback(RollbackRequest("fraud-detector", actor="slack:U0BOB", reason="still broken"))
    assert svc.approve(second.id, "slack:U0LEAD").executed
    blocks = container.store.blocks("fraud-detector", "7")
    assert [(b.proposal_id, b.active) for b in blocks] == [(second.id, True), (first.id, False)]
    assert blocks[1].unblock_reason == f"blocked again by rollback #{second.id}"
    assert actions(container, proposal_id=second.id)[-1] == "deployment.blocked"
