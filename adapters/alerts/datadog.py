"""Datadog monitor notifications through the Webhooks integration.

Datadog has no fixed webhook body: users write a JSON template with ``$VARIABLES``. Configure the
webhook's **Payload** as ``PAYLOAD_TEMPLATE`` below (the keys are what this parser reads; keep them)
and add ``@webhook-<name>`` to the monitor's message. Tag the monitor ``model:<name>`` (and optionally
``severity:critical``): ``$TAGS`` becomes the alert's labels, which select the model in the policy.

- ``transition`` (``$ALERT_TRANSITION``): ``Recovered`` is resolved; ``Triggered``, ``Re-Triggered``,
  ``Warn``, ``Re-Warn``, ``No Data``, ``Re-No Data`` and ``Renotify`` are firing.
- Severity: a ``severity`` tag wins; else ``$ALERT_PRIORITY`` P1/P2 critical, P3 warning, P4/P5 info.
- Fingerprint: ``$ALERT_CYCLE_KEY`` (one value from trigger to recovery), else ``$AGGREG_KEY``,
  else monitor ID plus tags.
- ``date`` (``$DATE``, epoch milliseconds) is ``starts_at`` when firing and ``ends_at`` when recovered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from adapters.alerts._fields import (
    MAX_ALERTS,
    MAX_FINGERPRINT,
    MAX_KEY_BYTES,
    MAX_LABEL_BYTES,
    MAX_LABELS,
    MAX_TEXT_BYTES,
    MAX_URL_BYTES,
    at,
    check_text,
    clip_name,
    expect_list,
    expect_object,
    expect_str,
    index,
    kind,
    labels_fingerprint,
    parse_time,
)
from adapters.alerts.errors import PayloadError
from bot.core.alert import Alert, AlertStatus
from bot.core.severity import Severity, parse_severity

SOURCE = "datadog"

PAYLOAD_TEMPLATE: dict[str, str] = {
    "id": "$ID",
    "alert_id": "$ALERT_ID",
    "alert_cycle_key": "$ALERT_CYCLE_KEY",
    "aggreg_key": "$AGGREG_KEY",
    "transition": "$ALERT_TRANSITION",
    "priority": "$ALERT_PRIORITY",
    "alert_type": "$ALERT_TYPE",
    "title": "$EVENT_TITLE",
    "alert_title": "$ALERT_TITLE",
    "message": "$TEXT_ONLY_MSG",
    "alert_status": "$ALERT_STATUS",
    "tags": "$TAGS",
    "scope": "$ALERT_SCOPE",
    "date": "$DATE",
    "link": "$LINK",
    "metric": "$ALERT_METRIC",
    "query": "$ALERT_QUERY",
    "hostname": "$HOSTNAME",
    "org_id": "$ORG_ID",
}

RESOLVED_TRANSITIONS = frozenset({"recovered"})
FIRING_TRANSITIONS = frozenset(
    {"triggered", "re-triggered", "warn", "re-warn", "no data", "re-no data", "renotify"}
)
PRIORITIES: dict[str, Severity] = {
    "p1": Severity.CRITICAL,
    "p2": Severity.CRITICAL,
    "p3": Severity.WARNING,
    "p4": Severity.INFO,
    "p5": Severity.INFO,
}
# Text fields kept as annotations, with the names the Slack card and the audit trail read.
ANNOTATION_FIELDS: dict[str, str] = {
    "title": "summary",
    "message": "description",
    "alert_status": "alert_status",
    "metric": "metric",
    "query": "query",
    "hostname": "hostname",
    "transition": "transition",
    "priority": "priority",
    "alert_type": "alert_type",
    "alert_id": "monitor_id",
    "id": "event_id",
    "org_id": "org_id",
    "scope": "scope",
}
_UNFILLED = re.compile(r"\$[A-Z][A-Z0-9_]*")  # a variable Datadog left as is (not available here)
_TITLE_PREFIX = re.compile(r"^(\s*\[[^\]]*\])+\s*")  # "[P1] [Triggered on {model:x}] "


def parse(payload: object) -> list[Alert]:
    """One alert from a Datadog webhook body, or one per object when the body is a list of them."""
    if isinstance(payload, list):
        items = expect_list(payload, "", MAX_ALERTS)
        return [_parse_event(item, index("", i)) for i, item in enumerate(items)]
    return [_parse_event(payload, "")]


def _text(obj: Mapping[str, object], key: str, path: str, max_bytes: int) -> str | None:
    """A template field; numbers are accepted (users often drop the quotes), unfilled ``$VARS`` are absent."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    text = expect_str(value, at(path, key), max_bytes).strip()
    if not text or _UNFILLED.fullmatch(text):
        return None
    return text


