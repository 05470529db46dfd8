"""The whole alert path with real components: an exporter's errors → Prometheus 2.42 rule → Alertmanager 0.25
webhook (bearer token, grouping, send_resolved) → the bot's real HTTP app under uvicorn → a proposal or an
automatic rollback → the resolution follows. Only the deployment target is a fake (it records switches)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bot.bootstrap import Container, build
from bot.config import settings_from
from bot.core.clock import SystemClock
from bot.core.proposal import Proposal, State
from bot.policy_file import TARGETS, parse_policy
from bot.store.db import make_engine
from bot.web.app import create_app
from devkit.serving import RunningServer, start_server
from tests.fakes.ports import FakeTarget, RecordingNotifier
from tests.integration.promstack import PromStack

pytestmark = pytest.mark.prometheus


@dataclass
class Bot:
    model: str
    container: Container
    server: RunningServer
    target: FakeTarget
    notifier: RecordingNotifier
    token: str

    def api(self, path: str) -> Any:
        r = httpx.get(f"{self.server.url}{path}", headers={"Authorization": f"Bearer {self.token}"}, timeout=5)
        r.raise_for_status()
        return r.json()

    def proposals(self) -> list[Proposal]:
        return self.container.store.proposals(model=self.model)


def wait_until(check: Callable[[], Any], what: str, timeout: float = 40.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.2)
    raise TimeoutError(f"{what} not within {timeout} s")


@pytest.fixture
def bot(promstack: PromStack, db_url: str) -> Iterator[Bot]:
    assert promstack.receiver is not None
    model = promstack.unique_model("e2e")
    loaded = parse_policy({"defaults": {"channel": "C0ALERTS", "approvers": ["U0LEAD"], "cooldown": "30m"},
                           "models": {model: {"target": "fake"}}}, "e2e.toml", known_targets=(*TARGETS, "fake"))
    assert loaded.policy is not None, loaded.problems
    target, notifier = FakeTarget(), RecordingNotifier()
    settings = settings_from({"DATABASE_URL": db_url, "ALERT_WEBHOOK_TOKEN": promstack.webhook_token})
    container = build(settings, policy=loaded.policy, clock=SystemClock(), engine=make_engine(db_url),
                      targets={"fake": target}, notifier=notifier)
    for version in ("1", "2", "3"):
        container.service.deploy(model, version, actor="api:ci", stable=version != "3")
    target.live[model] = "3"
    server = start_server(create_app(container))
    promstack.receiver.forward_to(f"{server.url}/alerts/alertmanager")
    try:
        yield Bot(model, container, server, target, notifier, promstack.webhook_token)
    finally:
        promstack.receiver.forward_to(None)
        promstack.exporter.set_error_rate(model, 0.0)
        server.stop()
        container.close()


def test_warning_alert_becomes_a_proposal_and_its_resolution_cancels_it(promstack: PromStack, bot: Bot) -> None:
    promstack.exporter.set_error_rate(bot.model, 0.3)
    [proposal] = wait_until(bot.proposals, "a proposal from the warning alert")
    shown = bot.api(f"/api/proposals/{proposal.id}")
    assert shown["state"] == "proposed" and shown["kind"] == "alert" and shown["severity"] == "warning"
    assert shown["requested_by"] == "alert:alertmanager" and shown["reason"].startswith("Error ratio for model")
    [alert] = bot.container.store.alerts_for_proposal(proposal.id)
    assert alert.name == "ModelErrorRateHigh" and alert.labels["model"] == bot.model
    assert alert.links["generatorURL"].startswith(promstack.prometheus_url)
    assert bot.target.switches == []

    promstack.exporter.set_error_rate(bot.model, 0.0)
    done = wait_until(lambda: (p := bot.container.store.get_proposal(proposal.id)).state is State.CANCELLED and p,
                      "the resolved alert cancelling the proposal")
    assert done.result and done.result.startswith("all 1 alert(s) resolved at ")
    assert done.result.endswith(" UTC before anyone decided")
    assert bot.notifier.names().count("created") == 1 and bot.notifier.names()[-1] == "cancelled"
    assert len(bot.proposals()) == 1 and bot.target.switches == []


def test_critical_alert_rolls_back_once_and_the_resolution_joins_the_timeline(promstack: PromStack,
                                                                              bot: Bot) -> None:
    promstack.exporter.set_error_rate(bot.model, 0.8)
    [proposal] = wait_until(lambda: [p for p in bot.proposals() if p.state is State.SUCCEEDED],
                            "an automatic rollback from the critical alert")
    assert bot.api(f"/api/models/{bot.model}")["current_version"] == "2"
    assert [(s.from_version, s.to_version) for s in bot.target.switches] == [("3", "2")]
    assert proposal.decided_by == "bot:policy" and proposal.severity == "critical"

    promstack.exporter.stop_traffic(bot.model)  # no traffic: the ratio is NaN and the alert resolves directly
    wait_until(lambda: [r for r in bot.container.store.audit_records(proposal_id=proposal.id)
                        if r.action == "alert.resolved"], "the resolution in the incident timeline")
    # The row is written with the resolution (intake); the decider tells the card afterwards, in its own time.
    wait_until(lambda: "timeline" in bot.notifier.names(), "the timeline message about the resolution")
    assert bot.container.store.get_proposal(proposal.id).state is State.SUCCEEDED
    assert len(bot.target.switches) == 1 and len(bot.proposals()) == 1
