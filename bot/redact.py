"""Hiding secrets in what the bot prints and logs: one URL mask, one text scrubber.

A URL carries credentials in two places: the user-info (``user:password@host``) and the query string
(``?password=…``, ``?token=…``, as libpq and many webhooks accept). ``mask_url`` hides both; every URL the bot
prints or logs goes through it. ``redact`` is the last line of defence for free text (exception messages,
log lines): it masks every URL it finds and every configured secret value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

MASK = "***"
# Query parameters that carry a credential: libpq's password/sslpassword, tokens, keys, signatures.
_SENSITIVE = re.compile(
    r"(pass|pwd|secret|token|key|auth|signature|^sig$|credential|session|cookie|jwt|bearer)", re.IGNORECASE
)
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>`]+")


def sensitive_name(name: str) -> bool:
    """True for a query or header name that carries a credential (``password``, ``api_key``, ``X-Token``)."""
    return bool(_SENSITIVE.search(name))


def mask_url(url: str) -> str:
    """``url`` with the password in its user-info and every credential in its query string hidden."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        if has_password:
            netloc = f"{user}:{MASK}@{hostport}"
        elif parts.scheme.lower() in ("http", "https"):  # a lone user over HTTP is a token (https://TOKEN@host)
            netloc = f"{MASK}@{hostport}"
    query = parts.query
    if query:
        pieces = []
        for piece in query.split("&"):
            name, eq, _value = piece.partition("=")
            pieces.append(f"{name}={MASK}" if eq and sensitive_name(unquote(name)) else piece)
        query = "&".join(pieces)
    if netloc == parts.netloc and query == parts.query:
        return url
    if url[len(parts.scheme):].startswith("://"):  # keep `sqlite:///x.db` as written (urlunsplit drops //)
        out = f"{parts.scheme}://{netloc}{parts.path}"
        return out + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_secrets(url: str) -> list[str]:
    """The credential values inside ``url`` (raw and percent-decoded), so they can be scrubbed anywhere."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found: list[str] = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        if ":" in userinfo:
            found.append(userinfo.partition(":")[2])
        elif parts.scheme.lower() in ("http", "https"):
            found.append(userinfo)
    for piece in parts.query.split("&") if parts.query else []:
        name, eq, value = piece.partition("=")
        if eq and value and sensitive_name(unquote(name)):
            found.append(value)
    found += [unquote(v) for v in found]
    for name, value in parse_qsl(parts.query, keep_blank_values=False):
        if sensitive_name(name):
            found.append(value)
    return [v for v in dict.fromkeys(found) if v]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every URL masked and every value in ``secrets`` replaced (longest first)."""
    if "://" in text:
        text = _URL.sub(lambda m: mask_url(m.group(0)), text)
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return text


__all__ = ["MASK", "mask_url", "redact", "sensitive_name", "url_secrets"]
