"""The post-incident report from the database: an incident driven through the HTTP app on SQLite and
PostgreSQL, then read back as JSON, Markdown, incident pages (signed links) and /metrics."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from bot.core.clock import ManualClock
from bot.core.requests import RollbackRequest
from bot.core.verification import Verifier
from bot.web.app import create_app
from tests.conftest import make_policy
from tests.fakes.ports import FakeTarget, RecordingNotifier
from tests.integration.alert_helpers import AUTH, am_alert, am_body, make_container

KEY = "test-page-link-key-0123456789"
PUBLIC = "https://rollback-bot.example.org"
MODEL = "fraud-detector"
BAD_META = {"commit": "b7c1e9d", "image": "registry/fraud:7", "data_snapshot": "2026-11-01", "threshold": 0.45}
GOOD_META = {"commit": "a1f0c3e", "image": "registry/fraud:6", "data_snapshot": "2026-11-01", "threshold": 0.5}


@pytest.fixture
def incident(db_url: str, clock: ManualClock) -> Iterator[tuple[Any, TestClient, int]]:
    """12:00 v6 deployed; 13:00 v7; 13:04 the alert starts (received 13:05); 13:07 approved and switched;
    13:09 resolved; 13:11 verified."""
    pol = make_policy({"no_data": "pass", "approvers": ["U0LEAD"]}, models={MODEL: {"target": "fake"}})
    container = make_container(db_url, clock, FakeTarget(), RecordingNotifier(), pol=pol,
                               env={"PAGE_LINK_KEY": KEY, "PUBLIC_URL": PUBLIC})
    with TestClient(create_app(container)) as client:
        svc = container.service
        svc.deploy(MODEL, "6", actor="api:ci", deployed_by="ci", source="argo", metadata=GOOD_META, stable=True)
        clock.advance(timedelta(hours=1))
        svc.deploy(MODEL, "7", actor="api:ci", deployed_by="ci", source="argo", metadata=BAD_META)
        clock.advance(timedelta(minutes=5))
        alert = am_alert(MODEL, "fp-report-1", severity="warning", starts="2026-11-02T13:04:00Z")
        r = client.post("/alerts/alertmanager", json=am_body(alert), headers=AUTH)
        assert r.status_code == 202, r.text
        opened = container.store.open_proposal(MODEL)
        assert opened is not None
        pid = opened.id
        clock.advance(timedelta(minutes=2))
        assert svc.approve(pid, "slack:U0LEAD").executed
        clock.advance(timedelta(minutes=2))
        resolved = am_alert(MODEL, "fp-report-1", severity="warning", status="resolved",
                            starts="2026-11-02T13:04:00Z", ends="2026-11-02T13:09:00Z")
        assert client.post("/alerts/alertmanager", json=am_body(resolved), headers=AUTH).status_code == 202
        clock.advance(timedelta(minutes=2))
        Verifier(container.store, pol, svc.targets, None, clock).check(container.store.get_proposal(pid))
        yield container, client, pid
    container.close()


def test_report_json_timeline_durations_and_changes(incident: Any) -> None:
    _container, client, pid = incident
    r = client.get(f"/api/proposals/{pid}/report", headers=AUTH)
    assert r.status_code == 200, r.text
    rep = r.json()
    assert [(e["what"], e["offset_s"]) for e in rep["timeline"]] == [
        ("version 7 deployed via argo", 0.0),
        ("first alert fired: ModelErrorRateHigh", 240.0),
        (f"proposal #{pid} opened (alert): 7 → 6", 300.0),
        ("approved", 420.0),
        ("switch started", 420.0),
        ("switch finished", 420.0),
        ("alerts resolved", 540.0),
        ("verification: recovered", 660.0),
    ]
    assert rep["timeline"][3]["who"] == "slack:U0LEAD"
    assert rep["durations"] == {"detect_s": 240.0, "decide_s": 180.0, "roll_back_s": 0.0, "recover_s": 240.0,
                                "total_s": 660.0}
    assert rep["decision"] == "approved" and rep["decided_by"] == "slack:U0LEAD"
    assert rep["policy"]["approvers"] == ["U0LEAD"] and rep["policy"]["approval_timeout"] == "15m"
    assert rep["policy"]["no_data"] == "pass" and rep["policy_note"].startswith("as stored")
    assert rep["verdict"] == "recovered" and rep["verification"].startswith("recovered")
    assert rep["deployments"]["rolled_back"]["metadata"] == BAD_META
    assert rep["deployments"]["restored"]["metadata"] == GOOD_META
    rows = {row["key"]: row for row in rep["changes"]["metadata"]}
    assert [row["key"] for row in rep["changes"]["metadata"]] == ["commit", "image", "threshold", "data_snapshot"]
    assert rows["commit"] == {"kind": "metadata", "key": "commit", "rolled_back": "b7c1e9d", "restored": "a1f0c3e",
                              "differs": True, "difference": 1.0}
    assert rows["threshold"]["difference"] == pytest.approx(0.1) and rows["data_snapshot"]["differs"] is False
    assert rep["changes"]["runs"] == [] and "no per-version runs" in rep["changes"]["runs_note"]
    [alert] = rep["alerts"]
    assert alert["name"] == "ModelErrorRateHigh" and alert["links"]["generatorURL"].startswith("http://127.0.0.1")
    assert alert["resolved_at"].startswith("2026-11-02T13:09:00")
    assert rep["page_url"].startswith(f"{PUBLIC}/incidents/{pid}?exp=")


def test_report_markdown_and_the_cli(incident: Any, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    container, client, pid = incident
    r = client.get(f"/api/proposals/{pid}/report", headers={**AUTH, "Accept": "text/markdown"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/markdown")
    md = r.text
    assert md.startswith(f"# Rollback #{pid}: fraud-detector 7 → 6")
    assert "| Time to detect | deployment → first alert | 4m |" in md
    assert "| commit | b7c1e9d | a1f0c3e | yes |" in md
    assert "| 2026-11-02 13:07:00 | +7m | approved | slack:U0LEAD |  |" in md
    from bot.cli import main

    monkeypatch.setenv("DATABASE_URL", container.settings.database_url)
    monkeypatch.delenv("PROMETHEUS_URL", raising=False)
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    assert main(["--env-file", str(env_file), "report", str(pid), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["durations"]["decide_s"] == 180.0 and out["proposal"]["id"] == pid
    assert main(["--env-file", str(env_file), "report", f"#{pid}"]) == 0
    assert capsys.readouterr().out.startswith(f"# Rollback #{pid}")
    assert main(["--env-file", str(env_file), "report", "999999"]) == 1
    assert "no proposal #999999" in capsys.readouterr().err
    assert main(["--env-file", str(env_file), "report", "abc"]) == 2


def test_report_api_errors(incident: Any) -> None:
    _, client, pid = incident
    assert client.get(f"/api/proposals/{pid}/report").status_code == 401
    r = client.get("/api/proposals/999999/report", headers=AUTH)
    assert r.status_code == 404 and "no proposal #999999" in r.json()["error"]
    r = client.get("/api/proposals/x1/report", headers=AUTH)
    assert r.status_code == 400 and "must be a whole number" in r.json()["error"]


def _signed(rep_url: str) -> str:
    parts = urlsplit(rep_url)
    return f"{parts.path}?{parts.query}"


def test_pages_open_with_a_signed_link_or_the_token_only(incident: Any, clock: ManualClock) -> None:
    _container, client, pid = incident
    link = _signed(client.get(f"/api/proposals/{pid}/report", headers=AUTH).json()["page_url"])
    page = client.get(link)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "script-src" not in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "b7c1e9d" in page.text and "Time to detect" in page.text
    # links inside the page are signed with the same expiry, never a longer one
    exp = parse_qs(urlsplit(link).query)["exp"][0]
    inner = re.findall(r'href="(/models/[^"]+)"', page.text)
    assert inner and all(f"exp={exp}" in h.replace("&amp;", "&") for h in inner)
    assert client.get(inner[0].replace("&amp;", "&")).status_code == 200
    assert client.get(f"/incidents/{pid}", headers=AUTH).status_code == 200
    assert client.get("/incidents", headers=AUTH).status_code == 200
    nothing = client.get(f"/incidents/{pid}")
    assert nothing.status_code == 401 and "link the bot posted" in nothing.text
    assert client.get(f"/incidents/{pid}", headers={"Authorization": "Bearer nope"}).status_code == 401
    other = link.replace(f"/incidents/{pid}?", f"/incidents/{pid + 1}?")
    refused = client.get(other)
    assert refused.status_code == 403 and "altered" in refused.text
    sig = parse_qs(urlsplit(link).query)["sig"][0]
    assert client.get(link.replace(sig, sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB"))).status_code == 403
    assert client.get(link.replace(f"exp={exp}", f"exp={int(exp) + 3600}")).status_code == 403
    clock.advance(timedelta(days=8))
    expired = client.get(link)
    assert expired.status_code == 403 and "expired" in expired.text


def test_incident_list_filters_and_model_page(incident: Any) -> None:
    _container, client, pid = incident
    listing = client.get(f"/incidents?model={MODEL}&state=succeeded&since=2026-11-02&until=2026-11-02",
                         headers=AUTH)
    assert listing.status_code == 200 and f"#{pid}" in listing.text and "1 incident(s)" in listing.text
    empty = client.get("/incidents?state=denied", headers=AUTH)
    assert "0 incident(s)" in empty.text and "No incident matches" in empty.text
    for bad, words in (("state=nope", "state must be one of"), ("since=yesterday", "since must be a date"),
                       ("page=0", "page must be a whole number"), ("model=%20x", "model must be a model name"),
                       ("color=red", "not a parameter of this page")):
        r = client.get(f"/incidents?{bad}", headers=AUTH)
        assert r.status_code == 400 and words in r.text, bad
    model = client.get(f"/models/{MODEL}", headers=AUTH)
    assert model.status_code == 200
    text = re.sub(r"\s+", " ", model.text)
    assert "live" in text and "bad: rolled back" in text and "stable" in text
    assert client.get("/models/unknown-model", headers=AUTH).status_code == 404
    assert client.get("/incidents/999999", headers=AUTH).status_code == 404


def test_pages_escape_what_they_show(db_url: str, clock: ManualClock) -> None:
    pol = make_policy(models={MODEL: {"target": "fake"}})
    container = make_container(db_url, clock, FakeTarget(), RecordingNotifier(), pol=pol,
                               env={"PAGE_LINK_KEY": KEY})
    try:
        container.service.deploy(MODEL, "6", actor="api:ci", stable=True, metadata={"<b>k</b>": "<img src=x>"})
        container.service.deploy(MODEL, "7", actor="api:ci", metadata={"<b>k</b>": "<script>alert(1)</script>"})
        p = container.service.request_rollback(RollbackRequest(
            MODEL, actor="slack:U0BOB", reason="<script>alert('x')</script>"))
        with TestClient(create_app(container)) as client:
            page = client.get(f"/incidents/{p.id}", headers=AUTH).text
            assert "<script>" not in page and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
            assert "<img src=x>" not in page and "&lt;b&gt;k&lt;/b&gt;" in page
            md = client.get(f"/api/proposals/{p.id}/report", headers={**AUTH, "Accept": "text/markdown"}).text
            assert "<script>" not in md and "\\<script\\>" in md
    finally:
        container.close()


def _sample(metrics: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in metrics.splitlines():
        if line.startswith(f"{name}{{") or line.startswith(f"{name} "):
            got = line[line.find("{") + 1:line.find("}")] if "{" in line else ""
            if ",".join(sorted(got.split(","))) == want or (not labels and not got):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{{{want}}} not in /metrics")


def test_metrics_count_from_the_database(incident: Any, clock: ManualClock) -> None:
    container, client, _pid = incident
    text = client.get("/metrics").text
    assert _sample(text, "rollback_bot_rollback_metrics_up") == 1.0
    assert _sample(text, "rollback_bot_rollbacks_total", model=MODEL, outcome="succeeded") == 1.0
    assert _sample(text, "rollback_bot_proposals_total", model=MODEL, decision="approved") == 1.0
    assert _sample(text, "rollback_bot_verifications_total", model=MODEL, verdict="recovered") == 1.0
    assert _sample(text, "rollback_bot_time_to_decide_seconds_bucket", model=MODEL, le="120.0") == 0.0
    assert _sample(text, "rollback_bot_time_to_decide_seconds_bucket", model=MODEL, le="300.0") == 1.0
    assert _sample(text, "rollback_bot_time_to_decide_seconds_sum", model=MODEL) == 180.0
    assert _sample(text, "rollback_bot_time_to_rollback_seconds_count", model=MODEL) == 1.0
    assert _sample(text, "rollback_bot_blocked_deployments_refused_total") == 0.0
    # a second incident, denied: the counters move, and a new app (a restart) reads the same numbers
    clock.advance(timedelta(hours=2))
    container.service.deploy(MODEL, "8", actor="api:ci")
    p = container.service.request_rollback(RollbackRequest(MODEL, actor="slack:U0BOB", reason="errors on 8"))
    container.service.deny(p.id, "slack:U0LEAD", "not the model")
    with TestClient(create_app(container)) as fresh:
        text = fresh.get("/metrics").text
    assert _sample(text, "rollback_bot_proposals_total", model=MODEL, decision="denied") == 1.0
    assert _sample(text, "rollback_bot_proposals_total", model=MODEL, decision="approved") == 1.0
    assert _sample(text, "rollback_bot_rollbacks_total", model=MODEL, outcome="succeeded") == 1.0


@pytest.mark.parametrize("query", [
    "until=9999-12-31", "since=0001-01-01", "since=2026-02-30", "page=99999", "page=1e3", "page=-1",
    "model=" + "m" * 300, "state=%00", "since=%F0%9F%98%80", "exp=1&sig=", "sig=x", "exp=99999999999999999999&sig=a",
])
def test_no_input_gets_a_server_error(incident: Any, query: str) -> None:
    _, client, _ = incident
    r = client.get(f"/incidents?{query}", headers=AUTH if "sig" not in query else {})
    assert r.status_code < 500 and "Traceback" not in r.text
    for path in ("/incidents/%20", "/incidents/99999999999999999999", "/models/", "/models/a%2F..%2Fb",
                 "/incidents/-1"):
        r = client.get(path, headers=AUTH)
        assert r.status_code in (400, 404), (path, r.status_code)


def test_metrics_answer_when_the_database_is_down() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from bot.report.metrics import RollbackCollector
    from bot.store.db import make_engine
    from bot.store.report_queries import ReportQueries

    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    registry = CollectorRegistry()
    registry.register(RollbackCollector(ReportQueries(engine)))
    text = generate_latest(registry).decode()
    assert "rollback_bot_rollback_metrics_up 0.0" in text and "rollback_bot_rollbacks_total" not in text
    engine.dispose()


def test_report_of_a_proposal_still_waiting(db_url: str, clock: ManualClock) -> None:
    pol = make_policy(models={MODEL: {"target": "fake"}})
    container = make_container(db_url, clock, FakeTarget(), RecordingNotifier(), pol=pol)
    try:
        container.service.deploy(MODEL, "6", actor="api:ci", stable=True)
        container.service.deploy(MODEL, "7", actor="api:ci")
        p = container.service.request_rollback(RollbackRequest(MODEL, actor="slack:U0BOB", reason="looks off"))
        with TestClient(create_app(container)) as client:
            rep = client.get(f"/api/proposals/{p.id}/report", headers=AUTH).json()
        assert rep["decision"] == "waiting" and rep["page_url"] is None
        assert rep["durations"] == {"detect_s": None, "decide_s": None, "roll_back_s": None, "recover_s": None,
                                    "total_s": None}
        whats = [e["what"] for e in rep["timeline"]]
        assert whats == ["version 7 deployed", f"proposal #{p.id} opened (manual): 7 → 6"]
    finally:
        container.close()
