"""A database outage is one line when it starts and one when it ends, with the driver's reason."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from sqlalchemy.exc import OperationalError, ProgrammingError

from bot.database_health import Outage, is_database_error, reason
from bot.logging_setup import configure


class _Orig(Exception):
    pass


def operational(message: str) -> OperationalError:
    return OperationalError("SELECT 1", {}, _Orig(message))


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    out = io.StringIO()
    configure(fmt="json", stream=out)
    yield out
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def test_reason_is_the_servers_own_words_in_one_line() -> None:
    exc = operational('connection failed: connection to server at "127.0.0.1", port 5432 failed: '
                      'FATAL:  database "rb" does not exist\n')
    assert reason(exc) == 'database "rb" does not exist'
    refused = operational('connection failed: connection to server at "127.0.0.1", port 1 failed: Connection '
                          'refused\n\tIs the server running on that host and accepting TCP/IP connections?')
    assert reason(refused) == "Connection refused"
    assert reason(operational("could not connect to postgresql://u:pw@h/d?password=pw")) == (
        "could not connect to postgresql://u:***@h/d?password=***")


def test_is_database_error_tells_an_outage_from_a_bad_query() -> None:
    assert is_database_error(operational("server closed the connection unexpectedly"))
    assert not is_database_error(ProgrammingError("SELECT x", {}, _Orig("column x does not exist")))
    assert not is_database_error(ValueError("x"))


def test_one_line_per_outage_and_one_when_it_ends(log_lines: io.StringIO) -> None:
    outage = Outage()
    outage.recovered()  # nothing was down: nothing to say
    for where in ("sweeper deadlines", "/readyz", "sweeper cards", "/deployments"):
        outage.failed(operational("Connection refused"), where)
    assert outage.down
    outage.recovered()
    outage.recovered()
    outage.failed(operational("the database system is shutting down"), "sweeper stable")
    events = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    assert [(e["event"], e.get("reason")) for e in events] == [
        ("database.down", "Connection refused"), ("database.up", None),
        ("database.down", "the database system is shutting down")]
    assert events[1]["failures"] == 4 and events[0]["where"] == "sweeper deadlines"
