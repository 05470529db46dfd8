"""Sticky rollbacks and superseded proposals, on the in-memory store: the rules without a database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.core.audit import AuditEvent
from bot.core.blocking import Override, VersionBlocked, deployability, drifted
from bot.core.clock import ManualClock
from bot.core.errors import Refused, RollbackError
from bot.core.proposal import ProposalChange, State
from bot.core.requests import RollbackRequest
from bot.core.selection import Block, Deployment
from bot.core.service import RollbackService
from tests.conftest import make_policy
from tests.fakes.memory_store import MemoryStore
from tests.fakes.ports import FakeTarget, RecordingNotifier

MODEL = "fraud-detector"
T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def world() -> tuple[MemoryStore, RollbackService, FakeTarget, ManualClock, RecordingNotifier]:
    clock = ManualClock(T0)
    store = MemoryStore(clock)
    target = FakeTarget({MODEL: "7"})
    notifier = RecordingNotifier()
    service = RollbackService(store, make_policy(), {"fake": target}, clock, notifier=notifier)
    for version, stable in (("5", True), ("6", True), ("7", False)):
        service.deploy(MODEL, version, actor="api:ci", stable=stable)
    return store, service, target, clock, notifier


def rolled_back(store: MemoryStore, service: RollbackService) -> int:
    p = service.request_rollback(RollbackRequest(MODEL, actor="slack:U0BOB", reason="error rate 40%"))
    assert service.approve(p.id, "slack:U0LEAD").executed
    assert store.get_proposal(p.id).state is State.SUCCEEDED
    return p.id


def actions(store: MemoryStore) -> list[str]:
    return [r.action for r in store.audit]


def test_a_rollback_blocks_the_version_it_left_in_the_same_change() -> None:
    store, service, _, _, _ = world()
    pid = rolled_back(store, service)
    [block] = service.blocked_versions(MODEL)
    assert (block.version, block.blocked_by, block.reason, block.proposal_id) == ("7", "slack:U0LEAD",
                                                                                 "error rate 40%", pid)
    assert actions(store)[-2:] == ["rollback.succeeded", "deployment.blocked"]


def test_deploying_a_blocked_version_is_refused_with_who_when_and_why_and_changes_nothing() -> None:
    store, service, _, _, _ = world()
    pid = rolled_back(store, service)
    history = store.history(MODEL)
    with pytest.raises(VersionBlocked) as refused:
        service.deploy(MODEL, "7", actor="api:ci")
    text = str(refused.value)
    assert "slack:U0LEAD" in text and "2026-11-02 12:00 UTC" in text and "error rate 40%" in text
    assert f"rollback #{pid}" in text and "override" in text
    assert store.history(MODEL) == history
    assert actions(store)[-1] == "deployment.refused_blocked"


def test_an_override_deploys_audits_and_announces_on_the_rollbacks_proposal() -> None:
    store, service, _, _, _ = world()
    pid = rolled_back(store, service)
    dep = service.deploy(MODEL, "7", actor="api:ci", override=Override("hotfix verified in staging"))
    assert store.history(MODEL)[-1] == dep
    assert actions(store)[-2:] == ["deploy", "deployment.override"]
    assert store.audit[-1].reason == "hotfix verified in staging" and store.audit[-1].proposal_id == pid
    assert store.outbox[-1][:2] == (pid, "override") and "hotfix verified in staging" in str(store.outbox[-1][2])
    assert [b.version for b in service.blocked_versions(MODEL)] == ["7"]  # still blocked for the next deploy


def test_rolled_back_again_after_an_override_the_block_names_the_newest_rollback() -> None:
    store, service, _, clock, _ = world()
    rolled_back(store, service)
    clock.advance(timedelta(hours=2))  # past the cooldown
    service.deploy(MODEL, "7", actor="api:ci", override=Override("hotfix"))
    p = service.request_rollback(RollbackRequest(MODEL, actor="slack:U0BOB", reason="still broken"))
    assert service.approve(p.id, "slack:U0LEAD").executed
    [block] = service.blocked_versions(MODEL)
    assert (block.proposal_id, block.reason) == (p.id, "still broken")
    assert [b.unblock_reason for b in store.blocks(MODEL, "7")] == [None, f"blocked again by rollback #{p.id}"]


def test_an_override_needs_a_reason() -> None:
    store, service, _, _, _ = world()
    rolled_back(store, service)
    with pytest.raises(RollbackError, match="a reason is required"):
        service.deploy(MODEL, "7", actor="api:ci", override=Override("  "))


def test_unblock_by_an_approver_lifts_it_and_a_stranger_is_refused_and_audited_once() -> None:
    store, service, _, _, _ = world()
    rolled_back(store, service)
    before = len(store.audit)
    with pytest.raises(Refused, match="only approvers may unblock"):
        service.unblock(MODEL, "7", actor="slack:U0MALLORY", reason="please")
    assert actions(store)[before:] == ["unblock.refused"]
    assert not service.may_deploy(MODEL, "7").deployable
    lifted = service.unblock(MODEL, "7", actor="slack:U0LEAD", reason="fixed in the feature store")
    assert lifted.unblocked_by == "slack:U0LEAD" and actions(store)[-1] == "version.unblocked"
    answer = service.may_deploy(MODEL, "7")
    assert answer.deployable and "unblocked by slack:U0LEAD" in answer.reason
    assert service.deploy(MODEL, "7", actor="api:ci").version == "7"


def test_unblocking_a_version_that_is_not_blocked_is_refused() -> None:
    store, service, _, _, _ = world()
    with pytest.raises(Refused, match="version 6 of fraud-detector is not blocked"):
        service.unblock(MODEL, "6", actor="slack:U0LEAD", reason=None)
    assert actions(store)[-1] == "unblock.refused"


def test_undo_rolls_forward_and_lifts_the_block() -> None:
    store, service, _, _, _ = world()
    pid = rolled_back(store, service)
    service.undo(pid, "slack:U0LEAD")
    assert service.blocked_versions(MODEL) == []
    assert "version.unblocked" in actions(store)


def test_a_new_deployment_supersedes_the_waiting_proposal_in_its_own_change() -> None:
    store, service, _, _, notifier = world()
    p = service.request_rollback(RollbackRequest(MODEL, actor="slack:U0BOB", reason="slow"))
    service.deploy(MODEL, "8", actor="api:ci", deployed_by="ci-job-12")
    closed = store.get_proposal(p.id)
    assert closed.state is State.CANCELLED
    assert closed.result == "superseded by the deployment of version 8 by ci-job-12"
    assert actions(store)[-2:] == ["deploy", "proposal.superseded"]
    assert (p.id, "superseded") in [(e[0], e[1]) for e in notifier.events]
    assert store.outbox[-1][:2] == (p.id, "superseded")
    assert service.approve(p.id, "slack:U0LEAD").message == f"proposal #{p.id} is already cancelled"


def test_a_deployment_leaves_running_rollbacks_alone() -> None:
    store, service, _, _, _ = world()
    pid = rolled_back(store, service)
    service.deploy(MODEL, "8", actor="api:ci")
    assert store.get_proposal(pid).state is State.SUCCEEDED
    assert "proposal.superseded" not in actions(store)


def test_a_blocked_version_live_again_without_a_report_is_recorded_and_offered_again() -> None:
    store, service, target, clock, _ = world()
    rolled_back(store, service)
    clock.advance(timedelta(hours=1))
    assert service.sweep_drift() == []  # the target runs 6, as recorded
    target.live[MODEL] = "7"  # someone re-applied 7 by hand
    [offer] = service.sweep_drift()
    assert (offer.from_version, offer.to_version, offer.state) == ("7", "6", State.PROPOSED)
    assert "re-applied by hand" in offer.reason and offer.requested_by == "bot:drift"
    assert store.history(MODEL)[-1].source == "drift (fake)"
    assert "deployment.drift" in actions(store)
    assert service.sweep_drift() == []  # recorded once: the next sweep sees 7 as the current deployment


def test_drift_is_not_acted_on_while_a_rollback_is_switching() -> None:
    store, service, target, _, _ = world()
    rolled_back(store, service)
    service.deploy(MODEL, "8", actor="api:ci")
    p = service.request_rollback(RollbackRequest(MODEL, actor="slack:U0BOB", reason="8 is slow", to_version="7"))
    store.transition(p.id, State.APPROVED, AuditEvent("t", "t"), change=ProposalChange(decided_by="slack:U0LEAD"))
    target.live[MODEL] = "7"  # switched, not yet recorded: not a hand-made change
    assert service.sweep_drift() == []
    assert store.history(MODEL)[-1].version == "8"


class CountingStore(MemoryStore):
    """Counts the reads a drift sweep makes; a per-model read would grow with the number of models."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.reads: list[str] = []

    def blocks(self, model: str, version: str | None = None) -> list[Block]:
        self.reads.append("blocks")
        return super().blocks(model, version)

    def active_blocks(self) -> list[Block]:
        self.reads.append("active_blocks")
        return super().active_blocks()

    def history(self, model: str) -> list[Deployment]:
        self.reads.append("history")
        return super().history(model)

    def current_deployments(self, models: Sequence[str]) -> list[Deployment]:
        self.reads.append("current_deployments")
        return [h[-1] for m in models if (h := MemoryStore.history(self, m))]


