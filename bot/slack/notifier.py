"""Slack as an outbox: the core writes intents; one sender delivers them, in order, once.

The decider, the executor and the request handlers never call Slack. Each card or thread change is a row in
``slack_outbox`` (``OutboxNotifier``), and ``SlackSender`` delivers the rows oldest first per proposal,
drawing every card from the proposal as the database has it *now*, so a card that was down for an hour still
ends on the newest state. Transient failures (5xx, timeouts, 429 with its Retry-After) back off and retry; a
permanent one (``channel_not_found`` …) stops that proposal's messages, is audited once, logged and shown on
``/readyz``. Every card is posted with message metadata naming its proposal, so a post whose answer was lost
is found in the channel's history instead of being posted a second time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.actor import is_bot
from bot.core.audit import AuditEvent
from bot.core.events import AuditAction, CardEvent
from bot.core.metrics import MetricLine
from bot.core.policy import Policy
from bot.core.ports import ListsProposalAlerts
from bot.core.proposal import Proposal, State
from bot.slack.cards import CardAlert, CardData, card_message, format_seconds, not_sent, thread_details
from bot.slack.delivery import DeliveryError, classify, retry_delay
from bot.slack.mrkdwn import escape, mention, mention_ids, mentions
from bot.store.work_queues import OutboxFailure, OutboxItem

log = logging.getLogger(__name__)

# Events that never post a card of their own: an automatic rollback's card appears in its final state.
_UPDATE_ONLY = {CardEvent.APPROVED, CardEvent.EXECUTING}
CARD_EVENT_TYPE = "rollback_bot_proposal"
# State changes whose own transaction bumps the card's version: when an earlier message of the same tick drew
# the card at that version already (an automatic rollback's "executing" found it succeeded), their
# chat.update is skipped; the thread message still goes out.
_DRAWN_WITH_VERSION = {CardEvent.APPROVED, CardEvent.EXECUTING, CardEvent.SUCCEEDED, CardEvent.FAILED}


class CardStore(Protocol):
    def get_proposal(self, proposal_id: int) -> Proposal: ...
    def set_slack_ref(self, proposal_id: int, channel: str, ts: str) -> None: ...
    def card_state(self, proposal_id: int) -> tuple[int, int]: ...
    def mark_card_synced(self, proposal_id: int, version: int) -> None: ...
    def cards_to_sync(self, limit: int = 50) -> list[int]: ...
    def add_outbox(self, proposal_id: int, event: str, detail: str | None) -> None: ...
    def outbox_due(self, limit: int = 200) -> list[OutboxItem]: ...
    def outbox_attempt(self, item_id: int) -> int: ...
    def outbox_done(self, item_id: int) -> None: ...
    def outbox_retry(self, item_id: int, error: str, delay_s: float) -> None: ...
    def outbox_stop(self, item_id: int, error: str, audit: AuditEvent) -> None: ...
    def outbox_failures(self, limit: int = 10) -> list[OutboxFailure]: ...
    def outbox_resume(self) -> int: ...


class OutboxNotifier:
    """The core's Notifier over the outbox. Never calls Slack.

    State changes carry their intent into the store, which writes it in the same transaction (``written``
    then only wakes the sender); the few messages that follow a change without one of their own (alerts
    joining, verification) are written by ``changed``."""

    def __init__(self, store: CardStore, wake: Callable[[], None]) -> None:
        self.store = store
        self.wake = wake

    def changed(self, proposal: Proposal, event: CardEvent, detail: str | None = None) -> None:
        """An intent the store did not write with its change (alerts joining, verification): write it now."""
        self.store.add_outbox(proposal.id, event, detail)
        self.wake()

    def written(self) -> None:
        """The store wrote the intent in the state change's transaction: only wake the sender."""
        self.wake()


