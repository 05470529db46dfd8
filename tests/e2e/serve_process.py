"""`rollback-bot serve` as a real subprocess (as an operator or Kubernetes starts it), its log in a file."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.e2e.cli import clean_env

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeProcess:
    def __init__(self, env: dict[str, str], cwd: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.cwd = cwd
        self.log_path = cwd / f"serve-{self.port}.log"
        full = clean_env(env)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", str(self.port)], env=full,
                                     cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def wait_up(self, timeout: float = 60) -> None:
        """Block until /healthz answers (or the process died: then show its log)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"serve did not come up in {timeout}s:\n{self.log()}")

    def wait_log(self, words: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if words in self.log():
                return self.log()
            time.sleep(0.1)
        raise AssertionError(f"serve never logged {words!r}:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.log()


@contextmanager
def serving(env: dict[str, str], cwd: Path) -> Iterator[ServeProcess]:
    proc = ServeProcess(env, cwd)
    try:
        proc.wait_up()
        yield proc
    finally:
        proc.stop()


@contextmanager
def scratch_postgres(admin_url: str, *, password: str | None = None) -> Iterator[tuple[str, str]]:
    """A PostgreSQL database with a generated name, dropped afterwards: (name, url); the URL may carry a
    ``?password=`` (trust authentication ignores it; the bot must still never print it)."""
    name = f"rollback_bot_rt_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}" + (f"?password={password}" if password else "")
    try:
        yield name, url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


__all__ = ["ROOT", "ServeProcess", "free_port", "scratch_postgres", "serving"]
