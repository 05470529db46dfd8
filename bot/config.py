"""Settings: one object read from the environment and an optional `.env` file (real environment variables win).

Read once, in the entry point; nothing reads the environment at import time. Every credential, the targets'
included, lives here as a ``SecretStr``, so printing the object (or a traceback that shows it) never shows one;
targets get theirs through ``Settings.credentials()``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values
from pydantic import Field, PrivateAttr, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.redact import mask_url, url_secrets

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_DATABASE_URL = "sqlite:///./rollback-bot.db"
DEFAULT_POLICY_PATH = "./rollback.toml"

# Environment names the deployment targets and the metrics source read their credentials from.
CREDENTIAL_NAMES = (
    "ROLLBACK_WEBHOOK_SECRET", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
    "UNLEASH_API_TOKEN", "LAUNCHDARKLY_API_TOKEN", "KUBERNETES_TOKEN", "KUBECONFIG",
    "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "PROMETHEUS_TOKEN",
)
# Undeclared variables with these endings are treated as secrets too (masked wherever they could show).
SECRET_SUFFIXES = ("_TOKEN", "_SECRET", "_PASSWORD", "_KEY", "_PASS", "_APIKEY")


class SettingsError(ValueError):
    """A variable that cannot be read (e.g. ``LOG_FORMAT=xml``); the message names it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True, case_sensitive=False,
        populate_by_name=True, env_ignore_empty=True,
    )

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    database_url: str = DEFAULT_DATABASE_URL
    policy_path: str = Field(DEFAULT_POLICY_PATH, validation_alias="rollback_policy")
    alert_webhook_token: SecretStr | None = None
    prometheus_url: str | None = None
    public_url: str | None = None
    grafana_webhook_secret: SecretStr | None = None
    grafana_signature_header: str = "X-Grafana-Alert-Signature"  # grafana/alerting's default name
    grafana_timestamp_header: str | None = None  # Grafana's default: no timestamp in the signature
    audit_hmac_key: SecretStr | None = None
    audit_anchor_path: str | None = None
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Workers: an executor or decider that died is replaced after the lease; the poll is the fallback when a
    # wake-up was lost; every HTTP request of `serve` is answered (503 at worst) within the deadline.
    executor_lease_seconds: float = Field(15.0, gt=0, le=3600)
    worker_poll_seconds: float = Field(1.0, gt=0, le=600)
    request_deadline_seconds: float = Field(4.5, gt=0, le=600)
    # Threads that run a request's blocking work (parsing, the database). More than a few per core only adds
    # contention for the interpreter lock and for pooled connections; the pool is sized above this.
    request_threads: int = Field(8, ge=1, le=64)
    # Where `serve` runs its workers: a process of their own (`process`), threads beside the HTTP server
    # (`thread`), or `auto`: a process on PostgreSQL, threads on SQLite (bot/worker_process.py says why).
    worker_mode: Literal["auto", "process", "thread"] = "auto"

    # Target and metrics credentials (see CREDENTIAL_NAMES).
    rollback_webhook_secret: SecretStr | None = None
    mlflow_tracking_token: SecretStr | None = None
    mlflow_tracking_username: str | None = None
    mlflow_tracking_password: SecretStr | None = None
    unleash_api_token: SecretStr | None = None
    launchdarkly_api_token: SecretStr | None = None
    kubernetes_token: SecretStr | None = None
    kubeconfig: str | None = None
    kubernetes_service_host: str | None = None
    kubernetes_service_port: str | None = None
    prometheus_token: SecretStr | None = None

    # Everything the environment and `.env` held (real variables win), for a setting read by name elsewhere.
    # Private, so it is never shown: it may hold anything.
    _environ: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_default(cls, value: Any, info: ValidationInfo) -> Any:
        """Blank means unset, as in a `.env` written `SLACK_APP_TOKEN=`; names and levels in any case."""
        if isinstance(value, str):
            value = value.strip()
            if info.field_name in ("log_format", "log_level", "worker_mode"):
                value = value.upper() if info.field_name == "log_level" else value.lower()
        if value is None or value == "":
            assert info.field_name is not None
            return cls.model_fields[info.field_name].get_default(call_default_factory=True)
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _slack_api_url(cls, value: str) -> str:
        return value if value.endswith("/") else f"{value}/"

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if name in ("database_url", "prometheus_url", "public_url",
                                                    "slack_api_url") and isinstance(value, str) else value

    @property
    def extra(self) -> Mapping[str, str]:
        return self._environ

    def with_environ(self, environ: Mapping[str, str]) -> Settings:
        """A copy that also knows every raw variable (for credentials a target reads by name)."""
        copy = self.model_copy()
        copy._environ = dict(environ)
        return copy

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    def credentials(self) -> dict[str, str]:
        """What the targets read by environment name: every variable seen, declared credentials on top."""
        found = dict(self.extra)
        for name in CREDENTIAL_NAMES:
            value = getattr(self, name.lower())
            if isinstance(value, SecretStr):
                found[name] = value.get_secret_value()
            elif value is not None:
                found[name] = value
        return found

    def secret_values(self) -> list[str]:
        """Every configured secret, so logs and messages can redact them."""
        values: list[str] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                values.append(value.get_secret_value())
        values += [v for k, v in self.extra.items() if k.upper().endswith(SECRET_SUFFIXES)]
        for url in (self.database_url, self.prometheus_url, self.slack_api_url, self.public_url):
            values += url_secrets(url or "")
        for v in self.extra.values():
            if "://" in v:
                values += url_secrets(v)
        return sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True)


