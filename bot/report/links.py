"""Signed, expiring links to the incident pages: ``/incidents/7?exp=…&sig=…``.

The signature is HMAC-SHA256 under ``PAGE_LINK_KEY`` over the path and the expiry, so a link opens exactly
the page it names until it expires; changing the path, the expiry or the signature gets 403. Query
parameters other than ``exp`` and ``sig`` (page filters) are not signed: they only narrow what the path shows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

from bot.core.clock import Clock
from bot.core.durations import parse_duration

KEY_ENV = "PAGE_LINK_KEY"
TTL_ENV = "PAGE_LINK_TTL"
DEFAULT_TTL = timedelta(days=7)
MIN_KEY_LENGTH = 16


class LinkConfigError(ValueError):
    pass


@dataclass(frozen=True)
class LinkCheck:
    ok: bool
    reason: str
    expires: int | None = None


def _sig(key: bytes, path: str, expires: int) -> str:
    mac = hmac.new(key, f"{path}\n{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


class LinkSigner:
    def __init__(self, key: str, clock: Clock, ttl: timedelta = DEFAULT_TTL) -> None:
        if len(key) < MIN_KEY_LENGTH:
            raise LinkConfigError(f"{KEY_ENV} must be at least {MIN_KEY_LENGTH} characters long")
        self._key = key.encode()
        self.clock = clock
        self.ttl = ttl

    def expiry(self, ttl: timedelta | None = None) -> int:
        return int((self.clock.now() + (ttl or self.ttl)).timestamp())

    def sign(self, path: str, *, expires: int | None = None, query: Mapping[str, str] | None = None) -> str:
        """``path?…&exp=…&sig=…``; ``query`` adds unsigned filters (empty values dropped)."""
        exp = expires if expires is not None else self.expiry()
        params = {k: v for k, v in (query or {}).items() if v}
        params.update(exp=str(exp), sig=_sig(self._key, path, exp))
        return f"{quote(path, safe='/:@')}?{urlencode(params)}"

    def check(self, path: str, exp: str | None, sig: str | None) -> LinkCheck:
        if not exp or not sig:
            return LinkCheck(False, "the link is not signed")
        if not exp.isdigit() or len(exp) > 12:
            return LinkCheck(False, "the link's expiry was altered")
        expires = int(exp)
        if not hmac.compare_digest(_sig(self._key, path, expires).encode(), sig.encode()):
            return LinkCheck(False, "the link was altered (its signature does not match)")
        if expires <= int(self.clock.now().timestamp()):
            when = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%d %H:%M")
            return LinkCheck(False, f"the link expired ({when} UTC); ask the bot for a new one")
        return LinkCheck(True, "", expires)


def signer_from_env(env: Mapping[str, str], clock: Clock) -> LinkSigner | None:
    """None when no key is configured: the pages then open only with the API token, and no link is posted."""
    key = (env.get(KEY_ENV) or "").strip()
    if not key:
        return None
    raw_ttl = (env.get(TTL_ENV) or "").strip()
    try:
        ttl = parse_duration(raw_ttl) if raw_ttl else DEFAULT_TTL
    except ValueError as exc:
        raise LinkConfigError(f"{TTL_ENV}: {exc}") from None
    if ttl <= timedelta(0):
        raise LinkConfigError(f"{TTL_ENV} must be longer than zero")
    return LinkSigner(key, clock, ttl)


def public_link(public_url: str | None, signer: LinkSigner | None, path: str) -> str | None:
    if not public_url or signer is None:
        return None
    return public_url.rstrip("/") + signer.sign(path)


def link_problems(env: Mapping[str, str]) -> list[str]:
    """For `rollback-bot check`: what is wrong with PAGE_LINK_KEY / PAGE_LINK_TTL (never the key itself)."""
    from bot.core.clock import SystemClock

    try:
        signer_from_env(env, SystemClock())
    except LinkConfigError as exc:
        return [str(exc)]
    return []


_SIG = re.compile(r"(\bsig=)[^&\s\"']+")


def redact(text: str) -> str:
    """A signed link opens a page for days: logs keep its path, never its signature."""
    return _SIG.sub(r"\1[redacted]", text)


class RedactSignatures(logging.Filter):
    """For uvicorn's access log, which prints each request's full path and query."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True
