"""The policy file's ``[audit]`` table: where unusual activity is announced, and what counts as unusual."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.core.durations import parse_duration
from bot.core.unusual import WEEKDAYS, HoursRule, RepeatedRule, UnusualConfig, UnusualKind

KIND_KEYS: dict[str, tuple[str, ...]] = {
    UnusualKind.OVERRIDE.value: ("enabled",),
    UnusualKind.BREAK_GLASS.value: ("enabled",),
    UnusualKind.UNDO.value: ("enabled",),
    UnusualKind.REPEATED_ROLLBACKS.value: ("enabled", "max", "window"),
    UnusualKind.OFF_HOURS.value: ("enabled", "start", "end", "days", "timezone", "actions"),
}
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")

Bad = Callable[[str, str], None]


def parse_audit(raw: Any, bad: Bad) -> UnusualConfig:
    """Every problem reported through ``bad`` (key, reason); what was valid is kept."""
    if not isinstance(raw, dict):
        bad("audit", "must be a table")
        return UnusualConfig()
    channel = raw.get("channel")
    if channel is not None and (not isinstance(channel, str) or not channel):
        bad("audit.channel", "must be a Slack channel ID such as \"C0AUDIT\"")
        channel = None
    for key, value in raw.items():
        if key != "channel" and key not in KIND_KEYS:
            bad(f"audit.{key}", f"unknown key; allowed: channel, {', '.join(f'[audit.{k}]' for k in KIND_KEYS)}")
        elif key in KIND_KEYS and not isinstance(value, dict):
            bad(f"audit.{key}", "must be a table")
    tables = {k: v for k, v in raw.items() if k in KIND_KEYS and isinstance(v, dict)}
    for kind, table in tables.items():
        for key in table:
            if key not in KIND_KEYS[kind]:
                bad(f"audit.{kind}.{key}", f"unknown key; allowed: {', '.join(KIND_KEYS[kind])}")
    enabled = frozenset(k for k in UnusualKind if _flag(tables.get(k.value, {}), f"audit.{k.value}", bad))
    return UnusualConfig(channel=channel, enabled=enabled,
                         repeated=_repeated(tables.get(UnusualKind.REPEATED_ROLLBACKS.value, {}), bad),
                         hours=_hours(tables.get(UnusualKind.OFF_HOURS.value, {}), bad))


def _flag(table: Mapping[str, Any], prefix: str, bad: Bad) -> bool:
    value = table.get("enabled", True)
    if not isinstance(value, bool):
        bad(f"{prefix}.enabled", "must be true or false")
        return True
    return value


def _repeated(table: Mapping[str, Any], bad: Bad) -> RepeatedRule:
    rule = RepeatedRule()
    prefix = f"audit.{UnusualKind.REPEATED_ROLLBACKS.value}"
    n = table.get("max", rule.max_rollbacks)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        bad(f"{prefix}.max", "must be a whole number of at least 1 (more rollbacks than this in the window "
                             "are unusual)")
        n = rule.max_rollbacks
    window = rule.window
    if "window" in table:
        try:
            window = parse_duration(str(table["window"]))
            if window.total_seconds() <= 0:
                raise ValueError("must be longer than 0s")
        except ValueError as exc:
            bad(f"{prefix}.window", str(exc))
            window = rule.window
    return RepeatedRule(max_rollbacks=n, window=window)


def _clock(table: Mapping[str, Any], key: str, default: time, prefix: str, bad: Bad) -> time:
    value = table.get(key)
    if value is None:
        return default
    found = _CLOCK.match(value) if isinstance(value, str) else None
    if found is None:
        bad(f"{prefix}.{key}", "must be a time of day such as \"08:00\" (24-hour HH:MM)")
        return default
    return time(int(found.group(1)), int(found.group(2)))


def _hours(table: Mapping[str, Any], bad: Bad) -> HoursRule:
    rule = HoursRule()
    prefix = f"audit.{UnusualKind.OFF_HOURS.value}"
    start = _clock(table, "start", rule.start, prefix, bad)
    end = _clock(table, "end", rule.end, prefix, bad)
    days = table.get("days", list(rule.days))
    if not isinstance(days, list) or not all(isinstance(d, str) and d.lower() in WEEKDAYS for d in days):
        bad(f"{prefix}.days", f"must be a list of days among {', '.join(WEEKDAYS)}")
        days = list(rule.days)
    zone = table.get("timezone", rule.timezone)
    try:
        ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError):
        bad(f"{prefix}.timezone", f"'{zone}' is not an IANA time zone such as \"Europe/Berlin\" or \"UTC\"")
        zone = rule.timezone
    actions = table.get("actions", list(rule.actions))
    if not isinstance(actions, list) or not all(isinstance(a, str) and a for a in actions):
        bad(f"{prefix}.actions", "must be a list of audit action names such as \"approval.added\"")
        actions = list(rule.actions)
    return HoursRule(start=start, end=end, days=tuple(d.lower() for d in days), timezone=str(zone),
                     actions=tuple(actions))
