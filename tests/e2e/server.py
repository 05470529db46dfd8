"""Serve an ASGI app (the bot's real ``create_app``) with uvicorn in a background thread on loopback.

The socket is bound before uvicorn starts, on port 0, so there is no race for a "free" port; ``stop()``
asks uvicorn to exit and joins its thread. Used by the end-to-end tests and by ``bench/alert_storm``.
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
    sock: socket.socket

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sock.close()


def start_server(app: Any, *, ready_timeout: float = 10.0, **config: Any) -> RunningServer:
    """Start ``app`` on 127.0.0.1 and return once uvicorn accepts connections."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    options: dict[str, Any] = {"log_level": "warning", "lifespan": "off", "access_log": False, **config}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + ready_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    return RunningServer(f"http://127.0.0.1:{port}", server, thread, sock)


@contextmanager
def serving(app: Any, **config: Any) -> Iterator[RunningServer]:
    running = start_server(app, **config)
    try:
        yield running
    finally:
        running.stop()
