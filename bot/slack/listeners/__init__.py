"""Every Bolt listener, one module per kind (as in Bolt's starter template), plus the app's error handler.

Every listener acks first and does the work after (Bolt answers Slack as soon as ack() is called), so
Slack's 3-second limit holds however slow the database or the target.
"""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp

from bot.core.errors import RollbackError
from bot.database_health import OUTAGE, is_database_error
from bot.slack.listeners import actions, commands, events, views
from bot.slack.listeners.deps import ListenerDeps

log = logging.getLogger(__name__)


async def on_error(error: Exception) -> None:
    """A database outage is said once (``database.down``), not as a traceback per Slack request."""
    if is_database_error(error):
        OUTAGE.failed(error, "slack")
    elif isinstance(error, RollbackError):
        log.warning("Slack request not handled: %s", error)
    else:
        log.error("Slack listener failed", exc_info=error)


def register_listeners(app: AsyncApp, deps: ListenerDeps) -> None:
    events.register(app, deps)  # first: its middleware drops Slack's retries before any listener runs
    commands.register(app, deps)
    actions.register(app, deps)
    views.register(app, deps)
    app.error(on_error)


__all__ = ["ListenerDeps", "register_listeners"]
