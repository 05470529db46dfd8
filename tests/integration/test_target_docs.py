"""The Kubernetes target pages' snippets work: the TOML passes `check`, and the documented Role is enough for
a whole rollback against the API stand-in enforcing it (403 for anything the Role does not grant)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.targets import TARGET_FACTORIES
from adapters.targets.common import CheckableTarget
from bot.core.ports import SwitchRequest
from tests.fakes.kube_api import FakeKube

DOCS = Path(__file__).resolve().parents[2] / "docs" / "targets"
ENV = {"KUBERNETES_TOKEN": "test-token"}


def blocks(page: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", (DOCS / page).read_text(), re.S)


def documented(target: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    (toml_text,) = blocks(f"{target}.md", "toml")
    settings = tomllib.loads(toml_text)["models"]["ranker"][target]
    (role_text,) = blocks(f"{target}.md", "yaml")
    role = yaml.safe_load(role_text)
    assert role["kind"] == "Role"
    return settings, role["rules"]


@pytest.mark.parametrize("target", ["kubernetes", "argo-rollouts", "kserve"])
def test_documented_settings_pass_check(target: str) -> None:
    settings, _ = documented(target)
    checked = TARGET_FACTORIES[target](env=ENV)
    assert isinstance(checked, CheckableTarget) and checked.validate(settings) == []


def run(kube: FakeKube, target: str, to: str, **extra: Any) -> str:
    settings, rules = documented(target)
    kube.role_rules = rules
    s = {**settings, **extra, "api_url": kube.url, "timeout": "5s"}
    factory = TARGET_FACTORIES[target]
    t = factory(env=ENV, poll_interval=0.01)
    assert isinstance(t, CheckableTarget)
    result = t.switch(SwitchRequest("ranker", "x", to, 1, "docs", s))
    assert "may patch it" in t.check_connection("ranker", s)
    return str(result.detail)


def test_kubernetes_role_is_enough() -> None:
    with FakeKube() as kube:
        kube.add_deployment("ml", "ranker", "repo/ranker:1.4.0")
        assert "rollout complete" in run(kube, "kubernetes", "1.3.0")


def test_argo_rollouts_role_is_enough() -> None:
    with FakeKube() as kube:
        kube.add_rollout("ml", "ranker", "repo/ranker:1.3.0")

        def change(ro: dict[str, Any]) -> None:
            ro["spec"]["template"]["spec"]["containers"][0]["image"] = "repo/ranker:1.4.0"

        kube.apply_spec("rollouts", "ml", "ranker", change)
        for _ in range(2):
            kube._tick("rollouts", "ml", kube.get("rollouts", "ml", "ranker"))
        assert "aborted the update" in run(kube, "argo-rollouts", "1.3.0")


@pytest.mark.parametrize("raw", [False, True])
def test_kserve_role_is_enough(raw: bool) -> None:
    with FakeKube() as kube:
        kube.add_isvc("ml", "ranker", "s3://models/ranker/1.4.0", raw=raw)
        assert "Ready" in run(kube, "kserve", "1.3.0")


def test_a_missing_grant_is_a_403_with_the_servers_words() -> None:
    from bot.core.errors import TargetError

    with FakeKube() as kube:
        kube.add_deployment("ml", "ranker", "repo/ranker:1.4.0")
        _, rules = documented("kubernetes")
        kube.role_rules = [{**rules[0], "verbs": ["get"]}]
        settings, _ = documented("kubernetes")
        t = TARGET_FACTORIES["kubernetes"](env=ENV, poll_interval=0.01)
        request = SwitchRequest("ranker", "1.4.0", "1.3.0", 1, "docs", {**settings, "api_url": kube.url})
        with pytest.raises(TargetError) as info:
            t.switch(request)
        assert info.value.status == 403 and 'cannot patch resource "deployments"' in str(info.value)
