"""Severities, low to high, the aliases monitoring systems use (SPEC §4), and per-source mapping tables.

Each alert source reads its sender's severity word through a table: the defaults below, with the policy's
``[sources.NAME.severity]`` entries on top. The table is data, not code, so ``rollback-bot check`` can print
exactly what a sender's ``page`` or ``P3`` will mean before any alert arrives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from types import MappingProxyType


class Severity(IntEnum):
    INFO = 10
    WARNING = 20
    CRITICAL = 30
    # Only a threshold (``auto_rollback_severity = "never"``), never an alert's severity: nothing reaches it.
    NEVER = 1000

    def __str__(self) -> str:
        return self.name.lower()


ALERT_SEVERITIES = (Severity.INFO, Severity.WARNING, Severity.CRITICAL)

ALIASES: dict[str, Severity] = {
    "info": Severity.INFO,
    "informational": Severity.INFO,
    "none": Severity.INFO,
    "low": Severity.INFO,
    "warning": Severity.WARNING,
    "warn": Severity.WARNING,
    "error": Severity.WARNING,
    "medium": Severity.WARNING,
    "critical": Severity.CRITICAL,
    "page": Severity.CRITICAL,
    "high": Severity.CRITICAL,
}


def parse_severity(value: object, default: Severity = Severity.WARNING) -> Severity:
    """Map a label value to a Severity; unknown and missing values read as ``default`` (warning)."""
    if value is None:
        return default
    return ALIASES.get(str(value).strip().lower(), default)


def is_known_severity(value: str) -> bool:
    return value.strip().lower() in ALIASES


def _frozen(entries: Mapping[str, Severity]) -> Mapping[str, Severity]:
    return MappingProxyType({k.strip().lower(): v for k, v in entries.items()})


@dataclass(frozen=True)
class SeverityTable:
    """A sender's severity words to ours; case-insensitive; anything not listed reads as ``default``."""

    entries: Mapping[str, Severity] = field(default_factory=lambda: _frozen(ALIASES))
    default: Severity = Severity.WARNING

    def lookup(self, value: object) -> Severity | None:
        """The listed severity of ``value``, or None when the table does not list it."""
        if value is None:
            return None
        return self.entries.get(str(value).strip().lower())

    def read(self, value: object) -> Severity:
        found = self.lookup(value)
        return self.default if found is None else found

    def with_entries(self, overrides: Mapping[str, Severity]) -> SeverityTable:
        """This table with the policy's entries on top (they win over the defaults)."""
        return SeverityTable(_frozen({**self.entries, **overrides}), self.default)

    def describe(self) -> str:
        """One line for ``rollback-bot check``: every listed word, grouped by what it reads as."""
        groups: dict[Severity, list[str]] = {}
        for word, severity in sorted(self.entries.items()):
            groups.setdefault(severity, []).append(word)
        parts = [f"{', '.join(words)} → {sev}" for sev, words in sorted(groups.items(), reverse=True)]
        return "; ".join([*parts, f"anything else → {self.default}"])


# Datadog's severity comes from the notification's transition and alert type (adapters/alerts/datadog.py);
# its table reads a monitor's ``severity`` tag, and a priority only when the policy lists it (P1…P5 are not
# in the default), and either can only lower what the transition says.
DEFAULT_TABLES: Mapping[str, SeverityTable] = MappingProxyType({
    "alertmanager": SeverityTable(),
    "grafana": SeverityTable(),
    "generic": SeverityTable(),
    "datadog": SeverityTable(),
})


def default_table(source: str) -> SeverityTable:
    return DEFAULT_TABLES.get(source, SeverityTable())


__all__ = [
    "ALERT_SEVERITIES",
    "ALIASES",
    "DEFAULT_TABLES",
    "Severity",
    "SeverityTable",
    "default_table",
    "is_known_severity",
    "parse_severity",
]
