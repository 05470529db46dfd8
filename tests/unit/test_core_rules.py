"""The core's rules on the in-memory store: no database, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core.audit import AuditEvent
from bot.core.clock import ManualClock
from bot.core.intake import AlertIntake
from bot.core.proposal import ProposalChange, State
from bot.core.requests import RollbackRequest
from bot.core.service import RollbackService
from tests.conftest import make_policy
from tests.fakes.memory_store import MemoryStore
from tests.fakes.ports import FakeTarget, RecordingNotifier
from tests.unit.alert_builders import alert


def world(live: str = "7") -> tuple[MemoryStore, RollbackService, FakeTarget, ManualClock]:
    clock = ManualClock(datetime(2026, 11, 2, 12, 0, tzinfo=UTC))
    store = MemoryStore(clock)
    target = FakeTarget({"fraud-detector": live})
    service = RollbackService(store, make_policy(), {"fake": target}, clock, notifier=RecordingNotifier())
    for version, stable in (("5", True), ("6", True), ("7", False)):
        service.deploy("fraud-detector", version, actor="api:ci", stable=stable)
    return store, service, target, clock


def send(intake: AlertIntake, *alerts: object) -> list[str]:
    result, ids = intake.record("alertmanager", list(alerts), intake.clock.now())  # type: ignore[arg-type]
    for model in intake.models_to_decide(result):
        intake.merge(result, ids, intake.decide(model))
    return [a.outcome.value for a in result.alerts]


def test_a_refused_alert_is_recorded_once_and_its_repeats_add_nothing() -> None:
    store, service, _, clock = world()
    service.freeze("fraud-detector", actor="slack:U0LEAD", duration=timedelta(hours=2), reason="migration")
    intake = AlertIntake(service, store, clock)
    assert send(intake, alert("f1", "critical")) == ["ignored"]
    rows = len(store.audit)
    for _ in range(5):
        assert send(intake, alert("f1", "critical")) == ["duplicate"]
    assert len(store.audit) == rows and store.proposals == {}


def test_the_request_only_records_and_the_decider_decides_once() -> None:
    store, service, target, clock = world()
    intake = AlertIntake(service, store, clock)
    result, _ = intake.record("alertmanager", [alert("c1", "critical")], clock.now())
    assert [a.outcome.value for a in result.alerts] == ["stored"] and store.proposals == {} and not target.switches
    assert store.pending_models() == ["fraud-detector"]
    decision = intake.decide("fraud-detector")
    assert decision.executed == [1] and [s.to_version for s in target.switches] == ["6"]
    assert intake.decide("fraud-detector").outcomes == {}  # nothing left in the inbox


def _executing(store: MemoryStore, service: RollbackService) -> int:
    p = service.request_rollback(RollbackRequest("fraud-detector", actor="alert:x", reason="r"))
    store.transition(p.id, State.APPROVED, AuditEvent("t", "t"), change=ProposalChange(decided_by="slack:U0LEAD"))
    store.transition(p.id, State.EXECUTING, AuditEvent("t", "t"))
    return p.id


@pytest.mark.parametrize(("live", "state", "switches", "words"), [
    ("6", State.SUCCEEDED, [], "completed before the bot restarted"),
    ("7", State.SUCCEEDED, ["6"], "resumed after the bot restarted"),
    ("9", State.FAILED, [], "reports version 9 live"),
    (None, State.FAILED, [], "cannot tell which version is live"),
])
def test_an_interrupted_switch_is_finished_from_the_live_version(live: str | None, state: State,
                                                                 switches: list[str], words: str) -> None:
    store, service, target, _ = world()
    pid = _executing(store, service)
    if live is None:
        target.live.clear()
    else:
        target.live["fraud-detector"] = live
    done = service.executor.run(pid)
    assert done.state is state and [s.to_version for s in target.switches] == switches
    assert words in (done.result or done.error or "")


def test_a_lease_is_one_holders_until_it_expires() -> None:
    store, _, _, clock = world()
    first = store.claim_lease("execute:1", "a", 15)
    assert first is not None and store.claim_lease("execute:1", "b", 15) is None
    assert store.renew_lease("execute:1", "a", first, 15)
    clock.advance(timedelta(seconds=16))
    second = store.claim_lease("execute:1", "b", 15)
    assert second is not None and second != first
    assert not store.renew_lease("execute:1", "a", first, 15)  # the stalled holder can tell it lost
