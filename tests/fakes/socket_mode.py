"""A local Socket Mode endpoint: the WebSocket Slack hands out from apps.connections.open.

It greets each connection with ``hello``, lets a test push envelopes (slash commands, interactions) and
records what the app sends back (the acknowledgements, with any response payload).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from aiohttp import WSMsgType, web


class FakeSocketMode:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._sockets: list[web.WebSocketResponse] = []
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-socket-mode", daemon=True)
        self.url = ""

    def start(self) -> FakeSocketMode:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/link", self._ws)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"ws://127.0.0.1:{port}/link"

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1,
                                      "connection_info": {"app_id": "A0FAKE"}}))
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                self.received.append(json.loads(msg.data))
        return ws

    def connected(self) -> bool:
        return any(not ws.closed for ws in self._sockets)

    def push(self, envelope_type: str, payload: dict[str, Any], envelope_id: str) -> None:
        """Send one envelope to every connected app, as Slack does."""
        message = json.dumps({"envelope_id": envelope_id, "type": envelope_type, "payload": payload,
                              "accepts_response_payload": envelope_type != "events_api", "retry_attempt": 0,
                              "retry_reason": ""})

        async def send() -> None:
            for ws in self._sockets:
                if not ws.closed:
                    await ws.send_str(message)

        asyncio.run_coroutine_threadsafe(send(), self._loop).result(5)

    def wait_ack(self, envelope_id: str, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for item in self.received:
                if item.get("envelope_id") == envelope_id:
                    return item
            time.sleep(0.05)
        raise AssertionError(f"the app never acknowledged envelope {envelope_id}: {self.received}")

    def stop(self) -> None:
        async def close() -> None:
            for ws in self._sockets:
                await ws.close()
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
