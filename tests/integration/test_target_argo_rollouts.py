"""Argo Rollouts target against the fake API server: abort + undo the way the kubectl plugin does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

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
    # what lightkube sends: the ReplicaSet list by the Rollout's selector, patches with a field manager
    lists = [r for r in kube.requests if r.path.endswith("/replicasets")]
    assert lists and lists[0].query["labelSelector"] == ["app=ranker"]
    assert all(r.query.get("fieldManager") == ["rollback-bot"] for r in patches)
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


# -- upstream Rollout objects (argoproj/argo-rollouts examples/) ---------------------------------------------
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kube"
DEMO = "argoproj/rollouts-demo:{version}"
REF_DEMO = "docker.intuit.com/docker-rmt/argoproj/rollouts-demo:{version}"


def settle(kube: FakeKube, name: str) -> None:
    for _ in range(2):  # let the controller reach the canary pause
        kube._tick("rollouts", "ml", kube.get("rollouts", "ml", name))


def test_upstream_canary_example_rolls_back(tmp_path: Path) -> None:
    (ro,) = yaml.safe_load_all((FIXTURES / "argo-rollout-canary.yaml").read_text())
    with FakeKube() as kube:
        kube.add_rollout_object("ml", ro)

        def change(obj: dict[str, Any]) -> None:
            obj["spec"]["template"]["spec"]["containers"][0]["image"] = "argoproj/rollouts-demo:yellow"

        kube.apply_spec("rollouts", "ml", "rollout-canary", change)
        settle(kube, "rollout-canary")
        s = settings(kube, rollout="rollout-canary", image=DEMO)
        assert target().current_version("m", s) == "yellow" and target().served_version("m", s) == "blue"
        target().switch(request(s, to="blue"))
        assert target().current_version("m", s) == "blue"
        assert kube.get("rollouts", "ml", "rollout-canary")["status"]["phase"] == "Healthy"


def test_workload_ref_template_comes_from_the_deployment() -> None:
    dep, ro = yaml.safe_load_all((FIXTURES / "argo-workload-ref.yaml").read_text())
    with FakeKube() as kube:
        kube.put("deployments", "ml", dep)
        kube.add_rollout_object("ml", ro)

        def change(obj: dict[str, Any]) -> None:  # CI deploys by changing the referenced Deployment
            obj["spec"]["template"]["spec"]["containers"][0]["image"] = REF_DEMO.format(version="yellow")

        kube.apply_spec("deployments", "ml", "rollout-ref-deployment", change)
        settle(kube, "rollout-ref-deployment")
        s = settings(kube, rollout="rollout-ref-deployment", image=REF_DEMO)
        assert target().current_version("m", s) == "yellow"  # read from the Deployment, not "0 containers"
        assert target().served_version("m", s) == "blue"
        assert "via deployment rollout-ref-deployment" in target().check_connection("m", s)
        rollout_spec_before = kube.get("rollouts", "ml", "rollout-ref-deployment")["spec"]
        result = target().switch(request(s, to="blue"))
        patches = [r for r in kube.requests if r.method == "PATCH"]
        assert patches[0].path.endswith("/rollouts/rollout-ref-deployment/status")
        # as upstream undoWorkloadRef: the JSON patch of /spec/template goes to the referenced Deployment
        assert patches[1].path == "/apis/apps/v1/namespaces/ml/deployments/rollout-ref-deployment"
        assert patches[1].headers["content-type"] == "application/json-patch+json"
        assert patches[1].query.get("fieldManager") == ["rollback-bot"]
        assert [op["path"] for op in patches[1].json()] == ["/metadata/resourceVersion", "/spec/template"]
        dep_now = kube.get("deployments", "ml", "rollout-ref-deployment")
        assert dep_now["spec"]["template"]["spec"]["containers"][0]["image"] == REF_DEMO.format(version="blue")
        assert kube.get("rollouts", "ml", "rollout-ref-deployment")["spec"] == rollout_spec_before
        assert kube.get("rollouts", "ml", "rollout-ref-deployment")["status"]["phase"] == "Healthy"
        assert "deployment rollout-ref-deployment" in result.detail
        assert target().current_version("m", s) == "blue"


def test_workload_ref_of_unsupported_kind() -> None:
    _, ro = yaml.safe_load_all((FIXTURES / "argo-workload-ref.yaml").read_text())
    with FakeKube() as kube:
        ro["spec"]["workloadRef"] = {"apiVersion": "v1", "kind": "PodTemplate", "name": "x"}
        ro["spec"]["template"] = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": []}}
        ro["spec"]["selector"] = {"matchLabels": {"app": "x"}}
        kube.put("rollouts", "ml", ro)
        with pytest.raises(TargetError, match="only a Deployment or ReplicaSet workloadRef"):
            target().current_version("m", settings(kube, rollout="rollout-ref-deployment", image=REF_DEMO))


def test_canary_is_reported_and_only_aborted(kube: FakeKube) -> None:
    """ReportsCanary: the stand-in's canary (paused after setWeight 20); the abort changes nothing else."""
    from bot.core.ports import ReportsCanary, TrafficSplit

    s = settings(kube)
    assert isinstance(target(), ReportsCanary)
    assert target().canary("ranker", s) == TrafficSplit("1.3.0", "1.4.0", 20, "step 2 of 2")
    spec = kube.get("rollouts", "ml", "ranker")["spec"]
    target().abort_canary(request(s))
    assert [r.path for r in kube.requests if r.method == "PATCH"] == [
        "/apis/argoproj.io/v1alpha1/namespaces/ml/rollouts/ranker/status"]
    assert kube.get("rollouts", "ml", "ranker")["spec"] == spec
    assert target().served_version("ranker", s) == "1.3.0" and target().canary("ranker", s) is None
    target().abort_canary(request(s))  # again (an executor resuming after a crash): no second patch
    assert len([r for r in kube.requests if r.method == "PATCH"]) == 1
    kube.add_rollout("ml", "healthy", "repo/ranker:1.3.0")
    with pytest.raises(TargetError, match="no canary in progress"):
        target().abort_canary(request(settings(kube, rollout="healthy")))
