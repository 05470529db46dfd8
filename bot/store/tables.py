"""SQLModel tables. Alembic migrations under migrations/ are the only way this schema reaches a database."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, ColumnElement, Index, MetaData, Table, Text, UniqueConstraint, text
from sqlalchemy.engine import Connection
from sqlmodel import Field, Session, SQLModel, col

from bot.core.proposal import State

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata = MetaData(naming_convention=NAMING_CONVENTION)
OPEN_STATES_SQL = "state IN ('proposed', 'approved', 'executing')"


class ModelRow(SQLModel, table=True):
    __tablename__ = "models"

    name: str = Field(primary_key=True, max_length=200)
    frozen_until: datetime | None = None
    frozen_reason: str | None = Field(default=None, sa_column=Column(Text))
    frozen_by: str | None = Field(default=None, max_length=200)
    last_rollback_at: datetime | None = None
    auto_blocked_reason: str | None = Field(default=None, sa_column=Column(Text))
    served_version: str | None = Field(default=None, max_length=200)  # the `local` target's registry
    created_at: datetime


class DeploymentRow(SQLModel, table=True):
    __tablename__ = "deployments"
    __table_args__ = (Index("ix_deployments_model_id", "model", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(foreign_key="models.name", max_length=200)
    version: str = Field(max_length=200)
    deployed_at: datetime
    deployed_by: str | None = Field(default=None, max_length=200)
    source: str | None = Field(default=None, max_length=200)
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column("metadata", JSON, nullable=False))
    stable_at: datetime | None = None
    rolled_back_at: datetime | None = None


ACTIVE_BLOCK_SQL = "unblocked_at IS NULL"


class BlockedVersionRow(SQLModel, table=True):
    """A version the bot rolled back, blocked from deployment for its model until an approver lifts it.

    Rows are never deleted: lifting fills in ``unblocked_*``, so the history of each version stays readable.
    """

    __tablename__ = "blocked_versions"
    __table_args__ = (
        # At most one active block per (model, version): a second rollback of the same version keeps the first.
        Index("uq_blocked_versions_active", "model", "version", unique=True,
              sqlite_where=text(ACTIVE_BLOCK_SQL), postgresql_where=text(ACTIVE_BLOCK_SQL)),
    )

    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(foreign_key="models.name", max_length=200)
    version: str = Field(max_length=200)
    blocked_at: datetime
    blocked_by: str = Field(max_length=200)
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    proposal_id: int | None = Field(default=None, foreign_key="proposals.id")
    unblocked_at: datetime | None = None
    unblocked_by: str | None = Field(default=None, max_length=200)
    unblock_reason: str | None = Field(default=None, sa_column=Column(Text))


class AlertRow(SQLModel, table=True):
    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("source", "fingerprint", "starts_at", name="uq_alerts_identity"),
        Index("ix_alerts_model_status", "model", "status"),
        Index("ix_alerts_proposal_id", "proposal_id"),
        Index("ix_alerts_pending", "decided_at", "model", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=40)
    fingerprint: str = Field(max_length=200)
    starts_at: datetime
    ends_at: datetime | None = None
    status: str = Field(max_length=20)
    name: str = Field(max_length=500)
    model: str | None = Field(default=None, max_length=200)
    severity: str = Field(max_length=20)
    labels: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    annotations: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    links: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    values: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    proposal_id: int | None = Field(default=None, foreign_key="proposals.id")
    received_at: datetime
    resolved_at: datetime | None = None
    # The inbox: NULL until the decider has looked at this row (set again to NULL when it resolves).
    decided_at: datetime | None = None
    outcome: str | None = Field(default=None, max_length=20)
    outcome_reason: str | None = Field(default=None, sa_column=Column(Text))
    # The version the alert names (its source's version_label); NULL when it names none.
    version: str | None = Field(default=None, max_length=200)


class ProposalRow(SQLModel, table=True):
    __tablename__ = "proposals"
    __table_args__ = (
        # At most one open proposal per model: the database itself refuses a second concurrent rollback.
        Index(
            "uq_proposals_one_open_per_model",
            "model",
            unique=True,
            sqlite_where=text(OPEN_STATES_SQL),
            postgresql_where=text(OPEN_STATES_SQL),
        ),
        Index("ix_proposals_state_deadline", "state", "deadline_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(foreign_key="models.name", max_length=200)
    from_version: str = Field(max_length=200)
    to_version: str = Field(max_length=200)
    state: str = Field(max_length=20)
    kind: str = Field(max_length=20)
    requested_by: str = Field(max_length=200)
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    target_note: str = Field(default="", sa_column=Column(Text, nullable=False))
    severity: str = Field(max_length=20)
    decision_reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    required_approvals: int = 1
    dry_run: bool = False
    created_at: datetime
    updated_at: datetime
    deadline_at: datetime | None = None
    escalated: bool = False
    reminded: bool = False
    decided_by: str | None = Field(default=None, max_length=200)
    decided_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = Field(default=None, sa_column=Column(Text))
    result: str | None = Field(default=None, sa_column=Column(Text))
    slack_channel: str | None = Field(default=None, max_length=40)
    slack_ts: str | None = Field(default=None, max_length=40)
    card_version: int = 0  # bumped on every change the card must show
    card_synced: int = 0  # the card_version Slack last showed
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    verify_at: datetime | None = None
    verification: str | None = Field(default=None, sa_column=Column(Text))
    undo_of: int | None = Field(default=None, foreign_key="proposals.id")
    # rollback | abort_canary (bot.core.proposal.ProposalAction); rows older than the column read as rollback
    action: str = Field(default="rollback", max_length=20, sa_column_kwargs={"server_default": "rollback"})


class ApprovalRow(SQLModel, table=True):
    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("proposal_id", "user_id", name="uq_approvals_proposal_user"),)

    id: int | None = Field(default=None, primary_key=True)
    proposal_id: int = Field(foreign_key="proposals.id")
    user_id: str = Field(max_length=200)
    decision: str = Field(max_length=20)  # approve | deny
    reason: str | None = Field(default=None, sa_column=Column(Text))
    at: datetime


class AuditRow(SQLModel, table=True):
    """Append-only and hash-chained; ids are assigned in order under a lock, so a gap means a deletion."""

    __tablename__ = "audit"
    # (model, id): "a model's audit, in order" is read straight off the index with no sort.
    __table_args__ = (Index("ix_audit_model_at", "model", "at"), Index("ix_audit_model_id", "model", "id"))

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime
    actor: str = Field(max_length=200)
    action: str = Field(max_length=80)
    model: str | None = Field(default=None, max_length=200)
    proposal_id: int | None = None
    from_version: str | None = Field(default=None, max_length=200)
    to_version: str | None = Field(default=None, max_length=200)
    reason: str | None = Field(default=None, sa_column=Column(Text))
    inputs: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    key_id: str | None = Field(default=None, max_length=40)  # HMAC key that signed it; None: unkeyed SHA-256


class AuditHeadRow(SQLModel, table=True):
    """The newest audit row's id and hash, so deleting the newest rows is noticed too."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True, sa_column_kwargs={"autoincrement": False})
    last_id: int = 0
    last_hash: str = Field(max_length=64)


