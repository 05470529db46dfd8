"""`kill -9` of a real `serve` process in each state with a side effect in flight, then a restart, on
PostgreSQL: the rollback completes exactly once or fails naming the live version; no state blocks the model
longer than one executor lease (EXECUTOR_LEASE_SECONDS, 2 s here); no card is posted twice."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from bot.core.audit import AuditEvent, verify_chain
from bot.core.clock import SystemClock
from bot.core.proposal import ProposalChange, State
from bot.slack.notifier import CARD_EVENT_TYPE
from bot.store.db import make_engine
from bot.store.repository import SqlStore
from devkit.fake_api import FakeSlackApi
from tests.conftest import TABLES as ALL_TABLES
from tests.integration.alert_helpers import am_alert, am_body
from tests.integration.served import AUDIT_RING, Deployer, Serve, policy_text, serve_env, wait_until

TABLES = ", ".join(ALL_TABLES)


@pytest.fixture
def pg_url(pg_database: str) -> str:
    engine = create_engine(pg_database)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return pg_database


@pytest.fixture
def store(pg_url: str) -> Iterator[SqlStore]:
    engine = make_engine(pg_url)
    yield SqlStore(engine, SystemClock(), audit_keys=AUDIT_RING)  # the served bot's key
    engine.dispose()


@pytest.fixture
def world(tmp_path: Path, pg_url: str) -> Iterator[tuple[dict[str, str], FakeSlackApi, Deployer]]:
    with FakeSlackApi() as slack, Deployer({"fraud-detector": "7"}) as deployer:
        policy = tmp_path / "rollback.toml"
        policy.write_text(policy_text(deployer.url))
        yield serve_env(pg_url, slack.base_url, policy), slack, deployer
        deployer.release.set()


def deploy_versions(serve: Serve) -> None:
    for version, stable in (("5", True), ("6", True), ("7", False)):
        r = serve.post("/deployments", {"model": "fraud-detector", "version": version, "stable": stable,
                                        "deployed_by": "ci"})
        assert r.status_code == 201, r.text


def critical(serve: Serve, fingerprint: str = "crash01") -> None:
    r = serve.post("/alerts/alertmanager", am_body(am_alert("fraud-detector", fingerprint, severity="critical")))
    assert r.status_code == 202, r.text
    assert r.json()["stored"] == 1


def only_proposal(store: SqlStore) -> Any:
    found = store.proposals(model="fraud-detector")
    return found[0] if len(found) == 1 else None


def finished(store: SqlStore, proposal_id: int) -> Any:
    p = store.get_proposal(proposal_id)
    return p if p.state in (State.SUCCEEDED, State.FAILED) else None


def cards(slack: FakeSlackApi, proposal_id: int) -> list[dict[str, Any]]:
    return [m for m in slack.messages("C0ALERTS") if not m.get("thread_ts")
            and (m.get("metadata") or {}).get("event_type") == CARD_EVENT_TYPE
            and (m.get("metadata") or {}).get("event_payload", {}).get("proposal_id") == proposal_id]


def test_kill_mid_switch_after_the_target_switched_completes_without_switching_again(
        tmp_path: Path, world: Any, store: SqlStore) -> None:
    env, slack, deployer = world
    first = Serve(env, tmp_path).start()
    try:
        deploy_versions(first)
        deployer.hold, deployer.apply_first = True, True
        critical(first)
        wait_until(deployer.arrived.is_set, 20, "the switch to reach the deployer")
        first.kill9()
    finally:
        first.stop()
    p = only_proposal(store)
    assert p.state is State.EXECUTING
    deployer.hold = False
    second = Serve(env, tmp_path).start()
    up_at = time.monotonic()
    try:
        done = wait_until(lambda: finished(store, p.id), 20, "the restarted executor to finish")
        assert time.monotonic() - up_at < 10  # within one lease (2 s) and a poll of the restart, not 30 minutes
        assert done.state is State.SUCCEEDED, done.error
        assert "completed before the bot restarted" in (done.result or "")
        assert len(deployer.posts) == 1  # switched once
        assert deployer.live["fraud-detector"] == "6"
        records = store.audit_records()
        assert verify_chain(records, AUDIT_RING) == []
        assert [r.action for r in records if r.proposal_id == p.id].count("rollback.succeeded") == 1
        wait_until(lambda: cards(slack, p.id), 20, "the card")
    finally:
        second.stop()


def test_kill_mid_switch_before_the_target_switched_switches_once_after_restart(
        tmp_path: Path, world: Any, store: SqlStore) -> None:
    env, _slack, deployer = world
    first = Serve(env, tmp_path).start()
    try:
        deploy_versions(first)
        deployer.hold, deployer.apply_first = True, False  # the request is in flight; nothing applied yet
        critical(first)
        wait_until(deployer.arrived.is_set, 20, "the switch to reach the deployer")
        first.kill9()
    finally:
        first.stop()
    p = only_proposal(store)
    assert p.state is State.EXECUTING and deployer.live["fraud-detector"] == "7"
    deployer.hold = False
    second = Serve(env, tmp_path).start()
    try:
        done = wait_until(lambda: finished(store, p.id), 20, "the restarted executor to finish")
        assert done.state is State.SUCCEEDED, done.error
        assert "resumed after the bot restarted" in (done.result or "")
        assert deployer.live["fraud-detector"] == "6"
        assert verify_chain(store.audit_records(), AUDIT_RING) == []
    finally:
        second.stop()


def test_kill_after_approval_before_execution_is_finished_by_the_next_process(
        tmp_path: Path, world: Any, store: SqlStore) -> None:
    env, _slack, deployer = world
    first = Serve(env, tmp_path).start()
    try:
        deploy_versions(first)
    finally:
        first.kill9()
    # The state a crash between "approved" and the executor's claim leaves behind, written as the process
    # would have written it (the approval and its audit row in one transaction).
    from bot.core.ports import NewProposal
    from bot.core.proposal import Kind

    p = store.create_proposal(NewProposal(
        model="fraud-detector", from_version="7", to_version="6", kind=Kind.MANUAL, requested_by="slack:U0BOB",
        reason="error rate", target_note="", severity="manual", decision_reason="asked", required_approvals=1,
        dry_run=False, deadline_at=None, summary={}), AuditEvent(actor="slack:U0BOB", action="proposal.created"))
    store.transition(p.id, State.APPROVED,
                     AuditEvent(actor="slack:U0LEAD", action="proposal.approved", reason="1 approval(s)"),
                     change=ProposalChange(decided_by="slack:U0LEAD"))
    second = Serve(env, tmp_path).start()
    try:
        done = wait_until(lambda: finished(store, p.id), 20, "the executor to pick up the approved proposal")
        assert done.state is State.SUCCEEDED and len(deployer.posts) == 1
        assert verify_chain(store.audit_records(), AUDIT_RING) == []
    finally:
        second.stop()


def test_kill_while_the_card_is_being_posted_never_posts_it_twice(
        tmp_path: Path, world: Any, store: SqlStore) -> None:
    env, slack, _deployer = world
    first = Serve(env, tmp_path).start()
    try:
        deploy_versions(first)
        slack.lose_answer("chat.postMessage")  # the card lands in Slack, but the bot gets a 500 back
        critical(first)
        p = wait_until(lambda: only_proposal(store), 20, "the proposal")
        wait_until(lambda: finished(store, p.id), 20, "the rollback (Slack failing delays only the card)")
        wait_until(lambda: cards(slack, p.id), 20, "the post to land in Slack")
        first.kill9()  # Slack has the card; the database does not know its ts
    finally:
        first.stop()
    second = Serve(env, tmp_path).start()
    try:
        wait_until(lambda: store.outbox_counts()["pending"] == 0, 30, "the outbox to drain")
        assert len(cards(slack, p.id)) == 1  # found by its metadata, updated in place, not posted again
        assert store.get_proposal(p.id).slack_ts == cards(slack, p.id)[0]["ts"]
        assert any("Done" in str(m.get("text")) for m in slack.replies("C0ALERTS", cards(slack, p.id)[0]["ts"]))
    finally:
        second.stop()


# ---- the worker process (WORKER_MODE=auto: a process of its own on PostgreSQL) ----------------------------


def children(pid: int) -> list[int]:
    listed = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in listed.read_text().split()] if listed.exists() else []


def gone(pid: int) -> bool:
    """Exited (a zombie nobody reaped yet counts: it runs nothing and holds nothing)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def family(serve: Serve) -> tuple[int, int]:
    """The worker process (serve's child) and the Slack process (the worker process's child)."""
    [worker] = children(serve.proc.pid if serve.proc else 0)
    [sender] = wait_until(lambda: children(worker), 10, "the Slack process, forked by the worker process")
    return worker, sender


