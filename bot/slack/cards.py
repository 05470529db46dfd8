"""The proposal card: one Slack message that shows a rollback from proposal to verification.

The same builder runs for every state so ``chat.update`` can redraw the message in place; only the
state line and the buttons change. Everything goes through slack_sdk's block classes so Block Kit's
own validation (lengths, required fields) runs before Slack ever sees the message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.core.actor import is_bot
from bot.core.durations import format_duration
from bot.core.metrics import MetricLine
from bot.core.ports import TrafficSplit
from bot.core.proposal import Kind, Proposal, ProposalAction, State
from bot.slack.mrkdwn import escape, link, mention, mentions, slack_date, truncate

# Block Kit limits (https://docs.slack.dev/reference/block-kit/blocks).
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_CONTEXT_ELEMENTS = 10
MAX_FALLBACK_TEXT = 3000

MAX_ALERTS_ON_CARD = 5
MAX_METRICS_ON_CARD = 3

ACTION_APPROVE = "rollback_approve"
ACTION_DENY = "rollback_deny"
ACTION_UNDO = "rollback_undo"

STATE_EMOJI: dict[State, str] = {
    State.PROPOSED: "⏳",
    State.APPROVED: "👍",
    State.EXECUTING: "⚙️",
    State.SUCCEEDED: "✅",
    State.FAILED: "❌",
    State.DENIED: "🚫",
    State.EXPIRED: "⌛",
    State.CANCELLED: "✖️",
}

_SEVERITY_EMOJI = {"critical": "🔴", "warning": "🟠", "info": "🔵"}


@dataclass(frozen=True)
class CardAlert:
    """One alert as the card shows it; ``link`` is the source's page (generatorURL, dashboard…)."""

    name: str
    severity: str
    status: str
    summary: str
    link: str | None = None
    starts_at: datetime | None = None
    source: str = ""  # alertmanager | grafana | datadog | generic
    not_sent: int = 0  # alerts of the same group the sender left out (Alertmanager's truncatedAlerts)
    version: str | None = None  # the version the alert names (the source's version_label)
    stale: bool = False  # the decider recorded it as stale: it named a version that was not live


SENDER_NAMES = {"alertmanager": "Alertmanager", "grafana": "Grafana", "datadog": "Datadog"}
TRUNCATED_ANNOTATION = "truncatedAlerts"


def not_sent(annotations: Mapping[str, str]) -> int:
    """The ``truncatedAlerts`` count a parser stored on an alert (0 when absent or unreadable)."""
    raw = annotations.get(TRUNCATED_ANNOTATION, "")
    return int(raw) if raw.isascii() and raw.isdigit() else 0


@dataclass
class CardData:
    """Everything the card shows. Policy inputs default to what the proposal itself carries."""

    proposal: Proposal
    alerts: list[CardAlert] = field(default_factory=list)
    metrics: list[MetricLine] = field(default_factory=list)
    approvers: list[str] = field(default_factory=list)
    required_approvals: int | None = None  # default: proposal.required_approvals
    deadline: datetime | None = None  # default: proposal.deadline_at
    on_timeout: str | None = None  # escalate | rollback | expire
    escalate_to: list[str] = field(default_factory=list)
    outcome_reason: str | None = None  # why it was denied / cancelled (the store keeps it beside the row)
    public_url: str | None = None  # base URL of the proposal API

    @property
    def needed(self) -> int:
        return (
            self.required_approvals
            if self.required_approvals is not None
            else (self.proposal.required_approvals)
        )

    @property
    def due(self) -> datetime | None:
        return self.deadline if self.deadline is not None else self.proposal.deadline_at

    @property
    def proposal_url(self) -> str | None:
        if not self.public_url:
            return None
        return f"{self.public_url.rstrip('/')}/api/proposals/{self.proposal.id}"


@dataclass(frozen=True)
class Message:
    """A ready-to-post message: ``text`` for notifications, ``blocks`` for the card itself."""

    text: str
    blocks: list[Block]

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": [b.to_dict() for b in self.blocks]}


