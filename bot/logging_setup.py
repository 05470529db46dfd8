"""Logging for operators: one line per record, text or JSON (``LOG_FORMAT``), secrets scrubbed, libraries quiet.

Every line goes through ``redact`` after formatting, so a URL with a password or a configured secret value
never reaches the log, whatever a library put in its message or traceback. Library loggers that speak on every
tick or every command (APScheduler, Alembic, the HTTP clients, uvicorn's access log) are raised to WARNING;
the bot says what matters in its own structured lines (``bot.core.oplog``).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from bot.redact import redact

# Loggers that chatter at INFO: per-tick job lines, per-command migration context, per-request lines.
QUIET = ("apscheduler", "alembic", "httpx", "httpcore", "uvicorn.access", "uvicorn.error", "slack_sdk",
         "slack_bolt", "asyncio", "aiohttp.access", "matplotlib", "PIL", "urllib3")
# Loggers whose errors the bot reports itself, once and with context (a retried Slack call logs per attempt).
SILENT = ("slack_sdk.web.base_client", "slack_sdk.web.async_base_client")
# Messages libraries log that say nothing to an operator of this bot.
_DROPPED = ("As you gave `client` as well, `token` will be unused",)
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


class _DropKnownNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(message.startswith(d) for d in _DROPPED)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """Structured fields passed with ``extra=`` (``oplog.event`` puts them under ``fields``)."""
    found = dict(getattr(record, "fields", None) or {})
    for key, value in record.__dict__.items():
        if key not in _STANDARD and key not in ("fields", "event") and not key.startswith("_"):
            found.setdefault(key, value)
    return found


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """``2026-11-30T17:49:19.123Z INFO bot.server: message`` with secrets scrubbed; tracebacks follow."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            line += "\n" + record.exc_text
        return redact(line, self.secrets)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event (for decisions and outcomes), message, fields."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"time": _timestamp(record), "level": record.levelname.lower(),
                               "logger": record.name}
        event = getattr(record, "event", None)
        if event:
            out["event"] = event
        out["message"] = record.getMessage()
        for key, value in _fields(record).items():
            out.setdefault(key, value if isinstance(value, int | float | bool) or value is None else str(value))
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(self._scrub(out), ensure_ascii=False)

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return redact(value, self.secrets)
        if isinstance(value, dict):
            return {k: self._scrub(v) for k, v in value.items()}
        return value


def configure(*, fmt: str = "text", level: str | int = "INFO", secrets: Iterable[str] = (),
              stream: TextIO | None = None) -> logging.Handler:
    """Install the one root handler (replacing any earlier one) and quiet the libraries."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(secrets) if fmt == "json" else TextFormatter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    for name in SILENT:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    bolt = logging.getLogger("slack_bolt.AsyncApp")
    if not any(isinstance(f, _DropKnownNoise) for f in bolt.filters):
        bolt.addFilter(_DropKnownNoise())
    logging.captureWarnings(True)
    return handler


__all__ = ["QUIET", "JsonFormatter", "TextFormatter", "configure"]
