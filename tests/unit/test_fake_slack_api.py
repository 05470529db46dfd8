"""The local Slack Web API answers slack_sdk's real clients the way Slack does."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.models.blocks import SectionBlock
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook import WebhookClient

from tests.slack_api import FakeSlackApi, fake_slack, parse_body

__all__ = ["fake_slack"]

TOKEN = "xoxb-test"


def client(api: FakeSlackApi, **kwargs: object) -> WebClient:
    return WebClient(token=TOKEN, base_url=api.base_url, **kwargs)  # type: ignore[arg-type]


def test_binds_loopback_and_base_url_ends_with_api(fake_slack: FakeSlackApi) -> None:
    assert fake_slack.base_url.startswith("http://127.0.0.1:")
    assert fake_slack.base_url.endswith("/api/")
    assert fake_slack._server is not None
    assert fake_slack._server.server_address[0] == "127.0.0.1"


def test_auth_test_and_recorded_headers(fake_slack: FakeSlackApi) -> None:
    resp = client(fake_slack).auth_test()
    assert resp["ok"] and resp["user_id"] == "U0BOT" and resp["bot_id"] == "B0BOT"
    call = fake_slack.last("auth.test")
    assert call is not None
    assert call.headers["authorization"] == f"Bearer {TOKEN}"
    assert call.status == 200


def test_missing_or_wrong_token_is_refused() -> None:
    with FakeSlackApi(valid_tokens={"xoxb-good"}) as api:
        with pytest.raises(SlackApiError) as err:
            WebClient(token="xoxb-bad", base_url=api.base_url).auth_test()
        assert err.value.response["error"] == "invalid_auth"
        with pytest.raises(SlackApiError) as err:
            WebClient(base_url=api.base_url).chat_postMessage(channel="C1", text="x")
        assert err.value.response["error"] == "not_authed"
        assert WebClient(token="xoxb-good", base_url=api.base_url).auth_test()["ok"]


def test_post_update_and_read_back_current_card(fake_slack: FakeSlackApi) -> None:
    web = client(fake_slack)
    posted = web.chat_postMessage(channel="C0ALERTS", text="v1", blocks=[SectionBlock(text="first")])
    ts = posted["ts"]
    assert posted["channel"] == "C0ALERTS" and ts
    assert fake_slack.message("C0ALERTS", ts)["blocks"][0]["text"]["text"] == "first"  # type: ignore[index]

    web.chat_update(channel="C0ALERTS", ts=ts, text="v2", blocks=[SectionBlock(text="second")])
    current = fake_slack.message("C0ALERTS", ts)
    assert current is not None
    assert current["text"] == "v2"
    assert current["blocks"][0]["text"]["text"] == "second"
    assert current["edits"] == 1
    assert len(fake_slack.messages("C0ALERTS")) == 1


def test_update_of_unknown_message_fails_like_slack(fake_slack: FakeSlackApi) -> None:
    with pytest.raises(SlackApiError) as err:
        client(fake_slack).chat_update(channel="C1", ts="1.000001", text="x")
    assert err.value.response["error"] == "message_not_found"


def test_timestamps_are_unique_and_increasing(fake_slack: FakeSlackApi) -> None:
    web = client(fake_slack)
    stamps = [web.chat_postMessage(channel="C1", text=str(i))["ts"] for i in range(5)]
    assert len(set(stamps)) == 5
    assert [float(s) for s in stamps] == sorted(float(s) for s in stamps)


def test_thread_replies_are_kept_apart(fake_slack: FakeSlackApi) -> None:
    web = client(fake_slack)
    parent = web.chat_postMessage(channel="C1", text="card")["ts"]
    web.chat_postMessage(channel="C1", text="detail 1", thread_ts=parent)
    web.chat_postMessage(channel="C1", text="detail 2", thread_ts=parent)
    assert [m["text"] for m in fake_slack.replies("C1", parent)] == ["detail 1", "detail 2"]
    assert [m["text"] for m in fake_slack.messages("C1")] == ["card"]
    assert fake_slack.message("C1", parent)["reply_count"] == 2  # type: ignore[index]


def test_ephemeral_permalink_views_and_lookups(fake_slack: FakeSlackApi) -> None:
    web = client(fake_slack)
    assert web.chat_postEphemeral(channel="C1", user="U1", text="only you")["message_ts"]
    assert fake_slack.ephemerals("U1")[0]["text"] == "only you"

    ts = web.chat_postMessage(channel="C1", text="x")["ts"]
    link = web.chat_getPermalink(channel="C1", message_ts=ts)["permalink"]
    assert link.startswith(fake_slack.url) and ts.replace(".", "") in link

    view = {"type": "modal", "callback_id": "deny_reason", "title": {"type": "plain_text", "text": "Deny"}}
    opened = web.views_open(trigger_id="123.456", view=view)
    assert opened["view"]["callback_id"] == "deny_reason" and opened["view"]["id"].startswith("V")
    assert fake_slack.views()[0]["callback_id"] == "deny_reason"

    assert web.usergroups_users_list(usergroup="S0ONCALL")["users"] == ["U0LEAD", "U0BOB"]
    fake_slack.set_usergroup("S0SRE", ["U9"])
    assert web.usergroups_users_list(usergroup="S0SRE")["users"] == ["U9"]
    with pytest.raises(SlackApiError):
        web.usergroups_users_list(usergroup="S0NOPE")

    fake_slack.set_user("U0LEAD", name="lead", real_name="Lea Lead")
    assert web.users_info(user="U0LEAD")["user"]["real_name"] == "Lea Lead"
    assert web.users_info(user="U0OTHER")["user"]["id"] == "U0OTHER"
    assert web.conversations_info(channel="C0ALERTS")["channel"]["is_member"] is True


def test_injected_error_answers_next_calls_only(fake_slack: FakeSlackApi) -> None:
    web = client(fake_slack)
    fake_slack.fail("chat.postMessage", "channel_not_found", times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as err:
            web.chat_postMessage(channel="C1", text="x")
        assert err.value.response["error"] == "channel_not_found"
    assert web.chat_postMessage(channel="C1", text="x")["ok"]
    assert [c.status for c in fake_slack.calls("chat.postMessage")] == [200, 200, 200]


def test_rate_limit_is_honoured_by_sdk_retry_handler(fake_slack: FakeSlackApi) -> None:
    fake_slack.rate_limit("chat.postMessage", times=1, retry_after=1)
    web = client(fake_slack, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)])
    started = time.monotonic()
    assert web.chat_postMessage(channel="C1", text="x")["ok"]
    waited = time.monotonic() - started
    statuses = [c.status for c in fake_slack.calls("chat.postMessage")]
    assert statuses == [429, 200]
    assert waited >= 1.0  # slept for Retry-After before retrying


def test_rate_limit_without_retry_handler_surfaces_429(fake_slack: FakeSlackApi) -> None:
    fake_slack.rate_limit("chat.update", times=1, retry_after=7)
    with pytest.raises(SlackApiError) as err:
        client(fake_slack, retry_handlers=[]).chat_update(channel="C1", ts="1.1", text="x")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] in ("7", ["7"])


def test_async_client_and_async_rate_limit() -> None:
    async def run(api: FakeSlackApi) -> list[int]:
        web = AsyncWebClient(
            token=TOKEN,
            base_url=api.base_url,
            retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
        )
        assert (await web.auth_test())["user_id"] == "U0BOT"
        api.rate_limit("chat.postMessage", retry_after=0)
        resp = await web.chat_postMessage(channel="C1", text="async", blocks=[SectionBlock(text="b")])
        await web.chat_update(channel="C1", ts=resp["ts"], text="async 2")
        return [c.status for c in api.calls("chat.postMessage")]

    with FakeSlackApi() as api:
        assert asyncio.run(run(api)) == [429, 200]
        msg = api.messages("C1")[0]
        assert msg["text"] == "async 2" and msg["blocks"][0]["text"]["text"] == "b"


def test_files_upload_v2_round_trip(fake_slack: FakeSlackApi) -> None:
    web = client(fake_slack)
    parent = web.chat_postMessage(channel="C1", text="card")["ts"]
    resp = web.files_upload_v2(
        channel="C1", thread_ts=parent, content="a,b\n1,2\n", filename="audit.csv", title="Audit"
    )
    file_id = resp["file"]["id"]
    stored = fake_slack.file(file_id)
    assert stored is not None
    assert stored["content"] == b"a,b\n1,2\n"
    assert stored["title"] == "Audit" and stored["channel"] == "C1" and stored["thread_ts"] == parent
    assert [c.method for c in fake_slack.calls() if c.method.startswith("file")] == [
        "files.getUploadURLExternal",
        "file_upload",
        "files.completeUploadExternal",
    ]
    assert fake_slack.replies("C1", parent)[0]["files"][0]["id"] == file_id


def test_response_url_replaces_the_bound_message(fake_slack: FakeSlackApi) -> None:
    ts = client(fake_slack).chat_postMessage(channel="C1", text="old")["ts"]
    url = fake_slack.response_url("C1", ts)
    assert "/response/" in url
    resp = WebhookClient(url).send(text="new", replace_original=True)
    assert resp.status_code == 200
    assert fake_slack.message("C1", ts)["text"] == "new"  # type: ignore[index]
    call = fake_slack.wait_for("response_url", 1)[0]
    assert call.body["replace_original"] is True

    WebhookClient(fake_slack.response_url()).send(text="just for you")
    assert fake_slack.ephemerals()[-1]["text"] == "just for you"


def test_form_and_json_bodies_are_both_accepted(fake_slack: FakeSlackApi) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]
    form = f"channel=C1&text=form&blocks={json.dumps(blocks)}".encode()
    req = urllib.request.Request(
        fake_slack.base_url + "chat.postMessage",
        data=form,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(req) as r:
        assert json.loads(r.read())["ok"]
    req = urllib.request.Request(
        fake_slack.base_url + "chat.postMessage",
        data=json.dumps({"channel": "C1", "text": "json", "blocks": blocks}).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json; charset=utf-8"},
    )
    with urllib.request.urlopen(req) as r:
        assert json.loads(r.read())["ok"]
    bodies = [c.body for c in fake_slack.calls("chat.postMessage")]
    assert [b["text"] for b in bodies] == ["form", "json"]
    assert bodies[0]["blocks"] == blocks == bodies[1]["blocks"]


def test_parse_body_merges_query_and_form() -> None:
    assert parse_body(b"a=1&view=%7B%22x%22%3A1%7D", "application/x-www-form-urlencoded", "b=2") == {
        "a": "1",
        "b": "2",
        "view": {"x": 1},
    }


def test_unknown_method_and_wait_for_timeout(fake_slack: FakeSlackApi) -> None:
    with pytest.raises(SlackApiError) as err:
        client(fake_slack).api_call("nope.nothing")
    assert err.value.response["error"] == "unknown_method"
    with pytest.raises(TimeoutError, match=r"chat\.postMessage"):
        fake_slack.wait_for("chat.postMessage", 1, timeout=0.1)


def test_wait_for_sees_calls_from_other_threads(fake_slack: FakeSlackApi) -> None:
    import threading

    web = client(fake_slack)
    worker = threading.Thread(
        target=lambda: [web.chat_postMessage(channel="C1", text=str(i)) for i in range(3)]
    )
    worker.start()
    assert len(fake_slack.wait_for("chat.postMessage", 3, timeout=5)) == 3
    worker.join()


def test_stop_releases_the_port() -> None:
    api = FakeSlackApi().start()
    port = api.port
    api.stop()
    with FakeSlackApi() as again:
        assert again.port != 0
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