def card_alerts(store: Any, proposal_id: int) -> list[CardAlert]:
    """The proposal's alerts as the card shows them (the alert store may not exist in every build)."""
    if not isinstance(store, ListsProposalAlerts):
        return []
    alerts = []
    for a in store.alerts_for_proposal(proposal_id):
        link = next((a.links[k] for k in ("generatorURL", "panelURL", "dashboardURL", "link") if a.links.get(k)),
                    None)
        alerts.append(CardAlert(name=a.name, severity=str(a.severity), status=str(a.status), summary=a.summary,
                                link=link, starts_at=a.starts_at, source=a.source,
                                not_sent=not_sent(a.annotations), version=getattr(a, "version", None),
                                stale=getattr(a, "outcome", None) == "stale"))
    return alerts


def card_data(store: Any, policy: Policy, proposal: Proposal, public_url: str | None) -> CardData:
    mp = policy.model(proposal.model)
    metrics = [MetricLine.from_dict(m) for m in proposal.summary.get("metrics", [])]
    return CardData(
        proposal=proposal,
        alerts=card_alerts(store, proposal.id),
        metrics=metrics,
        approvers=list(mp.approvers) if mp else [],
        on_timeout=mp.on_timeout.value if mp else None,
        escalate_to=list(mp.escalate_to) if mp else [],
        outcome_reason=proposal.error if proposal.state is State.DENIED else proposal.result,
        public_url=public_url,
    )


