"""The one settings object: `.env` read, real environment variables win, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.config import SettingsError, check_settings, load_settings, settings_from


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for name in list(os.environ):
        if name.startswith(("SLACK_", "DATABASE_URL", "ROLLBACK_", "ALERT_", "LOG_", "MLFLOW_", "UNLEASH_",
                            "LAUNCHDARKLY_", "KUBE", "PROMETHEUS_", "AUDIT_", "GRAFANA_", "PUBLIC_URL")):
            monkeypatch.delenv(name)
    return monkeypatch


def test_env_file_is_read_for_everything_target_credentials_included(tmp_path: Path,
                                                                     clean_environment: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("SLACK_BOT_TOKEN=xoxb-from-file\nROLLBACK_WEBHOOK_SECRET=whsec-file\n"
                        "KUBERNETES_TOKEN=kube-file\nROLLBACK_POLICY=/etc/rollback-bot/rollback.toml\n"
                        "LOG_FORMAT=JSON\nSOME_PEER_SETTING=x\n")
    settings = load_settings(env_file)
    assert settings.slack_bot_token == SecretStr("xoxb-from-file")
    assert settings.policy_path == "/etc/rollback-bot/rollback.toml"
    assert settings.log_format == "json"
    creds = settings.credentials()
    assert creds["ROLLBACK_WEBHOOK_SECRET"] == "whsec-file" and creds["KUBERNETES_TOKEN"] == "kube-file"
    assert settings.extra["SOME_PEER_SETTING"] == "x"


def test_real_environment_wins_over_env_file(tmp_path: Path, clean_environment: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("ROLLBACK_WEBHOOK_SECRET=whsec-file\nDATABASE_URL=sqlite:///file.db\n")
    clean_environment.setenv("ROLLBACK_WEBHOOK_SECRET", "whsec-env")
    clean_environment.setenv("DATABASE_URL", "sqlite:///env.db")
    settings = load_settings(env_file)
    assert settings.credentials()["ROLLBACK_WEBHOOK_SECRET"] == "whsec-env"
    assert settings.database_url == "sqlite:///env.db"


def test_missing_env_file_and_blank_values_mean_defaults(tmp_path: Path,
                                                         clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("SLACK_APP_TOKEN", "  ")
    settings = load_settings(tmp_path / "absent.env")
    assert settings.slack_app_token is None and not settings.socket_mode
    assert settings.database_url == "sqlite:///./rollback-bot.db"
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings_from({"SLACK_API_URL": "http://127.0.0.1:9/api"}).slack_api_url == "http://127.0.0.1:9/api/"


def test_repr_and_str_mask_every_secret() -> None:
    settings = settings_from({
        "SLACK_BOT_TOKEN": "xoxb-very-secret", "SLACK_SIGNING_SECRET": "signing-very-secret",
        "ALERT_WEBHOOK_TOKEN": "alert-very-secret", "UNLEASH_API_TOKEN": "unleash-very-secret",
        "DATABASE_URL": "postgresql://rb:pw-very-secret@db/rb?password=qs-very-secret",
        "OTHER_API_KEY": "other-very-secret",
    })
    for shown in (repr(settings), str(settings), f"{settings}"):
        assert "very-secret" not in shown, shown
        assert "postgresql://rb:***@db/rb?password=***" in shown
    assert set(settings.secret_values()) >= {"xoxb-very-secret", "signing-very-secret", "alert-very-secret",
                                             "unleash-very-secret", "pw-very-secret", "qs-very-secret",
                                             "other-very-secret"}


def test_a_bad_value_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="LOG_FORMAT"):
        settings_from({"LOG_FORMAT": "xml"})


def test_check_needs_what_serve_needs() -> None:
    bare = settings_from({})
    problems = " ".join(check_settings(bare, command="check"))
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "ALERT_WEBHOOK_TOKEN"):
        assert name in problems
    socket = settings_from({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1", "ALERT_WEBHOOK_TOKEN": "t"})
    assert check_settings(socket, command="check") == []
    assert check_settings(settings_from({"ALERT_WEBHOOK_TOKEN": "t"}), command="deploy") == []