# --------------------------------------------------------------------------- formatting


def format_number(value: float) -> str:
    """Short, stable numbers for people: 0.42, 0.0013, 4100, 1.2e+06."""
    if value == 0:
        return "0"
    if abs(value) >= 1e6 or abs(value) < 1e-4:
        return f"{value:.2g}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.4g}"


def _signed(value: float) -> str:
    text = format_number(value)
    return text if text.startswith("-") else f"+{text}"


def format_pct(value: float) -> str:
    return f"{value:+.0f}%" if abs(value) >= 10 else f"{value:+.1f}%"


def format_seconds(seconds: float) -> str:
    """``0.4 s`` for quick switches, ``2m5s`` once it takes minutes."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    return format_duration(timedelta(seconds=seconds))


def metric_text(line: MetricLine) -> str:
    """``error_rate 0.42 (before 0.01, +0.41, +4100%) ▁▂▃▅▇``; ``no data`` wherever a value is missing."""
    name = f"`{escape(line.name)}`"
    if line.no_data or (line.now is None and line.baseline is None):
        return f"{name} no data"
    now = "no data" if line.now is None else format_number(line.now)
    before = "no data" if line.baseline is None else format_number(line.baseline)
    parts = [f"before {before}"]
    if line.now is not None and line.baseline is not None:
        if line.delta is not None:
            parts.append(_signed(line.delta))
        if line.delta_pct is not None:
            parts.append(format_pct(line.delta_pct))
    text = f"{name} {now} ({', '.join(parts)})"
    if line.sparkline:
        text += f" {line.sparkline}"
    return text


def version_note(alert: CardAlert, p: Proposal | None) -> str:
    """Which version the alert names, and "stale" when it could not act on this incident: it names another
    version than the one the incident rolls back, or it came after that version was already rolled back."""
    if alert.version is None:
        return ""
    named = f"version `{escape(alert.version)}`"
    if p is None:
        return f" · names {named}"
    live = f"`{escape(p.from_version)}`"
    if alert.version != p.from_version:
        about = f"live is {live}" if p.open else f"this incident was about {live}"
        return f" · ⚠️ *stale*: names {named}, {about} (not acted on)"
    if alert.stale:  # about this version, but it came once the version was no longer live
        return f" · ⚠️ *stale*: names {named}, which was no longer live (not acted on)"
    return f" · names {named}"


def alert_text(alert: CardAlert, p: Proposal | None = None) -> str:
    emoji = _SEVERITY_EMOJI.get(alert.severity.lower(), "⚪")
    name = f"*{escape(alert.name)}*"
    if alert.link:
        name = f"*{link(alert.link, alert.name)}*"
    text = f"{emoji} {name} ({escape(alert.severity)}, {escape(alert.status)})"
    if alert.summary and alert.summary != alert.name:
        text += f": {escape(alert.summary)}"
    if alert.starts_at is not None:
        text += f" · since {slack_date(alert.starts_at, '{time}')}"
    return text + version_note(alert, p)


def _aborts_canary(p: Proposal) -> bool:
    return p.action is ProposalAction.ABORT_CANARY


def _split_text(raw: Mapping[str, Any]) -> str:
    split = TrafficSplit.from_dict(raw)
    stable = f"`{escape(split.stable_version)}`" if split.stable_version else "stable"
    canary = f"`{escape(split.canary_version)}`" if split.canary_version else "canary"
    return f"{stable} {split.stable_percent} % · {canary} (canary) {split.canary_percent} %"


def traffic_text(p: Proposal) -> str:
    """The traffic split before and after aborting the canary, as the target reported it."""
    traffic = p.summary.get("traffic") if _aborts_canary(p) else None
    if not isinstance(traffic, Mapping) or "before" not in traffic:
        return ""
    before = traffic["before"]
    step = f" ({escape(str(before['step']))})" if before.get("step") else ""
    after = _split_text(traffic.get("after") or TrafficSplit.from_dict(before).aborted().as_dict())
    return f"*Traffic:* {_split_text(before)}{step} → after the abort: {after}"


def _versions_text(p: Proposal) -> str:
    verb = "Roll forward" if p.kind is Kind.UNDO else "Roll back"
    if _aborts_canary(p):
        verb = "Abort canary"
    text = f"*{escape(p.model)}*  `{escape(p.from_version)}` → `{escape(p.to_version)}`  ({verb.lower()})"
    if p.target_note:
        text += f"\n_{escape(p.target_note)}_"
    if traffic := traffic_text(p):
        text += f"\n{traffic}"
    who = mention(p.requested_by) if p.requested_by else "unknown"
    text += f"\nRequested by {who}"
    if p.reason:
        text += f": {escape(p.reason)}"
    if p.dry_run:
        text += "\n🧪 *Dry run*: the bot decides and announces, but switches nothing."
    return text


def state_text(card: CardData) -> str:
    """The one line that changes as the proposal moves; every state has its own wording."""
    p = card.proposal
    emoji = STATE_EMOJI[p.state]
    to = f"`{escape(p.to_version)}`"
    outcome: str | None = card.outcome_reason or p.result
    if p.state is State.PROPOSED:
        have = len(p.approvals)
        left = max(card.needed - have, 0)
        noun = "approval" if card.needed == 1 else "approvals"
        if have:
            text = f"Waiting for {left} of {card.needed} {noun}: approved by {mentions(p.approvals)}"
        else:
            text = f"Waiting for {card.needed} {noun}"
        if p.escalated:
            text += " · escalated"
            if card.escalate_to:
                text += f" to {mentions(card.escalate_to)}"
        return f"{emoji} {text}"
    if p.state is State.APPROVED:
        by = mentions(p.approvals) if p.approvals else mention(p.decided_by or "unknown")
        next_step = f"aborting the canary ({to} keeps serving)" if _aborts_canary(p) else f"rolling back to {to}"
        return f"{emoji} Approved by {by}; {next_step} next"
    if p.state is State.EXECUTING:
        since = f" (started {slack_date(p.started_at, '{time}')})" if p.started_at else ""
        doing = f"Aborting the canary, {to} keeps serving" if _aborts_canary(p) else f"Rolling back to {to}"
        return f"{emoji} {doing}…{since}"
    if p.state is State.SUCCEEDED:
        took = f" in {format_seconds(p.duration_s)}" if p.duration_s is not None else ""
        auto = _is_automatic(p)
        if p.dry_run:
            would = "aborted the canary" if _aborts_canary(p) else f"rolled back to {to}"
            text = f"{emoji} Dry run: would have {would}{took}; nothing was switched"
        elif _aborts_canary(p):
            text = f"{emoji} Canary aborted{took}: {to} takes 100 % of the traffic"
        elif p.kind is Kind.UNDO:
            text = f"{emoji} Rolled forward again to {to}{took}"
        else:
            text = f"{emoji} Rolled back to {to}{took}"
        if auto:
            text += " (automatically)"
        elif p.decided_by:
            text += f", approved by {mentions(p.approvals) if p.approvals else mention(p.decided_by)}"
        if p.result:
            text += f"\n_{escape(p.result)}_"
        return text
    if p.state is State.FAILED:
        why = escape(p.error) if p.error else "no error detail was recorded"
        what = "Aborting the canary" if _aborts_canary(p) else f"Rollback to {to}"
        return f"{emoji} {what} failed: {why}"
    if p.state is State.DENIED:
        by = mention(p.decided_by) if p.decided_by else "someone"
        return f"{emoji} Denied by {by}" + (f": {escape(outcome)}" if outcome else " (no reason given)")
    if p.state is State.EXPIRED:
        due = card.due
        text = f"{emoji} Expired: no decision"
        if due is not None:
            text += f" before {slack_date(due)}"
        return text + (f" ({escape(outcome)})" if outcome else "")
    # CANCELLED
    when = f" {slack_date(p.decided_at)}" if p.decided_at else ""
    if is_superseded(p):
        return f"{emoji} Superseded{when} {escape((outcome or '').removeprefix('superseded '))}; nothing was switched"
    by = f" by {mention(p.decided_by)}" if p.decided_by else ""
    return f"{emoji} Cancelled{when}{by}" + (f": {escape(outcome)}" if outcome else "")


_WAITING = re.compile(r"(:\s*)?waiting for \d+ approval\(s\)")


def finished_reason(reason: str) -> str:
    """The decision's reason once nobody waits any more: the "waiting for N approval(s)" part goes."""
    return _WAITING.sub("", reason).strip(" :;,")


