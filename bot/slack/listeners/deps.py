"""What the listeners need, as one object: tests hand in an in-memory one, the app the real container's."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from bot.core.actor import Actor
from bot.core.errors import RollbackError
from bot.core.proposal import Proposal
from bot.core.service import RollbackService
from bot.database_health import OUTAGE, is_database_error
from bot.slack.commands import Command

T = TypeVar("T")


class ListenerStore(Protocol):
    def get_proposal(self, proposal_id: int) -> Proposal: ...

    def first_time_event(self, event_id: str) -> bool: ...


class Replies(Protocol):
    """The answers to `/rollback` and to a mention (bot/slack/answers.py)."""

    def answer(self, command: Command, actor: Actor) -> str: ...

    def status(self, model: str | None) -> str: ...


@dataclass(frozen=True)
class ListenerDeps:
    service: RollbackService
    store: ListenerStore
    answers: Replies


async def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """The core is synchronous: off the event loop, and a database outage becomes a sentence, not a timeout."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except Exception as exc:
        if not is_database_error(exc):
            raise
        OUTAGE.failed(exc, "slack")  # logged once per outage; the person gets an answer, not a timeout
        raise RollbackError("the bot's database is unavailable right now; try again in a minute") from None


def proposal_id(value: Any) -> int | None:
    """The proposal id a button or modal carries, or None: only ASCII digits within the id column's range."""
    text = str(value or "")
    if not (text.isascii() and text.isdigit() and len(text) <= 10) or not 1 <= int(text) <= 2**31 - 1:
        return None
    return int(text)


def clicker(body: dict[str, Any]) -> Actor:
    """Who clicked: the one place a Slack request's user becomes an actor for the core."""
    user = body.get("user") or {}
    return Actor.slack_user(str(user.get("id") or "") if isinstance(user, dict) else "")
