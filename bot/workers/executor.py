"""The executor: approved proposals switched by a worker holding the proposal's lease, with a heartbeat.

A replica that dies mid-switch stops renewing; after ``EXECUTOR_LEASE_SECONDS`` (default 15) any replica
claims the lease and the core's Executor asks the target which version is live before doing anything. Each
proposal runs in its own pool thread, so a slow rollout wait blocks no other model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from bot.core.execution import Executor
from bot.core.ports import Leases, ProposalReads, UnitOfWork
from bot.core.proposal import Proposal, State
from bot.database_health import outage_failure
from bot.workers.leasing import InProcess, held, waited
from bot.workers.loop import EXECUTE, Loop, Signals

log = logging.getLogger(__name__)


class ExecutionQueue(Leases, ProposalReads, UnitOfWork, Protocol):
    def proposals_to_execute(self, limit: int = 50) -> list[int]: ...


def lease_name(proposal_id: int) -> str:
    return f"execute:{proposal_id}"


class ExecutorWorker:
    def __init__(self, executor: Executor, store: ExecutionQueue, owner: str, lease_s: float,
                 threads: int = 4) -> None:
        self.executor = executor
        self.store = store
        self.owner = owner
        self.lease_s = lease_s
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="executor")
        self.accepting = False  # this process runs the executor loop (``start``): approvals may be handed over
        self._running: InProcess[int] = InProcess()  # queued or running in this process's pool

    def start(self, poll_s: float, signals: Signals) -> Loop:
        """Run the executor loop in this process; from now on approvals committed here are handed straight over."""
        self.accepting = True
        return Loop(EXECUTE, self.tick, poll_s, signals).start()

    def tick(self) -> bool:
        for proposal_id in self.store.proposals_to_execute():
            self._submit(proposal_id)
        return False  # the pool threads do the work; nothing to re-run at once

    def take(self, proposal_id: int) -> bool:
        """An approval handed over after its commit: run it in a pool thread, unless this process runs no
        executor (False: its other replicas and the worker process hear the approval's NOTIFY instead)."""
        return self.accepting and self._submit(proposal_id)

    def _submit(self, proposal_id: int) -> bool:
        """Run ``proposal_id`` in a pool thread unless this process already does."""
        if not self._running.claim(proposal_id):
            return True
        try:
            self.pool.submit(self._run, proposal_id)
        except RuntimeError:  # the pool was shut down (the process is stopping): a later start's tick runs it
            self._running.release(proposal_id)
            return False
        return True

    def _run(self, proposal_id: int) -> None:
        try:
            with held(self.store, lease_name(proposal_id), self.owner, self.lease_s) as fencing:
                if fencing is not None:
                    self.executor.run(proposal_id)
        except Exception as exc:  # noqa: BLE001  the database is away: the lease expires, a later tick retries
            if not outage_failure(exc, f"executing proposal #{proposal_id}"):
                log.warning("executing proposal #%s: %s: %s", proposal_id, type(exc).__name__, str(exc)[:200])
        finally:
            self._running.release(proposal_id)

    def close(self) -> None:
        self.accepting = False
        self.pool.shutdown(wait=False, cancel_futures=True)


class WorkerQueue:
    """ApprovedQueue for `serve`: a click or an alert only records the approval; the executor takes it.

    After the approval commits (a decision's unit of work may still be open), the proposal goes straight to
    this process's executor pool when it runs one: no wake-up, no read of the queue, a few milliseconds off
    an automatic rollback. Elsewhere (the request process beside a worker process) the approval's NOTIFY
    reaches the executor. The proposal's lease keeps a replica that hears the NOTIFY too from running it twice."""

    def __init__(self, store: UnitOfWork, hand_off: Callable[[int], bool], wake: Callable[[], None]) -> None:
        self.store = store
        self.hand_off = hand_off
        self.wake = wake

    def submit(self, approved: Proposal, actor: str) -> Proposal:
        """No read back: the approval's own write is what the caller reports (the executor may be at it)."""
        def run() -> None:
            if not self.hand_off(approved.id):
                self.wake()

        self.store.after_commit(run)
        return approved


class LeasedRunNow:
    """ApprovedQueue for builds without workers (CLI, embedded, tests): run now, holding the same lease."""

    def __init__(self, executor: Executor, store: ExecutionQueue, owner: str, lease_s: float,
                 wait_s: float = 30.0) -> None:
        self.executor = executor
        self.store = store
        self.owner = owner
        self.lease_s = lease_s
        self.wait_s = wait_s

    def submit(self, approved: Proposal, actor: str) -> Proposal:
        """Runs after the approval commits: inside a decision's unit of work, once it has committed (the
        caller then reports the approval), never inside its transaction."""
        if self.store.in_unit_of_work():
            def later() -> None:
                self._run(approved, actor)

            self.store.after_commit(later)
            return approved
        return self._run(approved, actor)

    def _run(self, approved: Proposal, actor: str) -> Proposal:
        proposal_id = approved.id
        with waited(self.store, lease_name(proposal_id), self.owner, self.lease_s, self.wait_s) as fencing:
            if fencing is None:
                return self.store.get_proposal(proposal_id)
            proposal = self.store.get_proposal(proposal_id)
            if proposal.state not in (State.APPROVED, State.EXECUTING):
                return proposal
            return self.executor.run(proposal_id, actor)


__all__ = ["ExecutorWorker", "LeasedRunNow", "WorkerQueue", "lease_name"]
