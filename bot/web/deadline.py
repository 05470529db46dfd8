"""Every request answered within a deadline: a database that swallows packets must yield 503, not a hang.

The connection settings (connect and TCP timeouts) turn most outages into errors within seconds; this is
the backstop for the rest. The worker thread stuck on the dead socket is left to its TCP timeout.
"""

from __future__ import annotations

import asyncio
import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)
DEADLINE_S = 4.5
EXEMPT = ("/healthz",)


class Deadline:
    def __init__(self, app: ASGIApp, seconds: float = DEADLINE_S) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in EXEMPT:
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await asyncio.wait_for(self.app(scope, receive, tracking_send), self.seconds)
        except TimeoutError:
            if started:
                raise
            log.error("%s %s: no answer within %.1f s (database unreachable?)", scope.get("method"),
                      scope.get("path"), self.seconds)
            message = (f"no answer within {self.seconds:g} s: the database is unreachable. Alerts sent in this "
                       "request may or may not be stored: send them again (duplicates are dropped)"
                       if str(scope.get("path", "")).startswith("/alerts/")
                       else f"no answer within {self.seconds:g} s: the database is unreachable; retry later")
            body = json.dumps({"error": message}).encode()
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})


__all__ = ["DEADLINE_S", "Deadline"]
