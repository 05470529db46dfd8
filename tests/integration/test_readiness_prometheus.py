"""The readiness gate's metrics check and the drill's verification step against a real Prometheus."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from adapters.metrics.prometheus import PrometheusSource
from bot.core.clock import ManualClock
from bot.core.drill import Drill, DrillResult
from bot.core.ports import StaticDirectory
from bot.core.readiness import ReadinessCheck
from bot.core.selection import Deployment
from tests.conftest import make_policy
from tests.fakes.memory_store import MemoryStore
from tests.fakes.ports import FakeTarget
from tests.integration.promstack import PromStack
from tests.unit.test_drill import Cards
from tests.unit.test_readiness import Probe

pytestmark = pytest.mark.prometheus


def test_metrics_that_return_data_pass_and_an_empty_query_is_named(promstack: PromStack) -> None:
    model = promstack.unique_model("ready")
    promstack.exporter.increment(model, requests=100.0)
    metrics = {"requests": f'sum(model_requests_total{{model="{model}"}})', "nothing": "no_such_metric_total"}
    policy = make_policy(None, {model: {"target": "fake", "metrics": metrics}})
    source = PrometheusSource(promstack.prometheus_url)
    now = datetime.now(UTC)
    store = MemoryStore(ManualClock(now))
    store.deployments += [Deployment(1, model, "1", now, stable_at=now), Deployment(2, model, "2", now)]

    deadline = time.monotonic() + 30
    while not promstack.query(metrics["requests"]):  # polls until Prometheus has scraped the new series
        assert time.monotonic() < deadline, "Prometheus never scraped the exporter"
        time.sleep(0.1)

    result = ReadinessCheck(store, Probe(), Probe(), source, lambda: datetime.now(UTC)).run(
        model, policy.model(model))
    metrics_check = next(c for c in result.checks if c.name == "metrics")
    assert not metrics_check.ok and metrics_check.detail == "no data now for: nothing"

    only_requests = make_policy(None, {model: {"target": "fake", "metrics": {"requests": metrics["requests"]}}})
    result = ReadinessCheck(store, Probe(), Probe(), source, lambda: datetime.now(UTC)).run(
        model, only_requests.model(model))
    assert result.ready, result.checks
    drilled: DrillResult = Drill(only_requests, store, {"fake": FakeTarget()}, StaticDirectory(), source, Cards(),
                                 lambda: datetime.now(UTC)).run(model, "cli:ops")
    assert drilled.ok and drilled.steps[-1].detail.startswith("requests = ")
    promstack.exporter.stop_traffic(model)
