"""Unusual activity in the audit trail: which rows deserve a short message to the audit channel.

Pure: audit rows in, notices out. The rows are already the truth (hash-chained, written with every change),
so the alerts read them instead of every use case remembering to send something; a kind added here covers
every door (Slack, CLI, API) at once. The worker (bot/workers/audit_watch.py) feeds the rows in order and
turns each notice into one outbox row keyed on (audit row id, kind), so each is sent once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.core.actor import ActorKind, kind_of
from bot.core.audit import AuditRecord
from bot.core.durations import format_duration
from bot.core.events import AuditAction


class UnusualKind(StrEnum):
    OVERRIDE = "override"  # a blocked version deployed anyway (audit `deployment.override`)
    BREAK_GLASS = "break_glass"  # a rollback run at once from the command line, without approvals
    UNDO = "undo"  # a rollback rolled forward again
    REPEATED_ROLLBACKS = "repeated_rollbacks"  # more than N rollbacks of one model within a window
    OFF_HOURS = "off_hours"  # a person acted outside the configured working hours


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PEOPLE = frozenset({ActorKind.SLACK_USER, ActorKind.CLI_USER})  # alerts, CI (`api:`) and the bot are expected
# What a person does on purpose (one row per click, not the rows the bot writes while acting on it).
OFF_HOURS_ACTIONS = (
    AuditAction.PROPOSAL_CREATED, AuditAction.APPROVAL_ADDED, AuditAction.PROPOSAL_DENIED,
    AuditAction.PROPOSAL_CANCELLED, AuditAction.MODEL_FROZEN, AuditAction.MODEL_UNFROZEN, AuditAction.DEPLOY,
    AuditAction.DEPLOYMENT_OVERRIDE, AuditAction.VERSION_UNBLOCKED, AuditAction.ROLLBACK_BREAK_GLASS,
)


def utc(at: datetime) -> datetime:
    """SQLite hands times back without a zone; every stored time is UTC."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


@dataclass(frozen=True)
class RepeatedRule:
    max_rollbacks: int = 3  # more than this many in `window` is unusual
    window: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class HoursRule:
    start: time = time(8, 0)
    end: time = time(19, 0)
    days: tuple[str, ...] = WEEKDAYS[:5]
    timezone: str = "UTC"
    actions: tuple[str, ...] = OFF_HOURS_ACTIONS

    def outside(self, at: datetime) -> bool:
        local = utc(at).astimezone(ZoneInfo(self.timezone))
        if WEEKDAYS[local.weekday()] not in self.days:
            return True
        now = local.time()
        inside = self.start <= now < self.end if self.start <= self.end else (now >= self.start or now < self.end)
        return not inside

    def describe(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M} {self.timezone}, {'/'.join(self.days)}"


@dataclass(frozen=True)
class UnusualConfig:
    """The policy file's ``[audit]`` table. No channel: nothing is sent (and nothing counted)."""

    channel: str | None = None
    enabled: frozenset[UnusualKind] = frozenset(UnusualKind)
    repeated: RepeatedRule = field(default_factory=RepeatedRule)
    hours: HoursRule = field(default_factory=HoursRule)

    def on(self, kind: UnusualKind) -> bool:
        return self.channel is not None and kind in self.enabled


@dataclass(frozen=True)
class Notice:
    audit_id: int
    kind: UnusualKind
    model: str | None
    proposal_id: int | None
    text: str

    @property
    def page(self) -> str | None:
        """The page the message links to: the incident when there is one, else the model."""
        if self.proposal_id is not None:
            return f"/incidents/{self.proposal_id}"
        return f"/models/{self.model}" if self.model else None


def is_break_glass(row: AuditRecord) -> bool:
    """Break-glass is the CLI deciding a proposal itself (chat can never skip approvals)."""
    return row.action == AuditAction.ROLLBACK_BREAK_GLASS or (row.action == AuditAction.PROPOSAL_APPROVED
                                                     and kind_of(row.actor) is ActorKind.CLI_USER)


def needs_history(row: AuditRecord, config: UnusualConfig) -> bool:
    """Whether ``notices`` needs the model's earlier rollbacks for this row (the caller reads them)."""
    return (config.on(UnusualKind.REPEATED_ROLLBACKS) and row.action == AuditAction.ROLLBACK_SUCCEEDED
            and bool(row.model))


def notices(row: AuditRecord, config: UnusualConfig, earlier_rollbacks: Sequence[datetime] = ()) -> list[Notice]:
    """Every unusual thing this one audit row shows. ``earlier_rollbacks``: when the same model's previous
    successful rollbacks happened (only read when ``needs_history``)."""
    found: list[tuple[UnusualKind, str]] = []
    versions = f" {row.from_version} → {row.to_version}" if row.from_version and row.to_version else ""
    why = f": {row.reason}" if row.reason else ""
    if row.action == AuditAction.DEPLOYMENT_OVERRIDE and config.on(UnusualKind.OVERRIDE):
        found.append((UnusualKind.OVERRIDE, f"Override: {row.actor} deployed blocked version {row.to_version} of "
                                            f"{row.model}{why}"))
    if is_break_glass(row) and config.on(UnusualKind.BREAK_GLASS):
        found.append((UnusualKind.BREAK_GLASS, f"Break-glass rollback of {row.model}{versions} by {row.actor}, "
                                               "without approvals"))
    if row.action == AuditAction.PROPOSAL_CREATED and row.inputs.get("kind") == "undo" and config.on(UnusualKind.UNDO):
        found.append((UnusualKind.UNDO, f"Undo asked by {row.actor}: {row.model} back to {row.to_version} "
                                        f"(from {row.from_version}){why}"))
    if needs_history(row, config):
        rule = config.repeated
        recent = [t for t in map(utc, earlier_rollbacks) if utc(row.at) - rule.window <= t <= utc(row.at)]
        count = len(recent) + 1
        if count > rule.max_rollbacks:
            found.append((UnusualKind.REPEATED_ROLLBACKS,
                          f"{row.model} rolled back {count} times in {format_duration(rule.window)} (more than "
                          f"{rule.max_rollbacks}); latest{versions}"))
    hours = config.hours
    if (config.on(UnusualKind.OFF_HOURS) and kind_of(row.actor) in PEOPLE and row.action in hours.actions
            and hours.outside(row.at)):
        local = utc(row.at).astimezone(ZoneInfo(hours.timezone))
        found.append((UnusualKind.OFF_HOURS,
                      f"Outside working hours: {row.action} on {row.model or 'the bot'} by {row.actor} at "
                      f"{local:%a %H:%M} {hours.timezone} (hours {hours.describe()})"))
    return [Notice(row.id, kind, row.model, row.proposal_id, text) for kind, text in found]


__all__ = ["OFF_HOURS_ACTIONS", "WEEKDAYS", "HoursRule", "Notice", "RepeatedRule", "UnusualConfig", "UnusualKind",
           "is_break_glass", "needs_history", "notices"]
