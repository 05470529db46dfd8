"""LaunchDarkly target against the fake REST API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from adapters.targets.launchdarkly import LaunchDarklyTarget
from bot.core.errors import TargetError
from bot.core.ports import SwitchRequest
from tests.fakes.launchdarkly_api import FakeLaunchDarkly

ENV = {"LAUNCHDARKLY_API_TOKEN": "api-test-token"}


@pytest.fixture
def ld() -> Iterator[FakeLaunchDarkly]:
    with FakeLaunchDarkly() as fake:
        fake.add_flag("ml", "ranker-model", ["off", "1.3.0", "1.4.0"], serving="1.4.0")
        yield fake


def settings(ld: FakeLaunchDarkly, **extra: Any) -> dict[str, Any]:
    return {"base_url": ld.url, "project": "ml", "environment": "production", "flag": "ranker-model", **extra}


def request(s: dict[str, Any], to: str = "1.3.0") -> SwitchRequest:
    return SwitchRequest("ranker", "1.4.0", to, 5, "error rate", s)


def target(env: dict[str, str] = ENV) -> LaunchDarklyTarget:
    return LaunchDarklyTarget(env=env, sleep=lambda s: None)


def test_fallthrough_switched_by_semantic_patch(ld: FakeLaunchDarkly) -> None:
    s = settings(ld)
    assert target().current_version("ranker", s) == "1.4.0"
    result = target().switch(request(s))
    patch = next(r for r in ld.requests if r.method == "PATCH")
    assert patch.headers["content-type"] == "application/json; domain-model=launchdarkly.semanticpatch"
    assert patch.headers["authorization"] == "api-test-token"
    body = patch.json()
    assert body["environmentKey"] == "production"
    assert body["instructions"] == [
        {"kind": "updateFallthroughVariationOrRollout", "variationId": "var-1-1.3.0"}
    ]
    assert result.served_version == "1.3.0"
    assert target().current_version("ranker", s) == "1.3.0"
    assert target().current_version("ranker", {**s, "environment": "staging"}) == "1.4.0"


def test_turn_flag_off_and_on_again(ld: FakeLaunchDarkly) -> None:
    s = settings(ld, off_version="off")
    target().switch(request(s, to="off"))
    assert ld.flags[("ml", "ranker-model")]["environments"]["production"]["on"] is False
    assert target().current_version("ranker", s) == "off"
    target().switch(request(s, to="1.3.0"))
    kinds = [i["kind"] for i in [r for r in ld.requests if r.method == "PATCH"][-1].json()["instructions"]]
    assert kinds == ["turnFlagOn", "updateFallthroughVariationOrRollout"]


def test_unknown_version_and_errors(ld: FakeLaunchDarkly) -> None:
    with pytest.raises(TargetError, match=r"no variation with value '9\.9'"):
        target().switch(request(settings(ld), to="9.9"))
    with pytest.raises(TargetError) as info:
        target().current_version("ranker", settings(ld, flag="nope"))
    assert info.value.status == 404 and "Unknown resource" in str(info.value)
    with pytest.raises(TargetError) as info:
        target({"LAUNCHDARKLY_API_TOKEN": "bad-secret"}).current_version("ranker", settings(ld))
    assert info.value.status == 401 and "bad-secret" not in str(info.value)


def test_5xx_retried(ld: FakeLaunchDarkly) -> None:
    ld.fail_next = [503, 502]
    assert target().current_version("ranker", settings(ld)) == "1.4.0"


def test_describe_validate_check(ld: FakeLaunchDarkly) -> None:
    s = settings(ld)
    assert "updateFallthroughVariationOrRollout" in target().describe(request(s))
    assert target().validate(s) == []
    assert any("LAUNCHDARKLY_API_TOKEN" in p for p in target({}).validate(s))
    assert "serving 1.4.0" in target().check_connection("ranker", s)


def test_percentage_rollout_is_a_canary_and_its_abort_serves_the_stable_variation(ld: FakeLaunchDarkly) -> None:
    from bot.core.ports import ReportsCanary, TrafficSplit

    ld.set_rollout("ml", "ranker-model", {"1.3.0": 80000, "1.4.0": 20000})
    s = settings(ld)
    assert isinstance(target(), ReportsCanary)
    assert target().canary("ranker", s) == TrafficSplit("1.3.0", "1.4.0", 20, "percentage rollout of the default rule")
    assert target().current_version("ranker", s) is None  # two versions serve: no single live version
    result = target().abort_canary(request(s))
    assert result.served_version == "1.3.0" and target().canary("ranker", s) is None
    assert ld.flags[("ml", "ranker-model")]["environments"]["production"]["fallthrough"] == {"variation": 1}
    with pytest.raises(TargetError, match="no percentage rollout any more"):
        target().abort_canary(request(s))
    ld.set_rollout("ml", "ranker-model", {"1.3.0": 50000, "1.4.0": 50000})
    assert target().canary("ranker", s) is None  # an even split names no canary: a plain rollback
