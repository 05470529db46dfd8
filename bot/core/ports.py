"""The Protocols the core needs from the outside world, all in this one module. Adapters implement them; tests
have fakes (tests/fakes/). A target's optional abilities are small ``runtime_checkable`` Protocols too, so
callers ask ``isinstance(target, Checkable)`` instead of probing attributes by name.

The data types a use case owns (alert records, report facts, metric series) stay beside their use case and are
imported here for the type checker only: this module is imported by every use case and must not import them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from bot.core.audit import AuditEvent
from bot.core.events import CardEvent
from bot.core.policy import ModelPolicy, ModelState
from bot.core.proposal import (
    NO_CHANGE,
    NO_EXPECT,
    Kind,
    Proposal,
    ProposalAction,
    ProposalChange,
    ProposalExpect,
    State,
)
from bot.core.selection import Block, Deployment

if TYPE_CHECKING:
    from bot.core.intake import AlertBatch, AlertRecord, Stored
    from bot.core.metrics import MetricLine, Series
    from bot.core.report import AlertFacts, AuditFacts, DecisionFacts, DeploymentFacts


@dataclass(frozen=True)
class SwitchRequest:
    model: str
    from_version: str
    to_version: str
    proposal_id: int
    reason: str
    settings: Mapping[str, Any]


@dataclass(frozen=True)
class SwitchResult:
    """What the target did, in words for the card and the audit (no secrets)."""

    detail: str
    served_version: str | None = None


@runtime_checkable
class DeploymentTarget(Protocol):
    """Where a model's live version is switched. Raise core.errors.TargetError on failure."""

    name: str

    def current_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
        """The version the system says is live, or None when it cannot tell."""
        ...

    def switch(self, request: SwitchRequest) -> SwitchResult:
        """Make ``to_version`` live; return only when the switch has happened (or raise)."""
        ...

    def served_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
        """The version actually serving traffic, where the system can tell; else None."""
        ...

    def describe(self, request: SwitchRequest) -> str:
        """What switch() would call, for dry-run; calls nothing."""
        ...


@dataclass(frozen=True)
class TrafficSplit:
    """A canary in progress as the target reports it: which version takes which share of the traffic."""

    stable_version: str | None  # None: the target cannot tell which version the stable side runs
    canary_version: str | None
    canary_percent: int
    step: str | None = None  # where the canary is in its plan ("step 1 of 8"), when the target says

    @property
    def stable_percent(self) -> int:
        return 100 - self.canary_percent

    def aborted(self) -> TrafficSplit:
        """The split an abort leaves: the stable side takes everything, the canary nothing."""
        return TrafficSplit(self.stable_version, self.canary_version, 0, "aborted")

    def as_dict(self) -> dict[str, Any]:
        return {"stable_version": self.stable_version, "stable_percent": self.stable_percent,
                "canary_version": self.canary_version, "canary_percent": self.canary_percent, "step": self.step}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TrafficSplit:
        return cls(raw.get("stable_version"), raw.get("canary_version"), int(raw.get("canary_percent") or 0),
                   raw.get("step"))


@runtime_checkable
class ReportsCanary(Protocol):
    """An optional ability of a target: it can see a canary in progress and stop only the canary.

    Checked with ``isinstance`` so a target states the ability in its type instead of the core guessing
    from attribute names; targets without it are only ever rolled back.
    """

    def canary(self, model: str, settings: Mapping[str, Any]) -> TrafficSplit | None:
        """The canary in progress, or None when all traffic goes to one version."""
        ...

    def abort_canary(self, request: SwitchRequest) -> SwitchResult:
        """Give the canary 0 % of the traffic and leave the stable version untouched; return once it has."""
        ...

    def describe_abort(self, request: SwitchRequest) -> str:
        """What abort_canary() would call, for dry-run; calls nothing."""
        ...


@dataclass(frozen=True)
class NewProposal:
    model: str
    from_version: str
    to_version: str
    kind: Kind
    requested_by: str
    reason: str
    target_note: str
    severity: str
    decision_reason: str
    required_approvals: int
    dry_run: bool
    deadline_at: datetime | None
    summary: dict[str, Any]
    undo_of: int | None = None
    seen_last_rollback_at: datetime | None = None  # what the policy check saw; a change since means stale
    action: ProposalAction = ProposalAction.ROLLBACK


