"""Checks on every request to ``/slack/events`` before Bolt sees it.

Bolt verifies the signature itself, but answered a non-numeric ``X-Slack-Request-Timestamp`` with a 500, and
accepts the same signed request as often as it is sent within its five-minute window. Here a missing or
malformed timestamp, one outside the window, or a missing or wrong signature is a 401 that names the
header; a signature already seen in the window is a 401 too (see bot/store/replay.py). The body was
already capped by bot/web/limits.py, so reading it whole here is bounded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from slack_sdk.signature import SignatureVerifier
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.database_health import OUTAGE
from bot.store.replay import ReplayLog

log = logging.getLogger(__name__)
Handler = Callable[[Request], Awaitable[Response]]
WINDOW_SECONDS = 300  # the window of Slack's own SDK (slack_sdk.signature.SignatureVerifier)


def _refuse(message: str, header: str) -> JSONResponse:
    # X-Slack-No-Retry: Slack would otherwise retry a refused delivery; the same bytes will never pass.
    return JSONResponse({"error": message, "field": header}, status_code=401, headers={"X-Slack-No-Retry": "1"})


def slack_checked(handler: Handler, signing_secret: str | None, replay: ReplayLog,
                  now: Callable[[], float] = time.time) -> Handler:
    """``handler`` behind the timestamp, signature and replay checks."""
    verifier = SignatureVerifier(signing_secret) if signing_secret else None

    async def checked(request: Request) -> Response:
        if verifier is None:
            return _refuse("this server has no SLACK_SIGNING_SECRET configured, so it cannot verify Slack's "
                           "requests; set it to the signing secret of your Slack app", "X-Slack-Signature")
        raw_ts = request.headers.get("x-slack-request-timestamp")
        if raw_ts is None:
            return _refuse("missing X-Slack-Request-Timestamp header", "X-Slack-Request-Timestamp")
        raw_ts = raw_ts.strip()
        if not (raw_ts.isascii() and raw_ts.isdigit() and len(raw_ts) <= 12):
            return _refuse("X-Slack-Request-Timestamp must be whole seconds since 1970", "X-Slack-Request-Timestamp")
        stamp, current = int(raw_ts), int(now())
        if abs(current - stamp) > WINDOW_SECONDS:
            return _refuse("X-Slack-Request-Timestamp is more than five minutes from this server's clock: an old "
                           "(replayed) request, or a clock that is off", "X-Slack-Request-Timestamp")
        signature = request.headers.get("x-slack-signature", "").strip()
        if not signature:
            return _refuse("missing X-Slack-Signature header", "X-Slack-Signature")
        body = await request.body()  # cached on the request: Bolt's adapter reads the same bytes
        if len(signature) > 100 or not verifier.is_valid(body, raw_ts, signature):
            return _refuse("wrong X-Slack-Signature: the request was not signed with this app's signing secret",
                           "X-Slack-Signature")
        try:
            first = await run_in_threadpool(replay.first_time, signature, stamp, current)
        except SQLAlchemyError as exc:
            # The database is down: the signature and timestamp were verified, and a replay can change nothing
            # while every state change needs the database, so the person still gets Bolt's answer ("the
            # database is unavailable right now") instead of an error from Slack.
            OUTAGE.failed(exc, "/slack/events replay check")  # logged once per outage
            first = True
        if not first:
            log.warning("refused a replayed Slack request (signature seen before, timestamp %s)", stamp)
            return _refuse("this signed request was already received: a replay is refused", "X-Slack-Signature")
        response = await handler(request)
        if response.status_code >= 500:
            await run_in_threadpool(replay.forget, signature)
        return response

    return checked


__all__ = ["WINDOW_SECONDS", "slack_checked"]
