"""Canary-aware actions against the Kubernetes stand-in, seeded with upstream objects of a rollout mid-canary.

A canary in progress becomes "abort canary": the canary gets 0 % and the stable version is never touched (no
patch of the Rollout's template, of the stable ReplicaSet or of the InferenceService's model).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.targets.argo_rollouts import ArgoRolloutsTarget
from adapters.targets.kserve import KServeTarget
from bot.config import settings_from
from bot.core.clock import ManualClock
from bot.core.errors import Refused
from bot.core.ports import ReportsCanary, SwitchRequest, TrafficSplit
from bot.core.proposal import ProposalAction, State
from bot.core.requests import AlertEvidence, RollbackRequest
from bot.core.severity import Severity
from bot.store.db import make_engine
from bot.store.migrate import upgrade
from tests.conftest import make_policy
from tests.fakes.kube_api import FakeKube
from tests.integration.canary_objects import NS, argo_settings, seed_argo, seed_kserve

ENV = {"KUBERNETES_TOKEN": "test-token"}


@pytest.fixture
def argo() -> Iterator[FakeKube]:
    with FakeKube() as kube:
        seed_argo(kube)
        yield kube


def stable_untouched(kube: FakeKube, before: dict[str, Any]) -> None:
    """Only the abort reached the API server; the template and the stable ReplicaSet are as they were."""
    patches = [r for r in kube.requests if r.method in ("PATCH", "PUT", "POST", "DELETE")
               and "selfsubjectaccessreviews" not in r.path]
    assert [r.path for r in patches] == [f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/rollouts/canary-demo/status"]
    assert patches[0].json() == {"status": {"abort": True}}
    rollout = kube.get("rollouts", NS, "canary-demo")
    assert rollout["spec"] == before["spec"]
    stable = kube.get("replicasets", NS, "canary-demo-877894d5b")
    assert stable == before["stable_rs"]
    assert rollout["status"]["stableRS"] == "877894d5b"


def snapshot(kube: FakeKube) -> dict[str, Any]:
    return {"spec": copy.deepcopy(kube.get("rollouts", NS, "canary-demo")["spec"]),
            "stable_rs": copy.deepcopy(kube.get("replicasets", NS, "canary-demo-877894d5b"))}


def test_argo_reports_the_upstream_canary(argo: FakeKube) -> None:
    target = ArgoRolloutsTarget(env=ENV, poll_interval=0.01)
    assert isinstance(target, ReportsCanary)
    split = target.canary("m", argo_settings(argo))
    assert split == TrafficSplit("green", "does-not-exist", 20, "step 1 of 8")
    assert split.stable_percent == 80


def test_argo_abort_canary_touches_only_the_abort(argo: FakeKube) -> None:
    before = snapshot(argo)
    target = ArgoRolloutsTarget(env=ENV, poll_interval=0.01)
    request = SwitchRequest(model="m", from_version="does-not-exist", to_version="green", proposal_id=1,
                            reason="errors", settings=argo_settings(argo))
    result = target.abort_canary(request)
    assert result.served_version == "green" and "canary aborted" in result.detail
    assert "canary weight 0 %" in result.detail
    stable_untouched(argo, before)
    assert target.canary("m", argo_settings(argo)) is None  # aborted: no canary in progress any more
    assert '"abort":true' in target.describe_abort(request)


def service_for(tmp_path: Path, kube: FakeKube, clock: ManualClock, **policy: Any) -> Any:
    from bot.bootstrap import build

    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    models = {"canary-demo": {"target": "argo-rollouts", "argo-rollouts": argo_settings(kube)}}
    container = build(settings_from({"DATABASE_URL": url, "ALERT_WEBHOOK_TOKEN": "t"}),
                      policy=make_policy(policy, models), clock=clock, engine=make_engine(url),
                      targets={"argo-rollouts": ArgoRolloutsTarget(env=ENV, poll_interval=0.01)})
    svc = container.service
    svc.deploy("canary-demo", "green", actor="api:ci", stable=True)
    svc.deploy("canary-demo", "does-not-exist", actor="api:ci")
    return container


def test_canary_in_progress_becomes_abort_canary(tmp_path: Path, argo: FakeKube, clock: ManualClock) -> None:
    """auto_abort_canary_severity below auto_rollback_severity: a warning aborts the canary by itself."""
    before = snapshot(argo)
    container = service_for(tmp_path, argo, clock, auto_abort_canary_severity="warning")
    try:
        p = container.service.request_rollback(RollbackRequest(
            "canary-demo", actor="alert:alertmanager", reason="errors up",
            severity="warning",
            alerts=AlertEvidence(Severity.WARNING)))
        assert p.action is ProposalAction.ABORT_CANARY and p.state is State.SUCCEEDED
        assert (p.from_version, p.to_version) == ("does-not-exist", "green")
        assert "auto_abort_canary_severity warning" in p.decision_reason
        assert p.summary["traffic"]["before"]["canary_percent"] == 20
        assert p.summary["traffic"]["after"] == {**p.summary["traffic"]["before"], "canary_percent": 0,
                                                 "stable_percent": 100, "step": "aborted"}
        assert "abort the canary of does-not-exist at 20 %" in p.target_note
        stable_untouched(argo, before)
        audit = container.store.audit_records(proposal_id=p.id)
        named = {r.action: r.inputs.get("action") for r in audit}
        assert named["proposal.created"] == named["rollback.succeeded"] == "abort_canary"
        with pytest.raises(Refused, match="aborted a canary"):
            container.service.undo(p.id, "slack:U0LEAD")
    finally:
        container.close()


def test_without_the_setting_a_warning_waits_for_people(tmp_path: Path, argo: FakeKube,
                                                        clock: ManualClock) -> None:
    container = service_for(tmp_path, argo, clock)
    try:
        p = container.service.request_rollback(RollbackRequest(
            "canary-demo", actor="alert:alertmanager", reason="errors up",
            severity="warning",
            alerts=AlertEvidence(Severity.WARNING)))
        assert p.action is ProposalAction.ABORT_CANARY and p.state is State.PROPOSED
        assert "below auto_rollback_severity critical" in p.decision_reason
        assert not [r for r in argo.requests if r.method == "PATCH"]
    finally:
        container.close()


def test_a_person_asking_for_an_older_version_gets_a_rollback(tmp_path: Path, argo: FakeKube,
                                                              clock: ManualClock) -> None:
    container = service_for(tmp_path, argo, clock)
    try:
        container.service.deploy("canary-demo", "blue", actor="api:ci", stable=True)  # history: green, x, blue
        container.service.deploy("canary-demo", "does-not-exist", actor="api:ci")
        p = container.service.request_rollback(RollbackRequest(
            "canary-demo", actor="slack:U0BOB", reason="r", to_version="blue"))
        assert p.action is ProposalAction.ROLLBACK  # the stable side runs green, not blue
    finally:
        container.close()


# -- KServe ---------------------------------------------------------------------------------------------------
def test_kserve_reports_and_aborts_the_upstream_canary() -> None:
    uri = "gs://kfserving-examples/models/tensorflow/{version}"
    with FakeKube() as kube:
        seed_kserve(kube)
        s = {"api_url": kube.url, "namespace": "ml", "inference_service": "my-model", "storage_uri": uri,
             "timeout": "5s"}
        target = KServeTarget(env=ENV, poll_interval=0.01)
        split = target.canary("m", s)
        assert split is not None and (split.canary_version, split.canary_percent) == ("flowers-2", 10)
        assert split.stable_version is None and "my-model-predictor-default-00001" in (split.step or "")
        request = SwitchRequest(model="m", from_version="flowers-2", to_version="flowers", proposal_id=1,
                                reason="errors", settings=s)
        result = target.abort_canary(request)
        patches = [r for r in kube.requests if r.method == "PATCH"]
        assert len(patches) == 1
        body = patches[0].json()
        assert body["spec"] == {"predictor": {"canaryTrafficPercent": 0}}  # the model block is not touched
        traffic = kube.get("inferenceservices", "ml", "my-model")["status"]["components"]["predictor"]["traffic"]
        assert {t["revisionName"]: t["percent"] for t in traffic}["my-model-predictor-default-00001"] == 100
        assert "canary traffic set to 0%" in result.detail
        assert target.canary("m", s) is None


def test_dry_run_describes_the_abort_and_calls_nothing(tmp_path: Path, argo: FakeKube, clock: ManualClock) -> None:
    container = service_for(tmp_path, argo, clock, dry_run=True, auto_abort_canary_severity="warning")
    try:
        p = container.service.request_rollback(RollbackRequest(
            "canary-demo", actor="alert:alertmanager", reason="errors up",
            severity="warning",
            alerts=AlertEvidence(Severity.WARNING)))
        assert p.action is ProposalAction.ABORT_CANARY and p.state is State.SUCCEEDED
        assert p.result is not None and p.result.startswith("dry run: would PATCH")
        assert '{"status":{"abort":true}}' in p.result and "nothing was switched" in p.result
        assert not [r for r in argo.requests if r.method == "PATCH"]
    finally:
        container.close()
