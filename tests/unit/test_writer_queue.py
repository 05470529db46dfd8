"""SQLite's writers of one process: one at a time, a rollback's writes before the inbox's, and the inbox
never starved."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import nullcontext

from bot.store.writer_queue import WriterQueue


def until(condition: Callable[[], bool], what: str) -> None:
    """Poll a state the queue reports (no sleep stands in for an event here: the threads are observed)."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


def writer(queue: WriterQueue, order: list[str], name: str, *, inbox: bool = False,
           hold: threading.Event | None = None) -> threading.Thread:
    def run() -> None:
        if inbox:
            with queue.giving_way(), queue:
                order.append(name)
        else:
            with queue:
                order.append(name)
                if hold is not None:
                    assert hold.wait(10)

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread


def test_a_waiting_rollback_writes_before_the_inbox_that_asked_first() -> None:
    queue, release = WriterQueue(), threading.Event()
    order: list[str] = []
    first = writer(queue, order, "holder", hold=release)
    until(lambda: order == ["holder"], "the first writer")
    inbox = writer(queue, order, "inbox", inbox=True)
    until(lambda: queue.waiting() == (0, 1), "the inbox to queue")
    decider = writer(queue, order, "decider")
    until(lambda: queue.waiting() == (1, 1), "the decider to queue")
    release.set()
    for thread in (first, inbox, decider):
        thread.join(10)
    assert order == ["holder", "decider", "inbox"]


def test_the_inbox_waits_at_most_max_skips_turns_in_a_row() -> None:
    queue, release = WriterQueue(max_skips=2), threading.Event()
    order: list[str] = []
    threads = [writer(queue, order, "w0", hold=release)]
    until(lambda: order == ["w0"], "the first writer")
    threads.append(writer(queue, order, "inbox", inbox=True))
    until(lambda: queue.waiting() == (0, 1), "the inbox to queue")
    for i in (1, 2, 3):  # three more writers queue while the inbox waits
        threads.append(writer(queue, order, f"w{i}"))
        until(lambda i=i: queue.waiting() == (i, 1), f"writer {i} to queue")  # type: ignore[misc]
    release.set()
    for thread in threads:
        thread.join(10)
    assert len(order) == 5 and order[3] == "inbox"  # it gave way twice, then it was next


def test_one_writer_at_a_time() -> None:
    queue, inside, most = WriterQueue(), [0], [0]
    guard = threading.Lock()

    def run(inbox: bool) -> None:
        for _ in range(200):
            with queue.giving_way() if inbox else nullcontext(), queue:
                with guard:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                with guard:
                    inside[0] -= 1

    threads = [threading.Thread(target=run, args=(i % 2 == 0,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert most[0] == 1 and queue.waiting() == (0, 0)


def test_disabled_for_postgresql_it_queues_nobody() -> None:
    queue = WriterQueue(enabled=False)
    with queue, queue:  # not even reentrancy matters: row locks order PostgreSQL's writers
        assert queue.waiting() == (0, 0)

