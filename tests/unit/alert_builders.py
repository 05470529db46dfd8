"""Alerts as the parsers produce them, for tests that talk to the core directly."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core.alert import Alert, AlertStatus
from bot.core.severity import parse_severity


def alert(fingerprint: str, severity: str, *, model: str = "fraud-detector", resolved: bool = False) -> Alert:
    return Alert(source="alertmanager", fingerprint=fingerprint,
                 status=AlertStatus.RESOLVED if resolved else AlertStatus.FIRING, name="ModelErrorRateHigh",
                 labels={"model": model, "severity": severity}, annotations={"summary": f"{fingerprint} firing"},
                 severity=parse_severity(severity), starts_at=datetime(2026, 11, 2, 11, 58, tzinfo=UTC),
                 ends_at=datetime(2026, 11, 2, 12, 0, tzinfo=UTC) if resolved else None)
