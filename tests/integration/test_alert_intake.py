"""Alert intake over HTTP against real databases (SQLite file and PostgreSQL): deduplication, grouping,
escalation, resolution, ignored alerts, every kind of bad input, and the database down."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from adapters.alerts import parse_body
from bot.bootstrap import Container
from bot.core.alert import AlertStatus
from bot.core.audit import AuditEvent
from bot.core.clock import ManualClock
from bot.core.proposal import State
from bot.web.app import create_app
from tests.fakes.ports import FakeTarget, RecordingNotifier
from tests.integration.alert_helpers import (
    AUTH,
    am_alert,
    am_body,
    deploy,
    load,
    make_container,
    table_counts,
)


@pytest.fixture
def bot(db_url: str, clock: ManualClock, fake_target: FakeTarget, notifier: RecordingNotifier) -> Iterator[Container]:
    c = make_container(db_url, clock, fake_target, notifier)
    for model in ("fraud", "fraud-detector", "ranker"):
        deploy(c, model)
    yield c
    c.close()


@pytest.fixture
def client(bot: Container) -> Iterator[TestClient]:
    with TestClient(create_app(bot)) as c:
        yield c


def post(client: TestClient, body: Any, source: str = "alertmanager", **kw: Any) -> Any:
    r = client.post(f"/alerts/{source}", json=body, headers={**AUTH, **kw.pop("headers", {})}, **kw)
    assert r.status_code == 202, r.text
    return r.json()


def audit_actions(bot: Container, proposal_id: int) -> list[str]:
    return [r.action for r in bot.store.audit_records(proposal_id=proposal_id)]


# --- deduplication ---------------------------------------------------------------------------------


def test_same_payload_twice_creates_nothing_the_second_time(client: TestClient, bot: Container,
                                                            notifier: RecordingNotifier) -> None:
    body = am_body(am_alert("fraud", "aa01"))
    first = post(client, body)
    assert (first["stored"], first["duplicates"], first["ignored"]) == (1, 0, 0)
    [pid] = first["proposals_created"]
    assert first["alerts"] == [{"fingerprint": "aa01", "model": "fraud", "outcome": "proposed",
                                "reason": first["alerts"][0]["reason"]}]
    assert "opened proposal" in first["alerts"][0]["reason"]
    before = table_counts(bot.engine)
    again = post(client, body)
    assert (again["stored"], again["duplicates"], again["proposals_created"], again["proposals_updated"]) == \
        (0, 1, [], [])
    assert again["alerts"][0]["outcome"] == "duplicate"
    assert table_counts(bot.engine) == before
    assert notifier.names() == ["created"]
    proposal = bot.store.get_proposal(pid)
    assert proposal.state is State.PROPOSED and proposal.severity == "warning"
    assert proposal.reason == "ModelErrorRateHigh for fraud (aa01)"
    assert [a.fingerprint for a in bot.store.alerts_for_proposal(pid)] == ["aa01"]


@pytest.mark.parametrize("severity", ["warning", "critical"])
def test_ha_pair_sending_the_same_alert_at_once_ends_with_one_proposal(
        db_url: str, clock: ManualClock, fake_target: FakeTarget, notifier: RecordingNotifier, severity: str) -> None:
    # Two replicas (own engine, store, service) receive the same payload from two Alertmanagers at once.
    replicas = [make_container(db_url, clock, fake_target, notifier) for _ in range(2)]
    deploy(replicas[0], "fraud")
    body = json.dumps(am_body(am_alert("fraud", "ha01", severity=severity),
                              am_alert("fraud", "ha02", severity="warning"))).encode()
    barrier = threading.Barrier(2)
    results: list[Any] = []
    errors: list[BaseException] = []

    def send(c: Container) -> None:
        alerts = parse_body("alertmanager", body)
        barrier.wait()
        try:  # each replica records its copy, then its decider takes the model's lease (or waits for it)
            result, ids = c.intake.record("alertmanager", alerts, clock.now())
            for model in c.intake.models_to_decide(result):
                c.intake.merge(result, ids, c.decider.decide_now(model))
            results.append(result)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(c,)) for c in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert sum(r.stored for r in results) == 2 and sum(r.duplicates for r in results) == 2
    proposals = replicas[0].store.proposals(model="fraud")
    assert len(proposals) == 1
    assert sorted(a.fingerprint for a in replicas[0].store.alerts_for_proposal(proposals[0].id)) == ["ha01", "ha02"]
    if severity == "critical":
        assert proposals[0].state is State.SUCCEEDED and len(fake_target.switches) == 1
    else:
        assert proposals[0].state is State.PROPOSED and fake_target.switches == []
    assert notifier.names().count("created") == (0 if severity == "critical" else 1)
    for c in replicas:
        c.close()


def test_resolved_repeat_and_stale_firing_change_nothing(client: TestClient, bot: Container) -> None:
    post(client, am_body(am_alert("fraud", "r1"), am_alert("fraud", "r2")))
    resolved = am_body(am_alert("fraud", "r1", status="resolved", ends="2026-11-02T12:00:00Z"))
    assert post(client, resolved)["resolved"] == 1
    before = table_counts(bot.engine)
    again = post(client, resolved)
    assert (again["resolved"], again["duplicates"]) == (0, 1)
    late = post(client, am_body(am_alert("fraud", "r1")))  # the other HA peer's stale firing copy
    assert late["duplicates"] == 1 and "already resolved" in late["alerts"][0]["reason"]
    assert table_counts(bot.engine) == before


# --- grouping and escalation -------------------------------------------------------------------------


def test_three_alerts_one_proposal_and_a_later_alert_joins(client: TestClient, bot: Container, clock: ManualClock,
                                                           notifier: RecordingNotifier) -> None:
    first = post(client, am_body(*(am_alert("fraud", f"g{i}", name=f"Alert{i}") for i in range(3))))
    [pid] = first["proposals_created"]
    assert [a["outcome"] for a in first["alerts"]] == ["proposed"] * 3
    assert bot.store.get_proposal(pid).reason.startswith("3 alerts firing: ")
    clock.advance(timedelta(minutes=2))
    later = post(client, am_body(am_alert("fraud", "g9", name="LatencyHigh", starts="2026-11-02T12:01:00Z")))
    assert later["proposals_created"] == [] and later["proposals_updated"] == [pid]
    assert later["alerts"][0]["outcome"] == "joined"
    assert [a.fingerprint for a in bot.store.alerts_for_proposal(pid)] == ["g0", "g1", "g2", "g9"]
    assert notifier.events[-1][:3] == (pid, "alerts", "1 alert(s) joined: LatencyHigh (highest warning)")
    assert len(bot.store.proposals(model="fraud")) == 1
    assert audit_actions(bot, pid) == ["proposal.created", "proposal.alerts_joined", "proposal.alerts_joined"]


def test_critical_alert_turns_a_waiting_proposal_into_an_automatic_rollback(
        client: TestClient, bot: Container, fake_target: FakeTarget, notifier: RecordingNotifier) -> None:
    [pid] = post(client, am_body(am_alert("fraud", "w1")))["proposals_created"]
    answer = post(client, am_body(am_alert("fraud", "c1", severity="critical")))
    assert answer["executed"] == [pid] and answer["proposals_updated"] == [pid]
    assert answer["alerts"][0]["outcome"] == "executed"
    proposal = bot.store.get_proposal(pid)
    assert proposal.state is State.SUCCEEDED and proposal.decided_by == "bot:policy"
    assert proposal.severity == "critical"
    assert [(s.from_version, s.to_version) for s in fake_target.switches] == [("7", "6")]
    assert notifier.names() == ["created", "alerts", "executing", "succeeded"]


def test_critical_alert_without_auto_rollback_raises_the_severity(client: TestClient, bot: Container,
                                                                  fake_target: FakeTarget,
                                                                  notifier: RecordingNotifier) -> None:
    [pid] = post(client, am_body(am_alert("fraud", "w1")))["proposals_created"]
    bot.store.set_auto_blocked("fraud", "verification failed last time",
                               AuditEvent(actor="test", action="model.auto_blocked", model="fraud"))
    answer = post(client, am_body(am_alert("fraud", "c1", severity="page")))
    assert answer["executed"] == [] and answer["proposals_updated"] == [pid]
    proposal = bot.store.get_proposal(pid)
    assert proposal.state is State.PROPOSED and proposal.severity == "critical"
    assert "automatic rollback is paused" in proposal.decision_reason
    assert fake_target.switches == [] and notifier.names() == ["created", "alerts"]
    assert "proposal.severity_raised" in audit_actions(bot, pid)


def test_critical_alert_with_no_proposal_rolls_back_at_once(client: TestClient, bot: Container,
                                                           fake_target: FakeTarget) -> None:
    answer = post(client, load("alertmanager-firing.json"))  # the captured body: model fraud, severity page
    [pid] = answer["executed"]
    assert answer["proposals_created"] == [pid] and answer["alerts"][0]["outcome"] == "executed"
    assert bot.store.get_proposal(pid).state is State.SUCCEEDED and len(fake_target.switches) == 1
    assert [a.fingerprint for a in bot.store.alerts_for_proposal(pid)] == ["2e780bd43ba4d717"]


# --- resolution --------------------------------------------------------------------------------------


def test_all_alerts_resolved_before_a_decision_cancels_the_proposal(client: TestClient, bot: Container,
                                                                    notifier: RecordingNotifier) -> None:
    [pid] = post(client, am_body(am_alert("fraud", "x1"), am_alert("fraud", "x2")))["proposals_created"]
    one = post(client, am_body(am_alert("fraud", "x1", status="resolved", ends="2026-11-02T12:03:00Z")))
    assert one["resolved"] == 1 and "1 of 2 alert(s)" in one["alerts"][0]["reason"]
    assert bot.store.get_proposal(pid).state is State.PROPOSED
    two = post(client, am_body(am_alert("fraud", "x2", status="resolved", ends="2026-11-02T12:07:00Z")))
    proposal = bot.store.get_proposal(pid)
    assert proposal.state is State.CANCELLED and proposal.decided_by == "alert:alertmanager"
    assert proposal.result == "all 2 alert(s) resolved at 12:07 UTC before anyone decided"
    assert two["proposals_updated"] == [pid] and "cancelled" in two["alerts"][0]["reason"]
    assert notifier.events[-1][1:3] == ("cancelled", proposal.result)
    assert audit_actions(bot, pid)[-3:] == ["alert.resolved", "alert.resolved", "proposal.cancelled"]


def test_resolution_after_the_rollback_goes_into_the_timeline(client: TestClient, bot: Container,
                                                              notifier: RecordingNotifier) -> None:
    [pid] = post(client, am_body(am_alert("fraud", "k1", severity="critical")))["executed"]
    answer = post(client, am_body(am_alert("fraud", "k1", severity="critical", status="resolved",
                                           ends="2026-11-02T12:09:30Z")))
    assert answer["resolved"] == 1 and "added to its timeline" in answer["alerts"][0]["reason"]
    assert bot.store.get_proposal(pid).state is State.SUCCEEDED
    [row] = [r for r in bot.store.audit_records(proposal_id=pid) if r.action == "alert.resolved"]
    assert row.actor == "alert:alertmanager" and "resolved at 12:09:30 UTC" in (row.reason or "")
    assert notifier.events[-1][:3] == (pid, "timeline", "ModelErrorRateHigh resolved at 12:09 UTC")


def test_datadog_trigger_then_recovery_without_a_start_time(client: TestClient, bot: Container,
                                                            notifier: RecordingNotifier) -> None:
    triggered = load("datadog-triggered.json")
    triggered |= {"transition": "Warn", "alert_type": "warning"}  # warning: a proposal, not a rollback
    [pid] = post(client, triggered, source="datadog")["proposals_created"]
    assert post(client, triggered, source="datadog")["duplicates"] == 1
    recovered = post(client, load("datadog-recovered.json"), source="datadog")
    assert recovered["resolved"] == 1
    assert bot.store.get_proposal(pid).state is State.CANCELLED
    assert bot.store.firing_alerts("fraud-detector") == []


# --- ignored -----------------------------------------------------------------------------------------


def test_alert_for_no_model_is_stored_and_ignored(client: TestClient, bot: Container) -> None:
    answer = post(client, load("grafana-firing.json"), source="grafana")  # labels name no model
    assert (answer["stored"], answer["ignored"], answer["proposals_created"]) == (2, 2, [])
    assert all(a["outcome"] == "ignored" and "no model in the policy matches" in a["reason"]
               for a in answer["alerts"])
    assert table_counts(bot.engine)["alerts"] == 2 and table_counts(bot.engine)["proposals"] == 0


def test_answer_lists_at_most_100_alerts_but_counts_them_all(client: TestClient, bot: Container) -> None:
    answer = post(client, am_body(*(am_alert("nobody", f"n{i:03d}") for i in range(150))))
    assert (answer["stored"], answer["ignored"], len(answer["alerts"])) == (150, 150, 100)
    assert table_counts(bot.engine)["alerts"] == 150


def test_below_min_severity_and_frozen_are_ignored_with_the_reason(client: TestClient, bot: Container) -> None:
    info = post(client, am_body(am_alert("fraud", "i1", severity="info")))
    assert info["ignored"] == 1 and "below min_severity warning" in info["alerts"][0]["reason"]
    bot.service.freeze("ranker", actor="slack:U0LEAD", duration=timedelta(hours=2), reason="migration")
    frozen = post(client, am_body(am_alert("other", "f1", service="ranking", team="search")))
    assert frozen["ignored"] == 1 and frozen["alerts"][0]["model"] == "ranker"
    assert "ranker is frozen until" in frozen["alerts"][0]["reason"]
    assert table_counts(bot.engine)["proposals"] == 0


def test_grafana_values_reach_the_card_summary(client: TestClient, bot: Container) -> None:
    body = load("grafana-firing.json")
    body["alerts"] = body["alerts"][:1]
    body["alerts"][0]["labels"].update(model="fraud", severity="warning")
    [pid] = post(client, body, source="grafana")["proposals_created"]
    summary = bot.store.get_proposal(pid).summary
    assert summary.get("source") == "alert" and {m["name"] for m in summary["metrics"]} == {"B", "C"}


def test_generic_source_uses_the_policy_mapping(client: TestClient, bot: Container) -> None:
    body = {"events": [{"id": "evt-1", "state": "open", "title": "errors up", "priority": "warning",
                        "opened": 1793620000, "tags": {"model": "fraud-detector"}}]}
    [pid] = post(client, body, source="generic")["proposals_created"]
    body["events"][0]["state"] = "closed"
    post(client, body, source="generic")
    assert bot.store.get_proposal(pid).state is State.CANCELLED


# --- bad input ---------------------------------------------------------------------------------------

GOOD = json.dumps(am_body(am_alert("fraud", "bad0"))).encode()


def _many_labels() -> bytes:
    alert = am_alert("fraud", "bad1")
    alert["labels"].update({f"l{i}": "v" for i in range(10_000)})
    return json.dumps(am_body(alert)).encode()


def _wrong(path: str, value: Any) -> bytes:
    body = am_body(am_alert("fraud", "bad2"))
    target: Any = body
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return json.dumps(body).encode()


BAD_INPUTS = [
    ("truncated JSON", "alertmanager", GOOD[: len(GOOD) // 2], AUTH, 400, "body: not valid JSON"),
    ("not JSON at all", "alertmanager", b"\x80 garbage", AUTH, 400, "body: not"),
    ("alerts not a list", "alertmanager", _wrong("alerts", {"a": 1}), AUTH, 400, "alerts: expected a list"),
    ("labels wrong type", "alertmanager", _wrong("alerts.0.labels", ["model"]), AUTH, 400,
     "alerts[0].labels: expected an object"),
    ("label value a number", "alertmanager", _wrong("alerts.0.labels", {"model": 7}), AUTH, 400,
     "alerts[0].labels.model: expected a string"),
    ("missing labels", "alertmanager", _wrong("alerts.0.labels", KeyError), AUTH, 400, "alerts[0].labels: missing"),
    ("bad status", "alertmanager", _wrong("alerts.0.status", "burning"), AUTH, 400, "alerts[0].status"),
    ("bad time", "alertmanager", _wrong("alerts.0.startsAt", "yesterday"), AUTH, 400, "alerts[0].startsAt"),
    ("10,000 labels", "alertmanager", _many_labels(), AUTH, 400, "at most 200 are accepted"),
    ("5 MiB body", "alertmanager", b"{" + b" " * (5 * 1024 * 1024) + b"}", AUTH, 413, "over the 1048576-byte limit"),
    ("unknown source path", "nagios", GOOD, AUTH, 404, "use one of /alerts/alertmanager"),
    ("missing token", "alertmanager", GOOD, {}, 401, "missing bearer token"),
    ("wrong token", "alertmanager", GOOD, {"Authorization": "Bearer nope"}, 401, "wrong bearer token"),
    ("grafana body missing alerts", "grafana", b'{"status": "firing"}', AUTH, 400, "alerts: missing"),
    ("datadog unknown transition", "datadog", json.dumps(load("datadog-triggered.json") | {"transition": "Boom"}
                                                          ).encode(), AUTH, 400, "transition: unknown transition"),
    ("negative truncatedAlerts", "alertmanager", _wrong("truncatedAlerts", -2), AUTH, 400,
     "truncatedAlerts: expected a whole number"),
    ("generic without the mapped list", "generic", b'{"alerts": []}', AUTH, 400, "events: missing"),
]


@pytest.mark.parametrize(("what", "source", "body", "headers", "status", "words"), BAD_INPUTS,
                         ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_gets_the_right_4xx_and_stores_nothing(client: TestClient, bot: Container, what: str, source: str,
                                                         body: bytes, headers: dict[str, str], status: int,
                                                         words: str) -> None:
    before = table_counts(bot.engine)
    r = client.post(f"/alerts/{source}", content=body, headers={**headers, "content-type": "application/json"})
    assert r.status_code == status, r.text
    assert words in r.json()["error"]
    assert table_counts(bot.engine) == before


def test_grafana_signature_is_checked_when_a_secret_is_set(db_url: str, clock: ManualClock, fake_target: FakeTarget,
                                                           notifier: RecordingNotifier) -> None:
    c = make_container(db_url, clock, fake_target, notifier, env={"GRAFANA_WEBHOOK_SECRET": "s3cret"})
    body = json.dumps(load("grafana-resolved.json")).encode()
    good = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    with TestClient(create_app(c)) as client:
        for headers, status in (({}, 401), ({"X-Grafana-Alerting-Signature": "0" * 64}, 401),
                                ({"X-Grafana-Alerting-Signature": good}, 202)):
            r = client.post("/alerts/grafana", content=body, headers={**AUTH, **headers})
            assert r.status_code == status, r.text
            if status == 401:
                assert "Grafana signature" in r.json()["error"]
                assert table_counts(c.engine)["alerts"] == 0
        metrics = client.get("/metrics").text
    assert 'rollback_bot_alerts_total{outcome="resolved",source="grafana"} 1.0' in metrics
    c.close()


def test_grafana_timestamped_signature_and_put(db_url: str, clock: ManualClock, fake_target: FakeTarget,
                                               notifier: RecordingNotifier) -> None:
    """grafana/alerting signs hex(HMAC(secret, ts ":" body)) with the header names the contact point sets."""
    env = {"GRAFANA_WEBHOOK_SECRET": "s3cret", "GRAFANA_SIGNATURE_HEADER": "X-Sig",
           "GRAFANA_TIMESTAMP_HEADER": "X-Ts"}
    c = make_container(db_url, clock, fake_target, notifier, env=env)
    body = json.dumps(load("grafana-resolved.json")).encode()

    def signed(stamp: int, payload: bytes = body) -> dict[str, str]:
        digest = hmac.new(b"s3cret", str(stamp).encode() + b":" + payload, hashlib.sha256).hexdigest()
        return {**AUTH, "X-Sig": digest, "X-Ts": str(stamp)}

    now = int(time.time())
    with TestClient(create_app(c)) as client:
        cases = [
            (signed(now - 400), 401, "s old; signatures more than 300 s from now are refused"),
            (signed(now + 400), 401, "s in the future"),
            ({**signed(now), "X-Ts": str(now + 1)}, 401, "wrong Grafana signature in X-Sig"),
            ({k: v for k, v in signed(now).items() if k != "X-Ts"}, 401, "missing Grafana timestamp header X-Ts"),
            ({**AUTH, "X-Grafana-Alert-Signature": hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()}, 401,
             "missing Grafana signature header X-Sig"),
        ]
        for headers, status, words in cases:
            r = client.put("/alerts/grafana", content=body, headers=headers)
            assert (r.status_code, words in r.json().get("error", "")) == (status, True), r.text
        assert table_counts(c.engine)["alerts"] == 0
        r = client.put("/alerts/grafana", content=body, headers=signed(now - 30))
        assert r.status_code == 202, r.text
        assert client.delete("/alerts/grafana", headers=signed(now)).status_code == 405
    c.close()


def test_datadog_form_encoded_and_default_bodies_are_stored(client: TestClient, bot: Container) -> None:
    from urllib.parse import urlencode

    form = urlencode(load("datadog-triggered.json")).encode()
    r = client.post("/alerts/datadog", content=form,
                    headers={**AUTH, "content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 202 and r.json()["stored"] == 1, r.text
    r = client.post("/alerts/datadog", json=load("datadog-default-payload.json"), headers=AUTH)
    assert r.status_code == 202 and r.json()["alerts"][0]["model"] == "fraud-detector", r.text
    before = table_counts(bot.engine)
    r = client.post("/alerts/datadog", content=b"transition=%ff",
                    headers={**AUTH, "content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and "not UTF-8" in r.json()["error"]
    assert table_counts(bot.engine) == before


def test_truncated_alerts_reach_the_stored_rows(client: TestClient, bot: Container) -> None:
    post(client, am_body(am_alert("fraud", "t1"), am_alert("fraud", "t2")) | {"truncatedAlerts": 1})
    rows = bot.store.alerts_for_proposal(bot.store.proposals(model="fraud")[0].id)
    assert [r.annotations["truncatedAlerts"] for r in rows] == ["1", "1"]


def test_database_down_means_503_so_the_sender_retries(db_url: str, tmp_path: Path, clock: ManualClock,
                                                       fake_target: FakeTarget, notifier: RecordingNotifier) -> None:
    down = (f"sqlite:///{tmp_path / 'no-such-dir' / 'bot.db'}" if db_url.startswith("sqlite")
            else "postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2")
    c = make_container(down, clock, fake_target, notifier)
    with TestClient(create_app(c)) as client:
        r = client.post("/alerts/alertmanager", json=am_body(am_alert("fraud", "d1")), headers=AUTH)
    assert r.status_code == 503 and "not stored" in r.json()["error"]
    c.close()


def test_alert_rows_keep_what_the_card_needs(client: TestClient, bot: Container) -> None:
    post(client, load("alertmanager-firing.json"))
    [row] = bot.store.alerts_for_proposal(bot.store.proposals(model="fraud")[0].id)
    assert row.status is AlertStatus.RESOLVED or row.status is AlertStatus.FIRING
    assert row.links["generatorURL"].startswith("http://127.0.0.1:19090/graph")
    assert row.summary == "Error ratio for model fraud v7 is 10.34%" and row.labels["version"] == "7"
    assert row.starts_at.tzinfo is not None and row.received_at.tzinfo is not None