class OpenProposalExists(Exception):
    """Another proposal for this model is still open; carries it."""

    def __init__(self, model: str, existing: Proposal | None) -> None:
        super().__init__(model)
        self.model = model
        self.existing = existing


class StaleProposal(Exception):
    """The model changed between reading its history and writing the proposal (another rollback won)."""


@dataclass(frozen=True)
class Intent:
    """A card or thread message owed to people, written by the store in the state change's own transaction."""

    event: CardEvent
    detail: str | None = None


class Notifier(Protocol):
    """Tells people about a proposal (Slack in production). Must never raise into the core."""

    def changed(self, proposal: Proposal, event: CardEvent, detail: str | None = None) -> None: ...


class ApproverDirectory(Protocol):
    """Approver groups, answered by the chat system that owns them (Slack: user groups).

    The core never guesses from an id's shape which policy entries are groups: it asks here.
    """

    def is_group(self, approver: str) -> bool:
        """Does this entry of a policy's ``approvers`` name a group rather than one person?"""
        ...

    def is_member(self, user: str, group: str) -> bool:
        """Is this user in this group? Unknown groups and failed look-ups answer no (fail closed)."""
        ...


def tell(notifier: Notifier, proposal: Proposal | None, event: CardEvent, detail: str | None = None, *,
         written: bool = False) -> None:
    """After a state change: a notifier that reads the outbox (``written()``) is only woken when the store
    already wrote the intent in the change's transaction; any other notifier is told the event. Never raises."""
    if proposal is None:
        return
    try:
        if written and isinstance(notifier, ReadsOutbox):
            notifier.written()
        else:
            notifier.changed(proposal, event, detail)
    except Exception:  # the outbox row or the card re-sync covers it; never lose the state change
        import logging

        logging.getLogger(__name__).exception("notifying about proposal #%s (%s) failed", proposal.id, event)


@runtime_checkable
class ReadsOutbox(Protocol):
    """A notifier that sends what the store wrote to the outbox: after a change that carried its intent it is
    only woken, never told the event again (that would send the message twice)."""

    def written(self) -> None: ...


class NullNotifier:
    def changed(self, proposal: Proposal, event: CardEvent, detail: str | None = None) -> None:
        return None


class StaticDirectory:
    """A directory with fixed groups: tests, and deployments without Slack."""

    def __init__(self, groups: Mapping[str, set[str]] | None = None) -> None:
        self.groups = dict(groups or {})

    def is_group(self, approver: str) -> bool:
        return approver in self.groups

    def is_member(self, user: str, group: str) -> bool:
        return user in self.groups.get(group, set())


