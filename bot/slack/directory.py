"""Who is who in Slack: approver groups (cached briefly so every click does not call the API), and the
readiness gate's uncached questions, which must say why a look-up failed instead of failing closed."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.readiness import ProbeError

log = logging.getLogger(__name__)


def is_group_id(approver: str) -> bool:
    """Slack user-group ids start with S (user ids with U or W): the one place that reads an id's shape."""
    return len(approver) > 1 and approver[0] == "S" and approver.isalnum() and approver.upper() == approver


class SlackDirectory:
    """Implements the core's ApproverDirectory with `usergroups.users.list`."""

    def __init__(self, client: WebClient, ttl_seconds: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.ttl = ttl_seconds
        self.clock = clock
        self._cache: dict[str, tuple[float, set[str]]] = {}
        self._lock = threading.Lock()

    def is_group(self, approver: str) -> bool:
        return is_group_id(approver)

    def is_member(self, user: str, group: str) -> bool:
        return user in self.members(group)

    def members(self, group_id: str) -> set[str]:
        now = self.clock()
        with self._lock:
            cached = self._cache.get(group_id)
            if cached and now - cached[0] < self.ttl:
                return set(cached[1])
        try:
            response = self.client.usergroups_users_list(usergroup=group_id)
            users = set(response.get("users") or [])
        except SlackApiError as exc:
            # Fail closed: an unknown group approves nobody. A stale cache is better than nobody, though.
            log.warning("usergroups.users.list %s failed: %s", group_id, exc.response.get("error"))
            return set(cached[1]) if cached else set()
        with self._lock:
            self._cache[group_id] = (now, users)
        return set(users)


class SlackReadinessProbe:
    """The readiness gate's SlackProbe over the Web API (bot token): user groups, users, channel membership."""

    def __init__(self, client: WebClient) -> None:
        self.client = client

    def is_group(self, approver: str) -> bool:
        return is_group_id(approver)

    def group_members(self, group_id: str) -> set[str]:
        try:
            response = self.client.usergroups_users_list(usergroup=group_id)
        except SlackApiError as exc:
            raise ProbeError(f"usergroups.users.list: {exc.response.get('error')}") from None
        return set(response.get("users") or [])

    def user_found(self, user_id: str) -> bool:
        try:
            response = self.client.users_info(user=user_id)
        except SlackApiError as exc:
            if exc.response.get("error") == "user_not_found":
                return False
            raise ProbeError(f"users.info: {exc.response.get('error')}") from None
        user = response.get("user") or {}
        return not user.get("deleted", False)

    def bot_in_channel(self, channel: str) -> bool:
        """``conversations.info`` answers ``is_member`` for the token's own user: the bot."""
        try:
            response = self.client.conversations_info(channel=channel)
        except SlackApiError as exc:
            raise ProbeError(f"channel {channel}: conversations.info says {exc.response.get('error')}") from None
        return bool((response.get("channel") or {}).get("is_member"))
