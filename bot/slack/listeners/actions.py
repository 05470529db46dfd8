"""The card's buttons. A button carries only the proposal id; state and permission are re-read on every click.

Expected refusals (not allowed, already decided, no such proposal) are told to the clicker here; anything
else propagates to the app's error handler (listeners/__init__.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.actor import Actor
from bot.core.authorization import Act
from bot.core.errors import NotFound, Refused, RollbackError
from bot.core.proposal import State
from bot.slack.cards import ACTION_APPROVE, ACTION_DENY, ACTION_UNDO
from bot.slack.listeners.deps import ListenerDeps, clicker, proposal_id, run
from bot.slack.listeners.views import deny_modal
from bot.slack.mrkdwn import mention_ids


async def _tell(respond: AsyncRespond, text: str) -> None:
    await respond(response_type="ephemeral", replace_original=False, text=text)


async def _click(body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond,
                 do: Callable[[int, Actor], str]) -> None:
    pid = proposal_id(action.get("value"))
    if pid is None:
        await _tell(respond, "this button carries no proposal")
        return
    try:
        message = await run(do, pid, clicker(body))
    except Refused as exc:
        await _tell(respond, f":no_entry: {mention_ids(str(exc))}")
        return
    except (NotFound, RollbackError) as exc:
        await _tell(respond, f":warning: {mention_ids(str(exc))}")
        return
    if message:
        await _tell(respond, message)


async def approve_clicked(deps: ListenerDeps, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any],
                          respond: AsyncRespond) -> None:
    def approve(pid: int, actor: Actor) -> str:
        outcome = deps.service.approve(pid, actor)
        return "" if outcome.executed else outcome.message

    await ack()
    await _click(body, action, respond, approve)


async def undo_clicked(deps: ListenerDeps, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any],
                       respond: AsyncRespond) -> None:
    def undo(pid: int, actor: Actor) -> str:
        p = deps.service.undo(pid, actor)
        return f"undo #{p.id}: {p.state.value} ({p.from_version} → {p.to_version})"

    await ack()
    await _click(body, action, respond, undo)


async def deny_clicked(deps: ListenerDeps, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any],
                       respond: AsyncRespond, client: AsyncWebClient) -> None:
    """Opens the reason modal, but only after the core's own deny check (a refusal is audited there, once)."""
    await ack()
    actor = clicker(body)
    pid = proposal_id(action.get("value"))
    if pid is None:
        return

    def check(pid: int) -> tuple[str | None, str]:
        p = deps.store.get_proposal(pid)
        if p.state is not State.PROPOSED:
            return f"proposal #{p.id} is already {p.state.value}", p.model
        deps.service.authorize(actor, Act.DENY, p.model, proposal_id=p.id)
        return None, p.model

    try:
        problem, model = await run(check, pid)
    except RollbackError as exc:  # no such proposal (any more), or not allowed
        problem, model = str(exc), ""
    if problem:
        await _tell(respond, f":no_entry: {mention_ids(problem)}")
        return
    await client.views_open(trigger_id=body["trigger_id"], view=deny_modal(pid, model))


def register(app: AsyncApp, deps: ListenerDeps) -> None:
    @app.action(ACTION_APPROVE)
    async def on_approve(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond) -> None:
        await approve_clicked(deps, ack, body, action, respond)

    @app.action(ACTION_UNDO)
    async def on_undo(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond) -> None:
        await undo_clicked(deps, ack, body, action, respond)

    @app.action(ACTION_DENY)
    async def on_deny(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond,
                      client: AsyncWebClient) -> None:
        await deny_clicked(deps, ack, body, action, respond, client)
