"""Severities, low to high, with the aliases that monitoring systems use (SPEC §4)."""

from __future__ import annotations

from enum import IntEnum


class Severity(IntEnum):
    INFO = 10
    WARNING = 20
    CRITICAL = 30

    def __str__(self) -> str:
        return self.name.lower()


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
