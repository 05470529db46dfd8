"""Requests signed exactly as Slack signs them, for tests and the offline demo.

Slack signs ``v0:{timestamp}:{raw body}`` with HMAC-SHA256 of the signing secret and sends it as
``X-Slack-Signature: v0=<hex>`` beside ``X-Slack-Request-Timestamp``. Bolt refuses a timestamp more than
five minutes off, so the helpers stamp the current time unless told otherwise. The body shapes follow
Slack's reference (slash commands are form fields; interactions are a form field ``payload`` holding
JSON; Events API callbacks are JSON).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode, urlsplit

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

_seq = itertools.count(1)


def signature(secret: str, timestamp: int | str, body: str | bytes) -> str:
    """``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    raw = body.decode("utf-8") if isinstance(body, bytes) else body
    base = f"v0:{timestamp}:{raw}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str, body: str | bytes, *, timestamp: int | None = None, content_type: str = FORM
) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": signature(secret, ts, body),
    }


@dataclass(frozen=True)
class SignedRequest:
    """A body and the headers Slack would send with it."""

    body: str
    headers: dict[str, str]

    @property
    def content_type(self) -> str:
        return self.headers["Content-Type"]


@dataclass(frozen=True)
class PostResult:
    status: int
    body: str
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def sign(
    secret: str, body: str, *, timestamp: int | None = None, content_type: str | None = None
) -> SignedRequest:
    """Sign a body; the content type follows the body (JSON for Events API, else form)."""
    ctype = content_type or (JSON if body.lstrip().startswith("{") else FORM)
    return SignedRequest(body, signed_headers(secret, body, timestamp=timestamp, content_type=ctype))


def post(url: str, request: SignedRequest, timeout: float = 10.0) -> PostResult:
    """POST a signed request (to the bot's ``/slack/events``) and return status and body, errors included."""
    if urlsplit(url).scheme not in {"http", "https"}:
        raise ValueError(f"only http(s) URLs can be posted to, not {url!r}")
    req = urllib.request.Request(url, data=request.body.encode(), headers=request.headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return PostResult(resp.status, resp.read().decode("utf-8"), dict(resp.headers.items()))
    except HTTPError as err:
        return PostResult(err.code, err.read().decode("utf-8"), dict(err.headers.items()))


def _trigger_id() -> str:
    return f"{int(time.time())}.{next(_seq)}.fake{next(_seq):08x}"


def slash_command_body(
    text: str,
    *,
    command: str = "/rollback",
    user_id: str = "U0ALICE",
    user_name: str = "alice",
    channel_id: str = "C0ALERTS",
    channel_name: str = "alerts",
    team_id: str = "T0FAKE",
    team_domain: str = "fake",
    response_url: str = "http://127.0.0.1/response/none",
    trigger_id: str | None = None,
    api_app_id: str = "A0FAKE",
) -> str:
    """The form body Slack posts for a slash command."""
    return urlencode(
        {
            "token": "verification-token-unused",
            "team_id": team_id,
            "team_domain": team_domain,
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": api_app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id or _trigger_id(),
        }
    )


def payload_body(payload: Mapping[str, Any]) -> str:
    """Interactions arrive as one form field, ``payload``, holding the JSON."""
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))})


def block_actions_payload(
    action_id: str,
    value: str,
    *,
    user_id: str = "U0ALICE",
    user_name: str = "alice",
    channel_id: str = "C0ALERTS",
    message_ts: str = "1700000000.000100",
    blocks: Sequence[Mapping[str, Any]] = (),
    text: str = "",
    block_id: str = "actions",
    button_text: str = "Button",
    response_url: str = "http://127.0.0.1/response/none",
    trigger_id: str | None = None,
    team_id: str = "T0FAKE",
    api_app_id: str = "A0FAKE",
) -> dict[str, Any]:
    """A ``block_actions`` payload for a button press on a message."""
    now = f"{time.time():.6f}"
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": "verification-token-unused",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id or _trigger_id(),
        "team": {"id": team_id, "domain": "fake"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": "alerts"},
        "message": {
            "type": "message",
            "user": "U0BOT",
            "ts": message_ts,
            "text": text,
            "blocks": list(blocks),
        },
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": button_text, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": now,
            }
        ],
    }


