"""Each Slack listener called directly, with fake ack/respond/client and the core on the in-memory store."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, cast

from slack_bolt.async_app import AsyncAck, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.actor import Actor
from bot.core.clock import ManualClock
from bot.core.proposal import State
from bot.core.requests import RollbackRequest
from bot.core.service import RollbackService
from bot.slack.commands import Command
from bot.slack.listeners import actions, commands, events, views
from bot.slack.listeners.deps import ListenerDeps
from tests.conftest import make_policy
from tests.fakes.memory_store import MemoryStore
from tests.fakes.ports import FakeTarget, RecordingNotifier

MODEL = "fraud-detector"


class Calls:
    """Stands in for ack, respond and say: records the keyword arguments of every call."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)

    @property
    def texts(self) -> list[str]:
        return [str(c.get("text")) for c in self.calls]


class FakeClient:
    def __init__(self) -> None:
        self.opened: list[dict[str, Any]] = []
        self.ephemeral: list[dict[str, Any]] = []

    async def views_open(self, **kwargs: Any) -> None:
        self.opened.append(kwargs)

    async def chat_postEphemeral(self, **kwargs: Any) -> None:
        self.ephemeral.append(kwargs)


class EventStore(MemoryStore):
    """The in-memory store plus the event-id ledger the listeners deduplicate with."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.seen: set[str] = set()

    def first_time_event(self, event_id: str) -> bool:
        first = event_id not in self.seen
        self.seen.add(event_id)
        return first


class FakeAnswers:
    def __init__(self) -> None:
        self.asked: list[tuple[Command, Actor]] = []

    def answer(self, command: Command, actor: Actor) -> str:
        self.asked.append((command, actor))
        return "the answer"

    def status(self, model: str | None) -> str:
        return "all quiet"


def world() -> tuple[ListenerDeps, EventStore, FakeAnswers, int]:
    clock = ManualClock(datetime(2026, 11, 2, 12, 0, tzinfo=UTC))
    store = EventStore(clock)
    service = RollbackService(store, make_policy(), {"fake": FakeTarget({MODEL: "7"})}, clock,
                              notifier=RecordingNotifier())
    for version, stable in (("6", True), ("7", False)):
        service.deploy(MODEL, version, actor="api:ci", stable=stable)
    proposal = service.request_rollback(RollbackRequest(MODEL, actor="alert:x", reason="errors"))
    answers = FakeAnswers()
    return ListenerDeps(service, store, answers), store, answers, proposal.id


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def click(user: str) -> dict[str, Any]:
    return {"user": {"id": user}, "trigger_id": "T.1"}


def ack_respond() -> tuple[Calls, Calls]:
    return Calls(), Calls()


def test_a_typo_in_the_command_is_answered_in_the_ack_and_nothing_is_asked() -> None:
    deps, _, answers, _ = world()
    ack, respond = ack_respond()
    run(commands.rollback_command(deps, cast(AsyncAck, ack), {"text": f"freeze {MODEL} for", "user_id": "U0LEAD"},
                                  cast(AsyncRespond, respond)))
    assert len(ack.calls) == 1 and ack.calls[0]["response_type"] == "ephemeral"
    assert ack.calls[0]["text"].startswith(":warning:") and not respond.calls and not answers.asked


def test_a_command_is_acked_empty_then_answered_privately_as_the_sender() -> None:
    deps, _, answers, _ = world()
    ack, respond = ack_respond()
    run(commands.rollback_command(deps, cast(AsyncAck, ack), {"text": f"status {MODEL}", "user_id": "U0BOB"},
                                  cast(AsyncRespond, respond)))
    assert ack.calls == [{}]
    assert respond.calls == [{"response_type": "ephemeral", "text": "the answer"}]
    assert answers.asked[0][1] == Actor.slack_user("U0BOB")


def test_an_approver_click_executes_without_an_extra_message() -> None:
    deps, store, _, pid = world()
    ack, respond = ack_respond()
    run(actions.approve_clicked(deps, cast(AsyncAck, ack), click("U0LEAD"), {"value": str(pid)},
                                cast(AsyncRespond, respond)))
    assert ack.calls == [{}] and respond.calls == []
    assert store.get_proposal(pid).state is not State.PROPOSED


def test_a_stranger_click_is_refused_privately_and_nothing_changes() -> None:
    deps, store, _, pid = world()
    ack, respond = ack_respond()
    run(actions.approve_clicked(deps, cast(AsyncAck, ack), click("U0EVE"), {"value": str(pid)},
                                cast(AsyncRespond, respond)))
    assert ack.calls == [{}] and respond.texts[0].startswith(":no_entry:")
    assert respond.calls[0]["replace_original"] is False and respond.calls[0]["response_type"] == "ephemeral"
    assert store.get_proposal(pid).state is State.PROPOSED


def test_a_button_without_a_proposal_id_says_so() -> None:
    deps, _, _, _ = world()
    for value in ("", "abc", "0", "99999999999", "\uff11"):
        ack, respond = ack_respond()
        run(actions.undo_clicked(deps, cast(AsyncAck, ack), click("U0LEAD"), {"value": value},
                                 cast(AsyncRespond, respond)))
        assert ack.calls == [{}] and respond.texts == ["this button carries no proposal"]


def test_an_unknown_proposal_is_a_warning_not_an_error() -> None:
    deps, _, _, _ = world()
    ack, respond = ack_respond()
    run(actions.approve_clicked(deps, cast(AsyncAck, ack), click("U0LEAD"), {"value": "424242"},
                                cast(AsyncRespond, respond)))
    assert respond.texts[0].startswith(":warning:")


def test_deny_opens_the_modal_for_an_approver_only() -> None:
    deps, _, _, pid = world()
    ack, respond = ack_respond()
    client = FakeClient()
    run(actions.deny_clicked(deps, cast(AsyncAck, ack), click("U0LEAD"), {"value": str(pid)},
                             cast(AsyncRespond, respond), cast(AsyncWebClient, client)))
    assert ack.calls == [{}] and respond.calls == []
    assert client.opened[0]["view"].private_metadata == str(pid) and client.opened[0]["trigger_id"] == "T.1"

    ack, respond = ack_respond()
    client = FakeClient()
    run(actions.deny_clicked(deps, cast(AsyncAck, ack), click("U0EVE"), {"value": str(pid)},
                             cast(AsyncRespond, respond), cast(AsyncWebClient, client)))
    assert not client.opened and respond.texts[0].startswith(":no_entry:")


def test_the_submitted_deny_modal_denies_with_the_reason() -> None:
    deps, store, _, pid = world()
    ack = Calls()
    view = {"private_metadata": str(pid),
            "state": {"values": {views.DENY_BLOCK: {views.DENY_INPUT: {"value": "  false alarm "}}}}}
    client = FakeClient()
    run(views.deny_submitted(deps, cast(AsyncAck, ack), click("U0LEAD"), view, cast(AsyncWebClient, client)))
    assert ack.calls == [{}] and not client.ephemeral
    assert store.get_proposal(pid).state is State.DENIED


def test_a_retried_event_is_answered_without_running_the_listener_again() -> None:
    deps, _, _, _ = world()
    ran: list[int] = []

    async def next_() -> None:
        ran.append(1)

    body = {"type": "event_callback", "event_id": "Ev1"}
    assert run(events.deduplicate(deps, body, next_)) is None
    retried = run(events.deduplicate(deps, body, next_))
    assert ran == [1] and retried.status == 200


def test_a_mention_is_answered_in_its_thread() -> None:
    deps, _, _, _ = world()
    say = Calls()
    run(events.mentioned(deps, {"ts": "1.5"}, say))
    assert say.calls == [{"text": "all quiet", "thread_ts": "1.5"}]
