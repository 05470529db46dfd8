"""The proposal state machine: which state may follow which, and nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.core.errors import IllegalTransition


class State(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    EXECUTING = "executing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DENIED = "denied"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


TRANSITIONS: dict[State, frozenset[State]] = {
    State.PROPOSED: frozenset({State.APPROVED, State.DENIED, State.EXPIRED, State.CANCELLED}),
    State.APPROVED: frozenset({State.EXECUTING}),
    State.EXECUTING: frozenset({State.SUCCEEDED, State.FAILED}),
    State.SUCCEEDED: frozenset(),
    State.FAILED: frozenset(),
    State.DENIED: frozenset(),
    State.EXPIRED: frozenset(),
    State.CANCELLED: frozenset(),
}

OPEN_STATES: frozenset[State] = frozenset(s for s, nxt in TRANSITIONS.items() if nxt)
TERMINAL_STATES: frozenset[State] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


def can_transition(current: State, wanted: State) -> bool:
    return wanted in TRANSITIONS[current]


def states_that_may_become(wanted: State) -> frozenset[State]:
    """Every state ``wanted`` may follow: the condition of the compare-and-set that makes the change.

    Stores and use cases ask this instead of listing states, so the table above stays the one place that
    says which state may follow which.
    """
    return frozenset(s for s, nxt in TRANSITIONS.items() if wanted in nxt)


# What the executor still owes: proposals that may start executing, and those executing (a crash may have
# left them so) that may still finish.
EXECUTOR_STATES: frozenset[State] = (states_that_may_become(State.EXECUTING)
                                     | states_that_may_become(State.SUCCEEDED))
# How an executed rollback ends (succeeded or failed).
EXECUTED_STATES: frozenset[State] = TRANSITIONS[State.EXECUTING]
# How a proposal ends without anything being switched (denied, expired, cancelled).
CLOSED_UNRUN_STATES: frozenset[State] = TERMINAL_STATES - EXECUTED_STATES


def check_transition(proposal_id: int, current: State, wanted: State) -> None:
    """Raise IllegalTransition with both states named when ``wanted`` may not follow ``current``."""
    if not can_transition(current, wanted):
        raise IllegalTransition(proposal_id, current.value, wanted.value)


class ProposalAction(StrEnum):
    """What a proposal does to the model: replace the live version, or only stop a canary in progress.

    Aborting a canary leaves the stable version serving as it is (the canary gets 0 % of the traffic), so it
    is cheaper and safer than a rollback and the policy may let it happen automatically at a lower severity.
    """

    ROLLBACK = "rollback"
    ABORT_CANARY = "abort_canary"

    @property
    def words(self) -> str:
        return "abort canary" if self is ProposalAction.ABORT_CANARY else "roll back"


def action_inputs(action: ProposalAction) -> dict[str, str]:
    """The action as the audit names it; a plain rollback's rows stay as they always were."""
    return {} if action is ProposalAction.ROLLBACK else {"action": action.value}


class Kind(StrEnum):
    ALERT = "alert"  # opened by an alert
    MANUAL = "manual"  # asked for by a person (Slack or CLI)
    UNDO = "undo"  # rolls an earlier rollback forward again


@dataclass
class Proposal:
    """A read model of one proposal, as the store returns it."""

    id: int
    model: str
    from_version: str
    to_version: str
    state: State
    kind: Kind
    requested_by: str
    reason: str
    target_note: str
    severity: str
    decision_reason: str
    required_approvals: int
    dry_run: bool
    created_at: datetime
    deadline_at: datetime | None = None
    escalated: bool = False
    reminded: bool = False
    decided_by: str | None = None
    decided_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    result: str | None = None
    slack_channel: str | None = None
    slack_ts: str | None = None
    approvals: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    verification: str | None = None
    verify_at: datetime | None = None
    undo_of: int | None = None
    action: ProposalAction = ProposalAction.ROLLBACK

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def duration_s(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


@dataclass(frozen=True)
class ProposalChange:
    """The fields a proposal's write may set beside its state; None leaves a field as it is.

    Typed, so a misspelt field fails the type check instead of reaching SQL, and the in-memory store and the
    SQL store apply exactly the same set of fields.
    """

    decided_by: str | None = None
    decided_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: str | None = None
    error: str | None = None
    severity: str | None = None
    decision_reason: str | None = None
    deadline_at: datetime | None = None
    reminded: bool | None = None
    escalated: bool | None = None

    def values(self) -> dict[str, Any]:
        return _given(self)


@dataclass(frozen=True)
class ProposalExpect:
    """Compare-and-set conditions of ``update_open`` beyond "still open"; None does not check that field.

    A sweeper that runs twice escalates once (``escalated=False``); a raised severity applies only to the
    severity it was computed from.
    """

    state: State | None = None
    severity: str | None = None
    reminded: bool | None = None
    escalated: bool | None = None

    def values(self) -> dict[str, Any]:
        found = _given(self)
        if self.state is not None:
            found["state"] = self.state.value
        return found


def _given(fields_of: ProposalChange | ProposalExpect) -> dict[str, Any]:
    """The fields that were set (None means "leave" or "do not check")."""
    return {f.name: v for f in fields(fields_of) if (v := getattr(fields_of, f.name)) is not None}


NO_CHANGE = ProposalChange()  # a transition that writes only the state
NO_EXPECT = ProposalExpect()  # an update of any open proposal
