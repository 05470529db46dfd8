"""Card events and audit actions became enums without changing a stored byte: outbox rows, audit rows, the
audit hash chain and the automatic-decision rules read the same text as before."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.core.audit import AuditEvent, KeyRing, row_hash
from bot.core.events import AuditAction, CardEvent, verified_action
from bot.core.report import is_automatic
from bot.core.unusual import is_break_glass
from bot.slack.directory import is_group_id
from tests.unit.test_unusual import row

CARD_EVENTS = {"created", "approval", "approved", "executing", "succeeded", "failed", "denied", "expired",
               "cancelled", "superseded", "escalated", "reminder", "verification", "alerts", "timeline", "override"}


def test_card_events_keep_the_names_the_outbox_stores() -> None:
    assert {e.value for e in CardEvent} == CARD_EVENTS


@pytest.mark.parametrize("action", list(AuditAction))
def test_an_audit_action_is_stored_and_hashed_as_its_plain_text(action: AuditAction) -> None:
    at = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    member = AuditEvent(actor="slack:U0LEAD", action=action, model="m")
    text = AuditEvent(actor="slack:U0LEAD", action=action.value, model="m")
    assert type(member.action) is str and member == text
    ring = KeyRing("k1", {"k1": b"0123456789abcdef"})
    assert row_hash(ring, "0" * 64, at, member) == row_hash(ring, "0" * 64, at, text)


def test_audit_action_names_that_other_code_and_exports_rely_on() -> None:
    assert (AuditAction.DEPLOYMENT_OVERRIDE, AuditAction.DEPLOYMENT_REFUSED_BLOCKED, AuditAction.ROLLBACK_REFUSED,
            AuditAction.PROPOSAL_CREATED, AuditAction.DEPLOY) == (
        "deployment.override", "deployment.refused_blocked", "rollback.refused", "proposal.created", "deploy")
    assert verified_action("recovered") == "rollback.verified.recovered"


@pytest.mark.parametrize(("actor", "automatic"), [
    ("bot:policy", True), ("bot:timeout", True), ("bot:recovery", False), ("bot:policy-x", False),
    ("slack:U0LEAD", False), ("cli:ops", False), ("policy", False), (None, False),
])
def test_only_the_policy_and_the_deadline_decide_automatically(actor: str | None, automatic: bool) -> None:
    assert is_automatic(actor) is automatic


def test_break_glass_is_a_cli_user_approving_read_from_the_actor_kind() -> None:
    assert is_break_glass(row("proposal.approved", "cli:alice"))
    assert not is_break_glass(row("proposal.approved", "slack:cli:alice"))
    assert not is_break_glass(row("proposal.approved", "cli:"))  # no name: not an actor of any kind


@pytest.mark.parametrize(("approver", "group"), [("S0SRE", True), ("U0LEAD", False), ("S", False),
                                                 ("Sre-team", False)])
def test_a_policy_approver_is_a_group_by_slack_s_id_shape(approver: str, group: bool) -> None:
    assert is_group_id(approver) is group
