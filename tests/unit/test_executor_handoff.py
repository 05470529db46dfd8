"""An approval reaches the executor after its commit: straight into this process's pool where it runs one,
through the wake-up (and, across processes, NOTIFY) where it does not; never before the unit of work commits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.core.clock import ManualClock
from bot.core.proposal import Kind, Proposal, State
from bot.workers.executor import ExecutorWorker, WorkerQueue
from tests.fakes.memory_store import MemoryStore


def approved(proposal_id: int) -> Proposal:
    return Proposal(id=proposal_id, model="ranker", from_version="2", to_version="1", state=State.APPROVED,
                    kind=Kind.ALERT, requested_by="alertmanager", reason="error rate", target_note="",
                    severity="critical", decision_reason="critical", required_approvals=1, dry_run=False,
                    created_at=datetime(2026, 11, 2, tzinfo=UTC))


class Recorded:
    def __init__(self, accept: bool) -> None:
        self.accept = accept
        self.taken: list[int] = []
        self.woken = 0

    def take(self, proposal_id: int) -> bool:
        self.taken.append(proposal_id)
        return self.accept

    def wake(self) -> None:
        self.woken += 1


def test_the_approval_goes_to_the_pool_only_after_its_unit_commits() -> None:
    store = MemoryStore(ManualClock(datetime(2026, 11, 2, tzinfo=UTC)))
    seen = Recorded(accept=True)
    queue = WorkerQueue(store, seen.take, seen.wake)
    with store.atomic():
        queue.submit(approved(7), "bot")
        assert seen.taken == []  # not while the decision may still roll back
    assert seen.taken == [7]
    assert seen.woken == 0  # handed over: no wake-up, no read of the queue


def test_a_process_without_an_executor_wakes_instead() -> None:
    store = MemoryStore(ManualClock(datetime(2026, 11, 2, tzinfo=UTC)))
    seen = Recorded(accept=False)
    WorkerQueue(store, seen.take, seen.wake).submit(approved(7), "bot")
    assert seen.taken == [7]
    assert seen.woken == 1


def test_a_rolled_back_unit_hands_nothing_over() -> None:
    store = MemoryStore(ManualClock(datetime(2026, 11, 2, tzinfo=UTC)))
    seen = Recorded(accept=True)
    queue = WorkerQueue(store, seen.take, seen.wake)
    try:
        with store.atomic():
            queue.submit(approved(7), "bot")
            raise RuntimeError("the decision failed after the approval")
    except RuntimeError:
        pass
    assert seen.taken == []
    assert seen.woken == 0


class Pool:
    def __init__(self) -> None:
        self.submitted: list[Any] = []
        self.stopped = False

    def submit(self, fn: Any, *args: Any) -> None:
        if self.stopped:
            raise RuntimeError("cannot schedule new futures after shutdown")
        self.submitted.append(args)

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        self.stopped = True


def test_the_worker_takes_a_proposal_once_and_only_where_it_runs() -> None:
    store = MemoryStore(ManualClock(datetime(2026, 11, 2, tzinfo=UTC)))
    worker = ExecutorWorker(executor=None, store=store, owner="me", lease_s=15)  # type: ignore[arg-type]
    worker.pool.shutdown()
    pool = Pool()
    worker.pool = pool  # type: ignore[assignment]
    assert worker.take(7) is False  # no executor loop started in this process
    worker.accepting = True
    assert worker.take(7) is True
    assert worker.take(7) is True  # already running here: not submitted twice
    assert pool.submitted == [(7,)]
    worker.close()
    assert worker.take(8) is False
