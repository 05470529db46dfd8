"""An alert about a model mid-canary, through the running server: the card says "abort canary" with the traffic
split, the Argo Rollouts stand-in (seeded with upstream objects) sees only the abort, and the stable version is
never touched."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot.core.clock import ManualClock
from bot.core.proposal import ProposalAction, State
from bot.policy_file import TARGETS, parse_policy
from tests.conftest import BASE_POLICY
from tests.e2e.slackbot import SlackBot, slack_bot
from tests.fakes.kube_api import FakeKube
from tests.integration.canary_objects import NS, argo_settings, seed_argo


@pytest.fixture
def kube(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKube]:
    monkeypatch.setenv("KUBERNETES_TOKEN", "test-token")  # what the target reads its credentials from
    with FakeKube() as fake:
        seed_argo(fake)
        yield fake


@pytest.fixture
def bot(db_url: str, clock: ManualClock, kube: FakeKube) -> Iterator[SlackBot]:
    data = {"defaults": {**BASE_POLICY["defaults"], "auto_abort_canary_severity": "warning"},
            "models": {"canary-demo": {"target": "argo-rollouts", "argo-rollouts": argo_settings(kube)}}}
    loaded = parse_policy(data, "test-policy.toml", known_targets=(*TARGETS, "fake"))
    assert loaded.policy is not None, loaded.problems
    with slack_bot(db_url, loaded.policy, clock) as b:
        b.container.service.deploy("canary-demo", "green", actor="api:ci", stable=True)
        b.container.service.deploy("canary-demo", "does-not-exist", actor="api:ci")
        yield b


def test_a_warning_during_a_canary_aborts_it_and_leaves_stable_alone(bot: SlackBot, kube: FakeKube) -> None:
    stable_before = copy.deepcopy(kube.get("replicasets", NS, "canary-demo-877894d5b"))
    spec_before = copy.deepcopy(kube.get("rollouts", NS, "canary-demo")["spec"])
    body: dict[str, Any] = {"alerts": [{"status": "firing", "labels": {
        "alertname": "ErrorRateHigh", "model": "canary-demo", "severity": "warning"}}]}
    r = httpx.post(f"{bot.url}/alerts/generic", json=body, timeout=10,
                   headers={"Authorization": "Bearer e2e-alert-token"})
    assert r.status_code == 202, r.text
    (proposal,) = bot.container.store.proposals(model="canary-demo")
    card = bot.wait_card(proposal.id, "Canary aborted")
    assert "canary-demo: canary aborted" in card and "(abort canary)" in card
    assert "after the abort:" in card and "(canary) 0 %" in card and "(canary) 20 %" in card
    assert "[ Undo" not in card
    done = bot.container.store.get_proposal(proposal.id)
    assert done.action is ProposalAction.ABORT_CANARY and done.state is State.SUCCEEDED
    writes = [r for r in kube.requests if r.method != "GET" and "selfsubjectaccessreviews" not in r.path]
    assert [(w.method, w.path) for w in writes] == [
        ("PATCH", f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/rollouts/canary-demo/status")]
    assert kube.get("replicasets", NS, "canary-demo-877894d5b") == stable_before
    assert kube.get("rollouts", NS, "canary-demo")["spec"] == spec_before
    report = httpx.get(f"{bot.url}/api/proposals/{proposal.id}", timeout=10,
                       headers={"Authorization": "Bearer e2e-alert-token"}).json()
    assert report["action"] == "abort_canary"
