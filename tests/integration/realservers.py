"""Install (cached) and start the real MLflow and Unleash servers on loopback for the test session.

Installs go to a cache outside the repository (``$ROLLBACK_BOT_TEST_CACHE``, else
``$XDG_CACHE_HOME/rollback-bot-test``, else ``~/.cache/rollback-bot-test``), so only the first run pays.
Servers are started in their own process group and stopped as a group. A missing tool skips the test,
except under CI=true, where it fails and says what to install.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

MLFLOW_SPEC = os.environ.get("ROLLBACK_BOT_TEST_MLFLOW", "mlflow==3.17.2")  # the version these tests were run with
UNLEASH_VERSION = "7.5.1"
TIMINGS: dict[str, float] = {}


def cache_dir() -> Path:
    explicit = os.environ.get("ROLLBACK_BOT_TEST_CACHE")
    base = (
        Path(explicit)
        if explicit
        else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rollback-bot-test"
    )
    base.mkdir(parents=True, exist_ok=True)
    return base


def unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: install it before the tests run)")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def record(name: str, seconds: float) -> None:
    TIMINGS[name] = round(seconds, 2)
    print(f"[timing] {name}: {seconds:.2f}s", file=sys.stderr)


def _run(cmd: list[str], cwd: Path | None, timeout: float, what: str) -> None:
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        unavailable(f"{what} failed (exit {proc.returncode}): {proc.stderr[-1500:]}")
    record(what, time.monotonic() - started)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


def _wait_ready(proc: subprocess.Popen[bytes], url: str, timeout: float, log: Path, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{what} not ready after {timeout}s: {log.read_text()[-3000:]}")


# -- MLflow -------------------------------------------------------------------------------------------------
def mlflow_venv() -> Path:
    venv = cache_dir() / "mlflow-venv"
    if (venv / ".complete").exists() and (venv / "bin" / "mlflow").exists():
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    _run([sys.executable, "-m", "venv", str(venv)], None, 120, "mlflow venv create")
    _run([str(venv / "bin" / "pip"), "install", "-q", MLFLOW_SPEC], None, 1200, "pip install mlflow")
    (venv / ".complete").touch()
    return venv


@contextmanager
def mlflow_server(workdir: Path) -> Iterator[str]:
    venv = mlflow_venv()
    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    log = workdir / "mlflow.log"
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(venv / "bin" / "mlflow"),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--backend-store-uri",
                f"sqlite:///{workdir / 'mlflow.db'}",
                "--default-artifact-root",
                str(workdir / "artifacts"),
                "--workers",
                "1",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_ready(proc, f"http://127.0.0.1:{port}/health", 120, log, "mlflow server")
        record("mlflow server start", time.monotonic() - started)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop_group(proc)


# -- Unleash ------------------------------------------------------------------------------------------------
UNLEASH_SCRIPT = """
const unleash = require('unleash-server');
const cfg = JSON.parse(process.env.UNLEASH_TEST_CONFIG);
unleash.start({
  db: { host: cfg.pgHost, port: cfg.pgPort, user: cfg.pgUser, password: cfg.pgPassword, database: cfg.database,
        ssl: false },
  server: { host: '127.0.0.1', port: cfg.port },
  authentication: { initApiTokens: [
    { secret: cfg.adminToken, type: 'admin', environment: '*', projects: ['*'], tokenName: 'admin' },
    { secret: cfg.clientToken, type: 'client', environment: 'development', projects: ['*'],
      tokenName: 'client' } ] },
  versionCheck: { enable: false },
  telemetry: false,
  logLevel: 'warn',
}).catch((e) => { console.error(e); process.exit(1); });
"""


def unleash_install() -> Path:
    home = cache_dir() / f"unleash-{UNLEASH_VERSION}"
    if (home / ".complete").exists() and (home / "node_modules" / "unleash-server").exists():
        return home
    if shutil.which("node") is None or shutil.which("npm") is None:
        unavailable("node and npm are needed for the Unleash server (Node 20: apt-get install nodejs npm)")
    home.mkdir(parents=True, exist_ok=True)
    (home / "package.json").write_text(json.dumps({"name": "unleash-runner", "private": True}))
    _run(
        ["npm", "install", "--no-audit", "--no-fund", f"unleash-server@{UNLEASH_VERSION}"],
        home,
        900,
        "npm install unleash-server",
    )
    (home / ".complete").touch()
    return home


def _pg_admin() -> dict[str, Any]:
    """Where the Unleash database goes: the server of TEST_POSTGRES_URL (the same one the other tests use)."""
    from sqlalchemy.engine import make_url

    url = make_url(os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    return {"host": url.host or "127.0.0.1", "port": url.port or 5432, "user": url.username or "postgres",
            "password": url.password or "", "dbname": url.database or "postgres"}


def _admin_execute(pg: dict[str, Any], statement: str) -> None:
    try:
        import psycopg
    except ImportError:
        unavailable("psycopg is needed to create the Unleash database")
    try:
        with psycopg.connect(**pg, autocommit=True, connect_timeout=5) as conn:
            conn.execute(statement)
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL at {pg['host']}:{pg['port']} (user {pg['user']}) is needed for Unleash: {exc}")


@contextmanager
def unleash_server(workdir: Path) -> Iterator[dict[str, str]]:
    home = unleash_install()
    pg = _pg_admin()
    # A name this run generated: the test creates it and drops it, and never touches any other database.
    database = f"rollback_bot_unleash_{uuid.uuid4().hex[:10]}"
    port = free_port()
    admin, client = "*:*.rollback-bot-admin-secret", "*:development.rollback-bot-client-secret"
    config = {
        "pgHost": pg["host"],
        "pgPort": pg["port"],
        "pgUser": pg["user"],
        "pgPassword": pg["password"],
        "database": database,
        "port": port,
        "adminToken": admin,
        "clientToken": client,
    }
    script = home / "start-test-server.cjs"
    script.write_text(UNLEASH_SCRIPT)
    env = {
        **os.environ,
        "UNLEASH_TEST_CONFIG": json.dumps(config),
        "CHECK_VERSION": "false",
        "SEND_TELEMETRY": "false",
        "INIT_ADMIN_API_TOKENS": admin,
        "INIT_BACKEND_API_TOKENS": client,
        "NODE_ENV": "production",
    }
    log = workdir / "unleash.log"
    started = time.monotonic()
    _admin_execute(pg, f'CREATE DATABASE "{database}"')
    proc: subprocess.Popen[bytes] | None = None
    try:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["node", str(script)],
                cwd=home,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_ready(proc, f"http://127.0.0.1:{port}/health", 90, log, "unleash server")
        record("unleash server start", time.monotonic() - started)
        yield {"url": f"http://127.0.0.1:{port}", "admin_token": admin, "client_token": client}
    finally:
        if proc is not None:
            _stop_group(proc)
        _admin_execute(pg, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
