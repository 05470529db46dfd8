"""KServe target against the fake API server: canary pinned to 0 %, or storageUri switched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.targets.kserve import KServeTarget
from bot.core.errors import TargetError
from bot.core.ports import SwitchRequest
from tests.fakes.kube_api import FakeKube

ENV = {"KUBERNETES_TOKEN": "test-token"}
URI = "s3://models/ranker/{version}"


def ci_deploy(kube: FakeKube, version: str, canary: int | None) -> None:
    def change(isvc: dict[str, Any]) -> None:
        isvc["spec"]["predictor"]["model"]["storageUri"] = URI.format(version=version)
        if canary is not None:
            isvc["spec"]["predictor"]["canaryTrafficPercent"] = canary

    kube.apply_spec("inferenceservices", "ml", "ranker", change)
    settle(kube)


def settle(kube: FakeKube, name: str = "ranker") -> None:
    """Let the fake controller finish what it started."""
    while kube.sim[("inferenceservices", "ml", name)].get("steps"):
        kube._tick("inferenceservices", "ml", kube.get("inferenceservices", "ml", name))


def serving_uri(kube: FakeKube, name: str = "ranker") -> str:
    traffic = kube.get("inferenceservices", "ml", name)["status"]["components"]["predictor"]["traffic"]
    full = [t for t in traffic if t["percent"] == 100]
    assert len(full) == 1
    return kube.isvc_revision_uri("ml", name, full[0]["revisionName"])


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with FakeKube() as fake:
        fake.add_isvc("ml", "ranker", URI.format(version="1.3.0"))
        yield fake


def settings(kube: FakeKube, **extra: Any) -> dict[str, Any]:
    return {
        "api_url": kube.url,
        "namespace": "ml",
        "inference_service": "ranker",
        "storage_uri": URI,
        "timeout": "5s",
        **extra,
    }


def request(s: dict[str, Any], to: str = "1.3.0") -> SwitchRequest:
    return SwitchRequest("ranker", "1.4.0", to, 11, "latency", s)


def target() -> KServeTarget:
    return KServeTarget(env=ENV, poll_interval=0.01)


def test_live_canary_is_pinned_to_zero(kube: FakeKube) -> None:
    ci_deploy(kube, "1.4.0", canary=10)
    s = settings(kube)
    assert target().current_version("ranker", s) == "1.4.0"
    assert target().served_version("ranker", s) is None  # traffic split: cannot say one version
    result = target().switch(request(s))
    patch = next(r for r in kube.requests if r.method == "PATCH")
    assert patch.headers["content-type"] == "application/merge-patch+json"
    assert patch.json()["spec"] == {"predictor": {"canaryTrafficPercent": 0}}
    traffic = kube.get("inferenceservices", "ml", "ranker")["status"]["components"]["predictor"]["traffic"]
    prev = next(t for t in traffic if not t["latestRevision"])
    assert prev["percent"] == 100
    assert kube.isvc_revision_uri("ml", "ranker", prev["revisionName"]) == URI.format(version="1.3.0")
    assert "canary traffic set to 0%" in result.detail
    assert target().current_version("ranker", s) == "1.3.0"
    assert target().served_version("ranker", s) == "1.3.0"


def test_without_canary_storage_uri_is_set(kube: FakeKube) -> None:
    ci_deploy(kube, "1.4.0", canary=None)
    s = settings(kube)
    target().switch(request(s))
    isvc = kube.get("inferenceservices", "ml", "ranker")
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == URI.format(version="1.3.0")
    assert isvc["spec"]["predictor"]["model"]["modelFormat"] == {"name": "sklearn"}  # merge kept the rest
    assert target().served_version("ranker", s) == "1.3.0"


def test_failed_revision_is_reported(kube: FakeKube) -> None:
    with pytest.raises(TargetError, match="RevisionFailed"):
        target().switch(request(settings(kube), to="broken-1"))


def test_not_found(kube: FakeKube) -> None:
    with pytest.raises(TargetError) as info:
        target().current_version("ranker", settings(kube, inference_service="nope"))
    assert info.value.status == 404 and "not found" in str(info.value)


def test_describe_validate_check(kube: FakeKube) -> None:
    s = settings(kube)
    assert "canaryTrafficPercent: 0" in target().describe(request(s))
    assert target().validate(s) == []
    assert any("{version}" in p for p in target().validate({**s, "storage_uri": "s3://x"}))
    assert "may patch it" in target().check_connection("ranker", s)


def test_autoscaler_generation_does_not_end_the_wait_early(kube: FakeKube) -> None:
    """Knative's generation, copied into status.observedGeneration, runs ahead of the InferenceService's."""
    ci_deploy(kube, "1.4.0", canary=None)
    kube.isvc_autoscale("ml", "ranker", times=40)
    isvc = kube.get("inferenceservices", "ml", "ranker")
    assert isvc["status"]["observedGeneration"] > isvc["metadata"]["generation"] + 1
    result = target().switch(request(settings(kube)))
    # done only once the new revision takes 100 % of the traffic, not at the first (stale, Ready) read
    assert serving_uri(kube) == URI.format(version="1.3.0")
    assert "takes 100 % of the traffic" in result.detail
    gets = [r for r in kube.requests if r.method == "GET"]
    assert len(gets) >= 4


def test_generation_behind_does_not_time_out_a_success() -> None:
    """The InferenceService's own generation ahead of Knative's (e.g. many spec edits): still judged done."""
    with FakeKube() as kube:
        kube.add_isvc("ml", "ranker", URI.format(version="1.4.0"))
        kube.get("inferenceservices", "ml", "ranker")["metadata"]["generation"] = 57
        target().switch(request(settings(kube, timeout="2s")))
        assert serving_uri(kube) == URI.format(version="1.3.0")


def test_pin_waits_for_the_stable_revision_at_100(kube: FakeKube) -> None:
    ci_deploy(kube, "1.4.0", canary=10)
    kube.isvc_autoscale("ml", "ranker", times=40)
    target().switch(request(settings(kube)))
    assert serving_uri(kube) == URI.format(version="1.3.0")


def test_served_version_unknown_while_a_new_revision_waits(kube: FakeKube) -> None:
    def change(isvc: dict[str, Any]) -> None:
        isvc["spec"]["predictor"]["model"]["storageUri"] = URI.format(version="1.4.0")

    kube.apply_spec("inferenceservices", "ml", "ranker", change)
    kube._tick("inferenceservices", "ml", kube.get("inferenceservices", "ml", "ranker"))
    kube._tick("inferenceservices", "ml", kube.get("inferenceservices", "ml", "ranker"))  # created, not ready
    kube.sim[("inferenceservices", "ml", "ranker")]["steps"] = []  # the new revision never becomes ready
    kube.get("inferenceservices", "ml", "ranker")["status"]["conditions"][-1]["status"] = "True"
    assert target().served_version("ranker", settings(kube)) is None


def test_raw_mode_waits_for_the_predictor_deployment() -> None:
    with FakeKube() as kube:
        kube.add_isvc("ml", "ranker", URI.format(version="1.4.0"), raw=True)
        s = settings(kube)
        assert "(raw mode)" in target().check_connection("ranker", s)
        result = target().switch(request(s))
        dep = kube.get("deployments", "ml", "ranker-predictor")
        annotations = dep["spec"]["template"]["metadata"]["annotations"]
        assert annotations["internal.serving.kserve.io/storage-initializer-sourceuri"] == URI.format(version="1.3.0")
        assert dep["status"]["updatedReplicas"] == 2 and dep["status"]["replicas"] == 2  # rollout finished
        assert "deployment ranker-predictor rolled out" in result.detail
        assert target().served_version("ranker", s) == "1.3.0"


def test_kserve_rollout_sample_canary_pinned_back() -> None:
    """KServe's own rollout sample (docs/samples/v1beta1/rollout): default model, then a 10 % canary of
    flowers-2; rolling back to flowers is the sample's pinned.yaml, and done once revision 1 has 100 %."""
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "kube"
    default, canary, pinned = (
        yaml.safe_load((fixtures / f"kserve-rollout-{n}.yaml").read_text()) for n in ("default", "canary", "pinned")
    )
    with FakeKube() as kube:
        kube.add_isvc_object("default", default)
        first = kube.get("inferenceservices", "default", "my-model")["status"]["components"]["predictor"]
        kube.apply_spec("inferenceservices", "default", "my-model", lambda o: o.update(spec=canary["spec"]))
        while kube.sim[("inferenceservices", "default", "my-model")].get("steps"):
            kube._tick("inferenceservices", "default", kube.get("inferenceservices", "default", "my-model"))
        s = {
            "api_url": kube.url,
            "namespace": "default",
            "inference_service": "my-model",
            "storage_uri": "gs://kfserving-examples/models/tensorflow/{version}",
            "timeout": "5s",
        }
        assert target().current_version("my-model", s) == "flowers-2"
        assert "(canary live)" in target().check_connection("my-model", s)
        result = target().switch(SwitchRequest("my-model", "flowers-2", "flowers", 1, "errors", s))
        isvc = kube.get("inferenceservices", "default", "my-model")
        assert isvc["spec"] == pinned["spec"]  # exactly the sample's rollback
        predictor = isvc["status"]["components"]["predictor"]
        assert {t["revisionName"]: t["percent"] for t in predictor["traffic"]}[first["latestRolledoutRevision"]] == 100
        assert "canary traffic set to 0%" in result.detail
        assert target().current_version("my-model", s) == "flowers"
        assert target().served_version("my-model", s) == "flowers"


def test_live_canary_is_reported_and_aborted(kube: FakeKube) -> None:
    """ReportsCanary: the split as KServe's status shows it; the abort is the pin (canaryTrafficPercent: 0)."""
    from bot.core.ports import ReportsCanary

    s = settings(kube)
    assert isinstance(target(), ReportsCanary) and target().canary("ranker", s) is None  # no canary yet
    ci_deploy(kube, "1.4.0", canary=10)
    split = target().canary("ranker", s)
    assert split is not None and (split.stable_version, split.canary_version, split.canary_percent) == (
        None, "1.4.0", 10)
    result = target().abort_canary(request(s))
    assert [r.json()["spec"] for r in kube.requests if r.method == "PATCH"] == [
        {"predictor": {"canaryTrafficPercent": 0}}]
    assert serving_uri(kube) == URI.format(version="1.3.0") and result.served_version == "1.3.0"
    assert target().canary("ranker", s) is None
    with pytest.raises(TargetError, match="no live canary any more"):
        target().abort_canary(request(s))
    assert "canaryTrafficPercent: 0" in target().describe_abort(request(s))
