"""Unusual-activity messages in the audit channel: the text people read, and its once-only delivery.

Each notice is one row of ``audit_notices`` (bot/store/audit_notices.py). Like the cards, a post carries
message metadata naming its notice and an attempt is counted before Slack is called, so a post whose answer
was lost is found in the channel's history instead of being posted twice.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.unusual import Notice, UnusualKind
from bot.slack.delivery import DeliveryError, classify, retry_delay
from bot.slack.mrkdwn import escape, link
from bot.store.audit_notices import NoticeItem

log = logging.getLogger(__name__)
_PERSON = re.compile(r"\bslack:([UW][A-Z0-9]{2,})\b")  # actors that are Slack users become mentions

NOTICE_EVENT_TYPE = "rollback_bot_audit_notice"
ICON = {
    UnusualKind.OVERRIDE: "🚧", UnusualKind.BREAK_GLASS: "🔨", UnusualKind.UNDO: "↩️",
    UnusualKind.REPEATED_ROLLBACKS: "🔁", UnusualKind.OFF_HOURS: "🌙",
}


class NoticeStore(Protocol):
    def notices_due(self, limit: int = 50) -> list[NoticeItem]: ...
    def notice_attempt(self, notice_id: int) -> int: ...
    def notice_done(self, notice_id: int) -> None: ...
    def notice_retry(self, notice_id: int, error: str, delay_s: float, permanent: bool = False) -> None: ...
    def notices_resume(self) -> int: ...


def renderer(page_link: Callable[[str], str | None]) -> Callable[[Notice], Notice]:
    """The notice's text as Slack shows it: escaped, people mentioned, and a signed link to its page."""

    def render(n: Notice) -> Notice:
        words = _PERSON.sub(r"<@\1>", escape(n.text))
        text = f"{ICON[n.kind]} {words} (audit #{n.audit_id})"
        url = page_link(n.page) if n.page else None
        if url:
            label = f"incident #{n.proposal_id}" if n.proposal_id is not None else f"model {n.model}"
            text += " · " + link(url, label)
        return replace(n, text=text)

    return render


class AuditChannelSender:
    """Posts due notices to their channel; only the Slack sender's thread (under its lease) calls it."""

    def __init__(self, client: WebClient, store: NoticeStore) -> None:
        self.client = client
        self.store = store
        self._resumed = False

    def tick(self) -> bool:
        if not self._resumed:  # a new process retries what an earlier one stopped
            self.store.notices_resume()
            self._resumed = True
        busy = False
        for item in self.store.notices_due():
            attempts = self.store.notice_attempt(item.id)
            try:
                if not (attempts > 1 and self._already_posted(item)):
                    self.client.chat_postMessage(
                        channel=item.channel, text=item.text, unfurl_links=False,
                        metadata={"event_type": NOTICE_EVENT_TYPE, "event_payload": {"notice_id": item.id}})
            except (SlackApiError, OSError) as exc:
                self._failed(item, attempts, classify("chat.postMessage", exc))
                continue
            self.store.notice_done(item.id)
            busy = True
        return busy

    def _already_posted(self, item: NoticeItem) -> bool:
        response = self.client.conversations_history(channel=item.channel, limit=200, include_all_metadata=True)
        for message in response.get("messages") or []:
            meta = message.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if meta.get("event_type") == NOTICE_EVENT_TYPE and str(payload.get("notice_id")) == str(item.id):
                return True
        return False

    def _failed(self, item: NoticeItem, attempts: int, exc: DeliveryError) -> None:
        wait = retry_delay(exc, attempts)
        log.warning("audit channel message #%s (%s) failed: %s%s", item.id, item.kind, exc.code,
                    "; not retrying until the bot restarts" if exc.permanent else f"; retry in {wait:.1f} s")
        self.store.notice_retry(item.id, exc.code, wait, permanent=exc.permanent)


__all__ = ["NOTICE_EVENT_TYPE", "AuditChannelSender", "renderer"]
