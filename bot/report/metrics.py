"""Rollback metrics derived from the database at scrape time (a prometheus_client custom collector).

Counting from the database rather than in-process counters keeps the numbers right across restarts and
replicas, and leaves the rollback code paths untouched. Every replica reports the same global numbers, so
dashboards aggregate replicas with ``max``, never ``sum`` (see docs/reports.md).
"""

from __future__ import annotations

import logging
import math
from collections import Counter as Tally
from collections.abc import Iterable, Iterator
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from bot.core.actor import ActorKind, kind_of
from bot.core.report import aware, is_automatic
from bot.core.unusual import UnusualKind
from bot.store.report_queries import ProposalTimes, ReportQueries

log = logging.getLogger(__name__)

PREFIX = "rollback_bot"
# From seconds (an automatic rollback) to hours (a person asleep): Slack-paced decisions and target switches.
DECIDE_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0)
ROLLBACK_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
HUMAN_STATES = {"denied": "denied", "expired": "expired", "cancelled": "cancelled"}


def decision_label(p: ProposalTimes) -> str:
    if p.state in HUMAN_STATES:
        return HUMAN_STATES[p.state]
    if p.decided_by is None:
        return "waiting"
    if is_automatic(p.decided_by):
        return "automatic"
    if kind_of(p.decided_by) is ActorKind.CLI_USER:
        return "break_glass"
    return "approved"


def outcome_label(p: ProposalTimes) -> str | None:
    if p.state == "succeeded":
        return "dry_run" if p.dry_run else "succeeded"
    if p.state == "failed":
        return "failed"
    return None


def verdict_label(text: str | None) -> str | None:
    if not text:
        return None
    head = text.split(":", 1)[0].strip()
    return {"recovered": "recovered", "not recovered": "not_recovered", "inconclusive": "inconclusive"}.get(head)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    value = (aware(end) - aware(start)).total_seconds()
    return value if value >= 0 and math.isfinite(value) else None


def _histogram(name: str, doc: str, buckets: tuple[float, ...],
               samples: dict[str, list[float]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=["model"])
    for model, values in sorted(samples.items()):
        cumulative = [(str(b), float(sum(1 for v in values if v <= b))) for b in buckets]
        cumulative.append(("+Inf", float(len(values))))
        family.add_metric([model], cumulative, sum_value=sum(values))
    return family


class RollbackCollector(Collector):
    def __init__(self, queries: ReportQueries) -> None:
        self.queries = queries

    def describe(self) -> Iterable[object]:
        return []  # no scrape at registration time: the database may not be reachable yet

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(f"{PREFIX}_rollback_metrics_up",
                               "1 when the rollback metrics below were read from the database, 0 when it failed")
        try:
            rows = self.queries.proposal_times()
        except Exception:  # noqa: BLE001  a scrape must answer even when the database is down
            log.warning("rollback metrics: the database could not be read")
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        yield from self._families(rows)
        yield from self._unusual()

    def _unusual(self) -> Iterator[Metric]:
        """Every kind, 0 included, so a dashboard or an alert rule can rely on the series being there."""
        try:
            counts = self.queries.unusual_counts()
        except Exception:  # noqa: BLE001  a scrape must answer even when the table is unreadable
            log.warning("unusual-activity metrics: the database could not be read")
            return
        family = CounterMetricFamily(f"{PREFIX}_unusual_activity", "Unusual activities found in the audit trail "
                                     "and announced in the [audit] channel, by kind", labels=["kind"])
        for kind in UnusualKind:
            family.add_metric([kind.value], float(counts.get(kind.value, 0)))
        yield family

    def _families(self, rows: list[ProposalTimes]) -> Iterator[Metric]:
        rollbacks: Tally[tuple[str, str]] = Tally()
        decisions: Tally[tuple[str, str]] = Tally()
        verdicts: Tally[tuple[str, str]] = Tally()
        decide: dict[str, list[float]] = {}
        roll: dict[str, list[float]] = {}
        for p in rows:
            label = decision_label(p)
            decisions[(p.model, label)] += 1
            outcome = outcome_label(p)
            if outcome:
                rollbacks[(p.model, outcome)] += 1
            verdict = verdict_label(p.verification)
            if verdict:
                verdicts[(p.model, verdict)] += 1
            if label in ("automatic", "approved", "break_glass"):
                took = _seconds(p.first_alert_at or p.created_at, p.decided_at)
                if took is not None:
                    decide.setdefault(p.model, []).append(took)
            if p.state == "succeeded" and not p.dry_run:
                took = _seconds(p.decided_at, p.finished_at)
                if took is not None:
                    roll.setdefault(p.model, []).append(took)
        yield _counter("rollbacks", "Rollbacks that ran, by model and outcome (succeeded, failed, dry_run)",
                       ["model", "outcome"], rollbacks)
        yield _counter("proposals", "Proposals by model and how they were decided (automatic, approved, denied, "
                       "expired, cancelled, break_glass, waiting)", ["model", "decision"], decisions)
        yield _counter("verifications", "Post-rollback verification verdicts by model",
                       ["model", "verdict"], verdicts)
        yield _histogram(f"{PREFIX}_time_to_decide_seconds",
                         "First alert (or the request) to the approval or automatic decision", DECIDE_BUCKETS, decide)
        yield _histogram(f"{PREFIX}_time_to_rollback_seconds", "Decision to the target reporting the switch done",
                         ROLLBACK_BUCKETS, roll)
        blocked = CounterMetricFamily(f"{PREFIX}_blocked_deployments_refused",
                                      "Deployments of a blocked (rolled-back) version refused; 0 until deployment "
                                      "blocking exists")
        blocked.add_metric([], 0.0)
        yield blocked


def _counter(name: str, doc: str, labels: list[str], tally: Tally[tuple[str, str]]) -> CounterMetricFamily:
    family = CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)
    for key, n in sorted(tally.items()):
        family.add_metric(list(key), float(n))
    return family
