"""Bearer-token checks in constant time, and body reading with a size cap."""

from __future__ import annotations

import hmac

from starlette.requests import Request

MAX_BODY = 1024 * 1024


class BodyTooLarge(Exception):
    pass


def bearer_ok(request: Request, expected: str | None) -> tuple[bool, str]:
    """(ok, reason). With no token configured every request is refused: secure by default."""
    if not expected:
        return False, "this server has no ALERT_WEBHOOK_TOKEN configured; set it to enable this endpoint"
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False, "missing bearer token: send 'Authorization: Bearer <ALERT_WEBHOOK_TOKEN>'"
    if not hmac.compare_digest(token.strip().encode(), expected.encode()):
        return False, "wrong bearer token"
    return True, ""


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """Read at most ``limit`` bytes; stop early on a larger Content-Length or stream."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"body of {declared} bytes is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)
