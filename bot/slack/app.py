"""Bolt listeners: `/rollback`, the card's buttons, the deny modal, and event deduplication.

Every listener acks first and does the work after (Bolt answers Slack as soon as ack() is called), so
Slack's 3-second limit holds however slow the database or the target. A button carries only the proposal
id; state and permission are re-read from the database on every click.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt import BoltResponse
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.models.blocks import InputBlock, PlainTextInputElement, PlainTextObject
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

from bot.bootstrap import Container
from bot.core.actor import Actor
from bot.core.authorization import Act
from bot.core.errors import NotFound, Refused, RollbackError
from bot.core.proposal import State
from bot.database_health import OUTAGE, is_database_error
from bot.slack.answers import Answers
from bot.slack.cards import ACTION_APPROVE, ACTION_DENY, ACTION_UNDO
from bot.slack.commands import CommandError, parse_command
from bot.slack.mrkdwn import mention_ids

log = logging.getLogger(__name__)

DENY_CALLBACK = "rollback_deny_modal"
DENY_BLOCK = "deny_reason"
DENY_INPUT = "reason"


def deny_modal(proposal_id: int, model: str) -> View:
    return View(
        type="modal",
        callback_id=DENY_CALLBACK,
        private_metadata=str(proposal_id),
        title=PlainTextObject(text="Deny rollback"),
        submit=PlainTextObject(text="Deny"),
        close=PlainTextObject(text="Cancel"),
        blocks=[
            InputBlock(
                block_id=DENY_BLOCK,
                label=PlainTextObject(text=f"Why not roll back {model}? (optional)"[:2000]),
                optional=True,
                element=PlainTextInputElement(action_id=DENY_INPUT, multiline=True, max_length=1000),
            )
        ],
    )


def _proposal_id(value: Any) -> int | None:
    """The proposal id a button or modal carries, or None: only ASCII digits within the id column's range."""
    text = str(value or "")
    if not (text.isascii() and text.isdigit() and len(text) <= 10) or not 1 <= int(text) <= 2**31 - 1:
        return None
    return int(text)


def _clicker(body: dict[str, Any]) -> Actor:
    """Who clicked: the one place a Slack request's user becomes an actor for the core."""
    user = body.get("user") or {}
    return Actor.slack_user(str(user.get("id") or "") if isinstance(user, dict) else "")


def build_bolt_app(container: Container, client: AsyncWebClient, signing_secret: str | None) -> AsyncApp:
    service = container.service
    store = container.store
    answers = Answers(container)
    app = AsyncApp(client=client, signing_secret=signing_secret or "", process_before_response=False,
                   request_verification_enabled=bool(signing_secret))

    async def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except Exception as exc:
            if not is_database_error(exc):
                raise
            OUTAGE.failed(exc, "slack")  # logged once per outage; the person gets an answer, not a timeout
            raise RollbackError("the bot's database is unavailable right now; try again in a minute") from None

    @app.middleware
    async def deduplicate_events(body: dict[str, Any],
                                 next: Callable[[], Awaitable[None]]) -> BoltResponse | None:
        """Slack retries events it thinks we missed; each event id is handled once."""
        event_id = body.get("event_id")
        if body.get("type") == "event_callback" and event_id:
            first = await run(store.first_time_event, str(event_id))
            if not first:
                log.info("event %s already handled; ignoring Slack's retry", event_id)
                return BoltResponse(status=200, body="")  # answered, so Slack stops retrying; no listener runs
        await next()
        return None

    @app.command("/rollback")
    async def rollback_command(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        text = str(command.get("text") or "")
        try:
            parsed = parse_command(text)
        except CommandError as exc:
            await ack(response_type="ephemeral", text=f":warning: {mention_ids(str(exc))}")
            return
        await ack()
        try:
            reply = await run(answers.answer, parsed, Actor.slack_user(str(command.get("user_id") or "")))
        except RollbackError as exc:
            reply = f":warning: {mention_ids(str(exc))}"
        await respond(response_type="ephemeral", text=reply)

    async def click(body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond,
                    do: Callable[[int, Actor], Any]) -> None:
        proposal_id = _proposal_id(action.get("value"))
        if proposal_id is None:
            await respond(response_type="ephemeral", replace_original=False, text="this button carries no proposal")
            return
        try:
            message = await run(do, proposal_id, _clicker(body))
        except Refused as exc:
            await respond(response_type="ephemeral", replace_original=False, text=f":no_entry: {mention_ids(str(exc))}")
            return
        except (NotFound, RollbackError) as exc:
            await respond(response_type="ephemeral", replace_original=False, text=f":warning: {mention_ids(str(exc))}")
            return
        if message:
            await respond(response_type="ephemeral", replace_original=False, text=message)

    def approve(proposal_id: int, actor: Actor) -> str:
        outcome = service.approve(proposal_id, actor)
        return "" if outcome.executed else outcome.message

    def undo(proposal_id: int, actor: Actor) -> str:
        p = service.undo(proposal_id, actor)
        return f"undo #{p.id}: {p.state.value} ({p.from_version} → {p.to_version})"

    @app.action(ACTION_APPROVE)
    async def on_approve(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await click(body, action, respond, approve)

    @app.action(ACTION_UNDO)
    async def on_undo(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await click(body, action, respond, undo)

    @app.action(ACTION_DENY)
    async def on_deny(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond,
                      client: AsyncWebClient) -> None:
        await ack()
        actor = _clicker(body)
        proposal_id = _proposal_id(action.get("value"))
        if proposal_id is None:
            return

        def check() -> tuple[str | None, str]:
            """Before the modal opens: the core's own deny check (a refusal is audited there, once)."""
            p = store.get_proposal(proposal_id)
            if p.state is not State.PROPOSED:
                return f"proposal #{p.id} is already {p.state.value}", p.model
            service.authorize(actor, Act.DENY, p.model, proposal_id=p.id)
            return None, p.model

        try:
            problem, model = await run(check)
        except RollbackError as exc:  # no such proposal (any more)
            problem, model = str(exc), ""
        if problem:
            await respond(response_type="ephemeral", replace_original=False, text=f":no_entry: {mention_ids(problem)}")
            return
        await client.views_open(trigger_id=body["trigger_id"], view=deny_modal(proposal_id, model))

    @app.view(DENY_CALLBACK)
    async def on_deny_submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any],
                             client: AsyncWebClient) -> None:
        await ack()
        actor = _clicker(body)
        proposal_id = _proposal_id(view.get("private_metadata"))
        values = view.get("state", {}).get("values", {})
        reason = (values.get(DENY_BLOCK, {}).get(DENY_INPUT, {}).get("value") or "").strip() or None
        if proposal_id is None:
            return
        try:
            await run(service.deny, proposal_id, actor, reason)
        except RollbackError as exc:
            p = await run(store.get_proposal, proposal_id)
            if p.slack_channel:
                await client.chat_postEphemeral(channel=p.slack_channel, user=actor.slack_id or "",
                                                text=f":no_entry: {mention_ids(str(exc))}")

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: Callable[..., Awaitable[Any]]) -> None:
        reply = await run(answers.status, None)
        await say(text=reply, thread_ts=event.get("ts"))

    @app.error
    async def on_error(error: Exception) -> None:
        """A database outage is said once (``database.down``), not as a traceback per Slack request."""
        if is_database_error(error):
            OUTAGE.failed(error, "slack")
        elif isinstance(error, RollbackError):
            log.warning("Slack request not handled: %s", error)
        else:
            log.error("Slack listener failed", exc_info=error)

    return app
