"""Kubernetes Deployment target against the fake API server (real HTTP on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from adapters.targets.kubernetes import KubernetesTarget
from bot.core.errors import TargetError
from bot.core.ports import SwitchRequest
from tests.fakes.kube_api import FakeKube

ENV = {"KUBERNETES_TOKEN": "test-token"}


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with FakeKube() as fake:
        fake.add_deployment("ml", "ranker", "repo/ranker:1.4.0")
        yield fake


def settings(kube: FakeKube, **extra: Any) -> dict[str, Any]:
    return {
        "api_url": kube.url,
        "namespace": "ml",
        "deployment": "ranker",
        "container": "model",
        "image": "repo/ranker:{version}",
        "timeout": "5s",
        **extra,
    }


def request(s: dict[str, Any], to: str = "1.3.0") -> SwitchRequest:
    return SwitchRequest(
        model="ranker", from_version="1.4.0", to_version=to, proposal_id=7, reason="errors", settings=s
    )


def target() -> KubernetesTarget:
    return KubernetesTarget(env=ENV, poll_interval=0.01)


def test_switch_patches_image_and_waits_for_rollout(kube: FakeKube) -> None:
    s = settings(kube)
    assert target().current_version("ranker", s) == "1.4.0"
    result = target().switch(request(s))
    dep = kube.get("deployments", "ml", "ranker")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "repo/ranker:1.3.0"
    assert dep["status"]["updatedReplicas"] == 3 and dep["status"]["availableReplicas"] == 3
    assert result.served_version == "1.3.0" and "rollout complete" in result.detail
    patch = next(r for r in kube.requests if r.method == "PATCH")
    assert patch.headers["content-type"] == "application/strategic-merge-patch+json"
    assert patch.json()["metadata"]["resourceVersion"]
    gets_after = [r for r in kube.requests[kube.requests.index(patch) :] if r.method == "GET"]
    assert len(gets_after) >= 3  # waited over several polls
    assert target().current_version("ranker", s) == "1.3.0"
    assert target().served_version("ranker", s) == "1.3.0"
    assert patch.query.get("fieldManager") == ["rollback-bot"]
    assert not any("watch" in r.query for r in kube.requests)  # polled, never watched


def test_env_mode_sets_variable(kube: FakeKube) -> None:
    kube.add_deployment(
        "ml",
        "scorer",
        "repo/scorer:latest",
        env=[{"name": "MODEL_VERSION", "value": "7"}, {"name": "OTHER", "value": "x"}],
    )
    s = settings(kube, deployment="scorer", env="MODEL_VERSION")
    s.pop("image")
    assert target().current_version("scorer", s) == "7"
    target().switch(request(s, to="6"))
    env = kube.get("deployments", "ml", "scorer")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "MODEL_VERSION", "value": "6"} in env and {"name": "OTHER", "value": "x"} in env


def test_conflict_is_retried_after_rereading(kube: FakeKube) -> None:
    kube.before_patch.append(lambda k: k.touch("deployments", "ml", "ranker"))
    target().switch(request(settings(kube)))
    patches = [r for r in kube.requests if r.method == "PATCH"]
    assert len(patches) == 2  # first one 409, then re-read and succeed
    assert (
        kube.get("deployments", "ml", "ranker")["spec"]["template"]["spec"]["containers"][0]["image"]
        == "repo/ranker:1.3.0"
    )


def test_progress_deadline_exceeded_is_reported(kube: FakeKube) -> None:
    with pytest.raises(TargetError, match=r"ProgressDeadlineExceeded.*timed out progressing"):
        target().switch(request(settings(kube, image="repo/ranker-broken:{version}")))


def test_rollout_timeout(kube: FakeKube) -> None:
    with pytest.raises(TargetError, match="did not complete within") as info:
        KubernetesTarget(env=ENV, poll_interval=0.01).switch(request(settings(kube, timeout=0.0)))
    assert info.value.retryable


def test_not_found_and_unauthorized_keep_status(kube: FakeKube) -> None:
    with pytest.raises(TargetError) as info:
        target().switch(request(settings(kube, deployment="nope")))
    assert info.value.status == 404 and 'deployments.apps "nope" not found' in str(info.value)
    with pytest.raises(TargetError) as info:
        KubernetesTarget(env={"KUBERNETES_TOKEN": "wrong"}).current_version("ranker", settings(kube))
    assert info.value.status == 401
    assert "wrong" not in str(info.value) and "wrong" not in (info.value.body or "")


def test_invalid_patch_is_422(kube: FakeKube) -> None:
    with pytest.raises(TargetError) as info:
        target().switch(request(settings(kube, image="{version}"), to=""))
    assert info.value.status == 422 and "Required value" in str(info.value)


def test_describe_validate_and_check(kube: FakeKube) -> None:
    s = settings(kube)
    text = target().describe(request(s))
    assert "repo/ranker:1.3.0" in text and "strategic-merge" in text
    assert kube.requests == []
    assert target().validate(s) == []
    problems = target().validate({"image": "repo/x", "env": "V", "bogus": 1})
    assert any("deployment" in p for p in problems) and any("exactly one" in p for p in problems)
    assert any("bogus" in p for p in problems)
    assert "may patch it" in target().check_connection("ranker", s)
    kube.deny.add("patch:deployments")
    assert "may NOT patch" in target().check_connection("ranker", s)


def test_kubeconfig_credentials(kube: FakeKube, tmp_path: Any) -> None:
    config = tmp_path / "config"
    config.write_text(f"""apiVersion: v1
kind: Config
# a comment
clusters:
- name: local
  cluster:
    server: {kube.url}
contexts:
- name: ctx
  context:
    cluster: local
    user: bot
    namespace: ml
current-context: ctx
users:
- name: bot
  user:
    token: "test-token"
""")
    s = {"kubeconfig": str(config), "deployment": "ranker", "image": "repo/ranker:{version}"}
    assert KubernetesTarget(env={}).current_version("ranker", s) == "1.4.0"
