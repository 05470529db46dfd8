"""`rollback-bot check --connect` reaches each configured target and reports what it found."""

from __future__ import annotations

from pathlib import Path

import pytest

from devkit.fake_api import FakeSlackApi
from tests.e2e.cli import run_cli
from tests.integration.test_target_mlflow import registered_model

pytestmark = pytest.mark.mlflow


def test_check_connect_against_a_real_mlflow(mlflow_url: str, tmp_path: Path) -> None:
    name = registered_model(mlflow_url, "connect-check")
    (tmp_path / "rollback.toml").write_text(f'''
[defaults]
channel = "C0ALERTS"
[models.ranker]
target = "mlflow"
[models.ranker.mlflow]
tracking_uri = "{mlflow_url}"
registered_model = "{name}"
[models.gone]
target = "mlflow"
[models.gone.mlflow]
tracking_uri = "http://127.0.0.1:1"
timeout = "2s"
attempts = 1
''')
    with FakeSlackApi() as slack:
        env = {"ALERT_WEBHOOK_TOKEN": "abcd", "MLFLOW_TRACKING_TOKEN": "tok-secret-1", "SLACK_BOT_TOKEN": "xoxb-1",
               "SLACK_SIGNING_SECRET": "s1", "SLACK_API_URL": slack.base_url}
        out = run_cli("check", "--connect", env=env, cwd=tmp_path)
    assert "connect ranker:" in out.stdout and "alias 'champion' -> 2" in out.stdout
    assert "models.gone.mlflow:" in out.stderr and out.returncode == 1
    assert "tok-secret-1" not in out.stdout + out.stderr
    assert "connect Slack:" in out.stdout