def test_a_drift_sweep_reads_once_whatever_the_number_of_models_and_asks_only_blocked_models_targets() -> None:
    clock = ManualClock(T0)
    store = CountingStore(clock)
    models = {f"model-{i:03d}": {"target": "fake"} for i in range(200)}
    asked: list[str] = []

    class AskedTarget(FakeTarget):
        def current_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
            asked.append(model)
            return super().current_version(model, settings)

    target = AskedTarget({"model-007": "2"})
    service = RollbackService(store, make_policy(models=models), {"fake": target}, clock)
    for version in ("1", "2"):
        service.deploy("model-007", version, actor="api:ci", stable=version == "1")
    store.reads.clear()
    assert service.sweep_drift() == []
    assert (store.reads, asked) == (["active_blocks"], [])  # no blocked version anywhere: one read, no target
    p = service.request_rollback(RollbackRequest("model-007", actor="slack:U0BOB", reason="error rate 40%"))
    assert service.approve(p.id, "slack:U0LEAD").executed
    store.reads.clear()
    asked.clear()
    assert service.sweep_drift() == []
    assert (store.reads, asked) == (["active_blocks", "current_deployments"], ["model-007"])
    target.live["model-007"] = "2"  # re-applied by hand
    [offer] = service.sweep_drift()
    assert (offer.model, offer.from_version, offer.to_version) == ("model-007", "2", "1")


