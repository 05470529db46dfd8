"""Any JSON alert body, read through a field mapping declared in the policy file.

```toml
[sources.generic]
alerts = "events"                 # where the list of alerts is; "" = the body is one alert (or a list)
status = "state"
firing = ["open"]
resolved = ["closed"]
labels = "tags"
extra_labels = { model = "service.name" }
severity = "priority"
name = "title"
starts_at = "created"             # ISO 8601 or epoch seconds/milliseconds
links = { runbook = "links.runbook" }
```

Paths are dotted (``a.b.0.c``; digits index lists) and relative to each alert; ``$.a.b`` reads from
the body's root instead (e.g. a group-wide status). The defaults read an Alertmanager-shaped body.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from adapters.alerts._fields import (
    MAX_ALERTS,
    MAX_FINGERPRINT,
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
    fingerprint_or_hash,
    index,
    kind,
    parse_time,
    string_map,
)
from adapters.alerts.errors import MappingError, PayloadError
from bot.core.alert import Alert, AlertStatus
from bot.core.severity import SeverityTable, default_table

SOURCE = "generic"
ROOT = "$."


def _frozen(d: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(d))


@dataclass(frozen=True)
class GenericMapping:
    """Where each Alert field is found in the sender's JSON. Defaults fit an Alertmanager-shaped body."""

    alerts: str = "alerts"
    fingerprint: str = "fingerprint"  # absent in the body: sha256 of the labels
    status: str = "status"
    firing: tuple[str, ...] = ("firing", "alerting", "triggered", "active", "open", "problem")
    resolved: tuple[str, ...] = ("resolved", "ok", "recovered", "closed", "inactive", "normal")
    default_status: str | None = None  # "firing" accepts alerts with no status; None refuses them
    labels: str = "labels"
    extra_labels: Mapping[str, str] = field(default_factory=lambda: _frozen({}))  # label -> path
    annotations: str = "annotations"
    severity: str = "labels.severity"
    name: str = "labels.alertname"
    starts_at: str = "startsAt"
    ends_at: str = "endsAt"
    links: Mapping[str, str] = field(default_factory=lambda: _frozen({"generatorURL": "generatorURL"}))


DEFAULT_MAPPING = GenericMapping()

_PATH_FIELDS = (
    "alerts",
    "fingerprint",
    "status",
    "labels",
    "annotations",
    "severity",
    "name",
    "starts_at",
    "ends_at",
)
_TABLE_FIELDS = ("extra_labels", "links")
_LIST_FIELDS = ("firing", "resolved")


def _path_problem(path: str) -> str | None:
    body = path[len(ROOT) :] if path.startswith(ROOT) else path
    if body and any(not segment for segment in body.split(".")):
        return f"bad path {path!r}: empty segment between dots"
    return None


def mapping_from_dict(d: Mapping[str, Any], where: str = "sources.generic") -> GenericMapping:
    """Build a GenericMapping from the policy table; every unknown key or wrong type is reported at once."""
    problems: list[str] = []
    known = [f.name for f in fields(GenericMapping)]
    values: dict[str, Any] = {}
    d = dict(d)
    d.pop("version_label", None)  # read with every source's settings (bot/policy_file.py)
    if isinstance(d.get("severity"), dict):  # [sources.generic.severity]: the value table, not a path
        d.pop("severity")
    if "severity_field" in d:  # the path, when the table took the name ``severity``
        d["severity"] = d.pop("severity_field")
    for key, value in d.items():
        here = f"{where}.{key}"
        if key not in known:
            extra = ["severity_field", "version_label"]
            problems.append(f"{here}: unknown key (known keys: {', '.join(known + extra)})")
        elif key in _PATH_FIELDS:
            if not isinstance(value, str):
                problems.append(f"{here}: expected a dotted path string, got {kind(value)}")
            elif problem := _path_problem(value):
                problems.append(f"{here}: {problem}")
            else:
                values[key] = value
        elif key in _LIST_FIELDS:
            if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
                problems.append(f"{here}: expected a non-empty list of strings, got {kind(value)}")
            else:
                values[key] = tuple(v.strip().lower() for v in value)
        elif key in _TABLE_FIELDS:
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                problems.append(f'{here}: expected a table of name = "path" strings, got {kind(value)}')
            else:
                bad = [f"{here}.{k}: {p}" for k, v in value.items() if (p := _path_problem(v))]
                problems.extend(bad)
                values[key] = _frozen(value)
        elif key == "default_status":
            if value not in ("firing", "resolved"):
                problems.append(f'{here}: expected "firing" or "resolved", got {str(value)[:40]!r}')
            else:
                values[key] = value
    firing = set(values.get("firing", DEFAULT_MAPPING.firing))
    resolved = set(values.get("resolved", DEFAULT_MAPPING.resolved))
    if overlap := sorted(firing & resolved):
        problems.append(f"{where}: {', '.join(overlap)} listed as both firing and resolved")
    if problems:
        raise MappingError(problems)
    return GenericMapping(**values)


