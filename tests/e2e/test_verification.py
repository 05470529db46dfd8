"""Metric summaries, charts and verification against the real Prometheus, driven good → bad → good."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from bot.core.clock import SystemClock
from bot.core.policy import Action
from bot.core.proposal import State
from bot.core.severity import Severity
from bot.slack.cards import ACTION_APPROVE
from tests.conftest import make_policy
from tests.e2e.slackbot import SlackBot, slack_bot
from tests.integration.promstack import PromStack


def ratio(model: str) -> str:
    return (f'sum(rate(model_errors_total{{model="{model}"}}[5s])) / '
            f'sum(rate(model_requests_total{{model="{model}"}}[5s]))')


@pytest.fixture
def scenario(promstack: PromStack, tmp_path: Any) -> Iterator[Any]:
    """A bot on SQLite whose PROMETHEUS_URL is the real Prometheus; one fresh model per test."""
    from bot.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    model = promstack.unique_model("verify")

    def start(metrics_expr: str | None = None, **overrides: Any) -> Any:
        models = {model: {"target": "fake", **({"metrics": {"error_rate": metrics_expr or ratio(model)}})}}
        policy = make_policy({"verify_after": "1s", **overrides}, models=models)
        return slack_bot(url, policy, SystemClock(), prometheus_url=promstack.prometheus_url)

    yield model, start
    promstack.exporter.stop_traffic(model)


def incident(bot: SlackBot, promstack: PromStack, model: str) -> int:
    """Good traffic on v6, deploy v7, errors rise, a person proposes the rollback."""
    svc = bot.container.service
    promstack.exporter.set_error_rate(model, 0.0)
    svc.deploy(model, "6", actor="api:ci", stable=True)
    wait_until(lambda: promstack.query(ratio(model)), "the good version's ratio in Prometheus")
    time.sleep(3)
    svc.deploy(model, "7", actor="api:ci")
    promstack.exporter.set_error_rate(model, 0.8)
    wait_until(lambda: _value(promstack, model) > 0.75, "the error ratio to rise")
    reply = bot.command_reply(f"{model} errors since v7")
    return int(reply.split("#", 1)[1].split()[0])


def _value(promstack: PromStack, model: str) -> float:
    rows = promstack.query(ratio(model))
    return float(rows[0]["value"][1]) if rows else 0.0


def wait_until(check: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (ValueError, KeyError, IndexError):
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def approve_and_verify(bot: SlackBot, pid: int) -> str:
    bot.press(ACTION_APPROVE, "U0LEAD", pid)
    bot.wait_card(pid, "Rolled back")
    time.sleep(1.1)  # verify_after = 1s
    bot.sweep()
    return bot.wait_card(pid, "Verification:")


def test_summary_matches_prometheus_then_recovered_with_chart(scenario: Any, promstack: PromStack) -> None:
    model, start = scenario
    with start() as bot:
        pid = incident(bot, promstack, model)
        p = bot.container.store.get_proposal(pid)
        line = p.summary["metrics"][0]
        assert line["name"] == "error_rate" and line["now"] == pytest.approx(0.8, abs=0.15)
        assert line["baseline"] == pytest.approx(0.0, abs=0.05) and line["delta"] > 0.5
        assert "error_rate" in bot.card(pid) and "before 0" in bot.card(pid)
        uploads = bot.slack.wait_for("files.completeUploadExternal", 1, timeout=20)
        png = bot.slack.file(str(uploads[0].body["files"][0]["id"]))
        assert png is not None and bytes(png["content"]).startswith(b"\x89PNG")
        promstack.exporter.set_error_rate(model, 0.0)
        wait_until(lambda: _value(promstack, model) < 0.01, "the errors to drain")
        card = approve_and_verify(bot, pid)
        assert "Verification: recovered" in card
        audit = [r.action for r in bot.container.store.audit_records(proposal_id=pid)]
        assert "rollback.verified.recovered" in audit
        assert bot.container.store.model_state(model).auto_blocked_reason is None


def test_not_recovered_pauses_automatic_rollbacks(scenario: Any, promstack: PromStack) -> None:
    model, start = scenario
    with start(cooldown="0s") as bot:  # no cooldown, so only the pause can stop an automatic rollback
        pid = incident(bot, promstack, model)
        card = approve_and_verify(bot, pid)  # the errors stay high after the rollback
        assert "Verification: not recovered" in card
        assert "<@U0LEAD>" in bot.wait_thread(pid, "automatic rollbacks of")
        decision = bot.container.service.decide_for(model, Severity.CRITICAL)
        assert decision.action is Action.PROPOSE and "automatic rollback is paused" in decision.reason
        # a person deploying again resumes automatic rollbacks
        bot.container.service.deploy(model, "8", actor="api:ci")
        assert bot.container.service.decide_for(model, Severity.CRITICAL).action is Action.AUTO_EXECUTE


def test_no_data_is_inconclusive_not_healthy(scenario: Any, promstack: PromStack) -> None:
    model, start = scenario
    with start(metrics_expr='sum(rate(metric_that_does_not_exist_total{model="x"}[5s]))') as bot:
        pid = incident(bot, promstack, model)
        assert bot.container.store.get_proposal(pid).summary["metrics"][0]["no_data"] is True
        assert "no data" in bot.card(pid)
        card = approve_and_verify(bot, pid)
        assert "Verification: inconclusive" in card
        assert bot.container.store.get_proposal(pid).state is State.SUCCEEDED
        assert bot.container.store.model_state(model).auto_blocked_reason is not None
