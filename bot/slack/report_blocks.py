"""The report's summary in Block Kit, posted in the card's thread beside the full Markdown file."""

from __future__ import annotations

from slack_sdk.models.blocks import Block, ContextBlock, HeaderBlock, MarkdownTextObject, SectionBlock

from bot.core.proposal import ProposalAction
from bot.core.report import Report
from bot.report.text import DURATION_LABELS, seconds, traffic_words, value
from bot.slack.mrkdwn import escape, link, mention, truncate

MAX_DIFF_LINES = 5


def _action(report: Report, bold: bool = False) -> str:
    """``; action abort canary (traffic …)`` when the action was not a plain rollback."""
    if report.action == ProposalAction.ROLLBACK.value:
        return ""
    words = f"*{report.action_words}*" if bold else report.action_words
    return f"; action {words}{escape(traffic_words(report))}"


def report_text(report: Report, page_url: str | None = None) -> str:
    """The plain summary: notification fallback and the `/rollback report ID` answer."""
    p = report.proposal
    d = report.durations
    lines = [f"*Post-incident report #{p.id}*: {escape(p.model)} {escape(p.from_version)} → {escape(p.to_version)}, "
             f"{p.state.value}{_action(report)}; decision {report.decision}"
             + (f" by {mention(report.decided_by)}" if report.decided_by else ""),
             " · ".join(f"{label.removeprefix('Time to ')} {seconds(getattr(d, attr))}"
                        for attr, label, _ in DURATION_LABELS)]
    if report.verification:
        lines.append(f"Verification: {escape(truncate(report.verification, 300))}")
    differs = [r for r in report.changes.metadata if r.differs] + report.changes.runs
    for r in differs[:MAX_DIFF_LINES]:
        lines.append(f"• {r.kind} `{escape(r.key)}`: {escape(truncate(value(r.bad), 60))} → "
                     f"{escape(truncate(value(r.restored), 60))}")
    if len(differs) > MAX_DIFF_LINES:
        lines.append(f"…and {len(differs) - MAX_DIFF_LINES} more differences in the full report")
    if page_url:
        lines.append(link(page_url, "Open the incident page"))
    return "\n".join(lines)


def report_blocks(report: Report, page_url: str | None = None) -> list[Block]:
    p = report.proposal
    d = report.durations
    fields = [MarkdownTextObject(text=f"*{label}*\n{seconds(getattr(d, attr))}") for attr, label, _ in DURATION_LABELS]
    blocks: list[Block] = [
        HeaderBlock(text=truncate(f"Post-incident report #{p.id}: {p.model}", 150)),
        SectionBlock(text=MarkdownTextObject(text=truncate(
            f"{escape(p.from_version)} → {escape(p.to_version)}: *{p.state.value}*{_action(report, bold=True)}; "
            f"decision *{report.decision}*"
            + (f" by {mention(report.decided_by)}" if report.decided_by else "")
            + (f"\nVerification: {escape(report.verification)}" if report.verification else ""), 3000)),
            fields=fields[:10]),
    ]
    differs = [r for r in report.changes.metadata if r.differs] + report.changes.runs
    if differs:
        text = "*What changed* (most different first)\n" + "\n".join(
            f"• {r.kind} `{escape(r.key)}`: {escape(truncate(value(r.bad), 60))} → "
            f"{escape(truncate(value(r.restored), 60))}" for r in differs[:MAX_DIFF_LINES])
        blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(text, 3000))))
    context = "The full report is attached below as Markdown."
    if page_url:
        context += " " + link(page_url, "Open the incident page")
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=context)]))
    return blocks
