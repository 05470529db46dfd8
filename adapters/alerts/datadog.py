"""Datadog monitor notifications through the Webhooks integration.

Datadog has no fixed webhook body: users write a JSON template with ``$VARIABLES``. Configure the
webhook's **Payload** as ``PAYLOAD_TEMPLATE`` below (the keys are what this parser reads; keep them)
and add ``@webhook-<name>`` to the monitor's message. Tag the monitor ``model:<name>`` (and optionally
``version:<v>``, ``severity:warning``): ``$TAGS`` becomes the alert's labels, which select the model in the
policy.

- ``transition`` (``$ALERT_TRANSITION``): ``Recovered`` is resolved; ``Triggered``, ``Re-Triggered``,
  ``Warn``, ``Re-Warn``, ``No Data``, ``Re-No Data`` and ``Renotify`` are firing. ``Null`` (no state
  change) and a missing transition read the state from the title's ``[Triggered …]``/``[Recovered]``
  prefix, else from ``$ALERT_TYPE`` (``success`` is resolved), else firing.
- Datadog's default body (no custom payload: ``body``, ``last_updated``, ``event_type``, ``title``,
  ``date``, ``org``, ``id``) is accepted too: the labels come from the title's ``{tag:value}`` scope,
  the monitor from the ``/monitors/<id>`` link in ``body``, the fingerprint from monitor, labels and
  title. The template gives better cards; the default keeps Datadog from losing the event (it never
  retries a 4xx).
- Severity comes from the state the notification reports: ``Triggered``/``Re-Triggered`` of an ``error``
  alert is critical, ``Warn``/``Re-Warn`` warning, ``No Data``/``Re-No Data`` whatever the model's
  ``no_data`` says (the decider knows the model; ``fail`` critical, ``inconclusive`` warning, ``pass``
  info). ``Renotify``, ``Null`` or no transition: ``$ALERT_TYPE`` (``error`` critical, ``warning``
  warning, ``info`` info), else the title's state word, else warning. A ``severity`` tag, and
  ``$ALERT_PRIORITY`` only when ``[sources.datadog.severity]`` lists it (``P3 = "warning"``), can lower
  that, never raise it: a P1 monitor that only warns is a warning.
- Fingerprint: ``$ALERT_CYCLE_KEY`` (one value from trigger to recovery), else ``$AGGREG_KEY``,
  else monitor ID plus tags (plus the title without its state prefix when the monitor is unknown).
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
from bot.core.severity import Severity, SeverityTable, default_table

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
    "event_type": "$EVENT_TYPE",
}

RESOLVED_TRANSITIONS = frozenset({"recovered"})
FIRING_TRANSITIONS = frozenset(
    {"triggered", "re-triggered", "warn", "re-warn", "no data", "re-no data", "renotify"}
)
NO_TRANSITION = "null"  # Datadog's $ALERT_TRANSITION when a notification is not a state change
RESOLVED_ALERT_TYPES = frozenset({"success"})
FIRING_ALERT_TYPES = frozenset({"error", "warning"})
ALERT_TRANSITIONS = frozenset({"triggered", "re-triggered"})
WARN_TRANSITIONS = frozenset({"warn", "re-warn"})
NO_DATA_TRANSITIONS = frozenset({"no data", "re-no data"})
ALERT_TYPE_SEVERITY: dict[str, Severity] = {"error": Severity.CRITICAL, "warning": Severity.WARNING,
                                            "info": Severity.INFO}
# Text fields kept as annotations, with the names the Slack card and the audit trail read.
ANNOTATION_FIELDS: dict[str, str] = {
    "title": "summary",
    "message": "description",
    "event_type": "event_type",
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
_TITLE_GROUP = re.compile(r"\[([^\]]*)\]")
_TITLE_STATE = re.compile(
    r"^\s*(re-triggered|triggered|recovered|re-warn|warn|re-no data|no data|renotify)\b", re.IGNORECASE
)
_TITLE_SCOPE = re.compile(r"\{([^{}]*)\}")  # "[Triggered on {model:x,env:prod}]"
_TITLE_PRIORITY = re.compile(r"^\s*(p[1-5])\s*$", re.IGNORECASE)
_MONITOR_URL = re.compile(r"https?://[^\s)\]\"'<>]*/monitors/(\d+)[^\s)\]\"'<>]*")
_MARKDOWN_FENCE = re.compile(r"^\s*%%%\s*|\s*%%%\s*$")  # Datadog wraps markdown messages in %%%


def parse(payload: object, severity: SeverityTable | None = None) -> list[Alert]:
    """One alert from a Datadog webhook body, or one per object when the body is a list of them.

    ``severity`` is the policy's ``[sources.datadog.severity]`` over the defaults: it reads a ``severity``
    tag, and a priority only when it lists one.
    """
    table = severity or default_table(SOURCE)
    if isinstance(payload, list):
        items = expect_list(payload, "", MAX_ALERTS)
        return [_parse_event(item, index("", i), table) for i, item in enumerate(items)]
    return [_parse_event(payload, "", table)]


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


def _clipped(obj: Mapping[str, object], key: str, path: str) -> str | None:
    """Display text cut to the limit: Datadog never retries a 4xx, so a long message must not lose the alert."""
    value = obj.get(key)
    if isinstance(value, str) and len(value.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        value = value.encode("utf-8", "surrogatepass")[: MAX_TEXT_BYTES - 3].decode("utf-8", "ignore") + "…"
        obj = {key: value}
    text = _text(obj, key, path, MAX_TEXT_BYTES)
    if text is not None and key == "body":
        text = _MARKDOWN_FENCE.sub("", text).strip() or None
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


def _title_groups(title: str | None) -> list[str]:
    """The bracketed groups that open a Datadog title: ``[P1] [Triggered on {model:x}] …``."""
    match = _TITLE_PREFIX.match(title or "")
    return _TITLE_GROUP.findall(match.group(0)) if match else []


def _title_word(title: str | None) -> str | None:
    """The state word of the title's ``[Triggered …]``/``[Warn]``/``[Recovered]`` group, lower case."""
    for group in _title_groups(title):
        if found := _TITLE_STATE.match(group):
            return found.group(1).lower()
    return None


