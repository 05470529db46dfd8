"""Posts the post-incident report in the card's thread when the rollback's story ends: the summary in Block
Kit, the full report as a Markdown file (files upload v2, like the charts)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.audit import AuditEvent
from bot.core.events import AuditAction, CardEvent
from bot.core.policy import Policy
from bot.core.ports import DeploymentTarget
from bot.core.proposal import Proposal, State
from bot.report.markdown import render_markdown
from bot.report.reports import Reports, capture_versions
from bot.slack.mrkdwn import link
from bot.slack.report_blocks import report_blocks, report_text

log = logging.getLogger(__name__)
POSTED = AuditAction.REPORT_POSTED
FAILED = AuditAction.SLACK_POST_FAILED
METHOD = "report"
# The sweeper posts what the inline path missed (a crash, a Slack outage): stories that ended at least GRACE
# ago and at most WINDOW ago (so an upgrade does not post reports for every old rollback), MAX_TRIES times.
GRACE = timedelta(seconds=60)
WINDOW = timedelta(hours=6)
MAX_TRIES = 5


def report_due(event: str, proposal: Proposal) -> bool:
    """After verification; or when the rollback ended and no verification will follow."""
    if event == CardEvent.VERIFICATION:
        return True
    if event == CardEvent.FAILED:
        return True
    return event == CardEvent.SUCCEEDED and proposal.state is State.SUCCEEDED and proposal.verify_at is None


class ReportPoster:
    def __init__(self, client: WebClient, reports: Reports, store: Any, policy: Policy,
                 targets: Mapping[str, DeploymentTarget], grace: timedelta = GRACE) -> None:
        self.client = client
        self.reports = reports
        self.store = store
        self.policy = policy
        self.targets = targets
        self.grace = grace

    def __call__(self, event: str, proposal: Proposal) -> None:
        if event == CardEvent.CREATED:
            self.post_link(proposal)
            return
        if not report_due(event, proposal):
            return
        try:
            self.post(proposal)
        except Exception:  # the report never breaks the card; `/rollback report ID` still works
            log.exception("the report of #%s could not be built", proposal.id)

    def post_link(self, proposal: Proposal) -> None:
        """The incident page from the start, so people can follow the incident outside Slack."""
        page_url = self.reports.page_url(proposal.id)
        if page_url is None or not proposal.slack_channel or not proposal.slack_ts:
            return
        try:
            self.client.chat_postMessage(channel=proposal.slack_channel, thread_ts=proposal.slack_ts,
                                         text=f"Incident page (read-only; the link expires): "
                                              f"{link(page_url, f'rollback #{proposal.id}')}")
        except (SlackApiError, OSError) as exc:  # the card matters, the link does not: the report repeats it
            log.warning("posting the incident page link of #%s failed: %s", proposal.id, type(exc).__name__)

    def sweep(self) -> int:
        """Post every report the inline path missed; safe to run on several replicas only up to a duplicate
        post when two sweep the same proposal at the same second."""
        now = self.reports.clock.now()
        done = 0
        for proposal_id in self.reports.queries.reports_due(ended_after=now - WINDOW, ended_before=now - self.grace,
                                                            posted_action=POSTED):
            if self.reports.queries.audit_count(proposal_id, FAILED, METHOD) >= MAX_TRIES:
                continue
            if self.post(self.store.get_proposal(proposal_id)):
                done += 1
        return done

    def post(self, proposal: Proposal) -> bool:
        if not proposal.slack_channel or not proposal.slack_ts:
            return False
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
                actor="bot:slack", action=FAILED, model=proposal.model, proposal_id=proposal.id,
                reason=f"report post failed: {code}; it will be retried, and `/rollback report {proposal.id}` "
                       "shows it meanwhile", inputs={"method": METHOD, "error": str(code)}))
            return False
        self.store.append_audit(AuditEvent(
            actor="bot:report", action=POSTED, model=proposal.model, proposal_id=proposal.id,
            reason="post-incident report posted in the card's thread",
            inputs={"file": f"rollback-{proposal.id}-report.md"}))
        return True


def attach_report_poster(container: Any, sender: Any) -> ReportPoster:
    """The Slack sender worker calls the poster after each outbox intent it delivers (one sender at a time)."""
    from bot.report.wiring import reports_for

    poster = ReportPoster(sender.client, reports_for(container), container.store, container.policy,
                          container.service.targets)
    sender.report = poster
    container.extras["report_poster"] = poster
    return poster
