"""Slack's side of drills: the drill card and its thread.

``ChannelPostSender`` delivers ``channel_posts`` rows (written with their audit row) from the Slack sender
worker: the card first, remembering its ``ts``, then each reply in its thread, so a retry after a failure
sends only what is still owed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject

from bot.core.drill import DRILL_ID, DrillResult
from bot.core.policy import Policy
from bot.core.proposal import Proposal
from bot.slack.cards import CardData, card_message
from bot.slack.delivery import DeliveryError, classify, retry_delay
from bot.slack.mrkdwn import escape
from bot.store.channel_posts import PendingPost

log = logging.getLogger(__name__)
DRILL_EVENT_TYPE = "rollback_bot_drill"


class PostStore(Protocol):
    def posts_due(self, limit: int = 50) -> list[PendingPost]: ...
    def post_progress(self, post_id: int, *, ts: str | None = None, replies_sent: int | None = None,
                      done: bool = False) -> None: ...
    def post_failed(self, post_id: int, error: str, *, permanent: bool, delay_s: float = 0.0) -> None: ...
    def posts_resume(self) -> int: ...


class DrillCards:
    """The core's CardRenderer: the proposal card as people know it, marked as a drill, without buttons."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def card(self, proposal: Proposal, drill_note: str) -> Mapping[str, Any]:
        mp = self.policy.model(proposal.model)
        data = CardData(proposal=proposal, approvers=list(mp.approvers) if mp else [],
                        on_timeout=mp.on_timeout.value if mp else None,
                        escalate_to=list(mp.escalate_to) if mp else [], outcome_reason=proposal.error)
        message = card_message(data).to_dict()
        # No buttons and no "Proposal #0" link: a drill has no proposal anyone could act on or open.
        blocks = [b for b in message["blocks"] if b.get("type") != "actions" and not _proposal_link(b)]
        note = f" ({drill_note})" if drill_note else ""
        banner = ContextBlock(elements=[MarkdownTextObject(
            text=f":test_tube: *Rollback drill{note}*: a rehearsal, nothing was switched")]).to_dict()
        return {"text": f"Rollback drill of {escape(proposal.model)}{note}: {message['text']}",
                "blocks": [banner, *blocks]}

    def result(self, result: DrillResult) -> str:
        head = (f"Drill of {escape(result.model)} by {escape(result.actor)}: "
                f"{'every step passed' if result.ok else 'some steps failed'} in {result.seconds * 1000:.0f} ms")
        lines = [f"{':white_check_mark:' if s.ok else ':x:'} *{s.name}* ({s.seconds * 1000:.1f} ms): "
                 f"{escape(s.detail)}" for s in result.steps]
        return "\n".join([head, *lines])[:3900]


def _proposal_link(block: Mapping[str, Any]) -> bool:
    texts = [str(e.get("text", "")) for e in block.get("elements") or [] if isinstance(e, Mapping)]
    return block.get("type") == "context" and any(f"Proposal #{DRILL_ID}" in t for t in texts)


class ChannelPostSender:
    def __init__(self, client: WebClient, store: PostStore) -> None:
        self.client = client
        self.store = store
        self._resumed = False

    def tick(self) -> bool:
        if not self._resumed:  # like the proposal outbox: a new process retries what an earlier one stopped
            self.store.posts_resume()
            self._resumed = True
        busy = False
        for post in self.store.posts_due():
            try:
                self.deliver(post)
            except DeliveryError as exc:
                delay = retry_delay(exc, post.attempts + 1)
                log.warning("Slack %s post #%s to %s failed (%s)%s", post.kind, post.id, post.channel, exc.code,
                            "; not retrying" if exc.permanent else f"; retry in {delay:.1f} s")
                self.store.post_failed(post.id, exc.code, permanent=exc.permanent, delay_s=delay)
                continue
            busy = True
        return busy

    def deliver(self, post: PendingPost) -> None:
        ts = post.ts
        if ts is None:
            try:
                response = self.client.chat_postMessage(
                    channel=post.channel, metadata={"event_type": DRILL_EVENT_TYPE,
                                                    "event_payload": {"post_id": post.id}}, **post.message)
            except (SlackApiError, OSError) as exc:
                raise classify("chat.postMessage", exc) from None
            ts = str(response["ts"])
            self.store.post_progress(post.id, ts=ts)
        for index in range(post.replies_sent, len(post.replies)):
            try:
                self.client.chat_postMessage(channel=post.channel, thread_ts=ts, text=post.replies[index])
            except (SlackApiError, OSError) as exc:
                raise classify("chat.postMessage (thread)", exc) from None
            self.store.post_progress(post.id, replies_sent=index + 1)
        self.store.post_progress(post.id, done=True)


__all__ = ["ChannelPostSender", "DrillCards"]
