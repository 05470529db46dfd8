"""When a request becomes "abort canary" instead of "roll back", and what the policy then decides."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.core.clock import ManualClock
from bot.core.ports import ReportsCanary, TrafficSplit
from bot.core.proposal import ProposalAction, State
from bot.core.requests import AlertEvidence, RollbackRequest
from bot.core.service import RollbackService
from bot.core.severity import Severity
from tests.conftest import make_policy
from tests.fakes.memory_store import MemoryStore
from tests.fakes.ports import FakeCanaryTarget, FakeTarget

SPLIT = TrafficSplit("6", "7", 20, "step 1 of 4")


def world(target: FakeTarget, **policy: object) -> RollbackService:
    clock = ManualClock(datetime(2026, 11, 2, 12, 0, tzinfo=UTC))
    service = RollbackService(MemoryStore(clock), make_policy(dict(policy)), {"fake": target}, clock)
    for version, stable in (("5", True), ("6", True), ("7", False)):
        service.deploy("fraud-detector", version, actor="api:ci", stable=stable)
    return service


def action_of(target: FakeTarget, to_version: str | None = None) -> ProposalAction:
    p = world(target).request_rollback(RollbackRequest(
        "fraud-detector", actor="slack:U0BOB", reason="r", to_version=to_version))
    return p.action


def test_the_ability_is_a_type_not_an_attribute_guess() -> None:
    assert isinstance(FakeCanaryTarget(), ReportsCanary) and not isinstance(FakeTarget(), ReportsCanary)
    assert action_of(FakeTarget()) is ProposalAction.ROLLBACK


@pytest.mark.parametrize("split,asked,broken,expected", [
    (SPLIT, None, False, ProposalAction.ABORT_CANARY),
    (None, None, False, ProposalAction.ROLLBACK),  # no canary in progress
    (SPLIT, None, True, ProposalAction.ROLLBACK),  # the target cannot tell: a rollback, as before
    (TrafficSplit("6", "8", 20), None, False, ProposalAction.ROLLBACK),  # a canary of another version
    (SPLIT, "5", False, ProposalAction.ROLLBACK),  # a person asked for an older version than the stable side
    (TrafficSplit(None, "7", 10), None, False, ProposalAction.ABORT_CANARY),  # stable unnamed (KServe)
    (TrafficSplit(None, "7", 10), "6", False, ProposalAction.ROLLBACK),  # ... and a version asked for
])
def test_when_a_request_aborts_the_canary(split: TrafficSplit | None, asked: str | None, broken: bool,
                                          expected: ProposalAction) -> None:
    target = FakeCanaryTarget({"fraud-detector": "7"}, split)
    target.broken = broken
    assert action_of(target, asked) is expected


def test_auto_abort_canary_severity_and_the_executor_aborts_instead_of_switching() -> None:
    target = FakeCanaryTarget({"fraud-detector": "7"}, SPLIT)
    service = world(target, auto_abort_canary_severity="warning")
    p = service.request_rollback(RollbackRequest("fraud-detector", actor="alert:am", reason="r", severity="warning",
                                 alerts=AlertEvidence(Severity.WARNING)))
    assert p.state is State.SUCCEEDED and "auto_abort_canary_severity warning" in p.decision_reason
    assert [a.to_version for a in target.aborts] == ["6"] and target.switches == []
    plain = FakeCanaryTarget({"fraud-detector": "7"})  # no canary: the warning waits for a person
    q = world(plain, auto_abort_canary_severity="warning").request_rollback(RollbackRequest(
        "fraud-detector", actor="alert:am", reason="r", severity="warning", alerts=AlertEvidence(Severity.WARNING)))
    assert q.state is State.PROPOSED and "below auto_rollback_severity critical" in q.decision_reason


def _variants(*weights: tuple[str, int]) -> list[dict[str, object]]:
    return [{"name": name, "weight": weight} for name, weight in weights]


def test_unleash_reads_variant_weights_between_two_versions_as_a_canary() -> None:
    from adapters.targets.unleash import UnleashTarget, variant_split

    assert isinstance(UnleashTarget(env={}), ReportsCanary)
    split = variant_split([_variants(("6", 800), ("7", 200))] * 2)
    assert split == TrafficSplit("6", "7", 20, "variant weights of the flag")
    assert variant_split([_variants(("6", 0), ("7", 1000))]) is None  # one version takes everything
    assert variant_split([_variants(("6", 500), ("7", 500))]) is None  # even: neither is the canary
    assert variant_split([_variants(("5", 400), ("6", 300), ("7", 300))]) is None  # more than two versions
    assert variant_split([_variants(("6", 800), ("7", 200)), _variants(("6", 900), ("7", 100))]) is None
