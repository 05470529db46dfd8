"""Keeps each proposal's Slack card in step with the database.

The card is always drawn from the proposal as the database has it now, so updates arriving out of order
still end on the newest state. A failed post loses nothing: the proposal lives in the database, the
failure is audited, and the card sweeper (``sync_pending``) posts or updates it later.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.audit import AuditEvent, AuditRecord
from bot.core.metrics import MetricLine
from bot.core.policy import Policy
from bot.core.proposal import Proposal, State
from bot.slack.cards import CardAlert, CardData, card_message, format_seconds, not_sent, thread_details
from bot.slack.mrkdwn import escape, mention, mention_ids, mentions

log = logging.getLogger(__name__)

# Events that never post a card of their own: an automatic rollback's card appears in its final state.
_UPDATE_ONLY = {"approved", "executing"}


class CardStore(Protocol):
    def get_proposal(self, proposal_id: int) -> Proposal: ...
    def set_slack_ref(self, proposal_id: int, channel: str, ts: str) -> None: ...
    def card_version(self, proposal_id: int) -> int: ...
    def mark_card_synced(self, proposal_id: int, version: int) -> None: ...
    def cards_to_sync(self, limit: int = 50) -> list[int]: ...
    def append_audit(self, event: AuditEvent) -> AuditRecord: ...


def card_alerts(store: Any, proposal_id: int) -> list[CardAlert]:
    """The proposal's alerts as the card shows them (the alert store may not exist in every build)."""
    rows = getattr(store, "alerts_for_proposal", None)
    if rows is None:
        return []
    alerts = []
    for a in rows(proposal_id):
        link = next((a.links[k] for k in ("generatorURL", "panelURL", "dashboardURL", "link") if a.links.get(k)),
                    None)
        alerts.append(CardAlert(name=a.name, severity=str(a.severity), status=str(a.status), summary=a.summary,
                                link=link, starts_at=a.starts_at, source=a.source,
                                not_sent=not_sent(a.annotations)))
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


class SlackNotifier:
    """Implements the core's Notifier on Slack's Web API."""

    def __init__(self, client: WebClient, store: CardStore, policy: Policy, public_url: str | None = None,
                 charts: Callable[[Proposal], list[tuple[str, bytes | str]]] | None = None) -> None:
        self.client = client
        self.charts = charts
        self.store = store
        self.policy = policy
        self.public_url = public_url
        self._locks: defaultdict[int, threading.Lock] = defaultdict(threading.Lock)
        self._locks_guard = threading.Lock()

    def _lock(self, proposal_id: int) -> threading.Lock:
        with self._locks_guard:
            return self._locks[proposal_id]

    # ---- the Notifier port ------------------------------------------------------------------------------

    def changed(self, proposal: Proposal, event: str, detail: str | None = None) -> None:
        with self._lock(proposal.id):
            current = self.sync_card(proposal.id, allow_post=event not in _UPDATE_ONLY)
            if current is not None and current.slack_ts:
                self._thread(current, event, detail)
                if event in ("created", "verification") or (event == "succeeded" and current.kind.value == "alert"
                                                             and (current.decided_by or "").startswith("bot:")):
                    self._post_charts(current)

    # ---- card sync ----------------------------------------------------------------------------------------

    def sync_card(self, proposal_id: int, *, allow_post: bool = True) -> Proposal | None:
        """Post or update the card from the database's current state; None when Slack refused."""
        version = self.store.card_version(proposal_id)
        proposal = self.store.get_proposal(proposal_id)
        mp = self.policy.model(proposal.model)
        channel = proposal.slack_channel or (mp.channel if mp else None)
        if channel is None:
            return proposal
        card = card_data(self.store, self.policy, proposal, self.public_url)
        message = card_message(card).to_dict()
        try:
            if proposal.slack_ts:
                self.client.chat_update(channel=channel, ts=proposal.slack_ts, **message)
            elif allow_post:
                response = self.client.chat_postMessage(channel=channel, **message)
                self.store.set_slack_ref(proposal_id, str(response["channel"]), str(response["ts"]))
                proposal = self.store.get_proposal(proposal_id)
                if len(card.alerts) > 5 or len(card.metrics) > 3:  # more than the card shows
                    self._post_details(proposal)
            else:
                return proposal
        except SlackApiError as exc:
            self._failed(proposal, "chat.update" if proposal.slack_ts else "chat.postMessage", exc)
            return None
        except OSError as exc:
            self._failed(proposal, "chat.postMessage", exc)
            return None
        self.store.mark_card_synced(proposal_id, version)
        return proposal

    def sync_pending(self) -> int:
        """The sweeper: every card whose proposal changed since Slack last showed it."""
        done = 0
        for proposal_id in self.store.cards_to_sync():
            with self._lock(proposal_id):
                if self.sync_card(proposal_id) is not None:
                    done += 1
        return done

    def _failed(self, proposal: Proposal, method: str, exc: Exception) -> None:
        code = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
        log.warning("Slack %s for proposal #%s failed: %s", method, proposal.id, code)
        try:
            self.store.append_audit(AuditEvent(
                actor="bot:slack", action="slack.post_failed", model=proposal.model, proposal_id=proposal.id,
                reason=f"{method} failed: {code}; the card will be retried", inputs={"method": method,
                                                                                     "error": str(code)}))
        except Exception:
            log.exception("could not audit the Slack failure")

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
            self._failed(proposal, "chat.postMessage (thread)", exc)

    def _thread(self, p: Proposal, event: str, detail: str | None) -> None:
        mp = self.policy.model(p.model)
        approvers = mentions(list(mp.approvers)) if mp and mp.approvers else "anyone in the channel"
        text = None
        if event == "approval":
            text = f"{mention(p.approvals[-1])} approved ({detail})." if p.approvals else None
        elif event == "succeeded":
            took = f" in {format_seconds(p.duration_s)}" if p.duration_s is not None else ""
            text = f"Done{took}: {escape(detail or p.result or '')}"
        elif event == "failed":
            text = f"Rollback failed: {escape(detail or p.error or '')}\n{approvers}: the model still runs " \
                   f"{p.from_version}; decide what to do next."
        elif event == "denied":
            who = mention(p.decided_by) if p.decided_by else "someone"
            text = f"Denied by {who}" + (f": {escape(detail)}" if detail else " (no reason given).")
        elif event == "expired":
            text = "No decision before the deadline: the proposal expired and nothing was switched."
        elif event == "cancelled":
            text = f"Cancelled: {escape(detail or '')}"
        elif event == "escalated":
            who = mentions(tuple((detail or "").split()))
            text = (f"{who} no decision yet on rolling back {p.model} {p.from_version} → {p.to_version}; "
                    "please decide before the new deadline.")
        elif event == "reminder":
            text = f"Reminder: waiting for {approvers} ({detail})."
        elif event in ("verification", "timeline", "alerts") and detail:
            text = mention_ids(detail)
        if text:
            self._reply(p, text.strip())
