"""How a failed Slack call is retried, shared by every sender (cards, the audit channel, channel posts).

Transient failures (5xx, timeouts, connection errors) back off exponentially; a 429 waits Slack's own
``Retry-After``; an error no retry will fix stops that message until a restart, and people are told.
"""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.errors import SlackApiError

# Slack errors that no retry will fix: the message is dropped from the retry loop and people are told.
PERMANENT = frozenset({
    "channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "not_authed", "account_inactive",
    "token_revoked", "token_expired", "missing_scope", "no_permission", "restricted_action", "invalid_blocks",
    "msg_too_long", "no_text", "team_access_not_granted", "ekm_access_denied", "invalid_arguments",
    "message_not_found", "cant_update_message", "edit_window_closed",
})
MAX_BACKOFF_S = 60.0
HUNG_POST_WAIT_S = 30.0


@dataclass
class DeliveryError(Exception):
    """Slack did not take a message: ``permanent`` stops retrying; ``retry_after`` is Slack's own wait."""

    code: str
    permanent: bool = False
    retry_after: float | None = None


def classify(method: str, exc: Exception) -> DeliveryError:
    if isinstance(exc, SlackApiError):
        response = exc.response
        code = str(response.get("error") or f"HTTP {response.status_code}")
        if response.status_code == 429:
            raw = (response.headers or {}).get("Retry-After") or (response.headers or {}).get("retry-after")
            try:
                wait = float(raw) if raw is not None else None
            except ValueError:
                wait = None
            return DeliveryError(f"{method}: ratelimited", retry_after=wait or 1.0)
        return DeliveryError(f"{method}: {code}", permanent=code in PERMANENT)
    if isinstance(exc, TimeoutError) and method == "chat.postMessage":
        # The post may still land after our timeout: wait long enough for it to show in the channel's
        # history, where the retry looks for it, instead of racing it with a second post.
        return DeliveryError(f"{method}: timed out", retry_after=HUNG_POST_WAIT_S)
    return DeliveryError(f"{method}: {type(exc).__name__}")


def retry_delay(exc: DeliveryError, attempts: int) -> float:
    """Seconds until the next try: Slack's own wait if it gave one, else 0.5 s doubling up to a minute."""
    return exc.retry_after if exc.retry_after is not None else min(MAX_BACKOFF_S, 0.5 * 2 ** min(attempts, 8))


__all__ = ["HUNG_POST_WAIT_S", "MAX_BACKOFF_S", "PERMANENT", "DeliveryError", "classify", "retry_delay"]