class SlackSender:
    """Delivers outbox rows to Slack's Web API. Only the sender worker's thread calls it."""

    def __init__(self, client: WebClient, store: CardStore, policy: Policy, public_url: str | None = None,
                 charts: Callable[[Proposal], list[tuple[str, bytes | str]]] | None = None) -> None:
        self.client = client
        self.charts = charts
        self.store = store
        self.policy = policy
        self.public_url = public_url
        self._resumed = False
        self.report: Callable[[str, Proposal], None] | None = None  # report hook: set by bot/slack/report_post.py

    # ---- the worker's tick ------------------------------------------------------------------------------

    def tick(self) -> bool:
        """Deliver what is due, oldest first; then re-sync any card the database changed without an intent."""
        if not self._resumed:  # a new process retries what an earlier one stopped (the cause may be fixed)
            self.store.outbox_resume()
            self._resumed = True
        busy = False
        held: set[int] = set()
        for item in self.store.outbox_due():
            if item.proposal_id in held:
                continue  # an earlier message of this proposal failed: the later ones wait for it
            attempts = self.store.outbox_attempt(item.id)
            try:
                self.deliver(item.proposal_id, item.event, item.detail, maybe_posted=attempts > 1)
            except DeliveryError as exc:
                self._failed(item, attempts, exc)
                held.add(item.proposal_id)
                continue
            self.store.outbox_done(item.id)
            busy = True
        if not busy:
            stopped = {f.proposal_id for f in self.store.outbox_failures(limit=1000)}
            for proposal_id in self.store.cards_to_sync():
                if proposal_id in stopped:
                    continue
                try:
                    self.sync_card(proposal_id, allow_post=False)
                except DeliveryError as exc:
                    log.warning("re-syncing the card of #%s: %s", proposal_id, exc.code)
        return busy

    def _failed(self, item: OutboxItem, attempts: int, exc: DeliveryError) -> None:
        if exc.permanent:
            proposal = self.store.get_proposal(item.proposal_id)
            log.error("Slack refused the %s message of proposal #%s for good: %s; not retrying (see /readyz)",
                      item.event, item.proposal_id, exc.code)
            self.store.outbox_stop(item.id, exc.code, AuditEvent(
                actor="bot:slack", action=AuditAction.SLACK_DELIVERY_STOPPED, model=proposal.model,
                proposal_id=proposal.id,
                reason=f"Slack refused the {item.event} message: {exc.code}; its messages wait until this is "
                       "fixed", inputs={"event": item.event, "error": exc.code}))
            return
        delay = retry_delay(exc, attempts)
        log.warning("Slack %s for proposal #%s failed (%s); retry %d in %.1f s", item.event, item.proposal_id,
                    exc.code, attempts, delay)
        self.store.outbox_retry(item.id, exc.code, delay)

    # ---- one intent ---------------------------------------------------------------------------------------

    def deliver(self, proposal_id: int, event: str, detail: str | None, *, maybe_posted: bool = False) -> None:
        if event == CardEvent.OVERRIDE:  # a channel message of its own, about the rollback that blocked the version
            self._announce_override(proposal_id, detail or "")
            return
        current = self.sync_card(proposal_id, allow_post=event not in _UPDATE_ONLY, maybe_posted=maybe_posted,
                                 unless_drawn=event in _DRAWN_WITH_VERSION)
        if current is None or not current.slack_ts:
            return
        self._thread(current, event, detail)
        if event in (CardEvent.CREATED, CardEvent.VERIFICATION) or (
                event == CardEvent.SUCCEEDED and current.kind.value == "alert" and is_bot(current.decided_by)):
            self._post_charts(current)
        if self.report is not None:  # report hook: the post-incident report when the story ends
            self.report(event, current)

    # ---- card sync ----------------------------------------------------------------------------------------

    def sync_card(self, proposal_id: int, *, allow_post: bool = True, maybe_posted: bool = False,
                  unless_drawn: bool = False) -> Proposal | None:
        """Post or update the card from the database's current state; raises DeliveryError. ``unless_drawn``:
        not when Slack already shows the card at its current version (one chat.update for several changes)."""
        version, drawn = self.store.card_state(proposal_id)
        proposal = self.store.get_proposal(proposal_id)
        if unless_drawn and proposal.slack_ts and drawn >= version:
            return proposal
        mp = self.policy.model(proposal.model)
        channel = proposal.slack_channel or (mp.channel if mp else None)
        if channel is None:
            return proposal
        card = card_data(self.store, self.policy, proposal, self.public_url)
        message = card_message(card).to_dict()
        if not proposal.slack_ts and maybe_posted:
            found = self._find_card(channel, proposal_id)  # an earlier post whose answer was lost
            if found is not None:
                self.store.set_slack_ref(proposal_id, channel, found)
                proposal = self.store.get_proposal(proposal_id)
        try:
            if proposal.slack_ts:
                self.client.chat_update(channel=channel, ts=proposal.slack_ts, **message)
            elif allow_post:
                response = self.client.chat_postMessage(
                    channel=channel, metadata={"event_type": CARD_EVENT_TYPE,
                                               "event_payload": {"proposal_id": proposal_id}}, **message)
                self.store.set_slack_ref(proposal_id, str(response["channel"]), str(response["ts"]))
                proposal = self.store.get_proposal(proposal_id)
                if len(card.alerts) > 5 or len(card.metrics) > 3:  # more than the card shows
                    self._post_details(proposal)
            else:
                return proposal
        except (SlackApiError, OSError) as exc:
            raise classify("chat.update" if proposal.slack_ts else "chat.postMessage", exc) from None
        self.store.mark_card_synced(proposal_id, version)
        return proposal

    def _find_card(self, channel: str, proposal_id: int) -> str | None:
        """The ts of this proposal's card if an earlier attempt posted it (recent history, by metadata)."""
        try:
            response = self.client.conversations_history(channel=channel, limit=200, include_all_metadata=True)
        except (SlackApiError, OSError) as exc:
            raise classify("conversations.history", exc) from None
        for message in response.get("messages") or []:
            meta = message.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if meta.get("event_type") == CARD_EVENT_TYPE and str(payload.get("proposal_id")) == str(proposal_id):
                return str(message.get("ts"))
        return None

    def _announce_override(self, proposal_id: int, detail: str) -> None:
        """Everyone in the channel sees that a blocked version was deployed anyway, and which rollback it undoes."""
        proposal = self.store.get_proposal(proposal_id)
        mp = self.policy.model(proposal.model)
        channel = proposal.slack_channel or (mp.channel if mp else None)
        if channel is None:
            return
        text = (f":warning: Override: {escape(detail)}. The version was blocked after rollback #{proposal.id} "
                f"({escape(proposal.from_version)} → {escape(proposal.to_version)}).")
        try:
            self.client.chat_postMessage(channel=channel, text=text)
        except (SlackApiError, OSError) as exc:
            raise classify("chat.postMessage (override)", exc) from None

    # ---- thread messages ------------------------------------------------------------------------------

    def _post_details(self, proposal: Proposal) -> None:
        for message in thread_details(card_data(self.store, self.policy, proposal, self.public_url)):
            self._reply(proposal, message.text, message.to_dict().get("blocks"))

    def _post_charts(self, proposal: Proposal) -> None:
        """Each metric's chart in the thread; where Slack refuses the upload, say why in the thread instead."""
        if self.charts is None:
            return
        try:
            charts = self.charts(proposal)
        except Exception:
            log.exception("charts for proposal #%s failed", proposal.id)
            return
        for name, png in charts:
            if isinstance(png, str):
                self._reply(proposal, escape(png))
                continue
            try:
                self.client.files_upload_v2(channel=proposal.slack_channel, thread_ts=proposal.slack_ts,
                                            content=png, filename=f"{proposal.model}-{name}.png",
                                            title=f"{proposal.model} {name}")
            except SlackApiError as exc:
                code = exc.response.get("error")
                self._reply(proposal, f"Could not attach the {escape(name)} chart: Slack said `{code}` (the app "
                                      "needs the files:write scope and to be a member of this channel).")
            except OSError as exc:
                self._reply(proposal, f"Could not attach the {escape(name)} chart: {type(exc).__name__}.")

    def _reply(self, proposal: Proposal, text: str, blocks: Any = None) -> None:
        if not proposal.slack_ts or not proposal.slack_channel:
            return
        try:
            kwargs: dict[str, Any] = {"blocks": blocks} if blocks else {}
            self.client.chat_postMessage(channel=proposal.slack_channel, thread_ts=proposal.slack_ts, text=text,
                                         **kwargs)
        except (SlackApiError, OSError) as exc:
            raise classify("chat.postMessage (thread)", exc) from None

    def _thread(self, p: Proposal, event: str, detail: str | None) -> None:
        mp = self.policy.model(p.model)
        approvers = mentions(list(mp.approvers)) if mp and mp.approvers else "anyone in the channel"
        text = None
        if event == CardEvent.APPROVAL:
            text = f"{mention(p.approvals[-1])} approved ({detail})." if p.approvals else None
        elif event == CardEvent.SUCCEEDED:
            took = f" in {format_seconds(p.duration_s)}" if p.duration_s is not None else ""
            text = f"Done{took}: {escape(detail or p.result or '')}"
        elif event == CardEvent.FAILED:
            text = f"Rollback failed: {escape(detail or p.error or '')}\n{approvers}: decide what to do next."
        elif event == CardEvent.DENIED:
            who = mention(p.decided_by) if p.decided_by else "someone"
            text = f"Denied by {who}" + (f": {escape(detail)}" if detail else " (no reason given).")
        elif event == CardEvent.EXPIRED:
            text = "No decision before the deadline: the proposal expired and nothing was switched."
        elif event == CardEvent.CANCELLED:
            text = f"Cancelled: {escape(detail or '')}"
        elif event == CardEvent.SUPERSEDED:
            text = f"Closed: {escape(detail or 'superseded by a new deployment')}; nothing was switched."
        elif event == CardEvent.ESCALATED:
            who = mentions(tuple((detail or "").split()))
            text = (f"{who} no decision yet on rolling back {p.model} {p.from_version} → {p.to_version}; "
                    "please decide before the new deadline.")
        elif event == CardEvent.REMINDER:
            text = f"Reminder: waiting for {approvers} ({detail})."
        elif event in (CardEvent.VERIFICATION, CardEvent.TIMELINE, CardEvent.ALERTS) and detail:
            # alert names and times flow into these: only the policy's own ids may become mentions
            text = mention_ids(detail, self.policy.slack_ids())
        if text:
            self._reply(p, text.strip())
