"""`/rollback`: a typo is answered in the ack itself; anything else is acked first and answered after."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.core.actor import Actor
from bot.core.errors import RollbackError
from bot.slack.commands import CommandError, parse_command
from bot.slack.listeners.deps import ListenerDeps, run
from bot.slack.mrkdwn import mention_ids


async def rollback_command(deps: ListenerDeps, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
    try:
        parsed = parse_command(str(command.get("text") or ""))
    except CommandError as exc:
        await ack(response_type="ephemeral", text=f":warning: {mention_ids(str(exc))}")
        return
    await ack()
    try:
        reply = await run(deps.answers.answer, parsed, Actor.slack_user(str(command.get("user_id") or "")))
    except RollbackError as exc:
        reply = f":warning: {mention_ids(str(exc))}"
    await respond(response_type="ephemeral", text=reply)


def register(app: AsyncApp, deps: ListenerDeps) -> None:
    @app.command("/rollback")
    async def on_rollback(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        await rollback_command(deps, ack, command, respond)