def find_button(blocks: Sequence[Mapping[str, Any]], action_id: str) -> tuple[str, Mapping[str, Any]] | None:
    """The (block_id, button) carrying ``action_id`` in a message's blocks, as a person would click it."""
    for block in blocks:
        if block.get("type") != "actions":
            continue
        for el in block.get("elements", []):
            if el.get("action_id") == action_id:
                return str(block.get("block_id", "")), el
    return None


def press_button_payload(
    message: Mapping[str, Any],
    action_id: str,
    *,
    user_id: str,
    response_url: str,
    user_name: str | None = None,
) -> dict[str, Any]:
    """The payload Slack sends when ``user_id`` presses the button ``action_id`` on a stored message."""
    blocks = message.get("blocks") or []
    found = find_button(blocks, action_id)
    if found is None:
        raise LookupError(f"no button {action_id!r} on message {message.get('ts')}")
    block_id, button = found
    return block_actions_payload(
        action_id,
        str(button.get("value", "")),
        user_id=user_id,
        user_name=user_name or user_id.lower(),
        channel_id=str(message.get("channel", "")),
        message_ts=str(message.get("ts", "")),
        blocks=blocks,
        text=str(message.get("text", "")),
        block_id=block_id,
        button_text=str(button.get("text", {}).get("text", "")),
        response_url=response_url,
    )


def view_submission_payload(
    callback_id: str,
    values: Mapping[str, Mapping[str, Mapping[str, Any]]],
    *,
    user_id: str = "U0ALICE",
    user_name: str = "alice",
    private_metadata: str = "",
    blocks: Sequence[Mapping[str, Any]] = (),
    view_id: str = "V0FAKE",
    team_id: str = "T0FAKE",
    api_app_id: str = "A0FAKE",
    trigger_id: str | None = None,
    response_urls: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """A ``view_submission`` payload. ``values`` is ``{block_id: {action_id: {"type":…, "value":…}}}``."""
    return {
        "type": "view_submission",
        "team": {"id": team_id, "domain": "fake"},
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": "verification-token-unused",
        "trigger_id": trigger_id or _trigger_id(),
        "view": {
            "id": view_id,
            "team_id": team_id,
            "type": "modal",
            "blocks": list(blocks),
            "private_metadata": private_metadata,
            "callback_id": callback_id,
            "state": {"values": {k: dict(v) for k, v in values.items()}},
            "hash": f"{int(time.time())}.fakehash",
            "title": {"type": "plain_text", "text": "rollback-bot"},
            "close": {"type": "plain_text", "text": "Cancel"},
            "submit": {"type": "plain_text", "text": "Submit"},
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": api_app_id,
            "external_id": "",
            "app_installed_team_id": team_id,
            "bot_id": "B0BOT",
        },
        "response_urls": [dict(r) for r in response_urls],
        "is_enterprise_install": False,
    }


def event_callback_body(
    event: Mapping[str, Any],
    *,
    event_id: str | None = None,
    team_id: str = "T0FAKE",
    api_app_id: str = "A0FAKE",
    event_time: int | None = None,
    bot_user_id: str = "U0BOT",
) -> str:
    """An Events API ``event_callback`` body (JSON) wrapping ``event``."""
    when = int(time.time()) if event_time is None else event_time
    return json.dumps(
        {
            "token": "verification-token-unused",
            "team_id": team_id,
            "api_app_id": api_app_id,
            "event": dict(event),
            "type": "event_callback",
            "event_id": event_id or f"Ev{when}{next(_seq):04d}",
            "event_time": when,
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": team_id,
                    "user_id": bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"fake-context-{next(_seq)}",
        }
    )
