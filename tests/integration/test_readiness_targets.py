"""The readiness gate's target check against the Kubernetes API stand-in: reachable is not enough, the
credentials must also be allowed to switch the workload (SelfSubjectAccessReview)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from adapters.targets.kubernetes import KubernetesTarget
from bot.core.clock import ManualClock
from bot.core.readiness import ReadinessCheck
from bot.readiness_wiring import TargetConnectionProbe
from tests.conftest import make_policy
from tests.fakes.kube_api import FakeKube
from tests.fakes.memory_store import MemoryStore

NOW = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with FakeKube() as fake:
        fake.add_deployment("ml", "ranker", "repo/ranker:1.4.0")
        yield fake


def target_check(kube: FakeKube, url: str | None = None) -> tuple[bool, str]:
    policy = make_policy(None, {"ranker": {"target": "kubernetes", "kubernetes": {
        "api_url": url or kube.url, "namespace": "ml", "deployment": "ranker", "image": "repo/ranker:{version}",
        "timeout": "5s"}}}).model("ranker")
    probe = TargetConnectionProbe({"kubernetes": KubernetesTarget(env={"KUBERNETES_TOKEN": "test-token"})})
    result = ReadinessCheck(MemoryStore(ManualClock(NOW)), probe, None, None, lambda: NOW).run("ranker", policy)
    check = next(c for c in result.checks if c.name == "target")
    return check.ok, check.detail


def test_a_workload_the_credentials_may_patch_passes(kube: FakeKube) -> None:
    ok, detail = target_check(kube)
    assert ok and "deployment ml/ranker found" in detail and "may patch it" in detail


def test_a_workload_the_credentials_may_not_patch_fails_the_target_check(kube: FakeKube) -> None:
    kube.deny.add("patch:deployments")
    ok, detail = target_check(kube)
    assert not ok and "may NOT patch deployments/ranker" in detail


def test_an_unreachable_api_server_fails_the_target_check(kube: FakeKube) -> None:
    ok, detail = target_check(kube, "http://127.0.0.1:1")
    assert not ok and "127.0.0.1:1" in detail, detail
