"""Alert parsers: real and documented payloads, every kind of bad input, and random JSON."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.alerts import (
    PARSERS,
    MappingError,
    PayloadError,
    alertmanager,
    datadog,
    generic,
    grafana,
    mapping_from_dict,
    parse_body,
    parser_for,
    verify_grafana_signature,
)
from adapters.alerts._fields import labels_fingerprint
from bot.core.alert import AlertStatus
from bot.core.severity import Severity, SeverityTable

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "alerts"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def am_payload(**alert_overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = load("alertmanager-firing.json")
    body["alerts"][0].update(alert_overrides)
    return body


def error_of(parse: Any, payload: object) -> str:
    with pytest.raises(PayloadError) as info:
        parse(payload)
    return str(info.value)


# --- Alertmanager ---------------------------------------------------------------------------------


def test_alertmanager_firing_capture() -> None:
    [alert] = alertmanager.parse(load("alertmanager-firing.json"))
    assert alert.source == "alertmanager"
    assert alert.fingerprint == "2e780bd43ba4d717"
    assert alert.status is AlertStatus.FIRING
    assert alert.name == "ModelErrorRateHigh"
    assert alert.labels == {
        "alertname": "ModelErrorRateHigh",
        "model": "fraud",
        "severity": "page",
        "version": "7",
    }
    assert alert.severity is Severity.CRITICAL  # "page" reads as critical
    assert alert.starts_at == datetime(2026, 11, 27, 4, 38, 32, 682000, tzinfo=UTC)
    assert alert.starts_at.tzinfo is UTC
    assert alert.ends_at is None  # "0001-01-01T00:00:00Z"
    assert alert.links["generatorURL"].startswith("http://127.0.0.1:19090/graph?g0.expr=")
    assert alert.links["externalURL"] == "http://127.0.0.1:19093"
    assert alert.summary == "Error ratio for model fraud v7 is 10.34%"


def test_alertmanager_resolved_capture_keeps_identity() -> None:
    [firing] = alertmanager.parse(load("alertmanager-firing.json"))
    [resolved] = alertmanager.parse(load("alertmanager-resolved.json"))
    assert resolved.status is AlertStatus.RESOLVED
    assert (resolved.fingerprint, resolved.starts_at) == (firing.fingerprint, firing.starts_at)
    assert resolved.ends_at == datetime(2026, 11, 27, 4, 38, 37, 682000, tzinfo=UTC)


def test_missing_fingerprint_is_a_stable_hash_of_sorted_labels() -> None:
    body = am_payload()
    del body["alerts"][0]["fingerprint"]
    [alert] = alertmanager.parse(body)
    reordered = dict(reversed(list(body["alerts"][0]["labels"].items())))
    assert alert.fingerprint == labels_fingerprint(reordered)
    assert len(alert.fingerprint) == 64
    assert alertmanager.parse(body)[0].fingerprint == alert.fingerprint


def test_alert_status_falls_back_to_group_status() -> None:
    body = am_payload()
    del body["alerts"][0]["status"]
    assert alertmanager.parse(body)[0].status is AlertStatus.FIRING
    del body["status"]
    assert error_of(alertmanager.parse, body).startswith("alerts[0].status: missing")


def test_unknown_severity_and_missing_alertname() -> None:
    body = am_payload(labels={"model": "fraud", "severity": "catastrophic"})
    [alert] = alertmanager.parse(body)
    assert alert.severity is Severity.WARNING
    assert alert.name == "unnamed alert"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b.pop("alerts"), "alerts: missing"),
        (lambda b: b.update(alerts={"a": 1}), "alerts: expected a list, got object"),
        (lambda b: b["alerts"].append("x"), "alerts[1]: expected an object, got string"),
        (lambda b: b["alerts"][0].pop("labels"), "alerts[0].labels: missing"),
        (
            lambda b: b["alerts"][0].update(labels=["model", "fraud"]),
            "alerts[0].labels: expected an object of strings, got list",
        ),
        (
            lambda b: b["alerts"][0]["labels"].update(version=7),
            "alerts[0].labels.version: expected a string, got number",
        ),
        (
            lambda b: b["alerts"][0].update(annotations="oops"),
            "alerts[0].annotations: expected an object of strings, got string",
        ),
        (
            lambda b: b["alerts"][0].update(status="pending"),
            'alerts[0].status: expected "firing" or "resolved", got \'pending\'',
        ),
        (lambda b: b["alerts"][0].update(status=1), "alerts[0].status: expected a string, got number"),
        (
            lambda b: b["alerts"][0].update(startsAt="yesterday"),
            "alerts[0].startsAt: not an ISO 8601 time or epoch number: 'yesterday'",
        ),
        (lambda b: b["alerts"][0].update(endsAt=[]), "alerts[0].endsAt: expected a timestamp, got list"),
        (
            lambda b: b["alerts"][0].update(fingerprint={"x": 1}),
            "alerts[0].fingerprint: expected a string, got object",
        ),
        (
            lambda b: b["alerts"][0].update(fingerprint="f" * 201),
            "alerts[0].fingerprint: 201 bytes long, at most 200 are accepted",
        ),
        (
            lambda b: b["alerts"][0].update(generatorURL=12),
            "alerts[0].generatorURL: expected a string, got number",
        ),
        (lambda b: b.update(status=None, alerts=[{"labels": {}}]), "alerts[0].status: missing"),
    ],
)
def test_alertmanager_bad_shapes_name_the_field(mutate: Any, message: str) -> None:
    body = load("alertmanager-firing.json")
    mutate(body)
    assert error_of(alertmanager.parse, body).startswith(message)


@pytest.mark.parametrize("payload", [[], "alerts", 3, None, True])
def test_body_must_be_an_object(payload: object) -> None:
    assert error_of(alertmanager.parse, payload).startswith("body: expected an object")


def test_ten_thousand_labels_are_refused_clearly() -> None:
    labels = {f"l{i}": "v" for i in range(10_000)}
    message = error_of(alertmanager.parse, am_payload(labels=labels))
    assert message == "alerts[0].labels: 10000 entries, at most 200 are accepted"


def test_two_hundred_labels_are_fine() -> None:
    labels = {f"l{i}": "v" for i in range(200)}
    assert len(alertmanager.parse(am_payload(labels=labels))[0].labels) == 200


def test_too_many_alerts() -> None:
    body = load("alertmanager-firing.json")
    body["alerts"] = body["alerts"] * 1001
    assert error_of(alertmanager.parse, body) == "alerts: 1001 items, at most 1000 are accepted"
    body["alerts"] = body["alerts"][:1000]
    assert len(alertmanager.parse(body)) == 1000


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"model": "x" * 2000}, "alerts[0].labels.model: 2000 bytes long, at most 1024 are accepted"),
        ({"k" * 1025: "v"}, f"alerts[0].labels.{'k' * 1025}: 1025 bytes long, at most 1024 are accepted"),
        ({"model": "é" * 600}, "alerts[0].labels.model: 1200 bytes long, at most 1024 are accepted"),
        ({"model": "fraud\x00"}, "alerts[0].labels.model: contains a NUL character"),
        ({"model": "\ud800"}, "alerts[0].labels.model: contains an unpaired UTF-16 surrogate"),
        ({"": "v"}, "alerts[0].labels: has an empty key"),
    ],
)
def test_huge_or_unstorable_strings(labels: dict[str, str], message: str) -> None:
    assert error_of(alertmanager.parse, am_payload(labels=labels)).startswith(message)


def test_huge_annotation_is_refused_but_long_descriptions_pass() -> None:
    ok = am_payload(annotations={"description": "d" * 16_000})
    assert len(alertmanager.parse(ok)[0].annotations["description"]) == 16_000
    message = error_of(alertmanager.parse, am_payload(annotations={"description": "d" * 20_000}))
    assert message == "alerts[0].annotations.description: 20000 bytes long, at most 16384 are accepted"


def test_long_alert_name_is_clipped_to_the_column() -> None:
    [alert] = alertmanager.parse(am_payload(labels={"alertname": "n" * 1000}))
    assert len(alert.name) == 500


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-27T04:38:32.682Z", datetime(2026, 11, 27, 4, 38, 32, 682000, tzinfo=UTC)),
        ("2021-10-12T09:51:03.157076+02:00", datetime(2021, 10, 12, 7, 51, 3, 157076, tzinfo=UTC)),
        ("2021-10-12T09:51:03.123456789Z", datetime(2021, 10, 12, 9, 51, 3, 123456, tzinfo=UTC)),  # Go nanoseconds
        ("2021-10-12T09:51:03", datetime(2021, 10, 12, 9, 51, 3, tzinfo=UTC)),  # no offset: UTC
        ("0001-01-01T00:00:00Z", None),
        (None, None),
        ("", None),
    ],
)
def test_times_become_naive_utc(raw: object, expected: datetime | None) -> None:
    [alert] = alertmanager.parse(am_payload(startsAt=raw))
    assert alert.starts_at == expected


def test_zero_time_with_an_offset_does_not_overflow() -> None:
    assert alertmanager.parse(am_payload(endsAt="0001-01-01T00:00:00+01:00"))[0].ends_at is None


# --- raw bodies ------------------------------------------------------------------------------------


def test_truncated_body() -> None:
    raw = (FIXTURES / "alertmanager-firing.json").read_bytes()
    with pytest.raises(PayloadError) as info:
        parse_body("alertmanager", raw[: len(raw) // 2])
    assert str(info.value).startswith("body: not valid JSON: ")
    assert "line" in str(info.value)


def test_body_that_is_not_utf8() -> None:
    with pytest.raises(PayloadError, match=r"^body: not UTF-8 text"):
        parse_body("alertmanager", b'{"alerts": ["\xff\xfe"]}')


def test_absurdly_nested_body() -> None:
    with pytest.raises(PayloadError, match=r"^body: "):
        parse_body("generic", b"[" * 100_000 + b"]" * 100_000)


def test_empty_body() -> None:
    with pytest.raises(PayloadError, match=r"^body: not valid JSON"):
        parse_body("grafana", b"")


# --- Grafana -------------------------------------------------------------------------------------


def test_grafana_documented_example() -> None:
    first, second = grafana.parse(load("grafana-firing.json"))
    assert first.source == "grafana"
    assert first.fingerprint == "c6eadffa33fcdf37"
    assert first.name == "High memory usage"
    assert first.status is AlertStatus.FIRING
    assert first.starts_at == datetime(2021, 10, 12, 7, 51, 3, 157076, tzinfo=UTC)  # +02:00 to UTC
    assert first.values == {"B": 44.23943737541908, "C": 1.0}
    assert first.links["generatorURL"] == "https://play.grafana.org/alerting/1afz29v7z/edit"
    assert first.links["silenceURL"].startswith("https://play.grafana.org/alerting/silence/new")
    assert "dashboardURL" not in first.links  # empty strings are no link
    assert first.summary == "This alert was triggered for zone us-1"
    assert second.fingerprint == "bc97ff14869b13e3"


def test_grafana_resolved_with_links() -> None:
    [alert] = grafana.parse(load("grafana-resolved.json"))
    assert alert.status is AlertStatus.RESOLVED
    assert alert.severity is Severity.CRITICAL
    assert alert.labels["model"] == "fraud-detector"
    assert alert.ends_at == datetime(2026, 11, 27, 4, 14, 30, tzinfo=UTC)
    assert set(alert.links) == {"generatorURL", "silenceURL", "dashboardURL", "panelURL", "externalURL"}
    assert alert.values == {"A": 0.012, "C": 0.0}


@pytest.mark.parametrize(
    ("values", "expected"),
    [(None, {}), ({}, {}), ({"A": None, "B": 2}, {"B": 2.0}), ({"A": float("nan"), "B": 1.5}, {"B": 1.5})],
)
def test_grafana_values_tolerates_null_and_nan(values: object, expected: dict[str, float]) -> None:
    body = load("grafana-resolved.json")
    body["alerts"][0]["values"] = values
    assert grafana.parse(body)[0].values == expected


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([1, 2], "alerts[0].values: expected an object of numbers, got list"),
        ({"B": "44"}, "alerts[0].values.B: expected a number, got string"),
        ({"B": True}, "alerts[0].values.B: expected a number, got boolean"),
    ],
)
def test_grafana_bad_values(values: object, message: str) -> None:
    body = load("grafana-resolved.json")
    body["alerts"][0]["values"] = values
    assert error_of(grafana.parse, body) == message


SIGNED_BODY = b'{"status":"firing"}'


def test_grafana_signature_rfc4231_vector() -> None:
    # RFC 4231 test case 2: HMAC-SHA256(key "Jefe", "what do ya want for nothing?")
    digest = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    body = b"what do ya want for nothing?"
    assert verify_grafana_signature(body, {"X-Grafana-Alerting-Signature": digest}, "Jefe")
    assert not verify_grafana_signature(body + b" ", {"X-Grafana-Alerting-Signature": digest}, "Jefe")
    assert not verify_grafana_signature(body, {"X-Grafana-Alerting-Signature": digest}, "jefe")


def test_grafana_signature_header_names() -> None:
    digest = "28a683a6144fb7c3f590b19d8b8c9082c07af22f920df265175758c7c0a749ec"  # openssl dgst -hmac
    assert verify_grafana_signature(SIGNED_BODY, {"x-grafana-alerting-signature": digest}, "s3cr3t")
    assert verify_grafana_signature(SIGNED_BODY, {"X-Grafana-Alert-Signature": digest}, "s3cr3t")
    assert verify_grafana_signature(SIGNED_BODY, {"X-Sig": digest}, "s3cr3t", signature_header="X-Sig")
    assert not verify_grafana_signature(SIGNED_BODY, {"X-Sig": digest}, "s3cr3t")
    assert not verify_grafana_signature(SIGNED_BODY, {}, "s3cr3t")
    assert not verify_grafana_signature(SIGNED_BODY, {"X-Grafana-Alerting-Signature": digest}, "")


def test_grafana_signature_with_timestamp() -> None:
    # Grafana signs "<unix seconds>:<body>" when the contact point names a timestamp header.
    digest = "2df7303a90af847a72802ca693e8c2763d4d0d0676f92e0cf5b7779907056a3f"
    headers = {"X-Grafana-Alerting-Signature": digest, "X-Grafana-Alerting-Timestamp": "1700000000"}

    def check(**kwargs: Any) -> bool:
        return verify_grafana_signature(
            SIGNED_BODY, headers, "s3cr3t", timestamp_header="X-Grafana-Alerting-Timestamp", **kwargs
        )

    assert check(now=1_700_000_100)
    assert not check(now=1_700_000_000 + 301)  # replay window
    assert check(now=1_800_000_000, max_age_seconds=None)
    assert not verify_grafana_signature(SIGNED_BODY, headers, "s3cr3t")  # body-only does not match
    headers["X-Grafana-Alerting-Timestamp"] = "1700000001"
    assert not check(now=1_700_000_001)


@pytest.mark.parametrize("bad", ["zzz", "é" * 64, "", "  "])
def test_grafana_signature_garbage_is_false_not_an_exception(bad: str) -> None:
    assert not verify_grafana_signature(SIGNED_BODY, {"X-Grafana-Alerting-Signature": bad}, "s3cr3t")
    headers = {"X-Grafana-Alerting-Signature": "00", "X-Ts": bad or "²"}
    assert not verify_grafana_signature(SIGNED_BODY, headers, "s3cr3t", timestamp_header="X-Ts")


# --- Datadog -------------------------------------------------------------------------------------


def test_datadog_triggered() -> None:
    [alert] = datadog.parse(load("datadog-triggered.json"))
    assert alert.source == "datadog"
    assert alert.status is AlertStatus.FIRING
    assert alert.fingerprint == "7318029376512934411"  # $ALERT_CYCLE_KEY
    assert alert.labels == {"env": "prod", "model": "fraud-detector", "monitor": "", "team": "ml-platform"}
    assert alert.severity is Severity.CRITICAL  # P1
    assert alert.name == "fraud-detector error rate is high"
    assert alert.starts_at == datetime(2014, 7, 29, 19, 37, 52, tzinfo=UTC)  # $DATE 1406662672000 ms
    assert alert.ends_at is None
    assert alert.links == {"link": "https://app.datadoghq.com/event/event?id=6284467829765405698"}
    assert alert.annotations["monitor_id"] == "1234"
    assert alert.annotations["transition"] == "Triggered"
    assert alert.summary.startswith("[P1] [Triggered on {model:fraud-detector}]")
    assert "hostname" not in alert.annotations  # empty


def test_datadog_recovered_matches_the_trigger() -> None:
    [firing] = datadog.parse(load("datadog-triggered.json"))
    [resolved] = datadog.parse(load("datadog-recovered.json"))
    assert resolved.status is AlertStatus.RESOLVED
    assert resolved.fingerprint == firing.fingerprint
    assert resolved.starts_at is None
    assert resolved.ends_at == datetime(2014, 7, 29, 19, 42, 52, tzinfo=UTC)


def test_datadog_default_payload_is_accepted_with_defaults() -> None:
    [alert] = datadog.parse(load("datadog-default-payload.json"))
    assert alert.status is AlertStatus.FIRING  # from the title's "[Triggered on …]"
    assert alert.labels == {"model": "fraud-detector"}  # the title's {tag:value} scope
    assert alert.name == "fraud-detector error rate is high"
    assert alert.severity is Severity.CRITICAL  # "[Triggered …]": the monitor's alert state
    assert alert.starts_at == datetime(2014, 7, 29, 19, 37, 52, tzinfo=UTC)
    assert alert.annotations["description"] == "Error rate for fraud-detector is above 5% over the last 5m."
    assert alert.annotations["event_id"] == "6284467829765405698"
    assert len(alert.fingerprint) == 64


def test_datadog_default_payload_recovery_has_the_trigger_fingerprint() -> None:
    body = load("datadog-default-payload.json")
    recovered = body | {"title": "[Recovered on {model:fraud-detector}] fraud-detector error rate is high",
                        "id": "6284467829765405699", "date": "1406662972000"}
    [firing], [resolved] = datadog.parse(body), datadog.parse(recovered)
    assert resolved.status is AlertStatus.RESOLVED and resolved.fingerprint == firing.fingerprint
    other = body | {"title": "[Triggered on {model:ranker}] ranker error rate is high"}
    assert datadog.parse(other)[0].fingerprint != firing.fingerprint


def test_datadog_monitor_and_priority_from_the_default_body() -> None:
    body = load("datadog-default-payload.json") | {
        "title": "[P1] [Triggered] High tracking",
        "body": "%%%\nhigh [![g](https://p.example/x.png)](https://app.datadoghq.com/monitors/221164084?from_ts=1)"
                "\n%%%",
    }
    [alert] = datadog.parse(body)
    assert alert.severity is Severity.CRITICAL and alert.annotations["monitor_id"] == "221164084"
    assert alert.links == {"link": "https://app.datadoghq.com/monitors/221164084?from_ts=1"}
    moved = body | {"id": "1", "date": "1406662999000", "last_updated": "1406662999000"}
    assert datadog.parse(moved)[0].fingerprint == alert.fingerprint


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"transition": "Null"}, AlertStatus.FIRING),  # the title still says [Triggered …]
        ({"transition": "Null", "alert_title": "[Recovered] x", "title": "[Recovered] x"}, AlertStatus.RESOLVED),
        ({"transition": "Null", "alert_title": "x", "title": "x", "alert_type": "success"}, AlertStatus.RESOLVED),
        ({"transition": "Null", "alert_title": "x", "title": "x", "alert_type": "error"}, AlertStatus.FIRING),
        ({"transition": None, "alert_transition": "Recovered"}, AlertStatus.RESOLVED),
        ({"transition": "$ALERT_TRANSITION", "alert_title": "[Recovered] x"}, AlertStatus.RESOLVED),
    ],
)
def test_datadog_null_and_missing_transition(changes: dict[str, Any], status: AlertStatus) -> None:
    [alert] = datadog.parse(load("datadog-triggered.json") | changes)
    assert alert.status is status


def test_datadog_long_message_is_cut_not_refused() -> None:
    [alert] = datadog.parse(load("datadog-triggered.json") | {"message": "m" * 20_000})
    assert len(alert.annotations["description"].encode()) <= 16_384
    assert alert.annotations["description"].endswith("…")


def test_datadog_form_encoded_body() -> None:
    from urllib.parse import urlencode

    from adapters.alerts import parse_body

    fields = load("datadog-triggered.json")
    form = urlencode(fields).encode()
    [alert] = parse_body("datadog", form, None, "application/x-www-form-urlencoded; charset=utf-8")
    assert alert == datadog.parse(fields)[0]
    nested = urlencode({"payload": json.dumps(fields)}).encode()
    assert parse_body("datadog", nested, None, "application/x-www-form-urlencoded")[0] == alert
    with pytest.raises(PayloadError, match="not a URL-encoded form"):
        parse_body("datadog", b"&&=x;", None, "application/x-www-form-urlencoded")
    with pytest.raises(PayloadError, match="not UTF-8"):
        parse_body("datadog", b"transition=%ff", None, "application/x-www-form-urlencoded")


@pytest.mark.parametrize(
    ("changes", "table", "expected"),
    [
        ({}, {}, Severity.CRITICAL),  # Triggered, alert type error
        ({"transition": "Re-Triggered"}, {}, Severity.CRITICAL),
        ({"transition": "Warn", "alert_type": "warning"}, {}, Severity.WARNING),  # a P1 monitor that warns
        ({"transition": "Re-Warn", "alert_type": "warning"}, {}, Severity.WARNING),
        ({"transition": "Triggered", "alert_type": "warning"}, {}, Severity.WARNING),
        ({"transition": "Renotify", "alert_type": "warning"}, {}, Severity.WARNING),
        ({"transition": "Renotify", "alert_type": "error"}, {}, Severity.CRITICAL),
        ({"transition": "Null", "alert_type": "info"}, {}, Severity.INFO),
        ({"transition": None, "alert_type": None, "alert_title": "x", "title": "x"}, {}, Severity.WARNING),
        ({"priority": "P4"}, {}, Severity.CRITICAL),  # priority counts only where the policy lists it
        ({"priority": "$ALERT_PRIORITY"}, {"P4": Severity.INFO}, Severity.CRITICAL),  # not filled in
        ({"priority": "p4"}, {"P4": Severity.INFO}, Severity.INFO),  # listed: it lowers
        ({"transition": "Warn", "alert_type": "warning"}, {"P1": Severity.CRITICAL}, Severity.WARNING),  # never raises
        ({"tags": "model:m,severity:warning"}, {}, Severity.WARNING),  # a severity tag lowers too
        ({"transition": "Warn", "tags": "model:m,severity:critical"}, {}, Severity.WARNING),
    ],
)
def test_datadog_severity(changes: dict[str, Any], table: dict[str, Severity], expected: Severity) -> None:
    body = load("datadog-triggered.json") | changes
    [alert] = datadog.parse(body, SeverityTable().with_entries(table))
    assert alert.severity is expected
    assert not alert.no_data


@pytest.mark.parametrize("transition", ["No Data", "Re-No Data"])
def test_datadog_no_data_is_left_to_the_model(transition: str) -> None:
    [alert] = datadog.parse(load("datadog-triggered.json") | {"transition": transition})
    assert alert.no_data and alert.severity is Severity.CRITICAL  # the decider lowers it per no_data
    [capped] = datadog.parse(load("datadog-triggered.json") | {"transition": transition,
                                                                "tags": "model:m,severity:info"})
    assert capped.severity is Severity.INFO


def test_alertmanager_severity_table_from_the_policy() -> None:
    body = am_payload(labels={"model": "fraud", "severity": "page", "alertname": "X"})
    assert alertmanager.parse(body)[0].severity is Severity.CRITICAL  # SPEC default
    table = SeverityTable().with_entries({"page": Severity.WARNING, "SEV1": Severity.CRITICAL})
    assert alertmanager.parse(body, table)[0].severity is Severity.WARNING
    sev1 = am_payload(labels={"model": "fraud", "severity": "sev1", "alertname": "X"})
    assert alertmanager.parse(sev1, table)[0].severity is Severity.CRITICAL  # case-insensitive


@pytest.mark.parametrize(
    ("transition", "status"),
    [
        ("Recovered", AlertStatus.RESOLVED),
        ("Re-Triggered", AlertStatus.FIRING),
        ("Warn", AlertStatus.FIRING),
        ("No Data", AlertStatus.FIRING),
        ("renotify", AlertStatus.FIRING),
    ],
)
def test_datadog_transitions(transition: str, status: AlertStatus) -> None:
    body = load("datadog-triggered.json") | {"transition": transition}
    assert datadog.parse(body)[0].status is status


def test_datadog_tags_forms() -> None:
    base = load("datadog-triggered.json")
    listed = datadog.parse(base | {"tags": ["model:a", "url:http://x:8080/y"], "scope": None})[0]
    assert listed.labels == {"model": "a", "url": "http://x:8080/y"}
    spaced = datadog.parse(base | {"tags": " model:a , env:prod,model:b", "scope": "zone:z1, model:c"})[0]
    assert spaced.labels == {"model": "a", "env": "prod", "zone": "z1"}  # first value wins
    unfilled = datadog.parse(base | {"tags": "$TAGS", "scope": ""})[0]
    assert unfilled.labels == {"model": "fraud-detector"}  # from the title's "[Triggered on {model:…}]"
    untitled = datadog.parse(base | {"tags": "$TAGS", "scope": "", "title": "x", "alert_title": "x"})[0]
    assert untitled.labels == {}


def test_datadog_fingerprint_fallbacks() -> None:
    base = load("datadog-triggered.json")
    assert datadog.parse(base | {"alert_cycle_key": ""})[0].fingerprint == "9bd4ac313a4d1e8fae2482df7b77628"
    bare = base | {"alert_cycle_key": None, "aggreg_key": "$AGGREG_KEY"}
    first = datadog.parse(bare)[0].fingerprint
    assert len(first) == 64
    assert datadog.parse(bare | {"alert_id": "999"})[0].fingerprint != first


def test_datadog_dates_and_numbers() -> None:
    base = load("datadog-triggered.json")
    assert datadog.parse(base | {"date": 1406662672000})[0].starts_at == datetime(2014, 7, 29, 19, 37, 52, tzinfo=UTC)
    assert datadog.parse(base | {"date": 1406662672})[0].starts_at == datetime(2014, 7, 29, 19, 37, 52, tzinfo=UTC)
    assert datadog.parse(base | {"date": "$DATE"})[0].starts_at is None
    assert datadog.parse(base | {"alert_id": 1234})[0].annotations["monitor_id"] == "1234"


def test_datadog_list_body() -> None:
    alerts = datadog.parse([load("datadog-triggered.json"), load("datadog-recovered.json")])
    assert [a.status for a in alerts] == [AlertStatus.FIRING, AlertStatus.RESOLVED]
    assert (
        error_of(datadog.parse, [load("datadog-triggered.json"), 5]) == "[1]: expected an object, got number"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"transition": "Exploded"}, "transition: unknown transition 'Exploded'"),
        ({"transition": ["Triggered"]}, "transition: expected a string, got list"),
        ({"tags": {"model": "x"}}, "tags: expected a comma-separated string or a list of tags, got object"),
        ({"tags": [1]}, "tags[0]: expected a string, got number"),
        ({"tags": ":x"}, "tags[0]: tag ':x' has no name before ':'"),
        ({"tags": ",".join(f"t{i}:v" for i in range(10_000))}, "tags: 10000 tags, at most 200 are accepted"),
        ({"tags": "model:" + "x" * 5000}, "tags[0]: 5000 bytes long, at most 1024 are accepted"),
        ({"date": "soon"}, "date: not an ISO 8601 time or epoch number: 'soon'"),
    ],
)
def test_datadog_bad_input(changes: dict[str, Any], message: str) -> None:
    assert error_of(datadog.parse, load("datadog-triggered.json") | changes).startswith(message)


def test_datadog_template_covers_the_fields_the_parser_reads() -> None:
    assert set(datadog.ANNOTATION_FIELDS) <= set(datadog.PAYLOAD_TEMPLATE)
    for key in ("transition", "tags", "scope", "date", "link", "alert_cycle_key", "aggreg_key", "priority"):
        assert datadog.PAYLOAD_TEMPLATE[key].startswith("$")


# --- generic -------------------------------------------------------------------------------------


def test_generic_defaults_read_an_alertmanager_body() -> None:
    [mine] = generic.parse(load("alertmanager-firing.json"))
    [theirs] = alertmanager.parse(load("alertmanager-firing.json"))
    assert mine.source == "generic"
    for name in (
        "fingerprint",
        "status",
        "name",
        "labels",
        "annotations",
        "severity",
        "starts_at",
        "ends_at",
    ):
        assert getattr(mine, name) == getattr(theirs, name)
    assert mine.links == {"generatorURL": theirs.links["generatorURL"]}


CUSTOM = {
    "alerts": "events",
    "status": "state",
    "firing": ["open"],
    "resolved": ["closed"],
    "labels": "tags",
    "extra_labels": {"model": "service.name", "region": "$.region"},
    "severity": "priority",
    "name": "title",
    "fingerprint": "id",
    "starts_at": "created",
    "ends_at": "closed_at",
    "annotations": "details",
    "links": {"runbook": "links.runbook", "first": "links.all.0"},
}


def custom_body() -> dict[str, Any]:
    return {
        "region": "eu-west-1",
        "events": [
            {
                "id": 42,
                "state": "OPEN",
                "title": "Fraud model errors",
                "priority": "high",
                "service": {"name": "fraud-detector"},
                "tags": {"team": "ml", "replicas": 3, "canary": True},
                "created": 1_764_219_600_000,
                "details": {"summary": "errors up", "ratio": 0.12},
                "links": {"runbook": "https://runbooks/fraud", "all": ["https://a", "https://b"]},
            }
        ],
    }


def test_generic_custom_mapping() -> None:
    mapping = mapping_from_dict(CUSTOM)
    [alert] = generic.parse(custom_body(), mapping)
    assert alert.fingerprint == "42"
    assert alert.status is AlertStatus.FIRING  # case-insensitive
    assert alert.name == "Fraud model errors"
    assert alert.labels == {
        "team": "ml",
        "replicas": "3",
        "canary": "true",
        "model": "fraud-detector",
        "region": "eu-west-1",
    }
    assert alert.severity is Severity.CRITICAL
    assert alert.starts_at == datetime(2025, 11, 27, 5, 0, tzinfo=UTC)
    assert alert.ends_at is None
    assert alert.annotations == {"summary": "errors up", "ratio": "0.12"}
    assert alert.links == {"runbook": "https://runbooks/fraud", "first": "https://a"}
    assert parser_for("generic", mapping)(custom_body()) == [alert]


def test_generic_single_object_body_and_default_status() -> None:
    mapping = mapping_from_dict({"alerts": "", "default_status": "firing", "labels": "labels"})
    [alert] = generic.parse({"labels": {"model": "m"}}, mapping)
    assert alert.status is AlertStatus.FIRING
    assert alert.fingerprint == labels_fingerprint({"model": "m"})
    two = generic.parse([{"labels": {"model": "a"}}, {"labels": {"model": "b"}, "status": "ok"}], mapping)
    assert [a.status for a in two] == [AlertStatus.FIRING, AlertStatus.RESOLVED]


def test_generic_status_from_the_root() -> None:
    mapping = mapping_from_dict({"status": "$.status"})
    body = load("alertmanager-resolved.json")
    del body["alerts"][0]["status"]
    assert generic.parse(body, mapping)[0].status is AlertStatus.RESOLVED


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"items": []}, "alerts: missing: no alerts list there"),
        ({"alerts": [{"labels": {}}]}, "alerts[0].status: missing (or set default_status"),
        ({"alerts": [{"labels": {}, "status": "meh"}]}, "alerts[0].status: unknown status 'meh' (expected"),
        (
            {"alerts": [{"labels": {"a": {"b": 1}}, "status": "firing"}]},
            "alerts[0].labels.a: expected a string",
        ),
        (
            {"alerts": [{"labels": "x", "status": "firing"}]},
            "alerts[0].labels: expected an object of strings",
        ),
        (
            {"alerts": [{"labels": {}, "status": "firing", "startsAt": True}]},
            "alerts[0].startsAt: expected a",
        ),
        ({"alerts": "nope"}, "alerts: expected a list, got string"),
    ],
)
def test_generic_bad_input(body: object, message: str) -> None:
    assert error_of(generic.parse, body).startswith(message)


def test_generic_path_through_a_scalar() -> None:
    mapping = mapping_from_dict(CUSTOM)
    body = custom_body()
    body["events"][0]["service"] = "fraud-detector"
    assert error_of(lambda p: generic.parse(p, mapping), body) == (
        "events[0].service: expected an object to read 'name' from, got string"
    )


def test_generic_extra_labels_count_towards_the_limit() -> None:
    mapping = mapping_from_dict({"extra_labels": {"model": "m"}, "default_status": "firing"})
    body = {"alerts": [{"labels": {f"l{i}": "v" for i in range(200)}, "m": "x"}]}
    assert error_of(lambda p: generic.parse(p, mapping), body) == (
        "alerts[0].labels: 201 labels, at most 200 are accepted"
    )


def test_mapping_from_dict_reports_every_problem() -> None:
    with pytest.raises(MappingError) as info:
        mapping_from_dict(
            {
                "alert": "events",
                "status": 3,
                "firing": "open",
                "resolved": ["firing"],
                "links": {"x": 1},
                "default_status": "maybe",
                "name": "a..b",
            }
        )
    problems = info.value.problems
    assert problems[0].startswith("sources.generic.alert: unknown key (known keys: alerts, fingerprint,")
    assert "sources.generic.status: expected a dotted path string, got number" in problems
    assert "sources.generic.firing: expected a non-empty list of strings, got string" in problems
    assert 'sources.generic.links: expected a table of name = "path" strings, got object' in problems
    assert 'sources.generic.default_status: expected "firing" or "resolved", got \'maybe\'' in problems
    assert "sources.generic.name: bad path 'a..b': empty segment between dots" in problems
    assert "sources.generic: firing listed as both firing and resolved" in problems
    assert len(problems) == 7


def test_mapping_from_dict_defaults() -> None:
    assert mapping_from_dict({}) == generic.DEFAULT_MAPPING
    assert mapping_from_dict({"firing": ["Open"]}).firing == ("open",)


# --- registry ------------------------------------------------------------------------------------


def test_registry() -> None:
    assert set(PARSERS) == {"alertmanager", "grafana", "datadog", "generic"}
    assert parser_for("grafana") is grafana.parse
    with pytest.raises(KeyError, match="unknown alert source 'nagios'"):
        parser_for("nagios")
    raw = (FIXTURES / "grafana-firing.json").read_bytes()
    assert [a.fingerprint for a in parse_body("grafana", raw)] == ["c6eadffa33fcdf37", "bc97ff14869b13e3"]


# --- property: random input never raises anything but PayloadError -------------------------------

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
FIELD_NAMES = [
    "status", "labels", "annotations", "startsAt", "endsAt", "fingerprint", "generatorURL", "values",
    "silenceURL", "transition", "tags", "scope", "date", "priority", "alert_cycle_key", "link", "alertname",
    "severity", "model",
]  # fmt: skip
field_values = (
    json_values
    | st.sampled_from(["firing", "resolved", "Triggered", "Recovered", "P1", "0001-01-01T00:00:00Z", "$TAGS"])
    | st.dictionaries(st.sampled_from(FIELD_NAMES), st.text(max_size=10) | st.integers(), max_size=4)
    | st.sampled_from(["2026-01-01T00:00:00Z", "1406662672000", "-99999999999999999", "9" * 16, "model:a,b"])
)
alert_like = st.dictionaries(st.sampled_from(FIELD_NAMES), field_values, max_size=8)
payloads = (
    json_values
    | alert_like
    | st.lists(alert_like, max_size=3)
    | st.builds(
        lambda alerts, status: {"alerts": alerts, "status": status},
        st.lists(alert_like, max_size=3),
        field_values,
    )
)


def _mutated(name: str, key: str, value: object, inner: bool) -> object:
    """A real fixture with one field replaced: random input that gets past the envelope checks."""
    body = load(name)
    target = body["alerts"][0] if inner and "alerts" in body else body
    target[key] = value
    return body


near_valid = st.builds(
    _mutated,
    st.sampled_from(["alertmanager-firing.json", "grafana-firing.json", "datadog-triggered.json"]),
    st.sampled_from(FIELD_NAMES),
    field_values,
    st.booleans(),
)
ALL_PARSERS = [*PARSERS.values(), generic.bind(mapping_from_dict(CUSTOM))]


def only_payload_errors(payload: object) -> None:
    for parse in ALL_PARSERS:
        before = copy.deepcopy(payload)
        try:
            alerts = parse(payload)
        except PayloadError as exc:
            assert str(exc).split(": ", 1)[1]
        else:
            assert all(isinstance(a.labels, dict) for a in alerts)
            assert all(isinstance(v, str) for a in alerts for v in a.labels.values())
            assert all(a.starts_at is None or a.starts_at.tzinfo is UTC for a in alerts)
        assert payload == before or payload != payload  # parsers never mutate input (NaN != NaN)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads)
def test_random_json_only_raises_payload_error(payload: object) -> None:
    only_payload_errors(payload)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid)
def test_real_payloads_with_one_random_field_only_raise_payload_error(payload: object) -> None:
    only_payload_errors(payload)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_random_bytes_only_raise_payload_error(raw: bytes) -> None:
    for source in PARSERS:
        try:
            parse_body(source, raw)
        except PayloadError:
            pass


def test_promstack_capture() -> None:
    [alert] = alertmanager.parse(load("alertmanager-promstack-firing.json"))
    assert (alert.name, alert.severity, alert.labels["model"]) == (
        "ModelErrorRateHigh",
        Severity.CRITICAL,
        "fraud-detector",
    )
    assert alert.summary == "Error ratio for model fraud-detector is 80%"


def test_generic_non_ascii_digit_segment_is_a_key_not_an_index() -> None:
    mapping = mapping_from_dict({"alerts": "", "default_status": "firing", "name": "names.²"})
    assert error_of(lambda p: generic.parse(p, mapping), {"names": ["a"]}) == (
        "names: expected an object to read '²' from, got list"
    )


def test_alertmanager_truncated_alerts_is_carried_on_every_alert() -> None:
    body = load("alertmanager-firing.json") | {"truncatedAlerts": 1}
    alerts = alertmanager.parse(body)
    assert alerts and all(a.annotations["truncatedAlerts"] == "1" for a in alerts)
    none_left_out = alertmanager.parse(load("alertmanager-firing.json") | {"truncatedAlerts": 0})
    assert "truncatedAlerts" not in none_left_out[0].annotations
    grafana_body = load("grafana-firing.json") | {"truncatedAlerts": 2}
    assert grafana.parse(grafana_body)[0].annotations["truncatedAlerts"] == "2"


@pytest.mark.parametrize("bad", [-1, "2", 1.5, True, 10**12])
def test_alertmanager_bad_truncated_alerts(bad: object) -> None:
    message = error_of(alertmanager.parse, load("alertmanager-firing.json") | {"truncatedAlerts": bad})
    assert message.startswith("truncatedAlerts: expected a whole number")


def test_grafana_signature_reasons_name_the_header_and_never_the_secret() -> None:
    from adapters.alerts import check_grafana_signature

    digest = hmac.new(b"s3cr3t", b"1700000000:" + SIGNED_BODY, hashlib.sha256).hexdigest()
    headers = {"X-Grafana-Alert-Signature": digest, "X-Grafana-Alert-Timestamp": "1700000000"}

    def why(hdrs: dict[str, str], now: float = 1_700_000_000, **kw: Any) -> str | None:
        return check_grafana_signature(SIGNED_BODY, hdrs, "s3cr3t", timestamp_header="X-Grafana-Alert-Timestamp",
                                       now=now, **kw)

    assert why(headers) is None
    assert why({"X-Grafana-Alerting-Signature": digest, "X-Grafana-Alert-Timestamp": "1700000000"}) is None
    assert why({"X-Grafana-Alerting-Signature": digest, "X-Grafana-Alert-Timestamp": "1700000000"},
               signature_header="X-Custom") == (
        "missing Grafana signature header X-Custom: set the contact point's HMAC secret to GRAFANA_WEBHOOK_SECRET "
        "(and its header to GRAFANA_SIGNATURE_HEADER if you changed it)")
    assert (why(headers, now=1_700_000_301) or "").startswith("Grafana timestamp 1700000000 is 301 s old")
    assert "in the future" in (why(headers, now=1_699_999_000) or "")
    assert (why({"X-Grafana-Alert-Signature": digest}) or "").startswith("missing Grafana timestamp header")
    assert "not Unix seconds" in (why({**headers, "X-Grafana-Alert-Timestamp": "9" * 40}) or "")
    reasons = [why({**headers, "X-Grafana-Alert-Signature": "0" * 64}),
               check_grafana_signature(SIGNED_BODY, headers, "s3cr3t")]
    for reason in reasons:
        assert reason and reason.startswith("wrong Grafana signature") and "s3cr3t" not in reason
    assert "GRAFANA_TIMESTAMP_HEADER" in (reasons[1] or "")


def test_check_flags_grafana_headers_without_a_secret() -> None:
    from bot.config import check_settings, settings_from

    env = {"ALERT_WEBHOOK_TOKEN": "t", "GRAFANA_TIMESTAMP_HEADER": "X-Ts"}
    assert any(p.startswith("GRAFANA_WEBHOOK_SECRET") for p in check_settings(settings_from(env), command="check"))
    env["GRAFANA_WEBHOOK_SECRET"] = "s"
    assert not any("GRAFANA" in p for p in check_settings(settings_from(env), command="check"))
    assert settings_from({}).grafana_signature_header == "X-Grafana-Alert-Signature"
    assert settings_from({}).grafana_timestamp_header is None


@pytest.mark.parametrize("body", [{}, {"hello": "world"}, [{"x": 1}]])
def test_datadog_body_with_nothing_datadog_sends_is_refused(body: object) -> None:
    assert "none of the fields Datadog sends is here" in error_of(datadog.parse, body)