def outcome_text(card: CardData) -> str:
    """What finally happened, in one line, for a card whose proposal is no longer waiting."""
    p = card.proposal
    when_at = p.finished_at or p.decided_at
    when = f" {slack_date(when_at)}" if when_at else ""
    by = mention(p.decided_by) if p.decided_by else "someone"
    return {
        State.APPROVED: f"approved by {by}; the rollback runs next",
        State.EXECUTING: "approved; the rollback is running",
        State.SUCCEEDED: (f"dry run only, nothing was switched{when}" if p.dry_run
                          else f"{escape(p.model)} was switched from `{escape(p.from_version)}` to "
                               f"`{escape(p.to_version)}`{when}"),
        State.FAILED: f"the rollback to `{escape(p.to_version)}` failed{when}",
        State.DENIED: f"denied by {by}{when}; nothing was switched",
        State.EXPIRED: f"expired without a decision{when}; nothing was switched",
        State.CANCELLED: f"cancelled{when}; nothing was switched",
    }.get(p.state, "")


def policy_text(card: CardData) -> str:
    """Why it waits, until when, and who may decide: the question every reader of the card asks.

    Once nobody waits (approved, running or finished) the waiting line goes and the outcome takes its place.
    """
    p = card.proposal
    parts: list[str] = []
    if p.state is not State.PROPOSED:
        if p.decision_reason and (why := finished_reason(p.decision_reason)):
            parts.append(f"*Proposed because:* {escape(why)}")
        if outcome := outcome_text(card):
            parts.append(f"*{'Now' if p.open else 'Outcome'}:* {outcome}")
        return " · ".join(parts)
    if p.decision_reason:
        parts.append(f"*Why:* {escape(p.decision_reason)}")
    if card.approvers:
        noun = "approval" if card.needed == 1 else "approvals"
        parts.append(f"*Approvers:* {mentions(card.approvers)} ({card.needed} {noun} needed)")
    due = card.due
    if due is not None and p.state is State.PROPOSED:
        then = f", then {escape(card.on_timeout)}" if card.on_timeout else ""
        parts.append(f"*Deadline:* {slack_date(due)}{then}")
    return " · ".join(parts)


