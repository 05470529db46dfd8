"""Where `serve` runs its workers: WORKER_MODE, and what each value means for each database."""

from __future__ import annotations

import threading

import pytest

from bot.config import settings_from
from bot.worker_process import WorkerProcess, mode_problem, uses_worker_process

PG = "postgresql+psycopg://bot@127.0.0.1:5432/bot"
SQLITE = "sqlite:///./rollback-bot.db"


@pytest.mark.parametrize(("mode", "url", "process"), [
    (None, PG, True),  # auto: PostgreSQL wakes the workers across processes (NOTIFY)
    (None, SQLITE, False),  # auto: SQLite stays in one process
    ("process", PG, True),
    ("thread", PG, False),
    ("thread", SQLITE, False),
    ("AUTO", PG, True),  # any case, as LOG_FORMAT
])
def test_worker_mode(mode: str | None, url: str, process: bool) -> None:
    env = {"DATABASE_URL": url, **({"WORKER_MODE": mode} if mode else {})}
    settings = settings_from(env)
    assert uses_worker_process(settings) is process
    assert mode_problem(settings) is None


def test_a_worker_process_on_sqlite_is_a_problem_that_says_what_to_do() -> None:
    problem = mode_problem(settings_from({"DATABASE_URL": SQLITE, "WORKER_MODE": "process"}))
    assert problem is not None and "needs PostgreSQL" in problem and "WORKER_MODE=auto or thread" in problem


def test_the_worker_process_is_never_forked_beside_another_thread() -> None:
    release = threading.Event()
    other = threading.Thread(target=release.wait, name="busy")
    other.start()
    try:
        with pytest.raises(RuntimeError, match="before any thread starts"):
            WorkerProcess(lambda lifeline: 0).start()
    finally:
        release.set()
        other.join()
