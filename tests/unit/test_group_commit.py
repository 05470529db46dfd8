"""The inbox's group commit: requests waiting together share one write, and no error costs another its answer."""

from __future__ import annotations

import asyncio
import threading

import pytest

from bot.web.group_commit import GroupCommit


class Writes:
    """A write function that records its groups; the first group waits until released (so others queue)."""

    def __init__(self, fail: set[str] | None = None, outage: bool = False) -> None:
        self.groups: list[list[str]] = []
        self.fail = fail or set()
        self.outage = outage
        self.first_started = threading.Event()
        self.release = threading.Event()

    def __call__(self, items: list[str]) -> list[str]:
        if not self.groups:
            self.first_started.set()
            self.release.wait(5)
        self.groups.append(list(items))
        if self.outage:
            raise ConnectionError("database away")
        if self.fail & set(items):
            raise ValueError(f"bad item among {items}")
        return [f"stored {item}" for item in items]


async def send_while_first_is_writing(commit: GroupCommit[str, str], writes: Writes,
                                      items: list[str]) -> list[str | BaseException]:
    first = asyncio.ensure_future(commit.submit("first"))
    await asyncio.to_thread(writes.first_started.wait, 5)
    rest = [asyncio.ensure_future(commit.submit(item)) for item in items]
    await asyncio.sleep(0)  # let every submit reach the queue before the writer is released
    writes.release.set()
    return list(await asyncio.gather(first, *rest, return_exceptions=True))


def test_requests_that_wait_together_share_one_write_and_get_their_own_result() -> None:
    writes = Writes()
    commit = GroupCommit(writes, retry_alone=lambda exc: True)
    try:
        answers = asyncio.run(send_while_first_is_writing(commit, writes, ["a", "b", "c"]))
    finally:
        commit.close()
    assert answers == ["stored first", "stored a", "stored b", "stored c"]
    assert writes.groups == [["first"], ["a", "b", "c"]]
    assert commit.groups == 2


def test_one_bad_item_fails_alone_and_the_others_are_written_again_each_on_its_own() -> None:
    writes = Writes(fail={"b"})
    commit = GroupCommit(writes, retry_alone=lambda exc: isinstance(exc, ValueError))
    try:
        answers = asyncio.run(send_while_first_is_writing(commit, writes, ["a", "b", "c"]))
    finally:
        commit.close()
    assert answers[:2] == ["stored first", "stored a"] and answers[3] == "stored c"
    assert isinstance(answers[2], ValueError) and "['b']" in str(answers[2])
    assert writes.groups == [["first"], ["a", "b", "c"], ["a"], ["b"], ["c"]]


def test_an_outage_fails_the_whole_group_at_once_without_retrying_each() -> None:
    writes = Writes(outage=True)
    commit = GroupCommit(writes, retry_alone=lambda exc: not isinstance(exc, ConnectionError))
    try:
        answers = asyncio.run(send_while_first_is_writing(commit, writes, ["a", "b"]))
    finally:
        commit.close()
    assert all(isinstance(a, ConnectionError) for a in answers)
    assert writes.groups == [["first"], ["a", "b"]]


def test_groups_are_bounded() -> None:
    writes = Writes()
    commit = GroupCommit(writes, retry_alone=lambda exc: True, max_items=2)
    try:
        answers = asyncio.run(send_while_first_is_writing(commit, writes, ["a", "b", "c", "d", "e"]))
    finally:
        commit.close()
    assert len(answers) == 6 and all(isinstance(a, str) for a in answers)
    assert writes.groups == [["first"], ["a", "b"], ["c", "d"], ["e"]]


@pytest.mark.parametrize("items", [["x"], []])
def test_close_stops_the_writer_after_what_is_queued(items: list[str]) -> None:
    writes = Writes()
    writes.release.set()
    commit = GroupCommit(writes, retry_alone=lambda exc: True)

    async def send() -> list[str]:
        return [await commit.submit(item) for item in items]

    assert asyncio.run(send()) == [f"stored {i}" for i in items]
    commit.close()
    commit.close()  # twice is harmless


def test_a_request_answered_before_its_turn_is_not_written_late() -> None:
    writes = Writes()
    commit = GroupCommit(writes, retry_alone=lambda exc: True)

    async def send() -> list[str | BaseException]:
        first = asyncio.ensure_future(commit.submit("first"))
        await asyncio.to_thread(writes.first_started.wait, 5)
        gone = asyncio.ensure_future(commit.submit("gone"))
        kept = asyncio.ensure_future(commit.submit("kept"))
        await asyncio.sleep(0)
        gone.cancel()  # what the request deadline does to a request still waiting
        writes.release.set()
        return list(await asyncio.gather(first, kept, return_exceptions=True))

    try:
        assert asyncio.run(send()) == ["stored first", "stored kept"]
    finally:
        commit.close()
    assert writes.groups == [["first"], ["kept"]]
