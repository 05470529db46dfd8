"""A model's rollback policy and the decision it makes for an alert or a request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.core.durations import format_duration
from bot.core.severity import Severity, SeverityTable, default_table
from bot.core.unusual import UnusualConfig

DEFAULT_VERSION_LABEL = "version"


class OnTimeout(StrEnum):
    ESCALATE = "escalate"
    ROLLBACK = "rollback"
    EXPIRE = "expire"


class NoData(StrEnum):
    FAIL = "fail"
    PASS = "pass"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class ModelPolicy:
    """Everything the bot needs to decide for one model; defaults already merged in."""

    name: str
    target: str = "local"
    target_settings: Mapping[str, Any] = field(default_factory=dict)
    match: Mapping[str, str] = field(default_factory=dict)
    channel: str | None = None
    min_severity: Severity = Severity.WARNING
    auto_rollback_severity: Severity = Severity.CRITICAL
    auto_abort_canary_severity: Severity | None = None  # None: the same as auto_rollback_severity
    approvers: tuple[str, ...] = ()
    required_approvals: int = 1
    undo_approvals: int | None = None  # None: the same as required_approvals
    allow_self_approval: bool = False
    approval_timeout: timedelta = timedelta(minutes=15)
    on_timeout: OnTimeout = OnTimeout.ESCALATE
    escalate_to: tuple[str, ...] = ()
    cooldown: timedelta = timedelta(minutes=30)
    stable_after: timedelta = timedelta(minutes=30)
    dry_run: bool = False
    verify_after: timedelta = timedelta(minutes=5)
    no_data: NoData = NoData.INCONCLUSIVE
    metrics: Mapping[str, str] = field(default_factory=dict)

    def matches(self, labels: Mapping[str, str]) -> bool:
        selector = self.match or {"model": self.name}
        return all(labels.get(key) == value for key, value in selector.items())


@dataclass(frozen=True)
class AlertSource:
    """How the bot reads one sender (``[sources.NAME]``): its severity words and the label naming a version."""

    name: str
    version_label: str = DEFAULT_VERSION_LABEL
    severity: SeverityTable = field(default_factory=SeverityTable)

    def version_of(self, labels: Mapping[str, str]) -> str | None:
        """The version an alert names (its ``version_label`` label), or None when it names none."""
        value = labels.get(self.version_label, "").strip()
        return value or None


def no_data_severity(policy: ModelPolicy) -> Severity:
    """How bad a sender's "No Data" is for this model, read from its ``no_data`` setting.

    ``fail``: missing data counts as the failure (critical); ``inconclusive``: a person looks (warning);
    ``pass``: missing data is fine (info, recorded only under the usual min_severity).
    """
    return {NoData.FAIL: Severity.CRITICAL, NoData.INCONCLUSIVE: Severity.WARNING,
            NoData.PASS: Severity.INFO}[policy.no_data]


@dataclass(frozen=True)
class Policy:
    """The whole policy file: one ModelPolicy per managed model."""

    models: Mapping[str, ModelPolicy]
    source: str = "<memory>"
    sources: Mapping[str, Any] = field(default_factory=dict)  # [sources.NAME]: per alert source settings
    alert_sources: Mapping[str, AlertSource] = field(default_factory=dict)  # the same, read and checked
    audit: UnusualConfig = field(default_factory=UnusualConfig)  # [audit]: unusual-activity messages

    def model(self, name: str) -> ModelPolicy | None:
        return self.models.get(name)

    def slack_ids(self) -> frozenset[str]:
        """Every Slack user and user-group id the policy names: the only ids bot text may mention."""
        return frozenset(i for p in self.models.values() for i in (*p.approvers, *p.escalate_to))

    def alert_source(self, name: str) -> AlertSource:
        """The sender's settings; defaults for a source the policy does not configure."""
        found = self.alert_sources.get(name)
        return found if found is not None else AlertSource(name, severity=default_table(name))

    def model_for_labels(self, labels: Mapping[str, str]) -> ModelPolicy | None:
        """The first model whose ``match`` selects these labels (models with a precise match first)."""
        ordered = sorted(self.models.values(), key=lambda p: -len(p.match or {"model": p.name}))
        for candidate in ordered:
            if candidate.matches(labels):
                return candidate
        return None


class Action(StrEnum):
    IGNORE = "ignore"
    PROPOSE = "propose"
    AUTO_EXECUTE = "auto_execute"


@dataclass(frozen=True)
class ModelState:
    """What the database knows about a model that the policy needs."""

    frozen_until: datetime | None = None
    frozen_reason: str | None = None
    frozen_by: str | None = None
    last_rollback_at: datetime | None = None
    auto_blocked_reason: str | None = None

    def frozen(self, now: datetime) -> bool:
        return self.frozen_until is not None and self.frozen_until > now

    def cooldown_ends(self, policy: ModelPolicy) -> datetime | None:
        if self.last_rollback_at is None:
            return None
        return self.last_rollback_at + policy.cooldown


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    dry_run: bool = False


def auto_threshold(policy: ModelPolicy, abort_canary: bool) -> tuple[str, Severity]:
    """The setting (and its value) that lets this kind of action run without a person."""
    if abort_canary and policy.auto_abort_canary_severity is not None:
        return "auto_abort_canary_severity", policy.auto_abort_canary_severity
    return "auto_rollback_severity", policy.auto_rollback_severity


def decide(severity: Severity, policy: ModelPolicy, state: ModelState, now: datetime, *,
           abort_canary: bool = False) -> Decision:
    """Turn an alert's severity into ignore / propose / auto-execute, with the reason in words.

    ``abort_canary``: the action would only stop a canary (the stable version keeps serving), which the
    policy may let run automatically at a lower severity (``auto_abort_canary_severity``).
    """
    setting, threshold = auto_threshold(policy, abort_canary)
    what = "abort the canary" if abort_canary else "roll back"
    if severity < policy.min_severity:
        return Decision(Action.IGNORE, f"severity {severity} is below min_severity {policy.min_severity}")
    if state.frozen(now):
        assert state.frozen_until is not None
        why = f": {state.frozen_reason}" if state.frozen_reason else ""
        return Decision(
            Action.IGNORE,
            f"{policy.name} is frozen until {state.frozen_until:%Y-%m-%d %H:%M} UTC by {state.frozen_by}{why}",
        )
    cooldown_ends = state.cooldown_ends(policy)
    if threshold is Severity.NEVER:
        return Decision(
            Action.PROPOSE,
            f"automatic action is off for {policy.name} ({setting} = never): "
            f"waiting for {policy.required_approvals} approval(s)",
            policy.dry_run,
        )
    if severity >= threshold:
        if cooldown_ends is not None and cooldown_ends > now:
            left = format_duration(cooldown_ends - now)
            return Decision(
                Action.PROPOSE,
                f"severity {severity} would {what} automatically, but {policy.name} was rolled back "
                f"recently (cooldown {format_duration(policy.cooldown)}, {left} left): a person decides",
                policy.dry_run,
            )
        if state.auto_blocked_reason:
            return Decision(
                Action.PROPOSE,
                f"automatic rollback is paused for {policy.name} ({state.auto_blocked_reason}): "
                "a person decides",
                policy.dry_run,
            )
        return Decision(
            Action.AUTO_EXECUTE,
            f"severity {severity} is at or above {setting} {threshold}",
            policy.dry_run,
        )
    return Decision(
        Action.PROPOSE,
        f"severity {severity} is below {setting} {threshold}: "
        f"waiting for {policy.required_approvals} approval(s)",
        policy.dry_run,
    )
