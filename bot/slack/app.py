"""The Bolt app: built here, its listeners registered from bot/slack/listeners/."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.bootstrap import Container
from bot.slack.answers import Answers
from bot.slack.listeners import ListenerDeps, register_listeners
from bot.slack.listeners.views import DENY_BLOCK, DENY_CALLBACK, DENY_INPUT, deny_modal


def build_bolt_app(container: Container, client: AsyncWebClient, signing_secret: str | None) -> AsyncApp:
    app = AsyncApp(client=client, signing_secret=signing_secret or "", process_before_response=False,
                   request_verification_enabled=bool(signing_secret))
    register_listeners(app, ListenerDeps(container.service, container.store, Answers(container)))
    return app


__all__ = ["DENY_BLOCK", "DENY_CALLBACK", "DENY_INPUT", "build_bolt_app", "deny_modal"]
