"""Time, injected so tests can move it. All times are timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core.ports import Clock as Clock  # the port is defined with the others


def utcnow() -> datetime:
    return datetime.now(UTC)


class SystemClock:
    def now(self) -> datetime:
        return utcnow()


class ManualClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or utcnow()
        assert self._now.utcoffset() is not None, "ManualClock needs an aware datetime"

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta
