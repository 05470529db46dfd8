"""Read-only queries for reports, incident pages and the rollback metrics. No writes, no schema of its own.

Kept apart from the repository so the report side never touches the code paths that change state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.core.errors import NotFound
from bot.core.proposal import EXECUTED_STATES, Proposal
from bot.core.report import AlertFacts, AuditFacts, DecisionFacts, DeploymentFacts
from bot.store.repository import _proposal
from bot.store.tables import (
    AlertRow,
    ApprovalRow,
    AuditNoticeRow,
    AuditRow,
    DeploymentRow,
    ProposalRow,
    state_in,
)

PAGE_SIZE = 25


@dataclass(frozen=True)
class IncidentFilter:
    model: str | None = None
    state: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class IncidentPage:
    items: list[Proposal]
    total: int
    page: int
    pages: int


@dataclass(frozen=True)
class ProposalTimes:
    """What the metrics need of one proposal (one row per proposal, read at scrape time)."""

    model: str
    state: str
    dry_run: bool
    decided_by: str | None
    created_at: datetime
    decided_at: datetime | None
    finished_at: datetime | None
    verification: str | None
    first_alert_at: datetime | None


def _deployment(row: DeploymentRow) -> DeploymentFacts:
    assert row.id is not None
    return DeploymentFacts(id=row.id, version=row.version, deployed_at=row.deployed_at, deployed_by=row.deployed_by,
                           source=row.source, metadata=dict(row.meta or {}), stable_at=row.stable_at,
                           rolled_back_at=row.rolled_back_at)


def _alert(row: AlertRow) -> AlertFacts:
    assert row.id is not None
    notes = row.annotations or {}
    return AlertFacts(id=row.id, source=row.source, name=row.name, severity=row.severity, status=row.status,
                      summary=str(notes.get("summary") or notes.get("description") or row.name),
                      starts_at=row.starts_at, received_at=row.received_at, resolved_at=row.resolved_at,
                      links={str(k): str(v) for k, v in (row.links or {}).items() if v})


class ReportQueries:
    """Implements core.report.ReportSource, plus the listings the pages and the metrics need."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ---- ReportSource ---------------------------------------------------------------------------------

    def proposal(self, proposal_id: int) -> Proposal:
        with Session(self.engine) as s:
            row = s.get(ProposalRow, proposal_id)
            if row is None:
                raise NotFound(f"no proposal #{proposal_id}")
            approvals = [a.user_id for a in s.exec(
                select(ApprovalRow).where(ApprovalRow.proposal_id == proposal_id, ApprovalRow.decision == "approve")
                .order_by(col(ApprovalRow.id))).all()]
            return _proposal(row, approvals)

    def deployments(self, model: str) -> Sequence[DeploymentFacts]:
        with Session(self.engine) as s:
            rows = s.exec(select(DeploymentRow).where(DeploymentRow.model == model)
                          .order_by(col(DeploymentRow.id))).all()
            return [_deployment(r) for r in rows]

    def decisions(self, proposal_id: int) -> Sequence[DecisionFacts]:
        with Session(self.engine) as s:
            rows = s.exec(select(ApprovalRow).where(ApprovalRow.proposal_id == proposal_id)
                          .order_by(col(ApprovalRow.id))).all()
            return [DecisionFacts(r.user_id, r.decision, r.reason, r.at) for r in rows]

    def alerts(self, proposal_id: int) -> Sequence[AlertFacts]:
        with Session(self.engine) as s:
            rows = s.exec(select(AlertRow).where(AlertRow.proposal_id == proposal_id)
                          .order_by(col(AlertRow.starts_at), col(AlertRow.id))).all()
            return [_alert(r) for r in rows]

    def audit(self, proposal_id: int) -> Sequence[AuditFacts]:
        with Session(self.engine) as s:
            rows = s.exec(select(AuditRow).where(AuditRow.proposal_id == proposal_id)
                          .order_by(col(AuditRow.id))).all()
            return [AuditFacts(r.id, r.at, r.actor, r.action, r.reason, dict(r.inputs or {})) for r in rows]

    # ---- incident pages -------------------------------------------------------------------------------

    def incidents(self, flt: IncidentFilter, page: int, size: int = PAGE_SIZE) -> IncidentPage:
        conditions: list[Any] = []
        if flt.model:
            conditions.append(col(ProposalRow.model) == flt.model)
        if flt.state:
            conditions.append(col(ProposalRow.state) == flt.state)
        if flt.since:
            conditions.append(col(ProposalRow.created_at) >= flt.since)
        if flt.until:
            conditions.append(col(ProposalRow.created_at) < flt.until)
        with Session(self.engine) as s:
            total = int(s.exec(select(func.count()).select_from(ProposalRow).where(*conditions)).one())
            pages = max(1, -(-total // size))
            page = min(max(1, page), pages)
            rows = s.exec(select(ProposalRow).where(*conditions).order_by(col(ProposalRow.id).desc())
                          .offset((page - 1) * size).limit(size)).all()
            items = [_proposal(r, []) for r in rows]
        return IncidentPage(items, total, page, pages)

    def models(self) -> list[str]:
        with Session(self.engine) as s:
            names = set(s.exec(select(DeploymentRow.model).distinct()).all())
            names |= set(s.exec(select(ProposalRow.model).distinct()).all())
        return sorted(names)

    def model_proposals(self, model: str, limit: int = 50) -> list[Proposal]:
        with Session(self.engine) as s:
            rows = s.exec(select(ProposalRow).where(ProposalRow.model == model)
                          .order_by(col(ProposalRow.id).desc()).limit(limit)).all()
            return [_proposal(r, []) for r in rows]

    # ---- reports still to post -------------------------------------------------------------------------

    def reports_due(self, *, ended_after: datetime, ended_before: datetime, posted_action: str,
                    limit: int = 20) -> list[int]:
        """Rollbacks whose story ended in the window, with a Slack card, and no report posted yet."""
        posted = sa_select(col(AuditRow.proposal_id)).where(col(AuditRow.action) == str(posted_action),
                                                            col(AuditRow.proposal_id).is_not(None))
        q = (sa_select(col(ProposalRow.id))
             .where(state_in(EXECUTED_STATES),
                    col(ProposalRow.finished_at) >= ended_after, col(ProposalRow.finished_at) < ended_before,
                    col(ProposalRow.slack_ts).is_not(None),
                    col(ProposalRow.verify_at).is_(None) | col(ProposalRow.verification).is_not(None),
                    col(ProposalRow.id).not_in(posted))
             .order_by(col(ProposalRow.id)).limit(limit))
        with Session(self.engine) as s:
            return [int(i) for (i,) in s.execute(q).all()]

    def audit_count(self, proposal_id: int, action: str, method: str) -> int:
        with Session(self.engine) as s:
            rows = s.exec(select(AuditRow).where(AuditRow.proposal_id == proposal_id,
                                                 AuditRow.action == str(action))).all()
            return sum(1 for r in rows if (r.inputs or {}).get("method") == method)

    # ---- metrics ----------------------------------------------------------------------------------------

    def unusual_counts(self) -> dict[str, int]:
        """Unusual activities found in the audit trail, by kind (one notice each; bot/core/unusual.py)."""
        with Session(self.engine) as s:
            rows = s.exec(select(AuditNoticeRow.kind, func.count()).group_by(col(AuditNoticeRow.kind))).all()
        return {str(kind): int(n) for kind, n in rows}

    def proposal_times(self) -> list[ProposalTimes]:
        first_alert = (sa_select(col(AlertRow.proposal_id), func.min(col(AlertRow.starts_at)).label("first_at"))
                       .where(col(AlertRow.proposal_id).is_not(None)).group_by(col(AlertRow.proposal_id))
                       .subquery())
        q = (sa_select(col(ProposalRow.model), col(ProposalRow.state), col(ProposalRow.dry_run),
                       col(ProposalRow.decided_by), col(ProposalRow.created_at), col(ProposalRow.decided_at),
                       col(ProposalRow.finished_at), col(ProposalRow.verification), first_alert.c.first_at)
             .outerjoin(first_alert, first_alert.c.proposal_id == ProposalRow.id))
        with Session(self.engine) as s:
            return [ProposalTimes(*row) for row in s.execute(q).all()]

    def audit_action_counts(self, prefix: str) -> dict[tuple[str, str], int]:
        """(model, action) → rows, for audit actions starting with ``prefix``."""
        q = (sa_select(col(AuditRow.model), col(AuditRow.action), func.count())
             .where(col(AuditRow.action).startswith(prefix)).group_by(col(AuditRow.model), col(AuditRow.action)))
        with Session(self.engine) as s:
            return {(str(m or ""), str(a)): int(n) for m, a, n in s.execute(q).all()}
