"""Audit events and the hash chain that makes edits and deletions visible."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEvent:
    """One thing that happened, as it will be written (append-only) to the audit table."""

    actor: str
    action: str
    model: str | None = None
    proposal_id: int | None = None
    from_version: str | None = None
    to_version: str | None = None
    reason: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    action: str
    model: str | None
    proposal_id: int | None
    from_version: str | None
    to_version: str | None
    reason: str | None
    inputs: dict[str, Any]
    prev_hash: str
    hash: str


def canonical_time(at: datetime) -> str:
    """Microsecond ISO time in UTC: the same string whichever database returned it."""
    if at.utcoffset() is not None:
        at = at.astimezone(UTC)
    return at.replace(tzinfo=None).isoformat(timespec="microseconds")


def chain_hash(prev_hash: str, at: datetime, event: AuditEvent) -> str:
    """SHA-256 over the previous hash and every field, in a canonical JSON form."""
    body = json.dumps(
        {
            "prev": prev_hash,
            "at": canonical_time(at),
            "actor": event.actor,
            "action": event.action,
            "model": event.model,
            "proposal_id": event.proposal_id,
            "from_version": event.from_version,
            "to_version": event.to_version,
            "reason": event.reason,
            "inputs": event.inputs,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class ChainProblem:
    row_id: int
    problem: str


def verify_chain(records: list[AuditRecord]) -> list[ChainProblem]:
    """Name every row whose content no longer matches its hash, and every gap left by a deletion."""
    problems: list[ChainProblem] = []
    prev = GENESIS
    prev_id = 0
    for rec in records:
        if rec.id != prev_id + 1:
            missing = (
                f"row {prev_id + 1}" if rec.id == prev_id + 2 else f"rows {prev_id + 1}-{rec.id - 1}"
            )
            problems.append(ChainProblem(rec.id, f"{missing} deleted before row {rec.id}"))
        event = AuditEvent(
            actor=rec.actor,
            action=rec.action,
            model=rec.model,
            proposal_id=rec.proposal_id,
            from_version=rec.from_version,
            to_version=rec.to_version,
            reason=rec.reason,
            inputs=rec.inputs,
        )
        expected = chain_hash(rec.prev_hash, rec.at, event)
        if expected != rec.hash:
            problems.append(ChainProblem(rec.id, f"row {rec.id} was edited: its content does not match its hash"))
        elif rec.prev_hash != prev:
            problems.append(
                ChainProblem(rec.id, f"row {rec.id} does not follow row {prev_id}: the chain is broken there")
            )
        prev = rec.hash
        prev_id = rec.id
    return problems
