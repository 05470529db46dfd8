"""The Protocols the core needs from the outside world. Adapters implement them; tests have fakes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class SwitchRequest:
    model: str
    from_version: str
    to_version: str
    proposal_id: int
    reason: str
    settings: Mapping[str, Any]


@dataclass(frozen=True)
class SwitchResult:
    """What the target did, in words for the card and the audit (no secrets)."""

    detail: str
    served_version: str | None = None


@runtime_checkable
class DeploymentTarget(Protocol):
    """Where a model's live version is switched. Raise core.errors.TargetError on failure."""

    name: str

    def current_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
        """The version the system says is live, or None when it cannot tell."""
        ...

    def switch(self, request: SwitchRequest) -> SwitchResult:
        """Make ``to_version`` live; return only when the switch has happened (or raise)."""
        ...

    def served_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
        """The version actually serving traffic, where the system can tell; else None."""
        ...

    def describe(self, request: SwitchRequest) -> str:
        """What switch() would call, for dry-run; calls nothing."""
        ...
