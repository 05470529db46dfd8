"""Operator logs: JSON or text, one line per record, secrets scrubbed, libraries quiet."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.core import oplog
from bot.logging_setup import configure


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def test_json_lines_carry_the_event_and_its_fields(restore_logging: None) -> None:
    out = io.StringIO()
    configure(fmt="json", secrets=["s3cr3t-value"], stream=out)
    oplog.event("rollback.succeeded", model="fraud-detector", proposal=7, seconds=1.25, detail="used s3cr3t-value")
    logging.getLogger("bot.x").warning("db at %s", "postgresql://u:pw@h/d?password=pw")
    try:
        raise RuntimeError("boom s3cr3t-value")
    except RuntimeError:
        logging.getLogger("bot.x").exception("failed")
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    first, second, third = (json.loads(line) for line in lines)
    assert first["event"] == "rollback.succeeded" and first["proposal"] == 7 and first["seconds"] == 1.25
    assert first["model"] == "fraud-detector" and first["level"] == "info"
    assert "s3cr3t-value" not in out.getvalue() and ":pw@" not in out.getvalue() and "password=pw" not in out.getvalue()
    assert second["message"] == "db at postgresql://u:***@h/d?password=***"
    assert "RuntimeError" in third["error"]


def test_text_lines_and_quiet_libraries(restore_logging: None) -> None:
    out = io.StringIO()
    configure(fmt="text", stream=out)
    oplog.event("proposal.created", model="ranker", why="error rate 12% > 5%")
    logging.getLogger("apscheduler.executors.default").info("Running job ... (trigger: interval)")
    logging.getLogger("alembic.runtime.migration").info("Context impl PostgresqlImpl.")
    logging.getLogger("slack_bolt.AsyncApp").warning("As you gave `client` as well, `token` will be unused.")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].endswith('INFO rollback_bot.events: proposal.created model=ranker why="error rate 12% > 5%"')
