"""Posts the post-incident report in the card's thread when the rollback's story ends: the summary in Block
Kit, the full report as a Markdown file (files upload v2, like the charts)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.audit import AuditEvent
from bot.core.policy import Policy
from bot.core.ports import DeploymentTarget
from bot.core.proposal import Proposal, State
from bot.report.markdown import render_markdown
from bot.report.reports import Reports, capture_versions
from bot.slack.report_blocks import report_blocks, report_text

log = logging.getLogger(__name__)


def report_due(event: str, proposal: Proposal) -> bool:
    """After verification; or when the rollback ended and no verification will follow."""
    if event == "verification":
        return True
    if event == "failed":
        return True
    return event == "succeeded" and proposal.state is State.SUCCEEDED and proposal.verify_at is None


class ReportPoster:
    def __init__(self, client: WebClient, reports: Reports, store: Any, policy: Policy,
                 targets: Mapping[str, DeploymentTarget]) -> None:
        self.client = client
        self.reports = reports
        self.store = store
        self.policy = policy
        self.targets = targets

    def __call__(self, event: str, proposal: Proposal) -> None:
        if not report_due(event, proposal):
            return
        try:
            self.post(proposal)
        except Exception:  # the report never breaks the card; `/rollback report ID` still works
            log.exception("the report of #%s could not be built", proposal.id)

    def post(self, proposal: Proposal) -> None:
        if not proposal.slack_channel or not proposal.slack_ts:
            return
        if proposal.state is State.SUCCEEDED:
            capture_versions(self.store, self.policy, self.targets, proposal)
        report = self.reports.build(proposal.id)
        page_url = self.reports.page_url(proposal.id)
        channel, ts = proposal.slack_channel, proposal.slack_ts
        try:
            self.client.chat_postMessage(channel=channel, thread_ts=ts, text=report_text(report, page_url),
                                         blocks=[b.to_dict() for b in report_blocks(report, page_url)])
            self.client.files_upload_v2(channel=channel, thread_ts=ts, content=render_markdown(report, page_url),
                                        filename=f"rollback-{proposal.id}-report.md",
                                        title=f"Post-incident report #{proposal.id} ({proposal.model})")
        except (SlackApiError, OSError) as exc:
            code = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
            log.warning("posting the report of #%s failed: %s", proposal.id, code)
            self.store.append_audit(AuditEvent(
                actor="bot:slack", action="slack.post_failed", model=proposal.model, proposal_id=proposal.id,
                reason=f"report post failed: {code}; `/rollback report {proposal.id}` shows it",
                inputs={"method": "report", "error": str(code)}))
