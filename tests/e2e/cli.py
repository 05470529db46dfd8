"""Run the real `rollback-bot` command line in a subprocess, as an operator would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# What the bot reads from the environment: the tests' own process must not leak any of it into the CLI's.
BOT_VARIABLES = ("SLACK_", "DATABASE_URL", "ROLLBACK_", "ALERT_WEBHOOK_TOKEN", "LOG_", "MLFLOW_TRACKING_",
                 "UNLEASH_API_TOKEN", "LAUNCHDARKLY_API_TOKEN", "KUBERNETES_TOKEN", "PROMETHEUS_", "AUDIT_",
                 "GRAFANA_", "PUBLIC_URL")


def clean_env(env: dict[str, str]) -> dict[str, str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(BOT_VARIABLES)}
    full_env.update(env)
    full_env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return full_env


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], env=clean_env(env), cwd=cwd, capture_output=True,
                          text=True, timeout=120)
