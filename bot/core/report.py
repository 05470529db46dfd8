"""The post-incident report of one proposal, built only from what the database holds.

Pure: the data arrive through the small ``ReportSource`` port, so the same report comes out today and in a
year, on SQLite or PostgreSQL, and the rules are unit-tested with an in-memory source. The only value not from
the database is ``metrics_now``, which the caller may pass when a metrics source is configured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from bot.core.actor import Actor, ActorKind, is_bot, kind_of
from bot.core.events import VERIFIED_PREFIX, AuditAction
from bot.core.metrics import MetricLine
from bot.core.ports import ReportSource
from bot.core.proposal import CLOSED_UNRUN_STATES, Proposal, ProposalAction, State
from bot.core.version_diff import DiffRow, diff_runs, side_by_side

CAPTURE_ACTION = AuditAction.REPORT_VERSIONS_CAPTURED  # audit row holding the two versions' registry runs

# The bot deciding under the policy (``bot:policy``) or at a deadline (``bot:timeout``): a decision nobody made.
AUTOMATIC_ACTORS: frozenset[Actor] = frozenset({Actor.bot("policy"), Actor.bot("timeout")})


def is_automatic(actor: str | None) -> bool:
    """Was this stored actor text (``decided_by``, an audit row's actor) the bot deciding on its own?"""
    return actor is not None and Actor.parse(actor) in AUTOMATIC_ACTORS


@dataclass(frozen=True)
class DeploymentFacts:
    id: int
    version: str
    deployed_at: datetime
    deployed_by: str | None
    source: str | None
    metadata: Mapping[str, Any]
    stable_at: datetime | None
    rolled_back_at: datetime | None


@dataclass(frozen=True)
class DecisionFacts:
    """One row of the approvals table: an approval or a refusal (deny) by one person."""

    user: str
    decision: str  # approve | deny
    reason: str | None
    at: datetime


@dataclass(frozen=True)
class AlertFacts:
    id: int
    source: str
    name: str
    severity: str
    status: str
    summary: str
    starts_at: datetime
    received_at: datetime
    resolved_at: datetime | None
    links: Mapping[str, str]


@dataclass(frozen=True)
class AuditFacts:
    id: int
    at: datetime
    actor: str
    action: str
    reason: str | None
    inputs: Mapping[str, Any]


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    offset_s: float | None  # seconds since the bad version's deployment (None when that is unknown)
    what: str
    who: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Durations:
    """Consecutive segments of the incident, in seconds; None where a step did not happen."""

    detect_s: float | None  # deployment → first alert
    decide_s: float | None  # first alert (or the request) → approved or automatic
    roll_back_s: float | None  # decision → switched
    recover_s: float | None  # switched → verified recovered
    total_s: float | None  # deployment → verified recovered (or switched, when not verified)


@dataclass(frozen=True)
class VersionChanges:
    metadata: list[DiffRow]
    runs: list[DiffRow]
    run_ids: tuple[str | None, str | None]
    runs_note: str


@dataclass(frozen=True)
class ChartRef:
    name: str
    expr: str
    link: str | None


@dataclass(frozen=True)
class Report:
    proposal: Proposal
    generated_at: datetime
    bad: DeploymentFacts | None
    restored: DeploymentFacts | None
    timeline: list[TimelineEntry]
    durations: Durations
    decision: str  # automatic | approved | denied | expired | cancelled | break_glass | waiting
    decided_by: str | None
    policy: Mapping[str, Any]
    policy_note: str
    decisions: list[DecisionFacts]
    summary_metrics: list[MetricLine]
    metrics_at_verification: list[MetricLine]
    metrics_now: list[MetricLine] | None
    verification: str | None
    verdict: str | None  # recovered | not_recovered | inconclusive
    changes: VersionChanges
    alerts: list[AlertFacts]
    charts: list[ChartRef] = field(default_factory=list)
    action: str = "rollback"  # rollback | abort_canary (bot.core.proposal.ProposalAction)
    traffic: Mapping[str, Any] | None = None  # abort canary: the split before and after, as the target said

    @property
    def action_words(self) -> str:
        return ProposalAction(self.action).words


def aware(at: datetime) -> datetime:
    """SQLite hands times back without a zone; every stored time is UTC."""
    return at if at.utcoffset() is not None else at.replace(tzinfo=UTC)


def _opt(at: datetime | None) -> datetime | None:
    return aware(at) if at is not None else None


def _between(a: datetime | None, b: datetime | None) -> float | None:
    if a is None or b is None:
        return None
    return round((aware(b) - aware(a)).total_seconds(), 3)


def decision_kind(p: Proposal) -> str:
    """How the proposal was decided, in the words of the metrics and the report."""
    if p.state in CLOSED_UNRUN_STATES:
        return p.state.value
    if p.decided_by is None:
        return "waiting"
    if is_automatic(p.decided_by):
        return "automatic"
    if kind_of(p.decided_by) is ActorKind.CLI_USER:
        return "break_glass"
    return "approved"


def bad_deployment(deployments: Sequence[DeploymentFacts], p: Proposal) -> DeploymentFacts | None:
    """The deployment of the rolled-back version that was live when the proposal was made."""
    created = aware(p.created_at)
    found = [d for d in deployments if d.version == p.from_version and aware(d.deployed_at) <= created]
    return found[-1] if found else None


def restored_deployment(deployments: Sequence[DeploymentFacts], p: Proposal) -> DeploymentFacts | None:
    """The original deployment of the version restored: the one CI reported, with its metadata."""
    created = aware(p.created_at)
    earlier = [d for d in deployments if d.version == p.to_version and aware(d.deployed_at) <= created]
    with_meta = [d for d in earlier if d.metadata]
    if with_meta:
        return with_meta[-1]
    return earlier[-1] if earlier else None


def _lines(raw: Any) -> list[MetricLine]:
    out = []
    for item in raw or []:
        if isinstance(item, Mapping) and "name" in item and "expr" in item:
            out.append(MetricLine.from_dict(item))
    return out


def _created_inputs(audit: Sequence[AuditFacts]) -> Mapping[str, Any]:
    created = next((a for a in audit if a.action == AuditAction.PROPOSAL_CREATED), None)
    return created.inputs if created else {}


def policy_in_force(p: Proposal, audit: Sequence[AuditFacts]) -> tuple[dict[str, Any], str]:
    """The policy values stored with the proposal; older proposals hold only what their row kept."""
    stored = _created_inputs(audit).get("policy")
    if isinstance(stored, Mapping) and stored:
        return dict(stored), "as stored with the proposal when it was made"
    return ({"required_approvals": p.required_approvals, "dry_run": p.dry_run},
            "only the values kept on the proposal row (made before policy snapshots were stored)")


def _timeline(p: Proposal, bad: DeploymentFacts | None, alerts: Sequence[AlertFacts],
              decisions: Sequence[DecisionFacts], audit: Sequence[AuditFacts]) -> list[TimelineEntry]:
    entries: list[tuple[datetime, str, str | None, str | None]] = []
    if bad is not None:
        via = f" via {bad.source}" if bad.source else ""
        entries.append((bad.deployed_at, f"version {bad.version} deployed{via}", bad.deployed_by, None))
    if alerts:
        first = min(alerts, key=lambda a: aware(a.starts_at))
        entries.append((first.starts_at, f"first alert fired: {first.name}", first.source,
                        f"{first.severity}; received {aware(first.received_at):%H:%M:%S} UTC"))
    entries.append((p.created_at, f"proposal #{p.id} opened ({p.kind.value}): {p.from_version} → {p.to_version}",
                    p.requested_by, p.decision_reason or None))
    for d in decisions:
        what = "approved" if d.decision == "approve" else "refused (deny)"
        entries.append((d.at, what, d.user, d.reason))
    for a in audit:
        if a.action in (AuditAction.APPROVAL_REFUSED, AuditAction.DENIAL_REFUSED, AuditAction.UNDO_REFUSED):
            entries.append((a.at, "not allowed to decide", a.actor, a.reason))
        elif a.action == AuditAction.PROPOSAL_ESCALATED:
            entries.append((a.at, "escalated", a.actor, a.reason))
        elif a.action in (AuditAction.PROPOSAL_EXPIRED, AuditAction.PROPOSAL_CANCELLED,
                          AuditAction.PROPOSAL_SUPERSEDED):
            entries.append((a.at, a.action.split(".", 1)[1], a.actor, a.reason))
        elif a.action == AuditAction.PROPOSAL_APPROVED and (is_automatic(a.actor)
                                                            or kind_of(a.actor) is ActorKind.CLI_USER):
            entries.append((a.at, "decided automatically" if is_bot(a.actor) else "break-glass decision",
                            a.actor, a.reason))
    if p.started_at is not None:
        entries.append((p.started_at, "switch started", None, None))
    if p.finished_at is not None:
        what = {State.SUCCEEDED: "switch finished", State.FAILED: "switch failed"}.get(p.state, "finished")
        entries.append((p.finished_at, what, None, p.result if p.state is State.SUCCEEDED else p.error))
    resolved = [a for a in alerts if a.resolved_at is not None]
    if alerts and len(resolved) == len(alerts):
        last = max(resolved, key=lambda a: aware(a.resolved_at or a.starts_at))
        entries.append((last.resolved_at or last.starts_at, "alerts resolved", last.source,
                        f"{len(alerts)} alert(s)"))
    for a in audit:
        if a.action.startswith(VERIFIED_PREFIX):
            entries.append((a.at, "verification: " + a.action[len(VERIFIED_PREFIX):].replace("_", " "), a.actor,
                            a.reason))
    entries.sort(key=lambda e: aware(e[0]))
    origin = aware(bad.deployed_at) if bad is not None else None
    return [TimelineEntry(aware(at), _between(origin, at) if origin else None, what, who, detail)
            for at, what, who, detail in entries]


def _verified(audit: Sequence[AuditFacts]) -> AuditFacts | None:
    return next((a for a in audit if a.action.startswith(VERIFIED_PREFIX)), None)


def _durations(p: Proposal, bad: DeploymentFacts | None, alerts: Sequence[AlertFacts],
               verified: AuditFacts | None) -> Durations:
    first_alert = min((aware(a.starts_at) for a in alerts), default=None)
    deployed = aware(bad.deployed_at) if bad else None
    start_of_decision = first_alert or aware(p.created_at)
    decided = _opt(p.decided_at) if p.state not in (State.DENIED, State.EXPIRED, State.CANCELLED) else None
    switched = _opt(p.finished_at) if p.state is State.SUCCEEDED else None
    recovered = verified.at if verified and verified.action.endswith(".recovered") else None
    end = recovered or switched
    return Durations(
        detect_s=_between(deployed, first_alert),
        decide_s=_between(start_of_decision, decided),
        roll_back_s=_between(decided, switched),
        recover_s=_between(switched, recovered),
        total_s=_between(deployed, end),
    )


def _changes(bad: DeploymentFacts | None, restored: DeploymentFacts | None, p: Proposal,
             audit: Sequence[AuditFacts]) -> VersionChanges:
    metadata = side_by_side(bad.metadata if bad else {}, restored.metadata if restored else {})
    captured = next((a for a in reversed(audit) if a.action == CAPTURE_ACTION), None)
    if captured is not None and isinstance(captured.inputs.get("from"), Mapping):
        before, after = captured.inputs.get("from") or {}, captured.inputs.get("to") or {}
        return VersionChanges(metadata, diff_runs(before, after),
                              (before.get("run_id"), after.get("run_id")),
                              "registry runs read when the rollback ended")
    stored = p.summary.get("version_metrics")
    if isinstance(stored, Mapping) and stored.get("from") is not None:
        runs = diff_runs({"metrics": stored.get("from") or {}}, {"metrics": stored.get("to") or {}})
        return VersionChanges(metadata, runs, (None, None),
                              "run metrics stored with the proposal (parameters and tags were not captured)")
    return VersionChanges(metadata, [], (None, None), "the target keeps no per-version runs")


def _charts(p: Proposal, graph_url: str | None) -> list[ChartRef]:
    exprs = p.summary.get("exprs")
    if not isinstance(exprs, Mapping):
        return []
    out = []
    for name, expr in exprs.items():
        link = None
        if graph_url:
            link = graph_url.rstrip("/") + "/graph?" + urlencode({"g0.expr": str(expr), "g0.range_input": "1h"})
        out.append(ChartRef(str(name), str(expr), link))
    return out


def build_report(source: ReportSource, proposal_id: int, *, now: datetime,
                 metrics_now: list[MetricLine] | None = None, graph_url: str | None = None) -> Report:
    """Raise core.errors.NotFound (from the source) for an unknown proposal."""
    p = source.proposal(proposal_id)
    deployments = list(source.deployments(p.model))
    decisions = list(source.decisions(proposal_id))
    alerts = sorted(source.alerts(proposal_id), key=lambda a: aware(a.starts_at))
    audit = list(source.audit(proposal_id))
    bad = bad_deployment(deployments, p)
    restored = restored_deployment(deployments, p)
    verified = _verified(audit)
    policy, note = policy_in_force(p, audit)
    at_verification = _lines(verified.inputs.get("metrics_now")) if verified else []
    verdict = verified.action[len(VERIFIED_PREFIX):] if verified else None
    return Report(
        proposal=p, generated_at=aware(now), bad=bad, restored=restored,
        timeline=_timeline(p, bad, alerts, decisions, audit),
        durations=_durations(p, bad, alerts, verified),
        decision=decision_kind(p), decided_by=p.decided_by, policy=policy, policy_note=note,
        decisions=decisions, summary_metrics=_lines(p.summary.get("metrics")),
        metrics_at_verification=at_verification, metrics_now=metrics_now,
        verification=p.verification, verdict=verdict,
        changes=_changes(bad, restored, p, audit), alerts=alerts, charts=_charts(p, graph_url),
        action=p.action.value, traffic=_traffic(p),
    )


def _traffic(p: Proposal) -> Mapping[str, Any] | None:
    traffic = p.summary.get("traffic") if p.action is ProposalAction.ABORT_CANARY else None
    return traffic if isinstance(traffic, Mapping) else None


__all__ = ["CAPTURE_ACTION", "AlertFacts", "AuditFacts", "DecisionFacts", "DeploymentFacts", "Durations",
           "Report", "ReportSource", "TimelineEntry", "build_report", "decision_kind"]
