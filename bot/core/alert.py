"""The normalised alert every source's parser produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from bot.core.severity import Severity


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Alert:
    """One alert instance. ``fingerprint`` + ``starts_at`` identify it across repeats and HA senders."""

    source: str  # alertmanager | grafana | datadog | generic
    fingerprint: str
    status: AlertStatus
    name: str
    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    severity: Severity = Severity.WARNING
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    links: dict[str, str] = field(default_factory=dict)  # generatorURL, dashboardURL, panelURL, silenceURL…
    values: dict[str, float] = field(default_factory=dict)
    # The version the alert is about (the source's ``version_label``); None: it names none.
    version: str | None = None
    # The sender says the metric has no data ("No Data"): the model's ``no_data`` decides how bad that is.
    no_data: bool = False

    @property
    def summary(self) -> str:
        return self.annotations.get("summary") or self.annotations.get("description") or self.name
