"""A raw HTTP/1.1 client for hostile requests: exact bytes, chunked bodies of any size, and the answer read even
when the server answers (413) and closes before the body was all sent, which HTTP libraries report as a
broken pipe instead of the response."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes the server took before it answered

    def json(self) -> Any:
        return json.loads(self.body)


def request(url: str, method: str, path: str, headers: dict[str, str], body: bytes | Iterator[bytes] | None,
            timeout: float = 30.0, *, chunked: bool = True) -> RawResponse:
    """Send one request; an iterator body goes chunked, or as raw bytes after a Content-Length the caller set."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lower = {k.lower() for k in headers}
    if isinstance(body, bytes | bytearray):
        if "content-length" not in lower:
            head.append(f"Content-Length: {len(body)}")
        pending: Iterator[bytes] = iter([bytes(body)])
    elif body is None:
        pending = iter(())
    elif chunked:
        head.append("Transfer-Encoding: chunked")
        pending = _chunked(body)
    else:
        pending = body
    head += [f"{k}: {v}" for k, v in headers.items()]
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setblocking(False)
    out = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
    received = b""
    sent_body = 0
    header_len = len(out)
    deadline = time.monotonic() + timeout
    done_sending = False
    try:
        while time.monotonic() < deadline:
            want_write = [sock] if not done_sending else []
            readable, writable, _ = select.select([sock], want_write, [], 1.0)
            if readable:
                try:
                    data = sock.recv(65536)
                except ConnectionError:
                    break
                if not data:
                    break
                received += data
                done_sending = True  # the server answered: stop sending, read the rest
                continue
            if writable:
                if not out:
                    try:
                        out = next(pending)
                    except StopIteration:
                        done_sending = True
                        continue
                try:
                    n = sock.send(out)
                except (BlockingIOError, InterruptedError):
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    done_sending = True
                    continue
                out = out[n:]
                if header_len:
                    used = min(n, header_len)
                    header_len -= used
                    n -= used
                sent_body += n
    finally:
        sock.close()
    return _parse(received, sent_body)


def _chunked(body: Iterator[bytes]) -> Iterator[bytes]:
    for chunk in body:
        if chunk:
            yield f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    yield b"0\r\n\r\n"


def _parse(raw: bytes, sent: int) -> RawResponse:
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines or not lines[0].startswith("HTTP/1.1 "):
        raise AssertionError(f"no HTTP response (got {raw[:200]!r})")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        rest = rest[: int(headers["content-length"])]
    return RawResponse(status, headers, rest, sent)


__all__ = ["RawResponse", "request"]
