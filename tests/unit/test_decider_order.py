"""The decider's order: models with a critical alert waiting go first, also when the critical alert arrives
while a pass over other models is under way; a model another replica holds is skipped, not waited for."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core.clock import ManualClock
from bot.core.intake import AlertIntake, ModelDecision
from bot.core.service import RollbackService
from bot.workers.decider import Decider, lease_name
from tests.conftest import make_policy
from tests.fakes.memory_store import MemoryStore
from tests.fakes.ports import FakeTarget
from tests.unit.alert_builders import alert

MODELS = {m: {"target": "fake"} for m in ("fraud-detector", "ranker", "search", "pricing")}


class RecordingIntake(AlertIntake):
    """The real intake, noting the order models are decided in; ``during`` runs after the first decision."""

    order: list[str]
    during: list[tuple[str, str]]

    def decide(self, model: str) -> ModelDecision:
        self.order.append(model)
        decision = super().decide(model)
        while self.during:
            fingerprint, for_model = self.during.pop(0)
            self.record("alertmanager", [alert(fingerprint, "critical", model=for_model)], self.clock.now())
        return decision


def world() -> tuple[MemoryStore, RecordingIntake, Decider]:
    clock = ManualClock(datetime(2026, 11, 2, 12, 0, tzinfo=UTC))
    store = MemoryStore(clock)
    service = RollbackService(store, make_policy(models=MODELS), {"fake": FakeTarget({m: "7" for m in MODELS})},
                              clock)
    for model in MODELS:
        for version, stable in (("6", True), ("7", False)):
            service.deploy(model, version, actor="api:ci", stable=stable)
    intake = RecordingIntake(service, store, clock)
    intake.order, intake.during = [], []
    return store, intake, Decider(intake, store, "me", lease_s=10)


def test_models_with_a_critical_alert_waiting_are_decided_first() -> None:
    store, intake, decider = world()
    intake.record("alertmanager", [alert("w1", "warning", model="fraud-detector"),
                                   alert("w2", "warning", model="search")], intake.clock.now())
    intake.record("alertmanager", [alert("c1", "critical", model="ranker")], intake.clock.now())
    assert store.pending_models(urgent_only=True) == ["ranker"]
    assert decider.tick() is True
    assert intake.order[0] == "ranker" and sorted(intake.order[1:]) == ["fraud-detector", "search"]
    assert store.pending_models() == []


def test_a_critical_alert_arriving_during_a_pass_goes_before_the_rest_of_it() -> None:
    _, intake, decider = world()
    intake.record("alertmanager", [alert("w1", "warning", model="fraud-detector"),
                                   alert("w2", "warning", model="search"),
                                   alert("w3", "warning", model="ranker")], intake.clock.now())
    intake.during = [("c1", "pricing")]  # arrives while the first model is decided
    decider.tick()
    assert intake.order[:2] == ["fraud-detector", "pricing"]
    assert sorted(intake.order[2:]) == ["ranker", "search"]


def test_a_model_another_replica_holds_is_skipped_and_the_pass_ends() -> None:
    store, intake, decider = world()
    intake.record("alertmanager", [alert("c1", "critical", model="ranker"),
                                   alert("w1", "warning", model="search")], intake.clock.now())
    assert store.claim_lease(lease_name("ranker"), "another-replica", 10) is not None
    assert decider.tick() is True
    assert intake.order == ["search"] and store.pending_models() == ["ranker"]