def is_superseded(p: Proposal) -> bool:
    """Cancelled because a new deployment of the model made the proposal moot (bot/core/controls.py)."""
    return p.state is State.CANCELLED and (p.result or "").startswith("superseded by")


def _is_automatic(p: Proposal) -> bool:
    return is_bot(p.decided_by)


def shows_decision_buttons(p: Proposal) -> bool:
    return p.state is State.PROPOSED


def shows_undo_button(p: Proposal) -> bool:
    """Undo only for an automatic rollback that really switched (a dry run has nothing to undo)."""
    return (p.state is State.SUCCEEDED and p.kind is Kind.ALERT and _is_automatic(p) and not p.dry_run
            and not _aborts_canary(p))  # an aborted canary left the stable version as it was: nothing to undo


# --------------------------------------------------------------------------- blocks


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, MAX_SECTION_TEXT)))


def _context(*texts: str) -> ContextBlock:
    elements = [MarkdownTextObject(text=truncate(t, MAX_SECTION_TEXT)) for t in texts if t]
    return ContextBlock(elements=elements[:MAX_CONTEXT_ELEMENTS])


def _button(label: str, action_id: str, proposal_id: int, style: str | None = None) -> ButtonElement:
    return ButtonElement(
        text=truncate(label, MAX_BUTTON_TEXT),
        action_id=action_id,
        value=str(proposal_id),
        style=style,
    )


