"""The report as JSON: `GET /api/proposals/{id}/report` and `rollback-bot report ID --format json`."""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import datetime
from typing import Any

from bot.core.report import Report
from bot.core.version_diff import DiffRow
from bot.web.views import proposal_json


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _row(r: DiffRow) -> dict[str, Any]:
    return {"kind": r.kind, "key": r.key, "rolled_back": r.bad, "restored": r.restored,
            "differs": r.differs, "difference": round(r.score, 6)}


def finite(value: Any) -> Any:
    """JSON has no NaN or infinity (a registry metric or a metric source may hold them): they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def report_json(report: Report, page_url: str | None = None) -> dict[str, Any]:
    """Only JSON types, every float finite."""
    return dict(finite(_report_json(report, page_url)))


def _report_json(report: Report, page_url: str | None) -> dict[str, Any]:
    def dep(d: Any) -> dict[str, Any] | None:
        if d is None:
            return None
        return {"id": d.id, "version": d.version, "deployed_at": _iso(d.deployed_at), "deployed_by": d.deployed_by,
                "source": d.source, "metadata": dict(d.metadata), "stable_at": _iso(d.stable_at),
                "rolled_back_at": _iso(d.rolled_back_at)}

    return {
        "proposal": proposal_json(report.proposal),
        "generated_at": _iso(report.generated_at),
        "page_url": page_url,
        "action": report.action,
        "traffic": dict(report.traffic) if report.traffic else None,
        "decision": report.decision,
        "decided_by": report.decided_by,
        "policy": dict(report.policy),
        "policy_note": report.policy_note,
        "deployments": {"rolled_back": dep(report.bad), "restored": dep(report.restored)},
        "timeline": [{"at": _iso(e.at), "offset_s": e.offset_s, "what": e.what, "who": e.who, "detail": e.detail}
                     for e in report.timeline],
        "durations": asdict(report.durations),
        "decisions": [{"user": d.user, "decision": d.decision, "reason": d.reason, "at": _iso(d.at)}
                      for d in report.decisions],
        "metrics": {
            "seen_by_approvers": [m.to_dict() for m in report.summary_metrics],
            "at_verification": [m.to_dict() for m in report.metrics_at_verification],
            "now": None if report.metrics_now is None else [m.to_dict() for m in report.metrics_now],
        },
        "verification": report.verification,
        "verdict": report.verdict,
        "changes": {
            "metadata": [_row(r) for r in report.changes.metadata],
            "runs": [_row(r) for r in report.changes.runs],
            "run_ids": {"rolled_back": report.changes.run_ids[0], "restored": report.changes.run_ids[1]},
            "runs_note": report.changes.runs_note,
        },
        "alerts": [{"id": a.id, "source": a.source, "name": a.name, "severity": a.severity, "status": a.status,
                    "summary": a.summary, "starts_at": _iso(a.starts_at), "received_at": _iso(a.received_at),
                    "resolved_at": _iso(a.resolved_at), "links": dict(a.links)} for a in report.alerts],
        "charts": [{"name": c.name, "expr": c.expr, "link": c.link} for c in report.charts],
    }