def _title_state(title: str | None) -> AlertStatus | None:
    word = _title_word(title)
    if word is None:
        return None
    return AlertStatus.RESOLVED if word in RESOLVED_TRANSITIONS else AlertStatus.FIRING


def _title_labels(title: str | None, path: str) -> dict[str, str]:
    """The triggering group's tags Datadog puts in a multi-alert title: ``[Triggered on {model:x}]``."""
    labels: dict[str, str] = {}
    for group in _title_groups(title):
        for scope in _TITLE_SCOPE.findall(group):
            for key, value in parse_tags(scope, path).items():
                labels.setdefault(key, value)
    return labels


def _status(transition: str | None, title: str | None, alert_type: str | None, path: str) -> AlertStatus:
    """The alert's state: the transition when it names one, else what the title and alert type say."""
    if transition is not None:
        lowered = transition.lower()
        if lowered in RESOLVED_TRANSITIONS:
            return AlertStatus.RESOLVED
        if lowered in FIRING_TRANSITIONS:
            return AlertStatus.FIRING
        if lowered != NO_TRANSITION:
            known = "Recovered, Triggered, Re-Triggered, Warn, Re-Warn, No Data, Re-No Data, Renotify, Null"
            raise PayloadError(at(path, "transition"), f"unknown transition {transition[:40]!r} (known: {known})")
    if state := _title_state(title):
        return state
    kind_ = (alert_type or "").lower()
    if kind_ in RESOLVED_ALERT_TYPES:
        return AlertStatus.RESOLVED
    return AlertStatus.FIRING  # "error", "warning" or nothing said: a monitor notified, treat it as firing


def _state_severity(transition: str | None, alert_type: str | None, title: str | None) -> tuple[Severity, bool]:
    """How bad the state the notification reports is, and whether it is "No Data" (see the module doc).

    No Data reads as critical here so that a tag or priority can still lower it; the decider then takes
    the lower of this and what the model's ``no_data`` says.
    """
    word = (transition or "").lower()
    kind_ = (alert_type or "").lower()
    if word in ("", NO_TRANSITION, "renotify"):
        if kind_ in ALERT_TYPE_SEVERITY:
            return ALERT_TYPE_SEVERITY[kind_], False
        word = _title_word(title) or word
    if word in NO_DATA_TRANSITIONS:
        return Severity.CRITICAL, True
    if word in WARN_TRANSITIONS:
        return Severity.WARNING, False
    if word in ALERT_TRANSITIONS:
        return (Severity.CRITICAL if kind_ not in ("warning", "info") else ALERT_TYPE_SEVERITY[kind_]), False
    return Severity.WARNING, False  # nothing says how bad: a person decides


