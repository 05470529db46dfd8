"""One scenario through the core against the in-memory store, SQLite and PostgreSQL: the same outcomes,
proposals, switches and audit actions, so the fake the unit tests use behaves as the real stores do."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from bot.core.audit import AuditEvent
from bot.core.blocking import Override, VersionBlocked
from bot.core.clock import ManualClock
from bot.core.events import AuditAction
from bot.core.intake import AlertIntake
from bot.core.proposal import State
from bot.core.requests import RollbackRequest
from bot.core.service import RollbackService
from bot.store.db import make_engine
from bot.store.migrate import upgrade
from bot.store.repository import SqlStore
from tests.conftest import make_policy
from tests.fakes.memory_store import MemoryStore
from tests.fakes.ports import FakeTarget, RecordingNotifier
from tests.integration.test_crash_recovery import TABLES
from tests.unit.alert_builders import alert


def _deploy_refused(service: RollbackService, version: str) -> bool:
    try:
        service.deploy("fraud-detector", version, actor="api:ci")
    except VersionBlocked:
        return True
    return False


def exercise(store: Any, clock: ManualClock) -> dict[str, Any]:
    target = FakeTarget({"fraud-detector": "7"})
    notifier = RecordingNotifier()
    service = RollbackService(store, make_policy(), {"fake": target}, clock, notifier=notifier)
    intake = AlertIntake(service, store, clock)
    for version, stable in (("5", True), ("6", True), ("7", False)):
        service.deploy("fraud-detector", version, actor="api:ci", stable=stable)
    outcomes: list[tuple[str, ...]] = []

    def send(*alerts: Any) -> None:
        result, ids = intake.record("alertmanager", list(alerts), clock.now())
        for model in intake.models_to_decide(result):
            intake.merge(result, ids, intake.decide(model))
        outcomes.extend((a.fingerprint, a.outcome.value) for a in result.alerts)

    send(alert("w1", "warning"), alert("w2", "warning"))
    send(alert("w1", "warning"))  # a repeat
    send(alert("c1", "critical"))  # joins and turns the waiting proposal into an automatic rollback
    send(alert("w1", "warning", resolved=True))  # resolution after the rollback: the incident's timeline
    claims = [store.claim_lease("decide:x", "a", 10) is not None, store.claim_lease("decide:x", "b", 10) is not None]
    fencing = store.claim_lease("decide:x", "a", 10)
    store.release_lease("decide:x", "a", fencing)
    claims.append(store.claim_lease("decide:x", "b", 10) is not None)
    proposals = [store.get_proposal(i) for i in range(1, 2)]
    refused = _deploy_refused(service, "7")
    service.deploy("fraud-detector", "7", actor="api:ci", override=Override("fixed"))
    second = service.request_rollback(RollbackRequest("fraud-detector", actor="slack:U0BOB", reason="again"))
    service.deploy("fraud-detector", "8", actor="api:ci")  # supersedes the waiting one
    active = [(b.model, b.version) for b in store.active_blocks()]
    lifted = service.unblock("fraud-detector", "7", actor="slack:U0LEAD", reason="ok")
    return {
        "active": (active, store.active_blocks()),
        "blocks": [(b.version, b.blocked_by, b.proposal_id, b.unblocked_by) for b in store.blocks("fraud-detector")],
        "refused": refused,
        "lifted": (lifted.version, lifted.unblock_reason),
        "second": (store.get_proposal(second.id).state.value, store.get_proposal(second.id).result),
        "blocking_actions": [r.action for r in store.audit_records() if r.action in BLOCKING_ACTIONS],
        "outcomes": outcomes,
        "proposals": [(p.state.value, p.from_version, p.to_version, p.decided_by) for p in proposals],
        "switches": [s.to_version for s in target.switches],
        "attached": sorted(a.fingerprint for a in store.alerts_for_proposal(1)),
        "actions": [r.action for r in store.audit_records(proposal_id=1)],
        "history": [d.version for d in store.history("fraud-detector")],
        "notified": notifier.names(),
        "claims": claims,
    }


BLOCKING_ACTIONS = {"deployment.blocked", "deployment.refused_blocked", "deployment.override", "proposal.superseded",
                    "version.unblocked"}
EXPECTED = {
    "active": ([("fraud-detector", "7")], []),
    "blocks": [("7", "bot:policy", 1, "slack:U0LEAD")],
    "refused": True,
    "lifted": ("7", "ok"),
    "second": ("cancelled", "superseded by the deployment of version 8 by api:ci"),
    "blocking_actions": ["deployment.blocked", "deployment.refused_blocked", "deployment.override",
                         "proposal.superseded", "version.unblocked"],
    "outcomes": [("w1", "proposed"), ("w2", "proposed"), ("w1", "duplicate"), ("c1", "executed"), ("w1", "resolved")],
    "proposals": [("succeeded", "7", "6", "bot:policy")],
    "switches": ["6"],
    "attached": ["c1", "w1", "w2"],
    "actions": ["proposal.created", "proposal.alerts_joined", "proposal.alerts_joined", "proposal.approved",
                "rollback.executing", "rollback.succeeded", "deployment.blocked", "alert.resolved",
                "deployment.refused_blocked", "deployment.override", "version.unblocked"],
    "history": ["5", "6", "7", "6", "7", "8"],
    "notified": ["created", "alerts", "executing", "succeeded", "timeline", "override", "created", "superseded"],
    "claims": [True, False, True],
}


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Any, clock: ManualClock) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore(clock)
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'contract.db'}"
        upgrade(url)
    else:
        url = request.getfixturevalue("pg_database")
        admin = create_engine(url)
        with admin.begin() as conn:
            conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
        admin.dispose()
    engine = make_engine(url)
    yield SqlStore(engine, clock)
    engine.dispose()


def test_the_same_scenario_gives_the_same_result_on_every_store(store: Any, clock: ManualClock) -> None:
    assert exercise(store, clock) == EXPECTED


def test_a_transition_the_table_forbids_changes_nothing_on_every_store(store: Any, clock: ManualClock) -> None:
    """The store's compare-and-set takes its allowed states from TRANSITIONS: a proposal already approved
    cannot be denied, expired or approved again, and no audit row is written for the attempt."""
    service = RollbackService(store, make_policy(), {"fake": FakeTarget({"fraud-detector": "7"})}, clock)
    for version, stable in (("6", True), ("7", False)):
        service.deploy("fraud-detector", version, actor="api:ci", stable=stable)
    p = service.request_rollback(RollbackRequest("fraud-detector", actor="slack:U0BOB", reason="errors"))
    assert store.transition(p.id, State.APPROVED, AuditEvent("slack:U0LEAD", AuditAction.PROPOSAL_APPROVED))
    before = len(store.audit_records(proposal_id=p.id))
    for wanted in (State.APPROVED, State.DENIED, State.EXPIRED, State.SUCCEEDED, State.PROPOSED):
        assert store.transition(p.id, wanted, AuditEvent("slack:U0LEAD", "t")) is None
    assert store.get_proposal(p.id).state is State.APPROVED
    assert len(store.audit_records(proposal_id=p.id)) == before


def test_clock_is_the_test_clock(clock: ManualClock) -> None:
    assert clock.now() == datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def test_requests_written_in_one_shared_transaction_answer_as_if_written_one_by_one(
        store: Any, clock: ManualClock) -> None:
    """The inbox's group commit: a repeat of an earlier request of the same transaction is a duplicate, a
    resolution of it resolves it, and every request keeps its own answer and alert ids."""
    service = RollbackService(store, make_policy(), {"fake": FakeTarget({"fraud-detector": "7"})}, clock)
    intake = AlertIntake(service, store, clock)
    now = clock.now()
    batches = [intake.batch("alertmanager", [alert("a", "warning"), alert("b", "warning")], now),
               intake.batch("alertmanager", [alert("a", "warning")], now),
               intake.batch("alertmanager", [alert("b", "warning", resolved=True), alert("c", "warning")], now),
               intake.batch("grafana", [alert("a", "warning")], now),
               intake.batch("alertmanager", [alert("zz", "warning", model="unknown-model")], now)]
    answers = intake.record_many(batches)
    outcomes = [[(a.fingerprint, a.outcome.value) for a in result.alerts] for result, _ in answers]
    assert outcomes == [[("a", "stored"), ("b", "stored")], [("a", "duplicate")],
                        [("b", "resolved"), ("c", "stored")], [("a", "stored")], [("zz", "ignored")]]
    ids = [alert_ids for _, alert_ids in answers]
    assert ids[1] == [ids[0][0]] and ids[2][0] == ids[0][1]  # the same rows, not new ones
    assert len({ids[0][0], ids[0][1], ids[2][1], ids[3][0], ids[4][0]}) == 5
    # the same alerts again, each in its own transaction now: all duplicates of what the group stored
    again = intake.record_many([intake.batch("alertmanager", [alert("a", "warning"), alert("c", "warning")], now)])
    assert [a.outcome.value for a in again[0][0].alerts] == ["duplicate", "duplicate"]
