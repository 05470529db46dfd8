"""The Web API client the bot uses from worker threads, with Slack's own retry handlers."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler


def web_client(token: str, base_url: str, *, max_rate_limit_retries: int = 3) -> WebClient:
    """A sync WebClient that honours 429 Retry-After and retries dropped connections."""
    client = WebClient(token=token, base_url=base_url, timeout=15)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=max_rate_limit_retries))
    client.retry_handlers.append(ConnectionErrorRetryHandler(max_retry_count=2))
    return client


def outbox_client(token: str, base_url: str, timeout: float = 10.0) -> WebClient:
    """The Slack sender's client: no retry handlers of its own, since the outbox retries (and honours 429)
    without holding the sender's thread; a short timeout so a hanging Slack is noticed in seconds."""
    return WebClient(token=token, base_url=base_url, timeout=int(timeout))
