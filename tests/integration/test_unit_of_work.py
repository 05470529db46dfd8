"""The unit of work on SQLite and PostgreSQL: a decision commits whole or not at all, its audit rows chain
correctly however many it writes, and what waits for the commit (waking the executor) never runs before it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bot.core.audit import AuditEvent, verify_chain
from bot.core.clock import ManualClock
from bot.core.intake import AlertIntake
from bot.core.proposal import State
from bot.core.requests import RollbackRequest
from bot.core.service import RollbackService
from bot.store.db import make_engine
from bot.store.repository import SqlStore
from tests.conftest import make_policy
from tests.e2e.dbstate import database_url
from tests.fakes.memory_store import MemoryStore
from tests.fakes.ports import FakeTarget
from tests.unit.alert_builders import alert


@pytest.fixture(params=["sqlite", "postgres"])
def sql_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
              clock: ManualClock) -> Iterator[SqlStore]:
    engine = make_engine(database_url(request, tmp_path_factory))
    yield SqlStore(engine, clock)
    engine.dispose()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def any_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
              clock: ManualClock) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore(clock)
        return
    engine = make_engine(database_url(request, tmp_path_factory))
    yield SqlStore(engine, clock)
    engine.dispose()


def _service(store: Any, clock: ManualClock) -> RollbackService:
    service = RollbackService(store, make_policy(), {"fake": FakeTarget({"fraud-detector": "7"})}, clock)
    for version, stable in (("6", True), ("7", False)):
        service.deploy("fraud-detector", version, actor="api:ci", stable=stable)
    return service


class Boom(Exception):
    pass


def test_writes_inside_a_unit_are_seen_inside_it_and_the_after_commit_work_runs_once_after(
        any_store: Any, clock: ManualClock) -> None:
    service = _service(any_store, clock)
    seen_after: list[State] = []
    with any_store.atomic():
        p = service.request_rollback(RollbackRequest("fraud-detector", actor="slack:U0BOB", reason="errors"))
        assert any_store.get_proposal(p.id).state is State.PROPOSED  # its own write, before the commit
        assert any_store.in_unit_of_work()
        any_store.after_commit(lambda: seen_after.append(any_store.get_proposal(p.id).state))
        with any_store.atomic():  # an inner unit joins the outer one
            any_store.append_audit(AuditEvent("slack:U0BOB", "test.inner", model="fraud-detector"))
        assert seen_after == []
    assert seen_after == [State.PROPOSED] and not any_store.in_unit_of_work()
    ran: list[int] = []
    any_store.after_commit(lambda: ran.append(1))  # no unit open: at once
    assert ran == [1]


def test_a_unit_that_fails_half_way_leaves_nothing_and_runs_nothing_after(
        sql_store: SqlStore, clock: ManualClock) -> None:
    service = _service(sql_store, clock)
    audit_before = len(sql_store.audit_records())
    woken: list[str] = []
    with pytest.raises(Boom), sql_store.atomic():
        p = service.request_rollback(RollbackRequest("fraud-detector", actor="slack:U0BOB", reason="errors"))
        sql_store.after_commit(lambda: woken.append("executor"))
        assert sql_store.get_proposal(p.id).state is State.PROPOSED
        raise Boom
    assert woken == []
    assert sql_store.proposals(model="fraud-detector") == []
    assert len(sql_store.audit_records()) == audit_before
    assert sql_store.outbox_due() == []
    # the model is not left locked or half-written: the same request succeeds now
    again = service.request_rollback(RollbackRequest("fraud-detector", actor="slack:U0BOB", reason="errors"))
    assert again.state is State.PROPOSED
    assert verify_chain(sql_store.audit_records()) == []


def test_a_unit_writing_many_audit_rows_chains_them_in_order(sql_store: SqlStore, clock: ManualClock) -> None:
    _service(sql_store, clock)
    with sql_store.atomic():
        for n in range(5):
            sql_store.append_audit(AuditEvent("bot:test", f"test.row{n}", model="fraud-detector"))
    records = sql_store.audit_records()
    assert [r.action for r in records[-5:]] == [f"test.row{n}" for n in range(5)]
    assert [r.id for r in records] == list(range(1, len(records) + 1))
    assert verify_chain(records) == []
    assert sql_store.audit_head() == (records[-1].id, records[-1].hash)


class FailingAttach:
    """The SQL store, failing once where the decider attaches alerts to the proposal it just created."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.fail = True

    def attach_alerts(self, *args: Any, **kwargs: Any) -> int:
        if self.fail:
            self.fail = False
            raise Boom("the database went away mid-decision")
        return self.store.attach_alerts(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_a_decision_interrupted_half_way_is_decided_again_whole_and_once(
        sql_store: SqlStore, clock: ManualClock) -> None:
    """Before the unit of work, a failure after the proposal's INSERT left a proposal with no alerts and
    the alerts undecided; the retry then joined them to it. Now the retry starts from nothing."""
    store: Any = FailingAttach(sql_store)
    service = RollbackService(store, make_policy(), {"fake": FakeTarget({"fraud-detector": "7"})}, clock)
    for version, stable in (("6", True), ("7", False)):
        service.deploy("fraud-detector", version, actor="api:ci", stable=stable)
    intake = AlertIntake(service, store, clock)
    intake.record("alertmanager", [alert("w1", "warning")], clock.now())
    with pytest.raises(Boom):
        intake.decide("fraud-detector")
    assert sql_store.proposals(model="fraud-detector") == []
    assert [a.fingerprint for a in sql_store.pending_alerts("fraud-detector")] == ["w1"]
    decision = intake.decide("fraud-detector")
    [proposal] = sql_store.proposals(model="fraud-detector")
    assert decision.created == [proposal.id]
    assert [a.fingerprint for a in sql_store.alerts_for_proposal(proposal.id)] == ["w1"]
    assert sql_store.pending_alerts("fraud-detector") == []
    created = [r for r in sql_store.audit_records() if r.action == "proposal.created"]
    assert len(created) == 1
    assert verify_chain(sql_store.audit_records()) == []
