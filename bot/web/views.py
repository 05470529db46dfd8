"""JSON shapes of the read API: one place, so /api and the CLI's exports agree."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.core.audit import AuditRecord
from bot.core.proposal import Proposal
from bot.core.selection import Block, Deployment


def iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def deployment_json(d: Deployment) -> dict[str, Any]:
    return {
        "id": d.id, "version": d.version, "deployed_at": iso(d.deployed_at), "deployed_by": d.deployed_by,
        "source": d.source, "stable_at": iso(d.stable_at), "rolled_back_at": iso(d.rolled_back_at),
    }


def proposal_json(p: Proposal) -> dict[str, Any]:
    return {
        "id": p.id, "model": p.model, "state": p.state.value, "kind": p.kind.value,
        "from_version": p.from_version, "to_version": p.to_version, "target_note": p.target_note,
        "requested_by": p.requested_by, "reason": p.reason, "severity": p.severity,
        "decision_reason": p.decision_reason, "required_approvals": p.required_approvals,
        "approvals": p.approvals, "dry_run": p.dry_run, "created_at": iso(p.created_at),
        "deadline_at": iso(p.deadline_at), "escalated": p.escalated, "decided_by": p.decided_by,
        "decided_at": iso(p.decided_at), "started_at": iso(p.started_at), "finished_at": iso(p.finished_at),
        "duration_s": p.duration_s, "result": p.result, "error": p.error, "summary": p.summary,
        "verification": p.verification, "undo_of": p.undo_of, "action": p.action.value,
    }


def audit_json(r: AuditRecord) -> dict[str, Any]:
    return {
        "id": r.id, "at": iso(r.at), "actor": r.actor, "action": r.action, "model": r.model,
        "proposal_id": r.proposal_id, "from_version": r.from_version, "to_version": r.to_version,
        "reason": r.reason, "inputs": r.inputs, "prev_hash": r.prev_hash, "hash": r.hash,
    }


def block_json(b: Block) -> dict[str, Any]:
    return {
        "version": b.version, "rolled_back_by": b.blocked_by, "rolled_back_at": iso(b.blocked_at),
        "reason": b.reason, "proposal_id": b.proposal_id, "active": b.active, "unblocked_by": b.unblocked_by,
        "unblocked_at": iso(b.unblocked_at), "unblock_reason": b.unblock_reason,
    }
