"""The names the bot writes down: card events (what the Slack outbox is asked to say) and audit actions.

Both are ``StrEnum``s whose values are the strings stored before they existed, so outbox rows, audit rows, the
audit hash chain and exports read exactly as before; a stored row read back is a plain ``str`` and compares
equal to its member. Audit rows may still carry actions named elsewhere (tests, older releases): readers
compare against these members and never reject an unknown text.
"""

from __future__ import annotations

from enum import StrEnum


class CardEvent(StrEnum):
    """Why a proposal's card is updated or its thread gets a message (``Intent.event``, ``Notifier.changed``)."""

    CREATED = "created"
    APPROVAL = "approval"  # one more approval, more still needed
    APPROVED = "approved"
    EXECUTING = "executing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DENIED = "denied"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"
    ESCALATED = "escalated"
    REMINDER = "reminder"
    VERIFICATION = "verification"
    ALERTS = "alerts"  # alerts joined or resolved while the proposal is open
    TIMELINE = "timeline"  # alerts resolved after the proposal ended
    OVERRIDE = "override"  # a channel message: a version this rollback blocked was deployed anyway


class AuditAction(StrEnum):
    """The ``action`` of an audit row the bot writes."""

    PROPOSAL_CREATED = "proposal.created"
    PROPOSAL_APPROVED = "proposal.approved"
    PROPOSAL_DENIED = "proposal.denied"
    PROPOSAL_CANCELLED = "proposal.cancelled"
    PROPOSAL_EXPIRED = "proposal.expired"
    PROPOSAL_ESCALATED = "proposal.escalated"
    PROPOSAL_SUPERSEDED = "proposal.superseded"
    PROPOSAL_ALERTS_JOINED = "proposal.alerts_joined"
    PROPOSAL_SEVERITY_RAISED = "proposal.severity_raised"
    APPROVAL_ADDED = "approval.added"
    ROLLBACK_EXECUTING = "rollback.executing"
    ROLLBACK_SUCCEEDED = "rollback.succeeded"
    ROLLBACK_DRY_RUN = "rollback.dry_run"
    ROLLBACK_FAILED = "rollback.failed"
    ROLLBACK_BREAK_GLASS = "rollback.break_glass"
    AUTO_ROLLBACK_PAUSED = "auto_rollback.paused"
    DEPLOY = "deploy"
    DEPLOYMENT_STABLE = "deployment.stable"
    DEPLOYMENT_OVERRIDE = "deployment.override"
    DEPLOYMENT_BLOCKED = "deployment.blocked"
    DEPLOYMENT_REFUSED_BLOCKED = "deployment.refused_blocked"
    DEPLOYMENT_DRIFT = "deployment.drift"
    VERSION_UNBLOCKED = "version.unblocked"
    MODEL_FROZEN = "model.frozen"
    MODEL_UNFROZEN = "model.unfrozen"
    ALERT_RESOLVED = "alert.resolved"
    DRILL_PASSED = "drill.passed"
    DRILL_FAILED = "drill.failed"
    REPORT_VERSIONS_CAPTURED = "report.versions_captured"
    REPORT_POSTED = "report.posted"
    SLACK_POST_FAILED = "slack.post_failed"
    SLACK_DELIVERY_STOPPED = "slack.delivery_stopped"
    # refusals: one per kind of request (bot/core/authorization.py maps each Act to one of these)
    APPROVAL_REFUSED = "approval.refused"
    DENIAL_REFUSED = "denial.refused"
    UNDO_REFUSED = "undo.refused"
    FREEZE_REFUSED = "freeze.refused"
    UNFREEZE_REFUSED = "unfreeze.refused"
    UNBLOCK_REFUSED = "unblock.refused"
    ROLLBACK_REFUSED = "rollback.refused"
    DRILL_REFUSED = "drill.refused"
    DEPLOY_REFUSED = "deploy.refused"


# Verification writes ``rollback.verified.<outcome>`` (one action per verification outcome).
VERIFIED_PREFIX = "rollback.verified."


def verified_action(outcome: str) -> str:
    """The audit action of a verification that ended with ``outcome``."""
    return f"{VERIFIED_PREFIX}{outcome}"


__all__ = ["VERIFIED_PREFIX", "AuditAction", "CardEvent", "verified_action"]
