"""Settings from the environment and an optional `.env` file (real environment variables win).

Read once, in the entry point; nothing reads the environment at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_DATABASE_URL = "sqlite:///./rollback-bot.db"


@dataclass(frozen=True)
class Settings:
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    database_url: str = DEFAULT_DATABASE_URL
    policy_path: str = "./rollback.toml"
    alert_webhook_token: str | None = None
    prometheus_url: str | None = None
    public_url: str | None = None
    grafana_webhook_secret: str | None = None
    grafana_signature_header: str = "X-Grafana-Alert-Signature"  # grafana/alerting's default name
    grafana_timestamp_header: str | None = None  # Grafana's default: no timestamp in the signature
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def socket_mode(self) -> bool:
        return bool(self.slack_app_token)

    def secret_values(self) -> list[str]:
        """Every configured secret, so logs and messages can redact them."""
        names = ("slack_bot_token", "slack_signing_secret", "slack_app_token", "alert_webhook_token",
                 "grafana_webhook_secret")
        values = [getattr(self, n) for n in names]
        values += [v for k, v in self.extra.items() if k.endswith(("_TOKEN", "_SECRET", "_PASSWORD"))]
        return [v for v in values if v and len(v) >= 4]


def load_environment(env_file: str | Path | None = ".env",
                     environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Merge `.env` under the real environment."""
    merged: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return merged


def settings_from(env: Mapping[str, str]) -> Settings:
    def get(name: str) -> str | None:
        value = env.get(name)
        return value.strip() if value and value.strip() else None

    api_url = get("SLACK_API_URL") or DEFAULT_SLACK_API_URL
    if not api_url.endswith("/"):
        api_url += "/"
    return Settings(
        slack_bot_token=get("SLACK_BOT_TOKEN"),
        slack_signing_secret=get("SLACK_SIGNING_SECRET"),
        slack_app_token=get("SLACK_APP_TOKEN"),
        slack_api_url=api_url,
        database_url=get("DATABASE_URL") or DEFAULT_DATABASE_URL,
        policy_path=get("ROLLBACK_POLICY") or "./rollback.toml",
        alert_webhook_token=get("ALERT_WEBHOOK_TOKEN"),
        prometheus_url=get("PROMETHEUS_URL"),
        public_url=get("PUBLIC_URL"),
        grafana_webhook_secret=get("GRAFANA_WEBHOOK_SECRET"),
        grafana_signature_header=get("GRAFANA_SIGNATURE_HEADER") or "X-Grafana-Alert-Signature",
        grafana_timestamp_header=get("GRAFANA_TIMESTAMP_HEADER"),
        extra=dict(env),
    )


def check_settings(settings: Settings, *, command: str) -> list[str]:
    """Problems with the environment for ``command`` (serve needs Slack credentials; others do not)."""
    problems: list[str] = []
    if command == "serve":
        if not settings.slack_bot_token:
            problems.append("SLACK_BOT_TOKEN: not set; `serve` needs the bot token (xoxb-…) of your Slack app")
        elif not settings.slack_bot_token.startswith("xox"):
            problems.append("SLACK_BOT_TOKEN: does not look like a Slack token (expected xoxb-…)")
        if not settings.socket_mode and not settings.slack_signing_secret:
            problems.append(
                "SLACK_SIGNING_SECRET: not set; HTTP mode needs it to verify Slack's requests "
                "(or set SLACK_APP_TOKEN for Socket Mode)"
            )
        if settings.slack_app_token and not settings.slack_app_token.startswith("xapp-"):
            problems.append("SLACK_APP_TOKEN: does not look like an app-level token (expected xapp-…)")
    if not settings.alert_webhook_token:
        problems.append(
            "ALERT_WEBHOOK_TOKEN: not set; /alerts/*, /deployments and /api/* refuse every request until it is"
        )
    if not settings.grafana_webhook_secret and (
        settings.grafana_timestamp_header or settings.grafana_signature_header != "X-Grafana-Alert-Signature"
    ):
        problems.append("GRAFANA_WEBHOOK_SECRET: not set, so the Grafana signature headers configured are never "
                        "checked; set it to the contact point's HMAC secret")
    if not settings.database_url.startswith(("sqlite", "postgres")):
        problems.append("DATABASE_URL: use sqlite:///path.db or postgresql+psycopg://user@host/db")
    return problems