@pytest.mark.parametrize(("current", "live", "blocked", "expected"), [
    ("6", "7", {"7"}, True),
    ("6", "6", {"7"}, False),
    ("6", "8", {"7"}, False),
    ("7", "7", {"7"}, False),
    ("6", None, {"7"}, False),
])
def test_drift_is_a_blocked_version_live_that_no_deployment_put_there(current: str, live: str | None,
                                                                       blocked: set[str], expected: bool) -> None:
    assert drifted(Deployment(1, MODEL, current, T0), live, blocked) is expected


def test_deployability_names_the_active_block_then_the_lifting() -> None:
    active = Block(1, MODEL, "7", T0, "bot:policy", "latency", 3)
    assert deployability(MODEL, "8", [active]).deployable
    answer = deployability(MODEL, "7", [active])
    assert not answer.deployable and "rolled back by bot:policy at 2026-11-02 12:00 UTC (rollback #3): latency" \
        in answer.reason
    lifted = Block(1, MODEL, "7", T0, "bot:policy", "latency", 3, T0, "slack:U0LEAD", "fixed")
    assert deployability(MODEL, "7", [lifted]).deployable


def test_a_block_written_between_the_check_and_the_write_still_refuses() -> None:
    store, service, _, _, _ = world()
    rolled_back(store, service)
    real = store.blocks
    calls: list[str] = []

    def not_yet_then_real(model: str, version: str | None = None) -> list[Block]:
        calls.append(model)
        return [] if len(calls) == 1 else real(model, version)  # the rollback commits after the first read

    store.blocks = not_yet_then_real  # type: ignore[method-assign]
    history = store.history(MODEL)
    with pytest.raises(VersionBlocked):
        service.deploy(MODEL, "7", actor="api:ci")
    assert store.history(MODEL) == history and actions(store)[-1] == "deployment.refused_blocked"