def parse_tags(value: object, path: str) -> dict[str, str]:
    """``"model:fraud-detector,severity:critical"`` (or a list of such tags) to labels.

    A tag without a colon becomes a label with an empty value; the first value of a repeated key wins.
    """
    if value is None:
        return {}
    if isinstance(value, str):
        if _UNFILLED.fullmatch(value.strip()):
            return {}
        check_text(value, path, MAX_LABELS * (MAX_KEY_BYTES + MAX_LABEL_BYTES))
        tags: list[object] = [tag for tag in value.split(",") if tag.strip()]
    elif isinstance(value, list):
        tags = value
    else:
        raise PayloadError(path, f"expected a comma-separated string or a list of tags, got {kind(value)}")
    if len(tags) > MAX_LABELS:
        raise PayloadError(path, f"{len(tags)} tags, at most {MAX_LABELS} are accepted")
    labels: dict[str, str] = {}
    whole_limit = MAX_LABELS * (MAX_KEY_BYTES + MAX_LABEL_BYTES)  # name and value are checked below
    for i, tag in enumerate(tags):
        tag_path = index(path, i)
        text = expect_str(tag, tag_path, whole_limit).strip()
        key, _, tag_value = text.partition(":")
        key, tag_value = key.strip(), tag_value.strip()
        if not key:
            raise PayloadError(tag_path, f"tag {text[:64]!r} has no name before ':'")
        check_text(key, tag_path, MAX_KEY_BYTES)
        check_text(tag_value, tag_path, MAX_LABEL_BYTES)
        labels.setdefault(key, tag_value)
    return labels


def _status(transition: str | None, path: str) -> AlertStatus:
    if transition is None:
        raise PayloadError(
            at(path, "transition"), "missing: set it to $ALERT_TRANSITION in the webhook payload"
        )
    lowered = transition.lower()
    if lowered in RESOLVED_TRANSITIONS:
        return AlertStatus.RESOLVED
    if lowered in FIRING_TRANSITIONS:
        return AlertStatus.FIRING
    known = "Recovered, Triggered, Re-Triggered, Warn, Re-Warn, No Data, Re-No Data, Renotify"
    raise PayloadError(at(path, "transition"), f"unknown transition {transition[:40]!r} (known: {known})")


def _severity(labels: Mapping[str, str], priority: str | None) -> Severity:
    if labels.get("severity"):
        return parse_severity(labels["severity"])
    if priority:
        return PRIORITIES.get(priority.lower(), parse_severity(priority))
    return Severity.WARNING


def _parse_event(item: object, path: str) -> Alert:
    obj = expect_object(item, path)
    labels = parse_tags(obj.get("tags"), at(path, "tags"))
    for key, value in parse_tags(obj.get("scope"), at(path, "scope")).items():
        labels.setdefault(key, value)  # the triggering group's tags, when $TAGS lacks them
    transition = _text(obj, "transition", path, 64)
    status = _status(transition, path)
    raw_date = obj.get("date")
    if isinstance(raw_date, str) and _UNFILLED.fullmatch(raw_date.strip()):
        raw_date = None
    when = parse_time(raw_date.strip() if isinstance(raw_date, str) else raw_date, at(path, "date"))
    monitor = _text(obj, "alert_id", path, MAX_FINGERPRINT)
    fingerprint = (
        _text(obj, "alert_cycle_key", path, MAX_FINGERPRINT)
        or _text(obj, "aggreg_key", path, MAX_FINGERPRINT)
        or labels_fingerprint({**labels, "__monitor__": monitor or ""})
    )
    annotations = {
        name: text
        for key, name in ANNOTATION_FIELDS.items()
        if (text := _text(obj, key, path, MAX_TEXT_BYTES)) is not None
    }
    title = _text(obj, "alert_title", path, MAX_TEXT_BYTES) or annotations.get("summary") or ""
    name = (
        _TITLE_PREFIX.sub("", title)
        or title
        or (f"Datadog monitor {monitor}" if monitor else "Datadog alert")
    )
    link = _text(obj, "link", path, MAX_URL_BYTES)
    return Alert(
        source=SOURCE,
        fingerprint=fingerprint,
        status=status,
        name=clip_name(name),
        labels=labels,
        annotations=annotations,
        severity=_severity(labels, _text(obj, "priority", path, 64)),
        starts_at=when if status is AlertStatus.FIRING else None,
        ends_at=when if status is AlertStatus.RESOLVED else None,
        links={"link": link} if link else {},
        values={},
    )