def header_text(p: Proposal) -> str:
    label = {
        State.PROPOSED: "rollback proposed",
        State.APPROVED: "rollback approved",
        State.EXECUTING: "rolling back",
        State.SUCCEEDED: "dry run done" if p.dry_run else "rolled back",
        State.FAILED: "rollback failed",
        State.DENIED: "rollback denied",
        State.EXPIRED: "rollback expired",
        State.CANCELLED: "rollback superseded" if is_superseded(p) else "rollback cancelled",
    }[p.state]
    if p.kind is Kind.UNDO:
        label = (
            label.replace("rollback", "roll-forward")
            .replace("rolled back", "rolled forward")
            .replace("rolling back", "rolling forward")
        )
    elif _aborts_canary(p):
        label = (
            label.replace("rollback", "canary abort")
            .replace("rolled back", "canary aborted")
            .replace("rolling back", "aborting canary")
        )
    return truncate(f"{STATE_EMOJI[p.state]} {p.model}: {label}", MAX_HEADER_TEXT)


def alerts_text(alerts: Sequence[CardAlert], limit: int = MAX_ALERTS_ON_CARD, p: Proposal | None = None) -> str:
    shown = [f"• {alert_text(a, p)}" for a in alerts[:limit]]
    more = len(alerts) - len(shown)
    title = "*Alert*" if len(alerts) == 1 else f"*Alerts* ({len(alerts)})"
    text = "\n".join([title, *shown])
    if more > 0:
        text += f"\n+{more} more (all of them in the thread)"
    for line in not_sent_lines(alerts):
        text += f"\n{line}"
    return _fit_lines(text, MAX_SECTION_TEXT)


def not_sent_lines(alerts: Sequence[CardAlert]) -> list[str]:
    """"+N more that Alertmanager did not send": a receiver's ``max_alerts`` hid alerts from the bot.

    Each notification of a group repeats its current count, so the largest one per sender is shown.
    """
    counts: dict[str, int] = {}
    for alert in alerts:
        if alert.not_sent > 0:
            counts[alert.source] = max(counts.get(alert.source, 0), alert.not_sent)
    return [
        f"+{count} more that {SENDER_NAMES.get(source, source or 'the sender')} did not send"
        for source, count in sorted(counts.items())
    ]


def metrics_text(metrics: Sequence[MetricLine], limit: int = MAX_METRICS_ON_CARD) -> str:
    shown = [metric_text(m) for m in metrics[:limit]]
    more = len(metrics) - len(shown)
    text = "\n".join(["*Metrics* (now vs before the deploy)", *shown])
    if more > 0:
        text += f"\n+{more} more in the thread"
    return _fit_lines(text, MAX_SECTION_TEXT)


def _fit_lines(text: str, limit: int) -> str:
    """Drop whole lines from the end rather than cut a mrkdwn token (a link or date) in half."""
    if len(text) <= limit:
        return text
    lines = text.split("\n")
    while lines and len("\n".join(lines)) + 2 > limit:
        lines.pop()
    kept = "\n".join(lines)
    return (kept + "\n…") if kept else truncate(text, limit)


def version_metrics_text(p: Proposal) -> str:
    """Run metrics the model registry keeps per version (MLflow): e.g. ``val_auc 0.90 → 0.91``."""
    vm = p.summary.get("version_metrics") or {}
    before, after = vm.get("from") or {}, vm.get("to") or {}
    names = [n for n in before if n in after][:4]
    if not names:
        return ""
    parts = [f"`{escape(n)}` {format_number(float(before[n]))} → {format_number(float(after[n]))}" for n in names]
    return f"Registry run metrics {escape(p.from_version)} → {escape(p.to_version)}: " + ", ".join(parts)


