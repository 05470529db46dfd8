"""Optional abilities are explicit Protocols: a target has one when it implements it, and the core uses it
only then (isinstance on runtime_checkable Protocols, never an attribute looked up by name)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.targets import TARGET_FACTORIES
from adapters.targets.common import CheckableTarget
from adapters.targets.local import LocalTarget
from adapters.targets.mlflow import MlflowTarget
from bot.core.clock import ManualClock
from bot.core.events import CardEvent
from bot.core.ports import (
    Checkable,
    DeploymentTarget,
    ReadsOutbox,
    ReportsVersionMetrics,
    ReportsVersionRun,
    ValidatesSettings,
    tell,
)
from bot.core.proposal import Proposal
from bot.core.requests import RollbackRequest
from bot.core.service import RollbackService
from tests.conftest import make_policy
from tests.fakes.memory_store import MemoryStore
from tests.fakes.ports import FakeTarget, RecordingNotifier


@pytest.mark.parametrize("name", sorted(TARGET_FACTORIES))
def test_every_remote_target_checks_its_settings_and_its_reach(name: str) -> None:
    target = TARGET_FACTORIES[name](env={})
    assert isinstance(target, DeploymentTarget) and isinstance(target, CheckableTarget)
    assert isinstance(target, ValidatesSettings) and isinstance(target, Checkable)


def test_only_a_registry_with_runs_reports_version_metrics_and_runs() -> None:
    with_runs = {name for name, factory in TARGET_FACTORIES.items()
                 if isinstance(factory(env={}), ReportsVersionMetrics | ReportsVersionRun)}
    assert with_runs == {"mlflow"}
    mlflow = MlflowTarget(env={})
    assert isinstance(mlflow, ReportsVersionMetrics) and isinstance(mlflow, ReportsVersionRun)
    local = LocalTarget(MemoryStore(ManualClock(datetime(2026, 11, 2, tzinfo=UTC))))
    assert not isinstance(local, Checkable | ValidatesSettings | ReportsVersionMetrics)


class RunsTarget(FakeTarget):
    def version_metrics(self, model: str, version: str, settings: Mapping[str, Any]) -> dict[str, float]:
        return {"auc": {"6": 0.91, "7": 0.74}[version]}


@pytest.mark.parametrize(("target", "shown"), [(RunsTarget({"fraud-detector": "7"}), True),
                                               (FakeTarget({"fraud-detector": "7"}), False)])
def test_a_proposal_shows_run_metrics_only_from_a_target_that_reports_them(target: FakeTarget, shown: bool) -> None:
    clock = ManualClock(datetime(2026, 11, 2, 12, 0, tzinfo=UTC))
    service = RollbackService(MemoryStore(clock), make_policy(), {"fake": target}, clock)
    for version, stable in (("6", True), ("7", False)):
        service.deploy("fraud-detector", version, actor="api:ci", stable=stable)
    p = service.request_rollback(RollbackRequest("fraud-detector", actor="slack:U0LEAD", reason="errors"))
    expected = {"from": {"auc": 0.74}, "to": {"auc": 0.91}} if shown else None
    assert p.summary.get("version_metrics") == expected


class OutboxReader(RecordingNotifier):
    def __init__(self) -> None:
        super().__init__()
        self.woken = 0

    def written(self) -> None:
        self.woken += 1


def test_a_notifier_reading_the_outbox_is_woken_not_told_twice() -> None:
    clock = ManualClock(datetime(2026, 11, 2, 12, 0, tzinfo=UTC))
    service = RollbackService(MemoryStore(clock), make_policy(), {"fake": FakeTarget({"fraud-detector": "7"})},
                              clock)
    for version, stable in (("6", True), ("7", False)):
        service.deploy("fraud-detector", version, actor="api:ci", stable=stable)
    p: Proposal = service.request_rollback(RollbackRequest("fraud-detector", actor="slack:U0LEAD", reason="errors"))
    reader, plain = OutboxReader(), RecordingNotifier()
    assert isinstance(reader, ReadsOutbox) and not isinstance(plain, ReadsOutbox)
    for notifier in (reader, plain):
        tell(notifier, p, CardEvent.APPROVED, written=True)
    assert (reader.woken, reader.names(), plain.names()) == (1, [], ["approved"])
    tell(reader, p, CardEvent.ALERTS)  # no intent written with the change: told
    assert (reader.woken, reader.names()) == (1, ["alerts"])
