"""Metric summaries for proposal cards and the post-rollback verification, in pure Python.

A ``MetricsSource`` (Prometheus in production, a fake in tests) answers two questions: the value of
an expression at an instant, and its values over a range. Everything here is arithmetic on those
answers, so the rules that decide what an approver sees and whether a rollback worked are testable
without a network.

Conventions every source follows (the Prometheus adapter implements them):

* Times are timezone-aware UTC datetimes, like the rest of the core.
* Rates are Prometheus' job: policy expressions use ``rate()``, which already handles counter
  resets. Nothing here differentiates counters, so nothing here can get a reset wrong.
* An expression that yields several series is summed point by point, exactly as wrapping it in
  ``sum(...)`` would. Policy expressions are meant to yield one series; summing keeps rate
  expressions meaningful and is the same number an operator gets by typing ``sum(expr)``.
* Non-finite samples (``NaN`` from 0/0 ratios with no traffic, ``±Inf`` from x/0) are dropped: they
  are not measurements, and a single NaN would poison every mean. A dropped point is a gap.
* No data is never healthy: a line without a current value has ``no_data=True`` and ``now=None``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.core.policy import NoData
from bot.core.ports import MetricsSource as MetricsSource  # the port is defined with the others

Point = tuple[datetime, float]
Series = list[Point]
"""Points of one series, oldest first, finite values only."""

SPARK_LEVELS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 20
SPARK_SPAN = timedelta(hours=1)
BASELINE_POINTS = 60


class MetricsError(Exception):
    """The metrics backend refused or could not be reached; the message is safe to show (no secrets)."""


@dataclass(frozen=True)
class MetricLine:
    """One metric as shown on a proposal card and stored with it for the audit.

    ``delta_pct`` is a percentage of the baseline (``+250.0`` means 3.5x the baseline); it is None
    when the baseline is 0 or unknown. ``error`` says why there is no data when the backend failed.
    """

    name: str
    expr: str
    now: float | None
    baseline: float | None
    delta: float | None
    delta_pct: float | None
    sparkline: str
    no_data: bool
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "expr": self.expr,
            "now": self.now,
            "baseline": self.baseline,
            "delta": self.delta,
            "delta_pct": self.delta_pct,
            "sparkline": self.sparkline,
            "no_data": self.no_data,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricLine:
        return cls(
            name=str(data["name"]),
            expr=str(data["expr"]),
            now=_opt_float(data.get("now")),
            baseline=_opt_float(data.get("baseline")),
            delta=_opt_float(data.get("delta")),
            delta_pct=_opt_float(data.get("delta_pct")),
            sparkline=str(data.get("sparkline", "")),
            no_data=bool(data.get("no_data", data.get("now") is None)),
            error=None if data.get("error") is None else str(data["error"]),
        )


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def finite(points: Iterable[Point]) -> Series:
    """Drop NaN and ±Inf points (see the module docstring for why)."""
    return [(t, v) for t, v in points if math.isfinite(v)]


def sum_series(series: Iterable[Iterable[Point]]) -> Series:
    """Add several series point by point (like PromQL ``sum``); a point present in any series counts."""
    totals: dict[datetime, float] = {}
    for one in series:
        for t, v in finite(one):
            totals[t] = totals.get(t, 0.0) + v
    return sorted(totals.items())


def mean(points: Sequence[Point]) -> float | None:
    values = [v for _, v in points if math.isfinite(v)]
    return sum(values) / len(values) if values else None


def sparkline(points: Sequence[Point], start: datetime, step: timedelta, width: int = SPARK_WIDTH) -> str:
    """One character per step from ``start``; a step without a point is a space.

    Scaled between the minimum and maximum shown, so the shape is visible whatever the unit;
    a flat line is drawn at the lowest level.
    """
    slots: list[float | None] = [None] * width
    for t, v in points:
        if not math.isfinite(v):
            continue
        index = round((t - start) / step)
        if 0 <= index < width:
            slots[index] = v
    present = [v for v in slots if v is not None]
    if not present:
        return " " * width
    low, high = min(present), max(present)
    top = len(SPARK_LEVELS) - 1
    chars = []
    for slot in slots:
        if slot is None:
            chars.append(" ")
        elif high == low:
            chars.append(SPARK_LEVELS[0])
        else:
            chars.append(SPARK_LEVELS[round((slot - low) / (high - low) * top)])
    return "".join(chars)


def summarise(
    name: str,
    expr: str,
    source: MetricsSource,
    now: datetime,
    deployed_at: datetime | None,
    window: timedelta,
    *,
    width: int = SPARK_WIDTH,
) -> MetricLine:
    """Summarise one policy metric: value now, baseline before the deployment, delta, sparkline.

    * now: an instant query at ``now``. Not "the newest point of a range", which could be minutes
      stale when the series has stopped; a stopped series must read as no data.
    * baseline: the mean over ``window`` ending at ``deployed_at`` (the current deployment's start),
      i.e. how the previous version behaved over the same length of time. None without a deployment.
    * sparkline: the last hour in ``width`` steps.

    A backend failure becomes a no-data line carrying the error, so a card can still be posted.
    """
    try:
        current = source.query(expr, now)
        baseline: float | None = None
        if deployed_at is not None and window > timedelta(0):
            step = max(window / BASELINE_POINTS, timedelta(seconds=1))
            baseline = mean(source.query_range(expr, deployed_at - window, deployed_at, step))
        spark_step = SPARK_SPAN / width
        spark_start = now - spark_step * (width - 1)
        spark = sparkline(source.query_range(expr, spark_start, now, spark_step), spark_start, spark_step,
                          width)
    except MetricsError as exc:
        return MetricLine(name, expr, None, None, None, None, " " * width, True, str(exc))
    if current is not None and not math.isfinite(current):
        current = None
    delta = None if current is None or baseline is None else current - baseline
    delta_pct = None if delta is None or baseline in (None, 0.0) else delta / abs(baseline) * 100.0
    return MetricLine(name, expr, current, baseline, delta, delta_pct, spark, current is None)


def summarise_all(
    metrics: Mapping[str, str],
    source: MetricsSource,
    now: datetime,
    deployed_at: datetime | None,
    window: timedelta,
) -> list[MetricLine]:
    """``summarise`` every metric of a policy (``ModelPolicy.metrics``), in the policy's order."""
    return [summarise(name, expr, source, now, deployed_at, window) for name, expr in metrics.items()]


# --- verification ------------------------------------------------------------------------------


class Recovery(StrEnum):
    """What a verification found: the metrics back to baseline or not (the alert outcome is intake.Outcome)."""

    RECOVERED = "recovered"
    NOT_RECOVERED = "not_recovered"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Tolerance:
    """How close to its baseline a metric must be: ``max(relative * |baseline|, absolute)``.

    The absolute floor keeps a near-zero baseline (an error ratio of 0.0001) from demanding
    an impossible exact match; 0.001 is a tenth of a percentage point for a ratio.
    """

    relative: float = 0.10
    absolute: float = 0.001

    def allowed(self, baseline: float) -> float:
        return max(self.relative * abs(baseline), self.absolute)


@dataclass(frozen=True)
class Verdict:
    outcome: Recovery
    reason: str
    details: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": str(self.outcome), "reason": self.reason, "details": list(self.details)}


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _judge(before: MetricLine | None, now_line: MetricLine | None, name: str,
           tolerance: Tolerance) -> tuple[Recovery | None, str]:
    """One metric: RECOVERED/NOT_RECOVERED, or None when data is missing (the no_data policy decides)."""
    baseline = before.baseline if before is not None else None
    if now_line is None or now_line.no_data or now_line.now is None:
        why = f" ({now_line.error})" if now_line is not None and now_line.error else ""
        return None, f"{name}: no data now{why}"
    if baseline is None:
        return None, f"{name}: no baseline to compare with (now {_fmt(now_line.now)})"
    value = now_line.now
    allowed = tolerance.allowed(baseline)
    if abs(value - baseline) <= allowed:
        return Recovery.RECOVERED, (
            f"{name}: {_fmt(value)} is within {_fmt(allowed)} of its baseline {_fmt(baseline)}")
    incident = before.now if before is not None else None
    if incident is not None and incident != baseline and (value - baseline) * (incident - baseline) < 0:
        return Recovery.RECOVERED, (
            f"{name}: {_fmt(value)} is past its baseline {_fmt(baseline)}, away from the incident "
            f"value {_fmt(incident)}")
    was = f", incident value {_fmt(incident)}" if incident is not None else ""
    return Recovery.NOT_RECOVERED, (
        f"{name}: {_fmt(value)} is more than {_fmt(allowed)} from its baseline {_fmt(baseline)}{was}")


def verify(
    lines_before: Sequence[MetricLine],
    lines_now: Sequence[MetricLine],
    alerts_firing: bool,
    no_data_policy: NoData,
    tolerance: Tolerance | None = None,
) -> Verdict:
    """Did the rollback work? ``lines_before`` are the lines shown on the proposal, ``lines_now`` are
    taken ``verify_after`` the rollback.

    The rule, strictest signal first:

    1. An alert for the model still firing means not recovered, whatever the metrics say: the alert
       is the definition of trouble the team wrote down.
    2. Each metric is compared with its baseline from ``lines_before`` (the previous version's
       behaviour before the bad deployment; the baseline in ``lines_now`` would be the incident
       itself). It has recovered when ``|now - baseline| <= tolerance.allowed(baseline)``, or when
       it has crossed the baseline to the side away from the incident value (errors now below the
       old baseline are not a failure). Anything else is not recovered. A band around the baseline,
       not "better than during the incident", because half a recovery is still an incident.
    3. A metric without a current value or without a baseline is missing data, and missing data is
       never silently healthy: ``no_data_policy`` turns it into a failure, a pass, or inconclusive.
       With no metrics configured at all the same policy applies.

    Any not-recovered metric makes the verdict not recovered; otherwise any inconclusive one makes
    it inconclusive; otherwise recovered.
    """
    tol = tolerance or Tolerance()
    if alerts_firing:
        return Verdict(Recovery.NOT_RECOVERED, "an alert for the model is still firing")
    before = {line.name: line for line in lines_before}
    after = {line.name: line for line in lines_now}
    names = list(before) + [n for n in after if n not in before]
    if not names:
        return _no_data_verdict(no_data_policy, "no metrics are configured and no alert is firing", ())

    failed: list[str] = []
    missing: list[str] = []
    details: list[str] = []
    for name in names:
        outcome, detail = _judge(before.get(name), after.get(name), name, tol)
        details.append(detail)
        if outcome is Recovery.NOT_RECOVERED:
            failed.append(name)
        elif outcome is None:
            missing.append(name)

    if failed:
        return Verdict(Recovery.NOT_RECOVERED, f"not back to baseline: {', '.join(failed)}", tuple(details))
    if missing:
        return _no_data_verdict(no_data_policy, f"no data for: {', '.join(missing)}", tuple(details))
    return Verdict(Recovery.RECOVERED, "no alert firing and every metric is back to its baseline",
                   tuple(details))


def _no_data_verdict(policy: NoData, what: str, details: tuple[str, ...]) -> Verdict:
    if policy is NoData.FAIL:
        return Verdict(Recovery.NOT_RECOVERED, f"{what} (no_data = fail)", details)
    if policy is NoData.PASS:
        return Verdict(Recovery.RECOVERED, f"{what}; counted as passing (no_data = pass)", details)
    return Verdict(Recovery.INCONCLUSIVE, f"{what} (no_data = inconclusive)", details)
