"""Races that must never execute a rollback twice: concurrent requests, double clicks, two approvers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bot.core.errors import Refused
from bot.core.proposal import State
from bot.core.requests import RollbackRequest
from tests.fakes.ports import FakeTarget
from tests.integration.test_rollback_service import deploy_history


def race(n: int, fn: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(n)

    def run(i: int) -> Any:
        barrier.wait()
        try:
            return fn(i)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_twenty_concurrent_rollback_requests_switch_once(container: Any, fake_target: FakeTarget) -> None:
    deploy_history(container)
    fake_target.delay = 0.2  # keep the winner inside the target while the others arrive
    results = race(20, lambda i: container.service.request_rollback(RollbackRequest(
        "fraud-detector", actor=f"cli:op{i}", reason="3 a.m. page", execute_now=True)))
    won = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Refused)]
    assert len(won) == 1 and won[0].state is State.SUCCEEDED
    assert len(refused) == 19, [r for r in results if isinstance(r, Exception) and not isinstance(r, Refused)]
    assert all(any(w in str(r) for w in ("already under way", "cooldown", "finished meanwhile")) for r in refused)
    assert len(fake_target.switches) == 1
    audit = container.store.audit_records(model="fraud-detector")
    assert sum(r.action == "rollback.succeeded" for r in audit) == 1
    assert sum(r.action == "rollback.refused" for r in audit) == 19


def test_two_approvers_clicking_at_once_execute_once(container: Any, fake_target: FakeTarget) -> None:
    deploy_history(container)
    fake_target.delay = 0.1
    p = container.service.request_rollback(RollbackRequest("fraud-detector", actor="alert:x", reason="r"))
    results = race(2, lambda i: container.service.approve(p.id, ["slack:U0LEAD", "slack:U0BOB"][i]))
    assert sum(r.executed for r in results if not isinstance(r, Exception)) == 1
    assert len(fake_target.switches) == 1
    assert container.store.get_proposal(p.id).state is State.SUCCEEDED


def test_the_same_click_ten_times_executes_once(container: Any, fake_target: FakeTarget) -> None:
    deploy_history(container)
    p = container.service.request_rollback(RollbackRequest("fraud-detector", actor="alert:x", reason="r"))
    results = race(10, lambda i: container.service.approve(p.id, "slack:U0LEAD"))
    assert not [r for r in results if isinstance(r, Exception)]
    assert sum(r.executed for r in results) == 1
    assert len(fake_target.switches) == 1
    approvals = [r for r in container.store.audit_records(proposal_id=p.id) if r.action == "approval.added"]
    assert len(approvals) == 1
