"""The readiness gate and the drill, wired from a built Container (the adapters behind their ports)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from adapters.targets.kube import NOT_ALLOWED
from bot.bootstrap import Container
from bot.config import reveal
from bot.core.drill import Drill
from bot.core.policy import ModelPolicy
from bot.core.ports import DeploymentTarget
from bot.core.readiness import ProbeError, ReadinessCheck, SlackProbe

if TYPE_CHECKING:
    from bot.slack.channel_posts import ChannelPostSender


class TargetConnectionProbe:
    """The core's TargetProbe: each target's `check --connect` logic (``check_connection``) for one model."""

    def __init__(self, targets: Mapping[str, DeploymentTarget]) -> None:
        self.targets = targets

    def probe(self, model: str, policy: ModelPolicy) -> str:
        if policy.target == "local":
            return "local target: the bot's own registry, nothing to reach"
        target = self.targets.get(policy.target)
        if target is None:
            raise LookupError(f"target {policy.target} is not available in this process")
        checker = getattr(target, "check_connection", None)
        if checker is None:
            return f"target {policy.target} has no connection check"
        found = str(checker(model, policy.target_settings))
        if NOT_ALLOWED in found:  # reachable, but these credentials could not switch it
            raise ProbeError(found)
        return found


def slack_probe(container: Container) -> SlackProbe | None:
    token = reveal(container.settings.slack_bot_token)
    if not token:
        return None
    from bot.slack.client import web_client
    from bot.slack.directory import SlackReadinessProbe

    return SlackReadinessProbe(web_client(token, container.settings.slack_api_url))


def readiness_check(container: Container) -> ReadinessCheck:
    c = container
    source = c.insight.source if c.insight is not None else None
    return ReadinessCheck(c.store, TargetConnectionProbe(c.service.targets), slack_probe(c), source, c.clock.now)


def drill(container: Container) -> Drill:
    from bot.slack.channel_posts import DrillCards

    c = container
    source = c.insight.source if c.insight is not None else None
    return Drill(c.policy, c.store, c.service.targets, c.service.directory, source, DrillCards(c.policy),
                 c.clock.now)


def post_sender(container: Container) -> ChannelPostSender | None:
    """The sender of drill posts, or None without a Slack token (the rows wait for a bot that has one)."""
    token = reveal(container.settings.slack_bot_token)
    if not token:
        return None
    from bot.slack.channel_posts import ChannelPostSender
    from bot.slack.client import outbox_client

    return ChannelPostSender(outbox_client(token, container.settings.slack_api_url), container.store)


__all__ = ["TargetConnectionProbe", "drill", "post_sender", "readiness_check", "slack_probe"]
