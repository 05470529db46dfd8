"""Attach Slack's inbound side to a built container: the Bolt app and its route (bootstrap built the rest)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.bootstrap import Container
from bot.config import reveal
from bot.redact import mask_url
from bot.slack.app import build_bolt_app
from bot.slack.client import web_client
from bot.store.replay import ReplayLog
from bot.web.slack_guard import slack_checked


class SlackStartError(Exception):
    pass


@dataclass
class SlackParts:
    bolt: AsyncApp
    async_client: AsyncWebClient
    route: Route


def check_auth(token: str, base_url: str) -> str:
    """Call auth.test once at start-up so a bad token fails fast with Slack's own reason."""
    try:
        response = web_client(token, base_url, max_rate_limit_retries=1).auth_test()
    except SlackApiError as exc:
        raise SlackStartError(f"Slack refused SLACK_BOT_TOKEN (auth.test: {exc.response.get('error')}); "
                              "check the bot token of your Slack app") from None
    except OSError as exc:
        raise SlackStartError(f"cannot reach Slack's Web API at {mask_url(base_url)} ({type(exc).__name__}); "
                              "check SLACK_API_URL and the network") from None
    return f"{response.get('user')} in {response.get('team')}"


def attach_slack(container: Container) -> SlackParts:
    settings = container.settings
    token = reveal(settings.slack_bot_token)
    assert token
    async_client = AsyncWebClient(token=token, base_url=settings.slack_api_url)
    bolt = build_bolt_app(container, async_client, reveal(settings.slack_signing_secret))
    handler = AsyncSlackRequestHandler(bolt)

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    checked: dict[str, float | str] = {}

    async def slack_ready() -> str:
        if "at" in checked and time.monotonic() - float(checked["at"]) < 60:
            return str(checked["status"])
        try:
            await async_client.auth_test()
            status = "ok"
        except SlackApiError as exc:
            status = f"auth.test failed: {exc.response.get('error')}"
        except OSError as exc:
            status = f"unreachable: {type(exc).__name__}"
        checked.update(at=time.monotonic(), status=status)
        return status

    container.extras["slack_ready"] = slack_ready
    guarded_events = slack_checked(events, reveal(settings.slack_signing_secret), ReplayLog(container.store.engine))
    return SlackParts(bolt, async_client, Route("/slack/events", guarded_events, methods=["POST"]))
