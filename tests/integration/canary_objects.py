"""Upstream objects of a rollout mid-canary, seeded into the Kubernetes stand-in (tests/fixtures/upstream/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.fakes.kube_api import FakeKube

UPSTREAM = Path(__file__).resolve().parents[1] / "fixtures" / "upstream"
NS = "jesse-test"  # the namespace of argo-rollouts' own test data
DEMO = "argoproj/rollouts-demo:{version}"


def seed_argo(kube: FakeKube) -> None:
    """Rollout `canary-demo` paused at step 0 (setWeight 20), stable `green`, canary `does-not-exist`."""
    rollout, stable_rs, canary_rs = yaml.safe_load_all((UPSTREAM / "argo-rollouts-mid-canary.yaml").read_text())
    kube.add_as_is("rollouts", NS, rollout)
    kube.add_as_is("replicasets", NS, stable_rs)
    kube.add_as_is("replicasets", NS, canary_rs)


def argo_settings(kube: FakeKube) -> dict[str, Any]:
    return {"api_url": kube.url, "namespace": NS, "rollout": "canary-demo", "image": DEMO, "timeout": "5s"}


def seed_kserve(kube: FakeKube, ns: str = "ml") -> None:
    """InferenceService `my-model`: 10 % on revision 00003 (flowers-2), 90 % on 00001."""
    (isvc,) = yaml.safe_load_all((UPSTREAM / "kserve-canary-tag-routing.yaml").read_text())
    predictor = json.loads((UPSTREAM / "kserve-canary-predictor-status.json").read_text())
    isvc["status"] = {"components": {"predictor": predictor},
                      "conditions": [{"type": "Ready", "status": "True"}]}
    kube.add_as_is("inferenceservices", ns, isvc)
