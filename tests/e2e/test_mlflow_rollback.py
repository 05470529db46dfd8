"""Approve in Slack → the real MLflow server's alias moves back; the card shows each version's run metrics."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bot.core.clock import ManualClock
from bot.core.proposal import State
from bot.slack.cards import ACTION_APPROVE
from tests.conftest import make_policy
from tests.e2e.slackbot import slack_bot
from tests.integration.test_target_mlflow import registered_model

pytestmark = pytest.mark.mlflow


def test_approve_moves_the_mlflow_alias_back(mlflow_url: str, tmp_path: Any, clock: ManualClock) -> None:
    from bot.store.migrate import upgrade

    name = registered_model(mlflow_url, "ranker-e2e")
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    policy = make_policy(models={"ranker": {"target": "mlflow", "mlflow": {
        "tracking_uri": mlflow_url, "registered_model": name, "alias": "champion"}}})
    with slack_bot(url, policy, clock) as bot:
        bot.container.service.deploy("ranker", "1", actor="api:ci", stable=True)
        bot.container.service.deploy("ranker", "2", actor="api:ci")
        reply = bot.command_reply("ranker auc dropped after v2")
        pid = int(reply.split("#", 1)[1].split()[0])
        card = bot.card(pid)
        assert "Registry run metrics 2 → 1: `val_auc` 0.9 → 0.91" in card
        bot.press(ACTION_APPROVE, "U0LEAD", pid)
        bot.wait_card(pid, "Rolled back to `1`")
        alias = httpx.get(f"{mlflow_url}/api/2.0/mlflow/registered-models/alias",
                          params={"name": name, "alias": "champion"}).json()
        assert alias["model_version"]["version"] == "1"
        p = bot.container.store.get_proposal(pid)
        assert p.state is State.SUCCEEDED and "champion" in (p.result or "")
