import itertools
import re
from datetime import UTC, datetime

import pytest

from bot.core.errors import IllegalTransition
from bot.core.proposal import (
    CLOSED_UNRUN_STATES,
    EXECUTED_STATES,
    EXECUTOR_STATES,
    NO_CHANGE,
    OPEN_STATES,
    TERMINAL_STATES,
    ProposalChange,
    ProposalExpect,
    State,
    can_transition,
    check_transition,
    states_that_may_become,
)
from bot.store.tables import OPEN_STATES_SQL

LEGAL = {
    (State.PROPOSED, State.APPROVED),
    (State.PROPOSED, State.DENIED),
    (State.PROPOSED, State.EXPIRED),
    (State.PROPOSED, State.CANCELLED),
    (State.APPROVED, State.EXECUTING),
    (State.EXECUTING, State.SUCCEEDED),
    (State.EXECUTING, State.FAILED),
}


@pytest.mark.parametrize(("current", "wanted"), sorted(LEGAL))
def test_legal_transitions(current: State, wanted: State) -> None:
    assert can_transition(current, wanted)
    check_transition(1, current, wanted)


ILLEGAL = sorted(set(itertools.product(State, State)) - LEGAL)


@pytest.mark.parametrize(("current", "wanted"), ILLEGAL)
def test_every_other_transition_is_illegal_with_a_clear_message(current: State, wanted: State) -> None:
    assert not can_transition(current, wanted)
    with pytest.raises(IllegalTransition) as info:
        check_transition(7, current, wanted)
    assert str(info.value) == f"proposal #7 is {current.value}; it cannot become {wanted.value}"


@pytest.mark.parametrize("state", list(State))
def test_open_states_are_those_the_machine_can_leave_and_terminal_ones_the_rest(state: State) -> None:
    leaves = any(can_transition(state, other) for other in State)
    assert (state in OPEN_STATES) == leaves
    assert (state in TERMINAL_STATES) == (not leaves)


def test_open_and_terminal_states_partition_the_machine() -> None:
    assert OPEN_STATES.isdisjoint(TERMINAL_STATES)
    assert OPEN_STATES | TERMINAL_STATES == set(State)


@pytest.mark.parametrize("wanted", list(State))
def test_states_that_may_become_a_state_are_read_from_the_table(wanted: State) -> None:
    assert states_that_may_become(wanted) == {current for current, then in LEGAL if then is wanted}


def test_the_named_groups_of_states_follow_from_the_table() -> None:
    assert OPEN_STATES == {State.PROPOSED, State.APPROVED, State.EXECUTING}
    assert EXECUTOR_STATES == {State.APPROVED, State.EXECUTING}
    assert EXECUTED_STATES == {State.SUCCEEDED, State.FAILED}
    assert CLOSED_UNRUN_STATES == {State.DENIED, State.EXPIRED, State.CANCELLED}


def test_the_open_proposal_index_names_the_open_states() -> None:
    """The partial unique index is written in a migration as text; it must name exactly the open states."""
    assert set(re.findall(r"'(\w+)'", OPEN_STATES_SQL)) == {s.value for s in OPEN_STATES}


def test_a_change_writes_only_the_fields_it_names_and_false_is_a_value() -> None:
    at = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    change = ProposalChange(decided_by="slack:U0LEAD", decided_at=at, reminded=False)
    assert change.values() == {"decided_by": "slack:U0LEAD", "decided_at": at, "reminded": False}
    assert NO_CHANGE.values() == {}


def test_an_expectation_compares_the_state_by_its_stored_value() -> None:
    assert ProposalExpect(state=State.PROPOSED, severity="warning").values() == {"state": "proposed",
                                                                                 "severity": "warning"}
    assert ProposalExpect(escalated=False).values() == {"escalated": False}