class SlackEventRow(SQLModel, table=True):
    """Slack event ids already handled, so a retried delivery does nothing twice."""

    __tablename__ = "slack_events"

    event_id: str = Field(primary_key=True, max_length=100)
    received_at: datetime


class LeaseRow(SQLModel, table=True):
    """Who works on what: ``decide:<model>`` or ``execute:<proposal id>``, until ``expires_at``.

    Claimed by compare-and-set (free, expired or already ours), renewed by a heartbeat, released when done; a
    replica that dies simply stops renewing, and its work is claimed again once the lease has expired.
    """

    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=200)
    owner: str | None = Field(default=None, max_length=100)
    expires_at: datetime | None = None
    fencing: int = 0  # bumped on every claim: a worker whose lease was taken over can tell


class SlackOutboxRow(SQLModel, table=True):
    """A card update or thread message the bot owes Slack, written with the state change that caused it."""

    __tablename__ = "slack_outbox"
    __table_args__ = (Index("ix_slack_outbox_pending", "done_at", "proposal_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    proposal_id: int = Field(foreign_key="proposals.id")
    event: str = Field(max_length=40)
    detail: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime
    attempts: int = 0
    next_at: datetime | None = None
    done_at: datetime | None = None
    error: str | None = Field(default=None, sa_column=Column(Text))
    permanent: bool = False


class SlackSignatureRow(SQLModel, table=True):
    """Signatures of Slack requests seen in the last minutes: the same signed request twice is a replay."""

    __tablename__ = "slack_signatures"
    __table_args__ = (Index("ix_slack_signatures_request_ts", "request_ts"),)

    signature: str = Field(primary_key=True, max_length=100)
    request_ts: int = Field(sa_column=Column(BigInteger, nullable=False))


class AuditNoticeRow(SQLModel, table=True):
    """A short message about unusual activity owed to the audit channel: one per (audit row, kind), ever.

    The unique key makes the notice idempotent: a replica that scans the same audit rows again, or a restart
    that re-reads them, inserts nothing new; delivery is then the same outbox loop as the cards'.
    """

    __tablename__ = "audit_notices"
    __table_args__ = (
        UniqueConstraint("audit_id", "kind", name="uq_audit_notices_audit_kind"),
        Index("ix_audit_notices_pending", "done_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    audit_id: int
    kind: str = Field(max_length=40)
    model: str | None = Field(default=None, max_length=200)
    channel: str = Field(max_length=40)
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime
    attempts: int = 0
    next_at: datetime | None = None
    done_at: datetime | None = None
    error: str | None = Field(default=None, sa_column=Column(Text))
    permanent: bool = False


class ChannelPostRow(SQLModel, table=True):
    """A message the bot owes a channel outside any proposal (a rollback drill's card and its thread)."""

    __tablename__ = "channel_posts"
    __table_args__ = (Index("ix_channel_posts_pending", "done_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)
    channel: str = Field(max_length=100)
    message: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    replies: list[str] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime
    attempts: int = 0
    replies_sent: int = 0
    ts: str | None = Field(default=None, max_length=40)  # the posted card, so a retry only sends the rest
    next_at: datetime | None = None
    done_at: datetime | None = None
    error: str | None = Field(default=None, sa_column=Column(Text))
    permanent: bool = False


class WatermarkRow(SQLModel, table=True):
    """How far a scanner has read an append-only table (the audit), so a restart continues where it stopped."""

    __tablename__ = "watermarks"

    name: str = Field(primary_key=True, max_length=100)
    position: int = 0


def table_of(model: type[SQLModel]) -> Table:
    """The Core table behind a SQLModel class, for the statements built once (bot/store/unit_of_work.py)."""
    return SQLModel.metadata.tables[str(model.__tablename__)]


def core(session: Session) -> Connection:
    """The session's connection, for a prebuilt Core statement, after what the session holds is written: a Core
    statement neither flushes the session first nor sees what it has not flushed (an approval just added, the
    proposal an outbox row belongs to)."""
    session.flush()
    return session.connection()


def state_in(states: Iterable[State]) -> ColumnElement[bool]:
    """SQL for "the proposal's state is one of ``states``" (sorted, so a statement reads the same every time).

    Callers pass a set derived from the TRANSITIONS table (``states_that_may_become``, ``OPEN_STATES``), never
    a hand-written list of states.
    """
    return col(ProposalRow.state).in_(sorted(s.value for s in states))
