"""Argo Rollouts target against the fake API server: abort + undo the way the kubectl plugin does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from adapters.targets.argo_rollouts import ArgoRolloutsTarget
from bot.core.errors import TargetError
from bot.core.ports import SwitchRequest
from tests.fakes.kube_api import FakeKube

ENV = {"KUBERNETES_TOKEN": "test-token"}


def deploy(kube: FakeKube, image: str) -> None:
    """What CI does: a new image in the Rollout's template; the fake controller starts a canary."""

    def change(ro: dict[str, Any]) -> None:
        ro["spec"]["template"]["spec"]["containers"][0]["image"] = image

    kube.apply_spec("rollouts", "ml", "ranker", change)
    kube.get("rollouts", "ml", "ranker")
    for _ in range(2):  # let the controller reach the canary pause
        kube._tick("rollouts", "ml", kube.get("rollouts", "ml", "ranker"))


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with FakeKube() as fake:
        fake.add_rollout("ml", "ranker", "repo/ranker:1.3.0")
        deploy(fake, "repo/ranker:1.4.0")
        yield fake


def settings(kube: FakeKube, **extra: Any) -> dict[str, Any]:
    return {
        "api_url": kube.url,
        "namespace": "ml",
        "rollout": "ranker",
        "image": "repo/ranker:{version}",
        "timeout": "5s",
        **extra,
    }


def request(s: dict[str, Any], to: str = "1.3.0") -> SwitchRequest:
    return SwitchRequest(
        model="ranker", from_version="1.4.0", to_version=to, proposal_id=3, reason="errors", settings=s
    )


def target() -> ArgoRolloutsTarget:
    return ArgoRolloutsTarget(env=ENV, poll_interval=0.01)


def test_canary_in_progress(kube: FakeKube) -> None:
    ro = kube.get("rollouts", "ml", "ranker")
    assert ro["status"]["phase"] == "Paused" and ro["status"]["stableRS"] != ro["status"]["currentPodHash"]
    assert target().current_version("ranker", settings(kube)) == "1.4.0"
    assert target().served_version("ranker", settings(kube)) == "1.3.0"


def test_abort_then_restore_stable_template(kube: FakeKube) -> None:
    result = target().switch(request(settings(kube)))
    patches = [r for r in kube.requests if r.method == "PATCH"]
    assert patches[0].path.endswith("/rollouts/ranker/status")
    assert patches[0].headers["content-type"] == "application/merge-patch+json"
    assert patches[0].json() == {"status": {"abort": True}}
    assert patches[1].headers["content-type"] == "application/json-patch+json"
    ops = patches[1].json()
    assert ops[0]["path"] == "/metadata/resourceVersion" and ops[1]["path"] == "/spec/template"
    assert "rollouts-pod-template-hash" not in ops[1]["value"]["metadata"]["labels"]
    ro = kube.get("rollouts", "ml", "ranker")
    assert ro["status"]["phase"] == "Healthy" and ro["status"]["stableRS"] == ro["status"]["currentPodHash"]
    assert ro["spec"]["template"]["spec"]["containers"][0]["image"] == "repo/ranker:1.3.0"
    assert "aborted the update" in result.detail and "revision 1" in result.detail
    assert target().current_version("ranker", settings(kube)) == "1.3.0"


def test_conflict_rereads(kube: FakeKube) -> None:
    kube.before_patch.append(lambda k: None)  # the abort patch goes through
    kube.before_patch.append(lambda k: k.touch("rollouts", "ml", "ranker"))
    target().switch(request(settings(kube)))
    patches = [r for r in kube.requests if r.method == "PATCH"]
    assert len(patches) == 3  # abort, 409, retry
    assert kube.get("rollouts", "ml", "ranker")["status"]["phase"] == "Healthy"


def test_unknown_version_uses_image_template(kube: FakeKube) -> None:
    with pytest.raises(TargetError, match="did not become Healthy"):
        # 1.2.0 has no ReplicaSet: the image is set, which the fake treats as a new canary (Paused)
        ArgoRolloutsTarget(env=ENV, poll_interval=0.01).switch(
            request(settings(kube, timeout=0.2), to="1.2.0")
        )
    image = kube.get("rollouts", "ml", "ranker")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "repo/ranker:1.2.0"


def test_crd_refuses_strategic_merge(kube: FakeKube) -> None:
    from lightkube.types import PatchType

    from adapters.targets.kube import ROLLOUT, KubeClient

    with KubeClient("argo-rollouts", settings(kube), env=ENV) as client:
        with pytest.raises(TargetError) as info:
            client.patch(ROLLOUT, "ranker", {"spec": {}}, PatchType.STRATEGIC, "strategic patch")
    assert info.value.status == 415 and "unknown format" in str(info.value)
    assert len([r for r in kube.requests if r.method == "PATCH"]) == 1  # a 4xx is never retried


def test_describe_validate_check(kube: FakeKube) -> None:
    s = settings(kube)
    assert '"abort":true' in target().describe(request(s))
    assert target().validate(s) == []
    assert any("rollout" in p for p in target().validate({"image": "x:{version}"}))
    assert "phase Paused" in target().check_connection("ranker", s)
