"""Unleash target against a real unleash-server 7.5.1 (npm, PostgreSQL, loopback, no telemetry)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from adapters.targets.unleash import UnleashTarget
from bot.core.errors import TargetError
from bot.core.ports import SwitchRequest
from tests.integration.realservers import record

pytestmark = pytest.mark.unleash
BASE = "/api/admin/projects/default/features"


def admin(unleash: dict[str, str], method: str, path: str, body: Any = None) -> httpx.Response:
    response = httpx.request(
        method,
        f"{unleash['url']}{path}",
        json=body,
        timeout=10,
        headers={"Authorization": unleash["admin_token"]},
    )
    assert response.status_code < 300, response.text
    return response


@pytest.fixture(scope="module")
def flags(unleash: dict[str, str]) -> dict[str, str]:
    admin(unleash, "POST", BASE, {"name": "ranker-version", "type": "release"})
    variants = [
        {
            "name": v,
            "weight": w,
            "weightType": t,
            "stickiness": "default",
            "payload": {"type": "string", "value": v},
        }
        for v, w, t in (("1.3.0", 0, "fix"), ("1.4.0", 1000, "variable"))
    ]
    strategy = {
        "name": "flexibleRollout",
        "constraints": [],
        "variants": variants,
        "parameters": {"rollout": "100", "stickiness": "default", "groupId": "ranker-version"},
    }
    admin(unleash, "POST", f"{BASE}/ranker-version/environments/development/strategies", strategy)
    admin(unleash, "POST", f"{BASE}/ranker-version/environments/development/on")
    admin(unleash, "POST", BASE, {"name": "ranker-new-model", "type": "release"})
    admin(unleash, "POST", f"{BASE}/ranker-new-model/environments/development/on")
    return {"variant": "ranker-version", "toggle": "ranker-new-model"}


def target(unleash: dict[str, str]) -> UnleashTarget:
    return UnleashTarget(env={"UNLEASH_API_TOKEN": unleash["admin_token"]})


def client_view(unleash: dict[str, str], flag: str) -> dict[str, Any]:
    response = httpx.get(
        f"{unleash['url']}/api/client/features/{flag}",
        timeout=10,
        headers={"Authorization": unleash["client_token"]},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_variant_mode_switch(unleash: dict[str, str], flags: dict[str, str]) -> None:
    s = {"url": unleash["url"], "flag": flags["variant"]}
    t = target(unleash)
    assert t.current_version("ranker", s) == "1.4.0"
    started = time.monotonic()
    result = t.switch(SwitchRequest("ranker", "1.4.0", "1.3.0", 1, "errors", s))
    record("unleash variant switch", time.monotonic() - started)
    assert result.served_version == "1.3.0"
    strategy = client_view(unleash, flags["variant"])["strategies"][0]
    assert {v["name"]: v["weight"] for v in strategy["variants"]} == {"1.3.0": 1000, "1.4.0": 0}
    events = admin(unleash, "GET", f"/api/admin/events/{flags['variant']}").json()
    assert any(e["type"] == "feature-strategy-update" for e in events["events"])
    t.switch(SwitchRequest("ranker", "1.3.0", "1.2.0", 2, "new", s))  # a version with no variant yet
    assert t.current_version("ranker", s) == "1.2.0"


def test_toggle_mode_switch(unleash: dict[str, str], flags: dict[str, str]) -> None:
    s = {
        "url": unleash["url"],
        "flag": flags["toggle"],
        "mode": "toggle",
        "on_version": "2.0",
        "off_version": "1.0",
    }
    t = target(unleash)
    assert t.current_version("churn", s) == "2.0"
    started = time.monotonic()
    t.switch(SwitchRequest("churn", "2.0", "1.0", 3, "errors", s))
    record("unleash toggle switch", time.monotonic() - started)
    assert client_view(unleash, flags["toggle"])["enabled"] is False
    assert t.current_version("churn", s) == "1.0"
    with pytest.raises(TargetError, match="neither"):
        t.switch(SwitchRequest("churn", "1.0", "3.0", 4, "x", s))


def test_errors_and_checks(unleash: dict[str, str], flags: dict[str, str]) -> None:
    s = {"url": unleash["url"], "flag": "no-such-flag"}
    with pytest.raises(TargetError) as info:
        target(unleash).current_version("x", s)
    assert info.value.status == 404
    bad = UnleashTarget(env={"UNLEASH_API_TOKEN": "*:*.wrong-secret"})
    with pytest.raises(TargetError) as info:
        bad.current_version("x", {"url": unleash["url"], "flag": flags["variant"]})
    assert info.value.status in (401, 403) and "wrong-secret" not in str(info.value)
    ok = {"url": unleash["url"], "flag": flags["variant"]}
    assert target(unleash).validate(ok) == []
    assert "found" in target(unleash).check_connection("ranker", ok)
    assert "PUT" in target(unleash).describe(SwitchRequest("ranker", "1", "2", 1, "x", ok))


def test_variant_weights_split_between_two_versions_are_a_canary_and_abort_keeps_stable(
        unleash: dict[str, str], flags: dict[str, str]) -> None:
    name = "ranker-canary"
    admin(unleash, "POST", BASE, {"name": name, "type": "release"})
    variants = [{"name": v, "weight": w, "weightType": t, "stickiness": "default",
                 "payload": {"type": "string", "value": v}}
                for v, w, t in (("1.3.0", 800, "variable"), ("1.4.0", 200, "fix"))]  # what Unleash's UI sends
    admin(unleash, "POST", f"{BASE}/{name}/environments/development/strategies", {
        "name": "flexibleRollout", "constraints": [], "variants": variants,
        "parameters": {"rollout": "100", "stickiness": "default", "groupId": name}})
    admin(unleash, "POST", f"{BASE}/{name}/environments/development/on")
    s = {"url": unleash["url"], "flag": name}
    t = target(unleash)
    split = t.canary("ranker", s)
    assert split is not None and split.as_dict() == {
        "stable_version": "1.3.0", "stable_percent": 80, "canary_version": "1.4.0", "canary_percent": 20,
        "step": "variant weights of the flag"}
    assert t.current_version("ranker", s) is None  # no single version takes everything mid-canary
    request = SwitchRequest("ranker", "1.4.0", "1.3.0", 5, "errors", s)
    assert "canary gets 0 %" in t.describe_abort(request)
    with pytest.raises(TargetError, match="not aborting towards"):
        t.abort_canary(SwitchRequest("ranker", "1.4.0", "1.2.0", 5, "errors", s))
    result = t.abort_canary(request)
    assert result.served_version == "1.3.0"
    strategy = client_view(unleash, name)["strategies"][0]
    assert {v["name"]: v["weight"] for v in strategy["variants"]} == {"1.3.0": 1000, "1.4.0": 0}
    assert t.canary("ranker", s) is None
    with pytest.raises(TargetError, match="nothing was aborted"):
        t.abort_canary(request)
    assert t.canary("ranker", {**s, "flag": flags["variant"]}) is None  # one version at 1000: no canary
    toggle = {"url": unleash["url"], "flag": flags["toggle"], "mode": "toggle", "on_version": "2", "off_version": "1"}
    assert t.canary("churn", toggle) is None
