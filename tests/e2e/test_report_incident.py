"""A whole incident through the real server, with the real MLflow server and the real Prometheus: the alert,
Approve in Slack, the alias switch, verification; then the post-incident report in the card's thread, the
same report over the API asserted field by field (timeline, durations, version diff), the signed link opened
in headless Chromium, and /metrics counting the rollback."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from bot.core.clock import SystemClock
from bot.core.report import aware
from bot.slack.cards import ACTION_APPROVE
from bot.store.report_queries import ReportQueries
from tests.conftest import make_policy
from tests.e2e.browser import Pages
from tests.e2e.slackbot import SlackBot, slack_bot
from tests.e2e.test_verification import _value, ratio, wait_until
from tests.integration.alert_helpers import am_alert, am_body
from tests.integration.promstack import PromStack
from tests.integration.test_report import _sample

pytestmark = [pytest.mark.mlflow, pytest.mark.prometheus]
API = "/api/2.0/mlflow"
KEY = "e2e-page-link-key-0123456789abcdef"
PUBLIC = "https://rollback-bot.example.org"
ALERT_AUTH = {"Authorization": "Bearer e2e-alert-token"}
# version 1 is the good one, version 2 the bad one
RUNS: dict[str, dict[str, dict[str, Any]]] = {
    "1": {"params": {"learning_rate": "0.05", "max_depth": "6", "features": "v3"},
          "metrics": {"val_auc": 0.91, "latency_p99_ms": 12.0},
          "tags": {"data_version": "2026-10-01", "trainer": "alice"}},
    "2": {"params": {"learning_rate": "0.1", "max_depth": "6", "features": "v4"},
          "metrics": {"val_auc": 0.87, "latency_p99_ms": 30.0},
          "tags": {"data_version": "2026-11-01", "trainer": "alice"}},
}


def _post(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(f"{url}{API}/{path}", json=body, timeout=60)  # a loaded machine slows MLflow down
    assert r.status_code == 200, r.text
    return dict(r.json())


def registered_model_with_runs(mlflow_url: str, name: str) -> dict[str, str]:
    """Versions 1 and 2 from two runs that differ in parameters, metrics and tags; alias champion -> 2."""
    _post(mlflow_url, "registered-models/create", {"name": name})
    run_ids = {}
    for version, run in RUNS.items():
        created = _post(mlflow_url, "runs/create", {"experiment_id": "0", "start_time": int(time.time() * 1000)})
        run_id = created["run"]["info"]["run_id"]
        for key, value in run["params"].items():
            _post(mlflow_url, "runs/log-parameter", {"run_id": run_id, "key": key, "value": value})
        for key, value in run["metrics"].items():
            _post(mlflow_url, "runs/log-metric", {"run_id": run_id, "key": key, "value": value,
                                                  "timestamp": int(time.time() * 1000), "step": 0})
        for key, value in run["tags"].items():
            _post(mlflow_url, "runs/set-tag", {"run_id": run_id, "key": key, "value": value})
        _post(mlflow_url, "model-versions/create", {"name": name, "source": f"runs:/{run_id}/model",
                                                    "run_id": run_id})
        run_ids[version] = run_id
    _post(mlflow_url, "registered-models/alias", {"name": name, "alias": "champion", "version": "2"})
    return run_ids


@pytest.fixture
def incident_bot(promstack: PromStack, mlflow_url: str, tmp_path: Any) -> Iterator[Any]:
    from bot.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    model = promstack.unique_model("report")
    run_ids = registered_model_with_runs(mlflow_url, f"{model}-registry")
    policy = make_policy({"verify_after": "1s", "approvers": ["U0LEAD"]}, models={model: {
        "target": "mlflow", "mlflow": {"tracking_uri": mlflow_url, "registered_model": f"{model}-registry"},
        "metrics": {"error_rate": ratio(model)}}})
    with slack_bot(url, policy, SystemClock(), prometheus_url=promstack.prometheus_url,
                   env={"PAGE_LINK_KEY": KEY, "PUBLIC_URL": PUBLIC}) as bot:
        yield bot, model, run_ids
    promstack.exporter.stop_traffic(model)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _seconds(a: datetime, b: datetime) -> float:
    return round((aware(b) - aware(a)).total_seconds(), 3)


def test_incident_report_end_to_end(incident_bot: Any, promstack: PromStack, pages: Pages) -> None:
    bot, model, run_ids = incident_bot
    svc = bot.container.service
    metrics_before = httpx.get(f"{bot.url}/metrics", timeout=30).text
    assert f'rollback_bot_rollbacks_total{{model="{model}"' not in metrics_before

    # good traffic on version 1; version 2 deployed by CI; errors rise; Alertmanager's payload arrives
    promstack.exporter.set_error_rate(model, 0.0)
    svc.deploy(model, "1", actor="api:ci", deployed_by="ci", source="github-actions", stable=True,
               metadata={"commit": "a1f0c3e", "image": f"registry/{model}:1"})
    wait_until(lambda: promstack.query(ratio(model)), "the good version's ratio in Prometheus")
    time.sleep(3)
    r = httpx.post(f"{bot.url}/deployments", headers=ALERT_AUTH, timeout=30, json={
        "model": model, "version": "2", "deployed_by": "ci", "source": "github-actions",
        "metadata": {"commit": "b7c1e9d", "image": f"registry/{model}:2", "data_snapshot": "2026-11-01"}})
    assert r.status_code == 201, r.text
    promstack.exporter.set_error_rate(model, 0.8)
    wait_until(lambda: _value(promstack, model) > 0.75, "the error ratio to rise")
    started = _iso(datetime.now(UTC))
    firing = am_alert(model, "fp-report-e2e", severity="warning", starts=started)
    sent = httpx.post(f"{bot.url}/alerts/alertmanager", json=am_body(firing), headers=ALERT_AUTH, timeout=30)
    assert sent.status_code == 202, sent.text
    pid = bot.container.store.open_proposal(model).id

    # a person approves; the alias moves back; errors drain; the alert resolves; verification runs
    bot.press(ACTION_APPROVE, "U0LEAD", pid)
    bot.wait_card(pid, "Rolled back")
    promstack.exporter.set_error_rate(model, 0.0)
    wait_until(lambda: _value(promstack, model) < 0.01, "the errors to drain")
    resolved = am_alert(model, "fp-report-e2e", severity="warning", status="resolved", starts=started,
                        ends=_iso(datetime.now(UTC)))
    assert httpx.post(f"{bot.url}/alerts/alertmanager", json=am_body(resolved), headers=ALERT_AUTH,
                      timeout=30).status_code == 202
    time.sleep(1.1)  # verify_after = 1s
    bot.sweep()
    assert "Verification: recovered" in bot.wait_card(pid, "Verification:")

    # the thread receives the report: the Block Kit summary and the Markdown file
    summary = wait_for_thread(bot, pid, "Post-incident report")
    assert "Open the incident page" in summary
    md = report_file(bot, pid)
    assert md.startswith(f"# Rollback #{pid}: {model} 2 → 1")
    assert "| param | learning\\_rate | 0.1 | 0.05 | 50% |" in md

    # the report, field by field, against what the database holds
    rep = httpx.get(f"{bot.url}/api/proposals/{pid}/report", headers=ALERT_AUTH, timeout=30).json()
    store = bot.container.store
    p = store.get_proposal(pid)
    bad = next(d for d in store.history(model) if d.version == "2")
    [alert] = store.alerts_for_proposal(pid)
    verified = next(a for a in store.audit_records(proposal_id=pid) if a.action.startswith("rollback.verified"))
    [approval] = ReportQueries(bot.container.engine).decisions(pid)  # the approvals table's row for the click
    assert [e["what"] for e in rep["timeline"]] == [
        "version 2 deployed via github-actions", "first alert fired: ModelErrorRateHigh",
        f"proposal #{pid} opened (alert): 2 → 1", "approved", "switch started", "switch finished",
        "alerts resolved", "verification: recovered"]
    expected_offsets = [0.0, _seconds(bad.deployed_at, alert.starts_at), _seconds(bad.deployed_at, p.created_at),
                        _seconds(bad.deployed_at, approval.at), _seconds(bad.deployed_at, p.started_at),
                        _seconds(bad.deployed_at, p.finished_at), _seconds(bad.deployed_at, alert.resolved_at),
                        _seconds(bad.deployed_at, verified.at)]
    assert [e["offset_s"] for e in rep["timeline"]] == expected_offsets
    assert rep["durations"] == {
        "detect_s": _seconds(bad.deployed_at, alert.starts_at),
        "decide_s": _seconds(alert.starts_at, p.decided_at),
        "roll_back_s": _seconds(p.decided_at, p.finished_at),
        "recover_s": _seconds(p.finished_at, verified.at),
        "total_s": _seconds(bad.deployed_at, verified.at),
    }
    assert all(v is not None and v >= 0 for v in rep["durations"].values())
    assert rep["decision"] == "approved" and rep["decided_by"] == "slack:U0LEAD"
    assert rep["policy"]["verify_after"] == "1s" and rep["policy"]["target"] == "mlflow"
    assert rep["metrics"]["seen_by_approvers"][0]["name"] == "error_rate"
    assert rep["metrics"]["seen_by_approvers"][0]["now"] == pytest.approx(0.8, abs=0.15)
    assert rep["metrics"]["at_verification"][0]["now"] == pytest.approx(0.0, abs=0.02)
    assert rep["metrics"]["now"][0]["now"] == pytest.approx(0.0, abs=0.02)
    assert [(r["key"], r["rolled_back"], r["restored"], r["differs"]) for r in rep["changes"]["metadata"]] == [
        ("commit", "b7c1e9d", "a1f0c3e", True), ("data_snapshot", "2026-11-01", None, True),
        ("image", f"registry/{model}:2", f"registry/{model}:1", True)]
    assert rep["changes"]["run_ids"] == {"rolled_back": run_ids["2"], "restored": run_ids["1"]}
    runs = [(r["kind"], r["key"], r["rolled_back"], r["restored"], round(r["difference"], 4))
            for r in rep["changes"]["runs"] if not r["key"].startswith("mlflow.")]
    assert runs == [
        ("param", "features", "v4", "v3", 1.0),
        ("tag", "data_version", "2026-11-01", "2026-10-01", 1.0),
        ("metric", "latency_p99_ms", 30.0, 12.0, 0.6),
        ("param", "learning_rate", "0.1", "0.05", 0.5),
        ("metric", "val_auc", 0.87, 0.91, round(0.04 / 0.91, 4)),
    ]
    assert rep["alerts"][0]["links"]["generatorURL"].startswith("http://127.0.0.1")
    assert rep["charts"][0]["link"].startswith(promstack.prometheus_url + "/graph?")

    # the signed link from the thread opens the page in headless Chromium; an altered one is refused
    link = re.search(r"<(https://[^|>]+)\|Open the incident page>", summary)
    assert link is not None
    local = link.group(1).replace("&amp;", "&").replace(PUBLIC, bot.url)
    assert pages.open(local) == 200
    text = pages.text()
    assert "learning_rate" in text and "b7c1e9d" in text and "recovered" in text
    pages.screenshot("incident-mlflow")
    assert pages.serious_violations() == []
    assert pages.open(local.replace("sig=", "sig=x")) == 403

    # /metrics counts the rollback, from the database
    after = httpx.get(f"{bot.url}/metrics", timeout=30).text
    assert _sample(after, "rollback_bot_rollbacks_total", model=model, outcome="succeeded") == 1.0
    assert _sample(after, "rollback_bot_proposals_total", model=model, decision="approved") == 1.0
    assert _sample(after, "rollback_bot_verifications_total", model=model, verdict="recovered") == 1.0
    assert _sample(after, "rollback_bot_time_to_decide_seconds_count", model=model) == 1.0
    assert _sample(after, "rollback_bot_time_to_rollback_seconds_count", model=model) == 1.0


def wait_for_thread(bot: SlackBot, pid: int, words: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for text in bot.thread(pid):
            if words in text:
                return text
        time.sleep(0.1)
    raise AssertionError(f"no thread message with {words!r}: {bot.thread(pid)}")


def report_file(bot: SlackBot, pid: int, timeout: float = 15) -> str:
    """The Markdown file follows the summary in the thread: wait for its upload to complete."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for call in bot.slack.calls("files.completeUploadExternal"):
            for item in call.body.get("files", []):
                found = bot.slack.file(str(item["id"]))
                if found is not None and found.get("name") == f"rollback-{pid}-report.md":
                    return bytes(found["content"]).decode()
        time.sleep(0.1)
    raise AssertionError("no report file was uploaded to the thread")
