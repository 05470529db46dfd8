"""Request body caps, enforced as ASGI middleware before any route, parser or signature check runs.

Each path has a cap. A ``Content-Length`` over it is answered 413 before a byte of the body is read; a body
without one (chunked) is counted as it arrives from ``receive`` and answered 413 the moment it passes the
cap, so an oversized body is never held whole: at most the cap per request is in memory. uvicorn stops
reading a socket whose body the app does not consume (flow control), and closes the connection after a 413
sent before the body ended.

The caps, and why:
- ``/slack/events`` 1 MiB. Slack publishes no maximum for the requests it sends; the largest content it
  documents is a 40,000-character message, which an ``app_mention`` event carries twice (text and rich-text
  blocks): at 12 bytes per escaped non-BMP character about 1 MB. Our own cards and the deny modal are far
  smaller. Slack's own SDK (bolt-js, ``bodyLimit``) caps at 4 MB as an outer bound.
- ``/alerts/*`` 1 MiB: SPEC §3 (Alertmanager batches of a few hundred alerts fit easily).
- ``/deployments`` 128 KiB: a model, a version and CI metadata.
- everything else (the read API, health, metrics) 16 KiB: they take no body at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

KIB = 1024
MIB = 1024 * KIB
SLACK_MAX_BODY = 1 * MIB
ALERTS_MAX_BODY = 1 * MIB
DEPLOYMENTS_MAX_BODY = 128 * KIB
DEFAULT_MAX_BODY = 16 * KIB


def body_cap(path: str) -> int:
    if path == "/slack/events":
        return SLACK_MAX_BODY
    if path.startswith("/alerts/"):
        return ALERTS_MAX_BODY
    if path == "/deployments":
        return DEPLOYMENTS_MAX_BODY
    return DEFAULT_MAX_BODY


class BodyLimit:
    """Reads the body up to the path's cap, then hands the app a ``receive`` that replays it."""

    def __init__(self, app: ASGIApp, cap: Callable[[str], int] = body_cap) -> None:
        self.app = app
        self.cap = cap

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        limit = self.cap(path)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(send, path, limit, f"a body of {declared} bytes (Content-Length)")
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away: nothing to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(send, path, limit, "a body")
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) < 20 else None
    return None


async def _too_large(send: Send, path: str, limit: int, what: str) -> None:
    body = json.dumps({
        "error": f"{what} is over the {limit}-byte limit of {path[:100]}; nothing was read or stored",
        "field": "body",
    }).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


__all__ = ["ALERTS_MAX_BODY", "DEFAULT_MAX_BODY", "DEPLOYMENTS_MAX_BODY", "SLACK_MAX_BODY", "BodyLimit", "body_cap"]
