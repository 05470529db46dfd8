"""One entry point for every place the report appears (CLI, API, Slack, pages): the same facts, the same rules."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.core.audit import AuditEvent
from bot.core.clock import Clock
from bot.core.metrics import MetricLine, MetricsSource, summarise_all
from bot.core.policy import Policy
from bot.core.ports import DeploymentTarget, ReportsVersionRun
from bot.core.report import CAPTURE_ACTION, Report, build_report
from bot.report.links import LinkSigner, public_link
from bot.store.report_queries import ReportQueries

log = logging.getLogger(__name__)
NOW_WINDOW_MINUTES = 30


def public_base(url: str | None) -> str | None:
    """A base URL fit for links people see: any user:password@ in it is dropped."""
    if not url:
        return None
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass
class Reports:
    queries: ReportQueries
    clock: Clock
    metrics: MetricsSource | None = None
    graph_url: str | None = None
    signer: LinkSigner | None = None
    public_url: str | None = None

    def build(self, proposal_id: int, *, with_metrics_now: bool = True) -> Report:
        """Raise core.errors.NotFound for an unknown id."""
        now = self.clock.now()
        proposal = self.queries.proposal(proposal_id)
        metrics_now = self._metrics_now(proposal.summary, now) if with_metrics_now else None
        return build_report(self.queries, proposal_id, now=now, metrics_now=metrics_now, graph_url=self.graph_url)

    def _metrics_now(self, summary: Mapping[str, Any], now: datetime) -> list[MetricLine] | None:
        exprs = summary.get("exprs")
        if self.metrics is None or not isinstance(exprs, Mapping) or not exprs:
            return None
        raw = summary.get("deployed_at")
        deployed_at = datetime.fromisoformat(raw) if isinstance(raw, str) and raw else None
        try:
            return summarise_all({str(k): str(v) for k, v in exprs.items()}, self.metrics, now, deployed_at,
                                 timedelta(minutes=NOW_WINDOW_MINUTES))
        except Exception:  # the report must come out whatever the metrics backend does
            log.exception("metrics now for the report failed")
            return None

    def page_url(self, proposal_id: int) -> str | None:
        return public_link(self.public_url, self.signer, f"/incidents/{proposal_id}")


def capture_versions(store: Any, policy: Policy, targets: Mapping[str, DeploymentTarget], proposal: Any) -> bool:
    """Read both versions' registry runs once and keep them in the audit trail, so the report's diff is the
    same in a year even if the registry forgets the runs. False when the target keeps no runs or it failed."""
    mp = policy.model(proposal.model)
    target = targets.get(mp.target) if mp else None
    if mp is None or not isinstance(target, ReportsVersionRun):
        return False
    reader = target.version_run
    if any(r.action == CAPTURE_ACTION for r in store.audit_records(proposal_id=proposal.id)):
        return True
    try:
        runs = {"from": reader(proposal.model, proposal.from_version, mp.target_settings),
                "to": reader(proposal.model, proposal.to_version, mp.target_settings)}
    except Exception as exc:  # noqa: BLE001  the registry being down must not stop the report
        log.warning("reading the runs of %s for the report failed: %s", proposal.model, type(exc).__name__)
        return False
    store.append_audit(AuditEvent(actor="bot:report", action=CAPTURE_ACTION, model=proposal.model,
                                  proposal_id=proposal.id, from_version=proposal.from_version,
                                  to_version=proposal.to_version,
                                  reason=f"{mp.target} runs of versions {proposal.from_version} and "
                                         f"{proposal.to_version} recorded for the report", inputs=runs))
    return True
