"""The deny modal: built when Deny is clicked, submitted here."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.models.blocks import InputBlock, PlainTextInputElement, PlainTextObject
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import RollbackError
from bot.slack.listeners.deps import ListenerDeps, clicker, proposal_id, run
from bot.slack.mrkdwn import mention_ids

DENY_CALLBACK = "rollback_deny_modal"
DENY_BLOCK = "deny_reason"
DENY_INPUT = "reason"


def deny_modal(proposal: int, model: str) -> View:
    return View(
        type="modal",
        callback_id=DENY_CALLBACK,
        private_metadata=str(proposal),
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


async def deny_submitted(deps: ListenerDeps, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any],
                         client: AsyncWebClient) -> None:
    """A refusal is told only to the person who submitted (the modal is already closed by the ack)."""
    await ack()
    actor = clicker(body)
    pid = proposal_id(view.get("private_metadata"))
    values = view.get("state", {}).get("values", {})
    reason = (values.get(DENY_BLOCK, {}).get(DENY_INPUT, {}).get("value") or "").strip() or None
    if pid is None:
        return
    try:
        await run(deps.service.deny, pid, actor, reason)
    except RollbackError as exc:
        p = await run(deps.store.get_proposal, pid)
        if p.slack_channel:
            await client.chat_postEphemeral(channel=p.slack_channel, user=actor.slack_id or "",
                                            text=f":no_entry: {mention_ids(str(exc))}")


def register(app: AsyncApp, deps: ListenerDeps) -> None:
    @app.view(DENY_CALLBACK)
    async def on_deny_submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any],
                             client: AsyncWebClient) -> None:
        await deny_submitted(deps, ack, body, view, client)
