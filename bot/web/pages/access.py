"""Who may read a page: a signed, unexpired link for exactly this path, or the API token."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request

from bot.report.links import LinkSigner


@dataclass(frozen=True)
class Access:
    ok: bool
    status: int = 200
    reason: str = ""
    expires: int | None = None  # set when a signed link opened the page: links on it expire with it


def page_access(request: Request, signer: LinkSigner | None, token: str | None) -> Access:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, given = header.partition(" ")
        if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return Access(True)
        return Access(False, 401, "wrong API token")
    query: Mapping[str, str] = request.query_params
    if "sig" in query or "exp" in query:
        if signer is None:
            return Access(False, 403, "signed links are not enabled on this server")
        checked = signer.check(str(request.scope["path"]), query.get("exp"), query.get("sig"))
        if not checked.ok:
            return Access(False, 403, checked.reason)
        return Access(True, expires=checked.expires)
    return Access(False, 401, "this page needs the link the bot posted in Slack, or the API token")
