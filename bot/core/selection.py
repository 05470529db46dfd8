"""Which version a rollback goes back to (SPEC §5)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.core.errors import NoRollbackTarget, UnknownVersion


@dataclass(frozen=True)
class Deployment:
    id: int
    model: str
    version: str
    deployed_at: datetime
    deployed_by: str | None = None
    source: str | None = None
    stable_at: datetime | None = None
    rolled_back_at: datetime | None = None


@dataclass(frozen=True)
class Block:
    """One blocking of a rolled-back version (bot/core/blocking.py): who rolled it back, when and why; and,
    once lifted, who lifted it and why."""

    id: int
    model: str
    version: str
    blocked_at: datetime
    blocked_by: str
    reason: str
    proposal_id: int | None = None
    unblocked_at: datetime | None = None
    unblocked_by: str | None = None
    unblock_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.unblocked_at is None

    def why(self) -> str:
        """Who, when and why, in one sentence for the 409 answer, the CLI and Slack."""
        by = f"rollback #{self.proposal_id}" if self.proposal_id is not None else "a rollback"
        return (f"version {self.version} of {self.model} was rolled back by {self.blocked_by} at "
                f"{self.blocked_at:%Y-%m-%d %H:%M} UTC ({by}): {self.reason or 'no reason given'}")


@dataclass(frozen=True)
class Choice:
    from_version: str
    to_version: str
    note: str  # why this version, in words shown on the card


def bad_versions(history: Sequence[Deployment]) -> set[str]:
    return {d.version for d in history if d.rolled_back_at is not None}


def _good_earlier(history: Sequence[Deployment]) -> list[Deployment]:
    """Earlier deployments of other versions that were never rolled back, oldest first."""
    current = history[-1]
    bad = bad_versions(history)
    return [d for d in history[:-1] if d.version != current.version and d.version not in bad]


def last_stable(history: Sequence[Deployment]) -> Deployment | None:
    """The newest earlier deployment that became stable and whose version was never rolled back."""
    if not history:
        return None
    return next((d for d in reversed(_good_earlier(history)) if d.stable_at is not None), None)


def choose_target(model: str, history: Sequence[Deployment], requested: str | None = None) -> Choice:
    """Pick the version to roll back to from the model's history, oldest first.

    The last stable version: the newest earlier deployment that became stable and whose version was never
    rolled back. If none is stable, the previous deployment of another good version, and the note says so.
    """
    if not history:
        raise NoRollbackTarget(
            f"{model} has no recorded deployment; report deployments with POST /deployments "
            f"or `rollback-bot deploy {model} VERSION`"
        )
    current = history[-1]
    earlier = [d for d in history[:-1] if d.version != current.version]
    if requested is not None:
        if requested == current.version:
            raise UnknownVersion(f"{model} already runs version {requested}; choose an earlier version")
        if not any(d.version == requested for d in earlier):
            known = ", ".join(dict.fromkeys(d.version for d in reversed(earlier))) or "none"
            raise UnknownVersion(
                f"{model} never ran version {requested} before {current.version}; earlier versions: {known}"
            )
        note = f"version {requested} chosen by hand"
        if requested in bad_versions(history):
            note += " (it was rolled back before)"
        return Choice(current.version, requested, note)
    stable = last_stable(history)
    if stable is not None:
        since = f"{stable.stable_at:%Y-%m-%d %H:%M}"
        return Choice(current.version, stable.version, f"last stable version (stable since {since} UTC)")
    good = _good_earlier(history)
    if good:
        return Choice(
            current.version,
            good[-1].version,
            "no earlier version became stable; this is the previous deployment",
        )
    if earlier:
        raise NoRollbackTarget(
            f"{model} has no earlier version that was not rolled back "
            f"(rolled back: {', '.join(sorted(bad_versions(history)))}); name one with `to VERSION`"
        )
    raise NoRollbackTarget(f"{model} has only ever run version {current.version}: there is nothing to roll back to")
