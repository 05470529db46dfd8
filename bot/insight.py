"""Metric summaries for cards and charts for threads, from a MetricsSource (Prometheus in production).

The summary is computed once per proposal and stored with it, so the audit shows exactly the numbers the
approvers saw; verification later recomputes the same expressions against the same baseline window.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from bot.charts import available as charts_available
from bot.core.clock import Clock
from bot.core.metrics import MetricLine, MetricsError, MetricsSource, summarise_all
from bot.core.policy import ModelPolicy
from bot.core.ports import Summarise
from bot.core.selection import Deployment

log = logging.getLogger(__name__)

BASELINE_WINDOW = timedelta(minutes=30)


def expressions(policy: ModelPolicy, hints: Mapping[str, str] | None) -> dict[str, str]:
    """The policy's metrics; without any, the alert's own expression (from its generatorURL)."""
    return dict(policy.metrics) if policy.metrics else dict(hints or {})


class MetricInsight:
    """Implements the core's MetricSummaries port."""

    def __init__(self, source: MetricsSource, clock: Clock, window: timedelta = BASELINE_WINDOW) -> None:
        self.source = source
        self.clock = clock
        self.window = window

    def summarise(self, policy: ModelPolicy, deployed_at: datetime | None,
                  exprs: Mapping[str, str]) -> list[MetricLine]:
        return summarise_all(exprs, self.source, self.clock.now(), deployed_at, self.window)

    def charts(self, policy: ModelPolicy, exprs: Mapping[str, str], deployed_at: datetime | None,
               rolled_back_at: datetime | None) -> list[tuple[str, bytes | str]]:
        """(name, PNG bytes) per metric, or (name, reason) where the chart could not be drawn."""
        from bot.charts import chart_for_metric  # matplotlib loads only when a chart is drawn

        out: list[tuple[str, bytes | str]] = []
        for name, expr in list(exprs.items())[:6]:
            try:
                out.append((name, chart_for_metric(name, expr, self.source, self.clock.now(), deployed_at,
                                                   rolled_back_at)))
            except MetricsError as exc:
                out.append((name, f"no chart for {name}: {exc}"))
        return out


def summary_dict(lines: list[MetricLine], exprs: Mapping[str, str], deployed_at: datetime | None,
                 source: str) -> dict[str, Any]:
    return {
        "metrics": [line.to_dict() for line in lines],
        "exprs": dict(exprs),
        "deployed_at": deployed_at.isoformat() if deployed_at else None,
        "source": source,
    }


def summary_hook(insight: MetricInsight) -> Summarise:
    """The service's `summarise` callback: lines for the card plus what verification needs later."""

    def hook(policy: ModelPolicy, current: Deployment | None, hints: Mapping[str, str]) -> dict[str, Any]:
        exprs = expressions(policy, hints)
        if not exprs:
            return {}
        deployed_at = current.deployed_at if current is not None else None
        return summary_dict(insight.summarise(policy, deployed_at, exprs), exprs, deployed_at, "prometheus")

    return hook


def chart_provider(insight: MetricInsight, policy: Any) -> Any:
    """Charts for a proposal's thread: the deployment marked, and the rollback once it happened.

    None when matplotlib (the `charts` extra) is not installed: the slim install and image leave it out, and
    the threads then simply get no charts.
    """
    if not charts_available():
        log.info("charts are off: matplotlib is not installed (install rollback-bot[charts] for PNG charts)")
        return None

    def charts(proposal: Any) -> list[tuple[str, bytes | str]]:
        mp = policy.model(proposal.model)
        if mp is None:
            return []
        exprs = dict(proposal.summary.get("exprs") or {}) or dict(mp.metrics)
        raw = proposal.summary.get("deployed_at")
        deployed_at = datetime.fromisoformat(raw) if isinstance(raw, str) else None
        rolled_back_at = proposal.finished_at if proposal.state.value == "succeeded" else None
        return insight.charts(mp, exprs, deployed_at, rolled_back_at) if exprs else []

    return charts