def reveal(secret: SecretStr | None) -> str | None:
    """The value of a secret for the one place that sends it (a header, a client); never for printing."""
    return None if secret is None else secret.get_secret_value()


def _explain(exc: ValidationError) -> SettingsError:
    parts = []
    for err in exc.errors():
        name = str(err["loc"][0]).upper() if err.get("loc") else "settings"
        parts.append(f"{'ROLLBACK_POLICY' if name == 'POLICY_PATH' else name}: {err['msg']}")
    return SettingsError("; ".join(parts))


def load_settings(env_file: str | Path | None = ".env") -> Settings:
    """The environment over `.env` (when the file exists). Raises SettingsError naming a bad variable."""
    use_file = env_file is not None and Path(env_file).is_file()
    raw = load_environment(env_file if use_file else None)
    try:
        settings = Settings(_env_file=str(env_file) if use_file else None)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise _explain(exc) from None
    return settings.with_environ(raw)


def load_environment(env_file: str | Path | None = ".env",
                     environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Merge `.env` under the real environment."""
    merged: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return merged


def settings_from(env: Mapping[str, str]) -> Settings:
    """Settings from this mapping only (tests, the demo): neither the process environment nor `.env`."""
    values = {k.lower(): v for k, v in env.items() if k.lower() in Settings.model_fields}
    if "ROLLBACK_POLICY" in env:
        values["policy_path"] = env["ROLLBACK_POLICY"]
    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        raise _explain(exc) from None
    return settings.with_environ(env)


def check_settings(settings: Settings, *, command: str) -> list[str]:
    """Problems with the environment for ``command``: `serve` and `check` need Slack; others do not."""
    problems: list[str] = []
    if command in ("serve", "check"):
        bot_token = reveal(settings.slack_bot_token)
        if not bot_token:
            problems.append("SLACK_BOT_TOKEN: not set; `serve` needs the bot token (xoxb-…) of your Slack app")
        elif not bot_token.startswith("xox"):
            problems.append("SLACK_BOT_TOKEN: does not look like a Slack token (expected xoxb-…)")
        if not settings.socket_mode and settings.slack_signing_secret is None:
            problems.append(
                "SLACK_SIGNING_SECRET: not set; HTTP mode needs it to verify Slack's requests "
                "(or set SLACK_APP_TOKEN for Socket Mode)"
            )
        app_token = reveal(settings.slack_app_token)
        if app_token and not app_token.startswith("xapp-"):
            problems.append("SLACK_APP_TOKEN: does not look like an app-level token (expected xapp-…)")
    if settings.alert_webhook_token is None and command != "serve":
        problems.append(
            "ALERT_WEBHOOK_TOKEN: not set; /alerts/*, /deployments and /api/* refuse every request until it is"
        )
    from bot.report.links import link_problems  # report hook: PAGE_LINK_KEY / PAGE_LINK_TTL

    problems += link_problems(settings.extra)
    if not settings.grafana_webhook_secret and (
        settings.grafana_timestamp_header or settings.grafana_signature_header != "X-Grafana-Alert-Signature"
    ):
        problems.append("GRAFANA_WEBHOOK_SECRET: not set, so the Grafana signature headers configured are never "
                        "checked; set it to the contact point's HMAC secret")
    if not settings.database_url.startswith(("sqlite", "postgres")):
        problems.append("DATABASE_URL: use sqlite:///path.db or postgresql+psycopg://user@host/db")
    return problems


__all__ = ["CREDENTIAL_NAMES", "Settings", "SettingsError", "check_settings", "load_environment", "load_settings",
           "reveal", "settings_from"]