def _severity(labels: Mapping[str, str], priority: str | None, state: Severity, table: SeverityTable) -> Severity:
    """The state's severity, lowered by a ``severity`` tag or a priority the table lists; never raised."""
    caps = [table.lookup(labels.get("severity") or None), table.lookup(priority)]
    return min([state, *(cap for cap in caps if cap is not None)])


# Keys Datadog's default body has, and aliases of template keys that other setups use.
DEFAULT_BODY_KEYS = frozenset({"body", "last_updated", "org", "alert_transition", "alert_priority"})


def _parse_event(item: object, path: str, table: SeverityTable) -> Alert:
    obj = expect_object(item, path)
    if not any(key in obj for key in (*PAYLOAD_TEMPLATE, *DEFAULT_BODY_KEYS)):
        raise PayloadError(path, "none of the fields Datadog sends is here: use the payload template in "
                                 "docs/sources/datadog.md (or Datadog's default body)")
    labels = parse_tags(obj.get("tags"), at(path, "tags"))
    for key, value in parse_tags(obj.get("scope"), at(path, "scope")).items():
        labels.setdefault(key, value)  # the triggering group's tags, when $TAGS lacks them
    alert_title = _text(obj, "alert_title", path, MAX_TEXT_BYTES)
    event_title = _text(obj, "title", path, MAX_TEXT_BYTES)
    for title in (alert_title, event_title):
        for key, value in _title_labels(title, at(path, "title")).items():
            labels.setdefault(key, value)  # Datadog's default body has no tags: the title carries the group
    transition = _text(obj, "transition", path, 64) or _text(obj, "alert_transition", path, 64)
    alert_type = _text(obj, "alert_type", path, 64)
    status = _status(transition, alert_title or event_title, alert_type, path)
    raw_date = obj.get("date")
    if raw_date is None or (isinstance(raw_date, str) and _UNFILLED.fullmatch(raw_date.strip())):
        raw_date = obj.get("last_updated")
    if isinstance(raw_date, str) and _UNFILLED.fullmatch(raw_date.strip()):
        raw_date = None
    date_key = "date" if obj.get("date") is not None else "last_updated"
    when = parse_time(raw_date.strip() if isinstance(raw_date, str) else raw_date, at(path, date_key))
    annotations = {
        name: text
        for key, name in ANNOTATION_FIELDS.items()
        if name not in ("summary", "description") and (text := _text(obj, key, path, MAX_TEXT_BYTES)) is not None
    }
    summary = _clipped(obj, "title", path)
    description = _clipped(obj, "message", path) or _clipped(obj, "body", path)
    annotations.update({k: v for k, v in (("summary", summary), ("description", description)) if v})
    if transition:
        annotations["transition"] = transition
    monitor = _text(obj, "alert_id", path, MAX_FINGERPRINT)
    body_link = _MONITOR_URL.search(description or "")
    if monitor is None and body_link:
        monitor = body_link.group(1)
        annotations.setdefault("monitor_id", monitor)
    title = alert_title or summary or ""
    name = (
        _TITLE_PREFIX.sub("", title)
        or title
        or (f"Datadog monitor {monitor}" if monitor else "Datadog alert")
    )
    fallback = {**labels, "__monitor__": monitor or ""}
    if monitor is None:
        fallback["__name__"] = name  # the title without its state prefix: the same on trigger and recovery
    fingerprint = (
        _text(obj, "alert_cycle_key", path, MAX_FINGERPRINT)
        or _text(obj, "aggreg_key", path, MAX_FINGERPRINT)
        or labels_fingerprint(fallback)
    )
    link = _text(obj, "link", path, MAX_URL_BYTES) or (
        body_link.group(0) if body_link and len(body_link.group(0)) <= MAX_URL_BYTES else None
    )
    priority = _text(obj, "priority", path, 64) or _text(obj, "alert_priority", path, 64)
    if "priority" not in obj and "alert_priority" not in obj:  # Datadog's default body: "[P1] [Triggered] …"
        priority = next((g.strip().upper() for g in _title_groups(event_title) if _TITLE_PRIORITY.match(g)), None)
    state, no_data = _state_severity(transition, alert_type, alert_title or event_title)
    return Alert(
        source=SOURCE,
        fingerprint=fingerprint,
        status=status,
        name=clip_name(name),
        labels=labels,
        annotations=annotations,
        severity=_severity(labels, priority, state, table),
        no_data=no_data and status is AlertStatus.FIRING,
        starts_at=when if status is AlertStatus.FIRING else None,
        ends_at=when if status is AlertStatus.RESOLVED else None,
        links={"link": link} if link else {},
        values={},
    )