def test_on_postgresql_the_workers_run_in_their_own_process_and_die_with_serve(
        tmp_path: Path, world: Any, store: SqlStore) -> None:
    env, slack, deployer = world
    serve = Serve(env, tmp_path).start()
    try:
        worker, sender = family(serve)
        assert f'workers="process {worker}"' in serve.log.read_text()
        deploy_versions(serve)
        critical(serve)
        p = wait_until(lambda: only_proposal(store), 20, "the proposal")
        done = wait_until(lambda: finished(store, p.id), 20, "the rollback, switched by the worker process")
        assert done.state is State.SUCCEEDED and [b["to_version"] for b in deployer.posts] == ["6"]
        wait_until(lambda: cards(slack, p.id), 20, "the card, posted by the Slack process")
        assert f'slack="process {sender}"' in serve.log.read_text()
        serve.kill9()  # the request process only: its worker process and the Slack process must not outlive it
        wait_until(lambda: gone(worker) and gone(sender), 10, "the worker and Slack processes to exit with serve")
    finally:
        serve.stop()


@pytest.mark.parametrize(("killed", "said"), [
    ("worker", ["serve.workers_exited code=-9"]),
    ("slack", ["workers.sender_exited code=-9", "serve.workers_exited code=1"]),  # the workers stop, then serve
])
def test_when_a_child_process_dies_serve_stops_so_that_its_supervisor_restarts_all_three(
        tmp_path: Path, world: Any, killed: str, said: list[str]) -> None:
    env, _slack, _deployer = world
    serve = Serve(env, tmp_path).start()
    try:
        assert serve.proc is not None
        worker, sender = family(serve)
        os.kill(worker if killed == "worker" else sender, signal.SIGKILL)
        assert serve.proc.wait(30) == 1
        wait_until(lambda: gone(worker) and gone(sender), 10, "the worker and Slack processes to be gone")
        log = serve.log.read_text()
        assert all(line in log for line in said) and "serve.stopped" in log, log
    finally:
        serve.stop()


def test_a_stop_stops_the_workers_first_and_says_so(tmp_path: Path, world: Any) -> None:
    env, _slack, _deployer = world
    serve = Serve(env, tmp_path).start()
    assert serve.proc is not None
    worker, sender = family(serve)
    serve.stop()  # SIGTERM, as Kubernetes sends it
    assert serve.proc.returncode == 0 and gone(worker) and gone(sender)
    log = serve.log.read_text()
    assert log.index(f"sender.stopped pid={sender}") < log.index(f"workers.stopped pid={worker}")
    assert log.index(f"workers.stopped pid={worker}") < log.index("serve.stopped")