class UnitOfWork(Protocol):
    """Several store calls that commit together (a decision; a switch and its outcome), or not at all."""

    def atomic(self) -> AbstractContextManager[None]:
        """Every call of this thread inside the block shares one transaction; an inner block joins it."""
        ...
    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the open unit of work commits, never if it rolls back; at once outside one."""
        ...
    def in_unit_of_work(self) -> bool: ...


class ProposalReads(Protocol):
    def get_proposal(self, proposal_id: int) -> Proposal: ...
    def open_proposal(self, model: str) -> Proposal | None: ...


class ProposalWrites(ProposalReads, UnitOfWork, Protocol):
    """What execution needs: compare-and-set transitions and the completing write."""

    def transition(self, proposal_id: int, to_state: State, audit: AuditEvent, *, intent: Intent | None = None,
                   change: ProposalChange = NO_CHANGE) -> Proposal | None:
        """Compare-and-set from any state that may become ``to_state`` (``states_that_may_become``); None if
        the proposal was in none of them (another decision won)."""
        ...
    def complete_rollback(self, proposal_id: int, *, result: str, served: str | None,
                          verify_at: datetime | None, audit: AuditEvent,
                          deployed_by: str, intent: Intent | None = None) -> Proposal | None: ...


class Leases(Protocol):
    """Work claimed by one worker at a time across replicas (a row per lease, compare-and-set)."""

    def claim_lease(self, name: str, owner: str, seconds: float) -> int | None: ...
    def renew_lease(self, name: str, owner: str, fencing: int, seconds: float) -> bool: ...
    def release_lease(self, name: str, owner: str, fencing: int) -> None: ...


class Store(UnitOfWork, Protocol):
    """What the core needs from persistence; every mutating call is one transaction with its audit row (or
    a part of the caller's unit of work)."""

    def append_audit(self, event: AuditEvent) -> None: ...
    def model_state(self, model: str) -> ModelState: ...
    def history(self, model: str) -> list[Deployment]: ...
    def record_deployment(self, model: str, version: str, *, deployed_by: str | None, source: str | None,
                          metadata: dict[str, Any], stable: bool, set_served: bool,
                          audit: AuditEvent, also: Sequence[AuditEvent] = (),
                          announce: tuple[int, Intent] | None = None,
                          supersede: str | None = None, refuse_blocked: bool = False) -> Deployment:
        """``also``: more audit rows of the same change (an override); ``announce``: an outbox message on that
        proposal; ``supersede``: cancel the model's waiting proposals as superseded by this, each audited;
        ``refuse_blocked``: raise ``bot.core.blocking.VersionBlocked`` (writing nothing) if the version is
        blocked, checked under the model's lock so a rollback finishing meanwhile cannot slip past."""
        ...
    def blocks(self, model: str, version: str | None = None) -> list[Block]:
        """Every block of the model (or of one version), newest first, lifted ones included."""
        ...
    def active_blocks(self) -> list[Block]:
        """Every block not lifted, of every model, newest first: one read for the drift sweep."""
        ...
    def unblock(self, model: str, version: str, *, by: str, reason: str, audit: AuditEvent) -> Block | None:
        """Lift the active block (compare-and-set); None if there was none."""
        ...
    def set_freeze(self, model: str, until: datetime | None, reason: str | None, by: str | None,
                   audit: AuditEvent) -> None: ...
    def set_auto_blocked(self, model: str, reason: str | None, audit: AuditEvent) -> None: ...
    def mark_stable_due(self, due: dict[str, datetime], audit_actor: str) -> list[Deployment]: ...
    def current_deployments(self, models: Sequence[str]) -> list[Deployment]: ...
    def get_proposal(self, proposal_id: int) -> Proposal: ...
    def open_proposal(self, model: str) -> Proposal | None: ...
    def create_proposal(self, new: NewProposal, audit: AuditEvent, intent: Intent | None = None) -> Proposal: ...
    def transition(self, proposal_id: int, to_state: State, audit: AuditEvent, *, intent: Intent | None = None,
                   change: ProposalChange = NO_CHANGE) -> Proposal | None:
        """Compare-and-set from any state that may become ``to_state`` (``states_that_may_become``); None if
        the proposal was in none of them (another decision won)."""
        ...
    def update_open(self, proposal_id: int, audit: AuditEvent | None, expect: ProposalExpect = NO_EXPECT,
                    *, intent: Intent | None = None, change: ProposalChange) -> Proposal | None: ...
    def add_approval(self, proposal_id: int, user: str, audit: AuditEvent) -> tuple[bool, list[str]]: ...
    def record_denial(self, proposal_id: int, user: str, reason: str | None) -> None: ...
    def complete_rollback(self, proposal_id: int, *, result: str, served: str | None,
                          verify_at: datetime | None, audit: AuditEvent,
                          deployed_by: str, intent: Intent | None = None) -> Proposal | None: ...
    def due_deadlines(self, now: datetime) -> list[Proposal]: ...
    def proposals_to_execute(self, limit: int = 50) -> list[int]: ...
    def quiet_since(self, model: str, since: datetime, version: str | None = None) -> datetime | None:
        """Since when no alert of the model has fired (not before ``since``); None while one fires. With
        ``version``, alerts that name another version do not count (they are about a version not live)."""
        ...


# ---- time ---------------------------------------------------------------------------------------------------


class Clock(Protocol):
    def now(self) -> datetime: ...


# ---- a target's optional abilities (checked with isinstance) ------------------------------------------------


@runtime_checkable
class ValidatesSettings(Protocol):
    """A target that checks its ``[models.<model>.<target>]`` settings when the policy file loads."""

    def validate(self, settings: Mapping[str, Any]) -> list[str]: ...


@runtime_checkable
class Checkable(Protocol):
    """A target that can say whether it reaches its system (``rollback-bot check --connect``)."""

    def check_connection(self, model: str, settings: Mapping[str, Any]) -> str: ...


@runtime_checkable
class ReportsVersionMetrics(Protocol):
    """A target whose registry keeps each version's run metrics (MLflow), shown on the proposal card."""

    def version_metrics(self, model: str, version: str, settings: Mapping[str, Any]) -> dict[str, float]: ...


@runtime_checkable
class ReportsVersionRun(Protocol):
    """A target whose registry keeps each version's run (MLflow), kept in the audit for the report's diff."""

    def version_run(self, model: str, version: str, settings: Mapping[str, Any]) -> dict[str, Any]: ...


# ---- metrics --------------------------------------------------------------------------------------------------


@runtime_checkable
class MetricsSource(Protocol):
    """Where metric values come from. Raise ``MetricsError`` on failure, never return garbage."""

    def query(self, expr: str, at: datetime) -> float | None:
        """The expression's value at ``at`` (several series summed), or None when it has none."""
        ...

    def query_range(self, expr: str, start: datetime, end: datetime, step: timedelta) -> Series:
        """Points from ``start`` to ``end`` inclusive every ``step``; missing points are simply absent."""
        ...


class MetricSummaries(Protocol):
    """The metric lines of a model since a deployment (bot/insight.py over a MetricsSource)."""

    def summarise(self, policy: ModelPolicy, deployed_at: datetime | None,
                  exprs: Mapping[str, str]) -> list[MetricLine]: ...


Summarise = Callable[[ModelPolicy, Deployment | None, Mapping[str, str]], dict[str, Any]]
"""The proposal's ``summary`` at the time it is written: metric lines for the card and what verification reads
back later (``{}`` when the model has no metrics)."""


# ---- use-case stores and queues -------------------------------------------------------------------------------


class ApprovedQueue(Protocol):
    """Where approved proposals go: run now (CLI, tests) or handed to the executor worker (serve)."""

    def submit(self, approved: Proposal, actor: str) -> Proposal:
        """``approved`` as its approval wrote it; returns it as it stands after the hand-over."""
        ...


class VerificationStore(Store, Protocol):
    def due_verifications(self, now: datetime) -> list[Proposal]: ...
    def set_verification(self, proposal_id: int, text: str, audit: AuditEvent) -> bool: ...


@runtime_checkable
class ListsProposalAlerts(Protocol):
    """A store that keeps alerts (the alert store may not exist in every build): the card lists them."""

    def alerts_for_proposal(self, proposal_id: int) -> list[AlertRecord]: ...


class AlertStore(ListsProposalAlerts, UnitOfWork, Protocol):
    """What intake and the decider need from persistence, beyond what RollbackService already uses."""

    def store_batches(self, batches: Sequence[AlertBatch]) -> list[list[Stored]]:
        """Record several requests' batches (alert, model or None) in one transaction, in order: one result
        per input alert; all or none stored (the inbox's group commit).

        A resolution of an alert attached to a proposal writes an ``alert.resolved`` audit row for that
        proposal in the same transaction (the incident timeline) and puts the alert back in the inbox.
        """
        ...

    def attach_alerts(self, proposal_id: int, alert_ids: Sequence[int], audit: AuditEvent) -> int:
        """Attach still-unattached alerts to a proposal (bumping its card); how many were attached."""
        ...

    def pending_alerts(self, model: str) -> list[AlertRecord]:
        """The model's inbox: alerts the decider has not handled yet, in arrival order."""
        ...

    def mark_decided(self, outcomes: dict[int, tuple[str, str]]) -> None: ...
    def get_proposal(self, proposal_id: int) -> Proposal: ...
    def open_proposal(self, model: str) -> Proposal | None: ...
    def latest_proposal(self, model: str) -> Proposal | None: ...
    def update_open(self, proposal_id: int, audit: AuditEvent | None, expect: ProposalExpect = NO_EXPECT,
                    *, change: ProposalChange) -> Proposal | None: ...


class ReportSource(Protocol):
    """What the report reads; ``bot/store/report_queries.py`` implements it on the database."""

    def proposal(self, proposal_id: int) -> Proposal: ...
    def deployments(self, model: str) -> Sequence[DeploymentFacts]: ...
    def decisions(self, proposal_id: int) -> Sequence[DecisionFacts]: ...
    def alerts(self, proposal_id: int) -> Sequence[AlertFacts]: ...
    def audit(self, proposal_id: int) -> Sequence[AuditFacts]: ...
