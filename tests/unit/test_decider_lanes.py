"""The decider's two lanes: the urgent lane takes only models with a critical alert waiting, never a model the
other lane holds."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core.clock import ManualClock
from bot.core.intake import AlertIntake
from bot.core.proposal import State
from bot.core.service import RollbackService
from bot.workers.decider import Decider, lease_name
from bot.workers.loop import DECIDE, EXECUTE, SLACK, URGENT, Signals
from tests.conftest import make_policy
from tests.fakes.memory_store import MemoryStore
from tests.fakes.ports import FakeTarget
from tests.unit.alert_builders import alert

MODELS = {"fraud-detector": {"target": "fake"}, "ranker": {"target": "fake"}, "search": {"target": "fake"}}


def world() -> tuple[MemoryStore, AlertIntake, Decider, FakeTarget]:
    clock = ManualClock(datetime(2026, 11, 2, 12, 0, tzinfo=UTC))
    store = MemoryStore(clock)
    target = FakeTarget({m: "7" for m in MODELS})
    service = RollbackService(store, make_policy(models=MODELS), {"fake": target}, clock)
    for model in MODELS:
        for version, stable in (("6", True), ("7", False)):
            service.deploy(model, version, actor="api:ci", stable=stable)
    intake = AlertIntake(service, store, clock)
    return store, intake, Decider(intake, store, "me", lease_s=10), target


def test_the_urgent_lane_decides_only_models_with_a_critical_alert_waiting() -> None:
    store, intake, decider, target = world()
    now = intake.clock.now()
    intake.record("alertmanager", [alert("w1", "warning", model="fraud-detector"),
                                   alert("w2", "warning", model="search")], now)
    intake.record("alertmanager", [alert("c1", "critical", model="ranker")], now)
    assert store.pending_models() == ["ranker", "fraud-detector", "search"]  # critical first
    assert store.pending_models(urgent_only=True) == ["ranker"]
    assert decider.urgent_tick() is True
    assert [(p.model, p.state) for p in store.proposals.values()] == [("ranker", State.SUCCEEDED)]
    assert [s.model for s in target.switches] == ["ranker"]
    assert decider.urgent_tick() is False  # nothing critical left; the warnings are the first lane's
    assert sorted(store.pending_models()) == ["fraud-detector", "search"]
    assert decider.tick() is True
    assert store.pending_models() == []


def test_the_urgent_lane_leaves_a_model_the_other_lane_holds_and_asks_to_look_again() -> None:
    store, intake, decider, _ = world()
    intake.record("alertmanager", [alert("c1", "critical", model="ranker")], intake.clock.now())
    assert store.claim_lease(lease_name("ranker"), "the-other-lane", 10) is not None
    assert decider.urgent_tick() is True  # held elsewhere: run again soon, not after the poll interval
    assert store.proposals == {} and store.pending_models(urgent_only=True) == ["ranker"]


def test_new_alerts_wake_both_lanes_of_the_decider_and_nothing_else() -> None:
    signals = Signals()
    signals.wake_named(DECIDE)
    assert {n for n in (DECIDE, URGENT, EXECUTE, SLACK) if signals.event(n).is_set()} == {DECIDE, URGENT}

