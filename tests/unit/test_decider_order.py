"""The decider's order: models with a critical alert waiting go first, also when the critical alert arrives
while a pass over other models is under way; a model another replica holds is skipped, not waited for."""

from __future__ import annotations

import threading
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


class HeldIntake(RecordingIntake):
    """Holds the decision of one model until released, so a second thread ticks while it is under way."""

    held_model: str
    entered: threading.Event
    release: threading.Event

    def decide(self, model: str) -> ModelDecision:
        if model == self.held_model and not self.entered.is_set():  # only the first decision of it waits
            self.entered.set()
            assert self.release.wait(10)
        return super().decide(model)


def test_two_decider_threads_of_one_process_never_decide_the_same_model_at_once() -> None:
    # Both threads claim leases with the process's owner, and a claim that is already ours succeeds: only
    # the decider's own guard keeps the second thread off the model the first one decides.
    store, recording, _ = world()
    intake = HeldIntake(recording.service, store, recording.clock)
    intake.order, intake.during = [], []
    intake.held_model, intake.entered, intake.release = "fraud-detector", threading.Event(), threading.Event()
    decider = Decider(intake, store, "me", lease_s=10)
    intake.record("alertmanager", [alert("w1", "warning", model="fraud-detector")], intake.clock.now())
    intake.record("alertmanager", [alert("w2", "warning", model="search")], intake.clock.now())
    first = threading.Thread(target=decider.tick)
    first.start()
    try:
        assert intake.entered.wait(10)
        assert decider.tick() is True  # the other thread: skips fraud-detector, decides search
        assert intake.order == ["search"]
    finally:
        intake.release.set()
        first.join(10)
    # The first thread's pass goes on to search too and finds nothing left to decide; fraud-detector was
    # decided by that thread alone.
    assert intake.order.count("fraud-detector") == 1
    assert store.pending_models() == []
