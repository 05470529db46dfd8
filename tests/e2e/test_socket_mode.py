"""Socket Mode: with SLACK_APP_TOKEN set, Slack's requests arrive over a WebSocket; alerts stay on HTTP."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl

import httpx

from bot.bootstrap import build
from bot.config import settings_from
from bot.server import assemble
from bot.store.db import make_engine
from bot.store.migrate import upgrade
from devkit.fake_api import FakeSlackApi
from devkit.serving import serving
from devkit.signing import slash_command_body
from tests.conftest import make_policy
from tests.fakes.ports import FakeTarget
from tests.fakes.socket_mode import FakeSocketMode


def test_slash_command_over_the_socket(tmp_path: Any, clock: Any) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    socket = FakeSocketMode().start()
    try:
        with FakeSlackApi() as slack:
            slack.socket_url = socket.url
            settings = settings_from({"DATABASE_URL": url, "SLACK_BOT_TOKEN": "xoxb-socket",
                                      "SLACK_APP_TOKEN": "xapp-1-socket", "SLACK_API_URL": slack.base_url,
                                      "ALERT_WEBHOOK_TOKEN": "tok"})
            container = build(settings, policy=make_policy(), clock=clock, engine=make_engine(url),
                              targets={"fake": FakeTarget()})
            running = assemble(container, with_slack=True)
            assert running.socket_mode
            with serving(running.app) as server:
                deadline = time.monotonic() + 10
                while not socket.connected() and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert socket.connected(), "the bot did not open the Socket Mode connection"
                assert slack.calls("apps.connections.open")
                payload = dict(parse_qsl(slash_command_body("status", user_id="U0BOB",
                                                            response_url=slack.response_url("C0ALERTS"))))
                socket.push("slash_commands", payload, "env-1")
                socket.wait_ack("env-1")
                reply = slack.wait_for("response_url", 1, timeout=10)[-1]
                assert "*fraud-detector*: nothing deployed" in str(reply.body.get("text"))
                # Slack's endpoint is not served over HTTP in Socket Mode; alerts and the API still are.
                assert httpx.post(f"{server.url}/slack/events", content=b"{}").status_code == 404
                assert httpx.get(f"{server.url}/api/audit", headers={"Authorization": "Bearer tok"}).status_code == 200
            container.close()
    finally:
        socket.stop()
