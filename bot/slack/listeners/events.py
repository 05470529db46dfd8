"""Events: Slack's retries are answered without running a listener twice; a mention gets the status."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt import BoltResponse
from slack_bolt.async_app import AsyncApp

from bot.slack.listeners.deps import ListenerDeps, run

log = logging.getLogger(__name__)

Say = Callable[..., Awaitable[Any]]


async def deduplicate(deps: ListenerDeps, body: dict[str, Any],
                      next: Callable[[], Awaitable[None]]) -> BoltResponse | None:
    """Slack retries events it thinks we missed; each event id is handled once."""
    event_id = body.get("event_id")
    if body.get("type") == "event_callback" and event_id:
        first = await run(deps.store.first_time_event, str(event_id))
        if not first:
            log.info("event %s already handled; ignoring Slack's retry", event_id)
            return BoltResponse(status=200, body="")  # answered, so Slack stops retrying; no listener runs
    await next()
    return None


async def mentioned(deps: ListenerDeps, event: dict[str, Any], say: Say) -> None:
    reply = await run(deps.answers.status, None)
    await say(text=reply, thread_ts=event.get("ts"))


def register(app: AsyncApp, deps: ListenerDeps) -> None:
    @app.middleware
    async def deduplicate_events(body: dict[str, Any], next: Callable[[], Awaitable[None]]) -> BoltResponse | None:
        return await deduplicate(deps, body, next)

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: Say) -> None:
        await mentioned(deps, event, say)