def _lookup(alert: object, body: object, path: str, alert_path: str) -> tuple[object, str]:
    """The value at a mapping path and its JSON path for messages; None when absent."""
    if path.startswith(ROOT):
        current, shown, path = body, "", path[len(ROOT) :]
    else:
        current, shown = alert, alert_path
    if not path:
        return current, shown
    for segment in path.split("."):
        if current is None:
            return None, at(shown, segment)
        if isinstance(current, dict):
            current, shown = current.get(segment), at(shown, segment)
        elif isinstance(current, list) and segment.isascii() and segment.isdigit():
            i = int(segment)
            current, shown = (current[i] if i < len(current) else None), index(shown, i)
        else:
            raise PayloadError(shown, f"expected an object to read {segment!r} from, got {kind(current)}")
    return current, shown


def _scalar_text(value: object, path: str, max_bytes: int) -> str | None:
    """A scalar as text (numbers and booleans too: arbitrary senders use them); None when absent."""
    if value is None:
        return None
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, int | float):
        value = str(value)
    text = expect_str(value, path, max_bytes).strip()
    return text or None


def parse(payload: object, mapping: GenericMapping = DEFAULT_MAPPING,
          severity: SeverityTable | None = None) -> list[Alert]:
    """Every alert in ``payload`` as ``mapping`` describes it; ``severity`` reads the severity field's
    value (the policy's ``[sources.generic.severity]`` over the defaults)."""
    table = severity or default_table(SOURCE)
    if mapping.alerts:
        items_value, items_path = _lookup(payload, payload, mapping.alerts, "")
        if items_value is None:
            raise PayloadError(items_path, "missing: no alerts list there (see [sources.generic] alerts)")
        items = expect_list(items_value, items_path, MAX_ALERTS)
    elif isinstance(payload, list):
        items, items_path = expect_list(payload, "", MAX_ALERTS), ""
    else:
        items, items_path = [expect_object(payload, "")], None
    return [
        _parse_alert(item, payload, index(items_path, i) if items_path is not None else "", mapping, table)
        for i, item in enumerate(items)
    ]


def bind(mapping: GenericMapping, severity: SeverityTable | None = None) -> Callable[[object], list[Alert]]:
    """A one-argument parser for the registry, with the policy file's mapping applied."""

    def parse_with_mapping(payload: object) -> list[Alert]:
        return parse(payload, mapping, severity)

    return parse_with_mapping


def _status(value: object, path: str, mapping: GenericMapping) -> AlertStatus:
    text = _scalar_text(value, path, 64)
    if text is None:
        if mapping.default_status is None:
            raise PayloadError(path, "missing (or set default_status in [sources.generic])")
        return AlertStatus(mapping.default_status)
    lowered = text.lower()
    if lowered in mapping.firing:
        return AlertStatus.FIRING
    if lowered in mapping.resolved:
        return AlertStatus.RESOLVED
    expected = ", ".join([*mapping.firing, *mapping.resolved])
    raise PayloadError(path, f"unknown status {text[:40]!r} (expected one of: {expected})")


def _parse_alert(item: object, body: object, path: str, mapping: GenericMapping, table: SeverityTable) -> Alert:
    expect_object(item, path)

    def get(where: str) -> tuple[object, str]:
        return _lookup(item, body, where, path)

    labels_value, labels_path = get(mapping.labels)
    labels = string_map(labels_value, labels_path, max_value_bytes=MAX_LABEL_BYTES, coerce_scalars=True)
    for label, where in mapping.extra_labels.items():
        value, value_path = get(where)
        text = _scalar_text(value, value_path, MAX_LABEL_BYTES)
        if text is not None:
            labels[check_text(label, value_path, MAX_LABEL_BYTES)] = text
    if len(labels) > MAX_LABELS:
        raise PayloadError(labels_path, f"{len(labels)} labels, at most {MAX_LABELS} are accepted")
    annotations_value, annotations_path = get(mapping.annotations)
    annotations = string_map(
        annotations_value, annotations_path, max_value_bytes=MAX_TEXT_BYTES, coerce_scalars=True
    )
    status = _status(*get(mapping.status), mapping)
    severity_value, severity_path = get(mapping.severity)
    name_value, name_path = get(mapping.name)
    fingerprint_value, fingerprint_path = get(mapping.fingerprint)
    links: dict[str, str] = {}
    for link, where in mapping.links.items():
        url_value, url_path = get(where)
        url = _scalar_text(url_value, url_path, MAX_URL_BYTES)
        if url:
            links[link] = url
    return Alert(
        source=SOURCE,
        fingerprint=fingerprint_or_hash(
            _scalar_text(fingerprint_value, fingerprint_path, MAX_FINGERPRINT), fingerprint_path, labels
        ),
        status=status,
        name=clip_name(_scalar_text(name_value, name_path, MAX_TEXT_BYTES) or "unnamed alert"),
        labels=labels,
        annotations=annotations,
        severity=table.read(_scalar_text(severity_value, severity_path, 64)),
        starts_at=parse_time(*get(mapping.starts_at)),
        ends_at=parse_time(*get(mapping.ends_at)),
        links=links,
        values={},
    )
