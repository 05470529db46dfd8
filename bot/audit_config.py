"""Audit settings from the environment: the HMAC key ring and where chain-head anchors go.

Read from the same environment mapping as the rest of the settings (``Settings.extra``), so this module
stays independent of how the settings class itself is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.core.audit import AuditKeyError, KeyRing, key_ring_from

DEFAULT_ANCHOR_INTERVAL = 60.0


def _plain(value: Any) -> str | None:
    """A setting's value, revealing a pydantic SecretStr (only to build the key ring, never to print)."""
    if value is None:
        return None
    reveal = getattr(value, "get_secret_value", None)
    return str(reveal() if callable(reveal) else value)


def environment(settings: Any) -> Mapping[str, str]:
    """The raw variables, with the declared settings (AUDIT_HMAC_KEY, AUDIT_ANCHOR_PATH) on top."""
    raw = getattr(settings, "extra", None)
    env = dict(raw) if isinstance(raw, Mapping) else {}
    for name in ("audit_hmac_key", "audit_anchor_path"):
        value = _plain(getattr(settings, name, None))
        if value:
            env[name.upper()] = value
    return env


def slack_token(settings: Any) -> str | None:
    return _plain(getattr(settings, "slack_bot_token", None))


def key_ring(settings: Any) -> KeyRing:
    """The key ring; raises AuditKeyError with a message that names the variable, never the key."""
    return key_ring_from(environment(settings))


@dataclass(frozen=True)
class AnchorSettings:
    path: str | None = None
    channel: str | None = None
    interval: float = DEFAULT_ANCHOR_INTERVAL

    @property
    def enabled(self) -> bool:
        return bool(self.path or self.channel)


def anchor_settings(settings: Any) -> AnchorSettings:
    env = environment(settings)
    raw = (env.get("AUDIT_ANCHOR_INTERVAL") or "").strip()
    try:
        interval = float(raw) if raw else DEFAULT_ANCHOR_INTERVAL
    except ValueError:
        raise AuditKeyError("AUDIT_ANCHOR_INTERVAL: must be a number of seconds") from None
    if not 1 <= interval <= 86400:
        raise AuditKeyError("AUDIT_ANCHOR_INTERVAL: must be between 1 and 86400 seconds")
    return AnchorSettings(path=(env.get("AUDIT_ANCHOR_PATH") or "").strip() or None,
                          channel=(env.get("AUDIT_ANCHOR_CHANNEL") or "").strip() or None, interval=interval)


def problems(settings: Any, *, command: str) -> list[str]:
    """What `serve` (and `check`) must refuse: a missing key on a production database, an unusable ring."""
    found: list[str] = []
    try:
        ring = key_ring(settings)
        anchors = anchor_settings(settings)
    except AuditKeyError as exc:
        return [str(exc)]
    if anchors.channel and not slack_token(settings):
        found.append("AUDIT_ANCHOR_CHANNEL: set, but there is no SLACK_BOT_TOKEN to post the anchors with")
    on_sqlite = str(getattr(settings, "database_url", "")).startswith("sqlite")
    if not ring.keyed and not on_sqlite and command in ("serve", "check"):
        found.append("AUDIT_HMAC_KEY: not set; on PostgreSQL `serve` needs it so that nobody who can write to "
                     "the database can rewrite the audit chain (generate one with `openssl rand -hex 32`)")
    return found
