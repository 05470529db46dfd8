"""A loopback TCP proxy in front of PostgreSQL that a test can make refuse or swallow traffic.

``refuse()``: new connections are accepted and closed at once, open ones are cut (the server is down).
``stall()``: bytes in both directions are swallowed, connections stay open (a network partition).
``heal()``: forwarding resumes for new connections; connections that were stalled are closed, as a real
partition's sockets end in errors once their TCP timeouts fire.
"""

from __future__ import annotations

import socket
import threading


class TcpProxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.mode = "forward"
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def refuse(self) -> None:
        self.mode = "refuse"
        self._cut_all()

    def stall(self) -> None:
        self.mode = "stall"

    def heal(self) -> None:
        self._cut_all()
        self.mode = "forward"

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._cut_all()

    def _cut_all(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                conn.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.mode == "refuse":
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, server]
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if self.mode == "forward":
                    dst.sendall(data)
                # stall: swallowed
        except OSError:
            pass
        finally:
            # shutdown(), not just close(): another thread may be blocked in recv() on the same socket, and
            # only shutdown() wakes it. While stalled the other side stays open, as in a real partition.
            for s in ((src, dst) if self.mode == "forward" else (src,)):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


__all__ = ["TcpProxy"]