def build_card(card: CardData) -> list[Block]:
    """The card's blocks for its current state (at most a dozen, well under Block Kit's 50)."""
    p = card.proposal
    blocks: list[Block] = [
        HeaderBlock(text=header_text(p)),
        _section(_versions_text(p)),
        _section(state_text(card)),
    ]
    if p.verification:
        blocks.append(_section(f"🔎 *Verification:* {escape(p.verification)}"))
    if card.alerts:
        blocks.append(DividerBlock())
        blocks.append(_section(alerts_text(card.alerts, p=p)))
    if card.metrics:
        if not card.alerts:
            blocks.append(DividerBlock())
        blocks.append(_section(metrics_text(card.metrics)))
    runs = version_metrics_text(p)
    if runs:
        blocks.append(_context(runs))
    policy = policy_text(card)
    if policy:
        blocks.append(_context(policy))
    links = []
    if card.proposal_url:
        links.append(link(card.proposal_url, f"Proposal #{p.id}"))
    else:
        links.append(f"Proposal #{p.id}")
    blocks.append(_context(" · ".join(links)))
    buttons: list[ButtonElement] = []
    if shows_decision_buttons(p):
        buttons.append(_button("Approve", ACTION_APPROVE, p.id, "primary"))
        buttons.append(_button("Deny", ACTION_DENY, p.id, "danger"))
    elif shows_undo_button(p):
        buttons.append(_button(f"Undo (roll forward to {p.from_version})", ACTION_UNDO, p.id))
    if buttons:
        blocks.append(ActionsBlock(block_id=f"rollback_actions_{p.id}", elements=buttons))
    return blocks[:MAX_BLOCKS]


def fallback_text(card: CardData) -> str:
    """The plain ``text`` of chat.postMessage: what notifications and screen readers show."""
    p = card.proposal
    verb = "roll forward" if p.kind is Kind.UNDO else "canary abort" if _aborts_canary(p) else "rollback"
    status = {
        State.PROPOSED: f"{verb} proposed, waiting for approval",
        State.APPROVED: f"{verb} approved",
        State.EXECUTING: f"{verb} running",
        State.SUCCEEDED: f"{verb} done" + (" (dry run)" if p.dry_run else ""),
        State.FAILED: f"{verb} failed" + (f": {p.error}" if p.error else ""),
        State.DENIED: f"{verb} denied",
        State.EXPIRED: f"{verb} expired",
        State.CANCELLED: f"{verb} superseded by a new deployment" if is_superseded(p) else f"{verb} cancelled",
    }[p.state]
    text = f"{STATE_EMOJI[p.state]} {p.model} {p.from_version} → {p.to_version}: {status}"
    if card.alerts:
        names = ", ".join(a.name for a in card.alerts[:3])
        more = f" +{len(card.alerts) - 3}" if len(card.alerts) > 3 else ""
        text += f" ({names}{more})"
    return truncate(escape(text), MAX_FALLBACK_TEXT)


def card_message(card: CardData) -> Message:
    """Text and blocks together, ready for ``chat.postMessage(**message.to_dict())``."""
    return Message(text=fallback_text(card), blocks=build_card(card))


def thread_details(card: CardData) -> list[Message]:
    """Every alert and metric, for the card's thread, split so each message stays within the limits."""
    p = card.proposal
    lines: list[str] = []
    if card.alerts:
        lines.append(f"*All alerts* ({len(card.alerts)})")
        lines.extend(f"• {alert_text(a, p)}" for a in card.alerts)
    if card.metrics:
        lines.append(f"*All metrics* ({len(card.metrics)}, now vs before the deploy)")
        lines.extend(f"• {metric_text(m)}" for m in card.metrics)
    if not lines:
        return []
    sections: list[str] = []
    current = ""
    for line in lines:
        line = truncate(line, MAX_SECTION_TEXT)
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > MAX_SECTION_TEXT:
            sections.append(current)
            current = line
        else:
            current = candidate
    if current:
        sections.append(current)
    per_message = MAX_BLOCKS
    messages: list[Message] = []
    for start in range(0, len(sections), per_message):
        chunk = sections[start : start + per_message]
        blocks: list[Block] = [_section(s) for s in chunk]
        messages.append(Message(text=f"Details for proposal #{p.id} ({p.model})", blocks=blocks))
    return messages
