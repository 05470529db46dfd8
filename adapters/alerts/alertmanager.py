"""Prometheus Alertmanager webhook (payload version 4) to normalised alerts.

Alertmanager sends one group per request: ``alerts`` holds every alert of the group, each with its
own ``status``; resolved ones come only when the receiver has ``send_resolved: true``. With
``max_alerts`` set, ``truncatedAlerts`` counts the group's alerts it left out; each parsed alert carries
that count as the ``truncatedAlerts`` annotation so the card can say that more exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from adapters.alerts._fields import (
    MAX_ALERTS,
    MAX_LABEL_BYTES,
    MAX_TEXT_BYTES,
    MAX_URL_BYTES,
    at,
    clip_name,
    expect_list,
    expect_object,
    expect_str,
    fingerprint_or_hash,
    index,
    optional_str,
    parse_time,
    string_map,
)
from adapters.alerts.errors import PayloadError
from bot.core.alert import Alert, AlertStatus
from bot.core.severity import SeverityTable, default_table

SOURCE = "alertmanager"
TRUNCATED = "truncatedAlerts"  # the annotation that carries the group's left-out alert count
MAX_TRUNCATED = 10_000_000
# Per-alert link fields Alertmanager and Grafana send, keyed as in Alert.links.
ALERT_LINK_FIELDS: tuple[str, ...] = ("generatorURL",)


def parse(payload: object, severity: SeverityTable | None = None) -> list[Alert]:
    """Every alert in an Alertmanager webhook body (already decoded from JSON); ``severity`` reads the
    ``severity`` label (the policy's ``[sources.alertmanager.severity]`` over the defaults)."""
    return parse_group(payload, SOURCE, ALERT_LINK_FIELDS, severity or default_table(SOURCE))


def parse_status(value: object, path: str) -> AlertStatus:
    text = expect_str(value, path, 32)
    try:
        return AlertStatus(text.strip().lower())
    except ValueError:
        raise PayloadError(path, f'expected "firing" or "resolved", got {text[:32]!r}') from None


def parse_group(payload: object, source: str, link_fields: tuple[str, ...],
                severity: SeverityTable | None = None) -> list[Alert]:
    """The Alertmanager-shaped envelope, shared with Grafana whose contact point extends it."""
    body = expect_object(payload, "")
    if "alerts" not in body:
        raise PayloadError("alerts", "missing")
    items = expect_list(body["alerts"], "alerts", MAX_ALERTS)
    group_status = None if body.get("status") is None else parse_status(body["status"], "status")
    external_url = optional_str(body, "externalURL", "", MAX_URL_BYTES)
    truncated = parse_truncated(body.get(TRUNCATED))
    table = severity or default_table(source)
    alerts = [
        parse_alert(item, index("alerts", i), source, link_fields, group_status, external_url, table)
        for i, item in enumerate(items)
    ]
    if truncated:
        alerts = [replace(a, annotations={**a.annotations, TRUNCATED: str(truncated)}) for a in alerts]
    return alerts


def parse_truncated(value: object) -> int:
    """``truncatedAlerts``: how many of the group's alerts ``max_alerts`` left out (absent or null: none)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TRUNCATED:
        raise PayloadError(TRUNCATED, f"expected a whole number from 0 to {MAX_TRUNCATED}, got {str(value)[:40]}")
    return value


def parse_alert(
    item: object,
    path: str,
    source: str,
    link_fields: tuple[str, ...],
    group_status: AlertStatus | None,
    external_url: str | None,
    severity: SeverityTable | None = None,
) -> Alert:
    obj = expect_object(item, path)
    if "labels" not in obj:
        raise PayloadError(at(path, "labels"), "missing")
    labels = string_map(obj["labels"], at(path, "labels"), max_value_bytes=MAX_LABEL_BYTES)
    annotations = string_map(obj.get("annotations"), at(path, "annotations"), max_value_bytes=MAX_TEXT_BYTES)
    if obj.get("status") is not None:
        status = parse_status(obj["status"], at(path, "status"))
    elif group_status is not None:
        status = group_status
    else:
        raise PayloadError(at(path, "status"), "missing (and the payload has no top-level status)")
    return Alert(
        source=source,
        fingerprint=fingerprint_or_hash(obj.get("fingerprint"), at(path, "fingerprint"), labels),
        status=status,
        name=clip_name(labels.get("alertname") or "unnamed alert"),
        labels=labels,
        annotations=annotations,
        severity=(severity or default_table(source)).read(labels.get("severity")),
        starts_at=parse_time(obj.get("startsAt"), at(path, "startsAt")),
        ends_at=parse_time(obj.get("endsAt"), at(path, "endsAt")),
        links=_links(obj, path, link_fields, external_url),
        values={},
    )


def _links(
    obj: Mapping[str, object], path: str, link_fields: tuple[str, ...], external_url: str | None
) -> dict[str, str]:
    links: dict[str, str] = {}
    for field in link_fields:
        url = optional_str(obj, field, path, MAX_URL_BYTES)
        if url:
            links[field] = url
    if external_url:
        links["externalURL"] = external_url
    return links
