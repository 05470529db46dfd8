"""Serve an ASGI app (the bot's real ``create_app``) with uvicorn in a background thread on loopback.

uvicorn binds the port itself: handing it a socket bound beforehand loses TCP_NODELAY on its connections
(every keep-alive request then waits 40 ms for a delayed ACK). A port taken meanwhile is retried on another.
``stop()`` asks uvicorn to exit and joins its thread. Used by the end-to-end tests and ``bench/alert_storm``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn


@dataclass
class RunningServer:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(app: Any, *, ready_timeout: float = 10.0, attempts: int = 3, **config: Any) -> RunningServer:
    """Start ``app`` on 127.0.0.1 and return once uvicorn accepts connections."""
    options: dict[str, Any] = {"log_level": "warning", "lifespan": "auto", "access_log": False, **config}
    for _ in range(attempts):
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **options))
        thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
        thread.start()
        deadline = time.monotonic() + ready_timeout
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if server.started:
            return RunningServer(f"http://127.0.0.1:{port}", server, thread)
        server.should_exit = True
        thread.join(5)
    raise RuntimeError(f"uvicorn did not start on 127.0.0.1 in {attempts} attempts")


@contextmanager
def serving(app: Any, **config: Any) -> Iterator[RunningServer]:
    running = start_server(app, **config)
    try:
        yield running
    finally:
        running.stop()
