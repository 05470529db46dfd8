"""One retry rule for every Slack sender: what is retried, after how long, and what stops for good."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.slack_response import SlackResponse

from bot.slack.delivery import HUNG_POST_WAIT_S, MAX_BACKOFF_S, DeliveryError, classify, retry_delay


def api_error(status: int, error: str, headers: dict[str, str] | None = None) -> SlackApiError:
    response = SlackResponse(client=None, http_verb="POST", api_url="http://127.0.0.1/api/chat.postMessage",
                             req_args={}, data={"ok": False, "error": error}, headers=headers or {},
                             status_code=status)
    return SlackApiError(error, response)  # type: ignore[no-untyped-call]


def test_an_error_no_retry_fixes_stops_the_message() -> None:
    found = classify("chat.postMessage", api_error(200, "channel_not_found"))
    assert (found.code, found.permanent) == ("chat.postMessage: channel_not_found", True)


def test_a_rate_limit_waits_what_slack_says() -> None:
    found = classify("chat.update", api_error(429, "ratelimited", {"Retry-After": "7"}))
    assert (found.permanent, found.retry_after, retry_delay(found, 1)) == (False, 7.0, 7.0)


def test_a_post_that_timed_out_waits_for_it_to_show_in_the_history_before_its_retry() -> None:
    assert classify("chat.postMessage", TimeoutError()).retry_after == HUNG_POST_WAIT_S
    assert classify("chat.update", TimeoutError()).retry_after is None


@pytest.mark.parametrize(("attempts", "wait"), [(1, 1.0), (2, 2.0), (5, 16.0), (8, MAX_BACKOFF_S), (50, MAX_BACKOFF_S)])
def test_other_failures_back_off_doubling_up_to_a_minute(attempts: int, wait: float) -> None:
    assert retry_delay(DeliveryError("chat.update: OSError"), attempts) == wait
