"""The drill use case with fakes: every step walked and timed, nothing switched, refused for non-approvers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.core.clock import ManualClock
from bot.core.drill import STEPS, Drill, DrillResult
from bot.core.errors import Refused
from bot.core.metrics import Series
from bot.core.ports import StaticDirectory
from bot.core.proposal import Proposal
from bot.core.selection import Deployment
from tests.conftest import make_policy
from tests.fakes.memory_store import MemoryStore
from tests.fakes.ports import FakeTarget

NOW = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)


class Cards:
    def card(self, proposal: Proposal, drill_note: str) -> Mapping[str, Any]:
        return {"text": f"drill {proposal.from_version}->{proposal.to_version} {proposal.state} {drill_note}",
                "blocks": [{"type": "section"}]}

    def result(self, result: DrillResult) -> str:
        return "\n".join(result.lines())


def ticking() -> Any:
    """A timer that advances 5 ms per reading, so each step's time is known."""
    now = [0.0]

    def read() -> float:
        now[0] += 0.005
        return now[0]

    return read


class Metrics:
    def __init__(self, value: float | None) -> None:
        self.value = value
        self.asked: list[str] = []

    def query(self, expr: str, at: datetime) -> float | None:
        self.asked.append(expr)
        return self.value

    def query_range(self, expr: str, start: datetime, end: datetime, step: timedelta) -> Series:
        return []


def drill(store: MemoryStore, target: FakeTarget, metrics: Metrics | None = None,
          model: dict[str, Any] | None = None) -> Drill:
    policy = make_policy(None, {"fraud-detector": {"target": "fake", **(model or {})}})
    return Drill(policy, store, {"fake": target}, StaticDirectory({"S0ONCALL": {"U0CAROL"}}), metrics, Cards(),
                 lambda: NOW, ticking())


def store_with_versions() -> MemoryStore:
    store = MemoryStore(ManualClock(NOW))
    store.deployments += [Deployment(1, "fraud-detector", "6", NOW - timedelta(hours=3), stable_at=NOW),
                          Deployment(2, "fraud-detector", "7", NOW - timedelta(hours=1))]
    return store


def test_a_drill_walks_every_step_switches_nothing_and_posts_the_result() -> None:
    store, target = store_with_versions(), FakeTarget({"fraud-detector": "7"})
    result = drill(store, target).run("fraud-detector", "slack:U0CAROL")
    assert result.ok and [s.name for s in result.steps] == list(STEPS)
    assert all(abs(s.seconds - 0.005) < 1e-9 for s in result.steps)
    details = {s.name: s.detail for s in result.steps}
    assert "routes to fraud-detector" in details["alert"] and "propose a rollback" in details["decision"]
    assert details["version"].startswith("7 → 6") and "slack:U0CAROL may approve" in details["approval"]
    assert "would switch fraud-detector to 6 in the fake target" in details["switch"]
    assert target.switches == [] and target.live == {"fraud-detector": "7"}
    assert store.proposals == {} and [r.action for r in store.audit] == ["drill.passed"]
    assert [s["name"] for s in store.audit[0].inputs["steps"]] == list(STEPS)
    (post,) = store.posts
    assert post.kind == "drill" and post.channel == "C0ALERTS" and "passed" in post.message["text"]
    assert "switch" in post.replies[0]


def test_a_drill_without_a_version_to_return_to_fails_and_skips_what_needs_one() -> None:
    store = MemoryStore(ManualClock(NOW))
    store.deployments.append(Deployment(1, "fraud-detector", "7", NOW))
    result = drill(store, FakeTarget()).run("fraud-detector", "cli:ops")
    failing = [s.name for s in result.steps if not s.ok]
    assert failing == ["version", "card", "approval", "switch"]
    assert [r.action for r in store.audit] == ["drill.failed"] and store.proposals == {}


def test_only_approvers_may_drill_from_slack_and_the_refusal_is_audited() -> None:
    store = store_with_versions()
    with pytest.raises(Refused, match="only approvers may run a rollback drill of fraud-detector"):
        drill(store, FakeTarget()).run("fraud-detector", "slack:U0MALLORY")
    assert [r.action for r in store.audit] == ["drill.refused"] and store.posts == []


def test_the_verification_step_runs_each_metric_query_and_fails_without_data() -> None:
    model = {"metrics": {"error_rate": "sum(rate(errors[5m]))"}}
    metrics = Metrics(0.012)
    result = drill(store_with_versions(), FakeTarget(), metrics, model).run("fraud-detector", "cli:ops")
    assert result.ok and result.steps[-1].detail == "error_rate = 0.012"
    assert metrics.asked == ["sum(rate(errors[5m]))"]
    result = drill(store_with_versions(), FakeTarget(), Metrics(None), model).run("fraud-detector", "cli:ops")
    assert not result.ok and result.steps[-1].detail == "no data now for: error_rate"
    result = drill(store_with_versions(), FakeTarget(), None, model).run("fraud-detector", "cli:ops")
    assert "PROMETHEUS_URL is not set" in result.steps[-1].detail


def test_a_frozen_model_fails_the_decision_step() -> None:
    from bot.core.policy import ModelState

    store = store_with_versions()
    store.models["fraud-detector"] = ModelState(frozen_until=NOW + timedelta(hours=1), frozen_by="slack:U0LEAD")
    result = drill(store, FakeTarget()).run("fraud-detector", "cli:ops")
    assert [s.name for s in result.steps if not s.ok] == ["decision"]
    assert "would ignore it" in result.steps[1].detail and "frozen" in result.steps[1].detail
