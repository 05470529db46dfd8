"""The policy values in force for a decision, as plain JSON stored with the proposal's audit row.

A report read a year later must show the rules the approvers worked under then, not today's policy file.
"""

from __future__ import annotations

from typing import Any

from bot.core.durations import format_duration
from bot.core.policy import ModelPolicy


def policy_values(policy: ModelPolicy) -> dict[str, Any]:
    values = {
        "target": policy.target,
        "channel": policy.channel,
        "min_severity": str(policy.min_severity),
        "auto_rollback_severity": str(policy.auto_rollback_severity),
        "approvers": list(policy.approvers),
        "required_approvals": policy.required_approvals,
        "allow_self_approval": policy.allow_self_approval,
        "approval_timeout": format_duration(policy.approval_timeout),
        "on_timeout": str(policy.on_timeout),
        "escalate_to": list(policy.escalate_to),
        "cooldown": format_duration(policy.cooldown),
        "stable_after": format_duration(policy.stable_after),
        "dry_run": policy.dry_run,
        "verify_after": format_duration(policy.verify_after),
        "no_data": str(policy.no_data),
    }
    if policy.auto_abort_canary_severity is not None:  # only where set: older reports stay as they were
        values["auto_abort_canary_severity"] = str(policy.auto_abort_canary_severity)
    return values
