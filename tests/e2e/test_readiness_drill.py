"""The readiness gate and the drill through the real `serve` process and the real command line.

CI asks `GET /api/models/{model}/readiness` (or runs `rollback-bot ready MODEL`) before it deploys; an
operator rehearses with `rollback-bot drill MODEL` and the running bot posts the result in the channel.
Slack is the local Web API stand-in; every other part is the product.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from devkit.fake_api import FakeSlackApi
from tests.e2e.cli import run_cli
from tests.e2e.serve_process import ServeProcess, serving

TOKEN = "readiness-alert-token"
AUDIT_KEY = "readiness-audit-key-0123456789"
POLICY = '''
[defaults]
channel = "C0ALERTS"
approvers = ["U0LEAD", "S0ONCALL"]
escalate_to = ["S0SRE"]

[models.ready]
target = "local"

[models.fresh]
target = "local"

[models.unreachable]
target = "webhook"
[models.unreachable.webhook]
url = "http://127.0.0.1:1/rollback"
timeout = "2s"
attempts = 1

[models.grouped]
target = "local"
approvers = ["S0NOSUCH"]

[models.elsewhere]
target = "local"
channel = "C0OTHER"
'''


# Each model has one thing wrong: (model, the check that fails, words its detail must contain).
FAILING = [("unreachable", "target", "webhook"), ("fresh", "version", "nothing to roll back"),
           ("grouped", "approvers", "S0NOSUCH"), ("elsewhere", "channel", "C0OTHER")]


@pytest.fixture
def slack() -> Any:
    with FakeSlackApi(usergroups={"S0ONCALL": ["U0CAROL"], "S0SRE": ["U0SRE"]},
                      channels={"C0OTHER": {"is_member": False}}) as api:
        yield api


def env_for(db_url: str, slack: FakeSlackApi) -> dict[str, str]:
    return {"DATABASE_URL": db_url, "SLACK_BOT_TOKEN": "xoxb-readiness", "SLACK_SIGNING_SECRET": "readiness-signing",
            "SLACK_API_URL": slack.base_url, "ALERT_WEBHOOK_TOKEN": TOKEN, "AUDIT_HMAC_KEY": AUDIT_KEY,
            "ROLLBACK_WEBHOOK_SECRET": "readiness-webhook-secret"}


def api(bot: ServeProcess, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.request(method, bot.url + path, json=body, headers={"Authorization": f"Bearer {TOKEN}"},
                         timeout=30)


def deploy(bot: ServeProcess, model: str, *versions: str) -> None:
    for i, version in enumerate(versions):
        r = api(bot, "POST", "/deployments", {"model": model, "version": version, "stable": i < len(versions) - 1})
        assert r.status_code == 201, r.text


def readiness(bot: ServeProcess, model: str) -> tuple[int, dict[str, Any]]:
    r = api(bot, "GET", f"/api/models/{model}/readiness")
    return r.status_code, r.json()


def wait_drill_post(slack: FakeSlackApi, channel: str, timeout: float = 20) -> tuple[dict[str, Any], list[str]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in slack.messages(channel):
            if (message.get("metadata") or {}).get("event_type") == "rollback_bot_drill":
                replies = [str(m.get("text")) for m in slack.replies(channel, message["ts"])]
                if replies:
                    return message, replies
        time.sleep(0.05)
    raise AssertionError(f"no drill card with a thread in {channel}: {slack.messages(channel)}")


def test_readiness_gate_and_drill_through_serve_and_the_cli(tmp_path: Path, db_url: str,
                                                            slack: FakeSlackApi) -> None:
    (tmp_path / "rollback.toml").write_text(POLICY)
    env = env_for(db_url, slack)
    with serving(env, tmp_path) as bot:
        for model in ("ready", "unreachable", "grouped", "elsewhere"):
            deploy(bot, model, "1", "2")
        deploy(bot, "fresh", "1")

        status, body = readiness(bot, "ready")
        assert status == 200 and body["ready"] is True and body["failing"] == [], body
        assert body["rollback_to"] == "1"
        assert [c["name"] for c in body["checks"]] == ["policy", "target", "version", "approvers", "escalation",
                                                      "channel", "metrics"]
        for model, failing, words in FAILING:
            status, body = readiness(bot, model)
            assert status == 503 and body["ready"] is False and body["failing"] == [failing], body
            detail = next(c["detail"] for c in body["checks"] if c["name"] == failing)
            assert words in detail, detail
        assert api(bot, "GET", "/api/models/nope/readiness").status_code == 404
        assert httpx.get(bot.url + "/api/models/ready/readiness").status_code == 401

        # The deployability answer folds readiness in, for the rollback of the deployment CI is about to do.
        answer = api(bot, "GET", "/api/models/ready/versions/3").json()
        assert answer["deployable"] is True and answer["rollback_ready"] is True, answer
        assert answer["readiness"] == {"ready": True, "failing": [], "rollback_to": "1"}
        assert "would work now (to 1)" in answer["reason"]
        answer = api(bot, "GET", "/api/models/fresh/versions/2").json()  # 1 runs: deploying 2 has a way back
        assert answer["rollback_ready"] is True and answer["readiness"]["rollback_to"] == "1", answer
        answer = api(bot, "GET", "/api/models/elsewhere/versions/3").json()
        assert answer["deployable"] is True and answer["rollback_ready"] is False, answer
        assert answer["readiness"]["failing"] == ["channel"] and "C0OTHER" in answer["reason"]

        out = run_cli("ready", "ready", env=env, cwd=tmp_path)
        assert out.returncode == 0 and out.stdout.startswith("ready: ready"), out.stdout + out.stderr
        out = run_cli("ready", "elsewhere", "--json", env=env, cwd=tmp_path)
        assert out.returncode == 1, out.stderr
        assert json.loads(out.stdout)["failing"] == ["channel"]
        out = run_cli("ready", env=env, cwd=tmp_path)
        assert out.returncode == 2 and "model" in out.stderr

        before = api(bot, "GET", "/api/models/ready").json()
        out = run_cli("drill", "ready", env=env, cwd=tmp_path)
        assert out.returncode == 0, out.stdout + out.stderr
        for step in ("alert", "decision", "version", "card", "approval", "switch", "verification"):
            assert f" {step} " in out.stdout, out.stdout
        card, replies = wait_drill_post(slack, "C0ALERTS")
        assert "Rollback drill" in card["text"] and "nothing was switched" in json.dumps(card["blocks"])
        assert not any(b.get("type") == "actions" for b in card["blocks"])
        assert "every step passed" in replies[0] and "*switch*" in replies[0] and " ms)" in replies[0]
        after = api(bot, "GET", "/api/models/ready").json()
        assert after == before and after["open_proposal"] is None and after["served_version"] == "2"
        actions = [r["action"] for r in api(bot, "GET", "/api/audit?model=ready").json()["records"]]
        assert actions[0] == "drill.passed" and not any(a.startswith(("rollback.", "proposal.")) for a in actions)
        verify = run_cli("audit", "verify", env=env, cwd=tmp_path)  # the drill's row is chained like any other
        assert verify.returncode == 0 and "audit chain intact" in verify.stdout, verify.stdout + verify.stderr
