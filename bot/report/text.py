"""Small formatting rules shared by the Markdown, HTML and Slack renderings."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from bot.core.durations import format_duration
from bot.core.metrics import MetricLine
from bot.core.ports import TrafficSplit
from bot.core.report import Report


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) < 60:
        return f"{value:.1f}s"
    return ("-" if value < 0 else "") + format_duration(timedelta(seconds=abs(value)))


def offset(value: float | None) -> str:
    if value is None:
        return "—"
    return ("+" if value >= 0 else "") + seconds(value)


def when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S} UTC" if at else "—"


def value(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def metric(line: MetricLine) -> str:
    if line.no_data or line.now is None:
        return f"{line.name}: no data" + (f" ({line.error})" if line.error else "")
    base = f", before {value(line.baseline)}" if line.baseline is not None else ""
    pct = f" ({line.delta_pct:+.1f}%)" if line.delta_pct is not None else ""
    return f"{line.name}: {value(line.now)}{base}{pct}"


DURATION_LABELS = (
    ("detect_s", "Time to detect", "deployment → first alert"),
    ("decide_s", "Time to decide", "first alert (or the request) → approved or automatic"),
    ("roll_back_s", "Time to roll back", "decision → switched"),
    ("recover_s", "Time to recover", "switched → verified recovered"),
    ("total_s", "Total", "deployment → recovered (or switched)"),
)


def traffic_words(report: Report) -> str:
    """`` (traffic before: …; after: …)`` for an aborted canary, with its leading space; empty for a rollback."""
    if not report.traffic or not isinstance(report.traffic.get("before"), Mapping):
        return ""
    before = TrafficSplit.from_dict(report.traffic["before"])
    after = TrafficSplit.from_dict(report.traffic.get("after") or before.aborted().as_dict())

    def side(s: TrafficSplit) -> str:
        return (f"stable {s.stable_version or '?'} {s.stable_percent} %, "
                f"canary {s.canary_version or '?'} {s.canary_percent} %")

    return f" (traffic before: {side(before)}; after: {side(after)})"
