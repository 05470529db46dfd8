"""Operator log: one structured line per decision, switch and outcome, under a stable event name.

``event("rollback.succeeded", model=..., proposal=...)`` logs ``rollback.succeeded model=fraud-detector
proposal=7 …`` as text, or a JSON object with ``event`` and each field as a key (``LOG_FORMAT=json``). The
event names are the contract operators alert on; the call sites may move between modules, the names do not.
"""

from __future__ import annotations

import logging
from typing import Any

LOGGER = "rollback_bot.events"
_log = logging.getLogger(LOGGER)


def _text(value: Any) -> str:
    text = str(value)
    return f'"{text}"' if not text or any(c in text for c in ' "=') else text


def event(name: str, /, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log one line for ``name`` with ``fields`` (None values are left out)."""
    if not _log.isEnabledFor(level):
        return
    shown = {k: v for k, v in fields.items() if v is not None}
    message = " ".join([name, *(f"{k}={_text(v)}" for k, v in shown.items())])
    _log.log(level, message, extra={"event": name, "fields": shown})


__all__ = ["LOGGER", "event"]
