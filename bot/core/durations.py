"""Durations written as people write them: ``90s``, ``15m``, ``2h``, ``1h30m``, ``7d``."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+)\s*(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION = timedelta(days=3650)  # ten years: longer is a typo, and "now - it" would overflow a datetime


def parse_duration(text: str) -> timedelta:
    """Parse ``1h30m`` style text; raise ValueError naming the accepted form."""
    raw = str(text).strip().lower().replace(" ", "")
    if not raw:
        raise ValueError("empty duration; write e.g. 30s, 15m, 2h, 1h30m or 7d")
    pos = 0
    seconds = 0.0
    for match in _PART.finditer(raw):
        if match.start() != pos:
            break
        seconds += int(match.group(1)[:20]) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(raw):
        raise ValueError(f"'{str(text)[:40]}' is not a duration; write e.g. 30s, 15m, 2h, 1h30m or 7d")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"'{str(text)[:40]}' is longer than the longest duration accepted, "
                         f"{MAX_DURATION.days}d (ten years)")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """Render a duration the short way people read it (``1h30m``, ``45s``)."""
    total = round(delta.total_seconds())
    if total <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
    return "".join(parts)
