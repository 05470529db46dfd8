"""Signatures of recent Slack requests, kept in the database so every replica refuses a replay.

Slack signs ``v0:{timestamp}:{body}``; a request captured off the wire stays valid for the five minutes in
which its timestamp is accepted. Remembering each signature for that window (the primary key makes the
insert the check, atomically, across processes) refuses the second delivery of the same bytes. Rows older
than the window can never match an accepted request again and are deleted as new ones arrive.
"""

from __future__ import annotations

from sqlalchemy import delete, insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.store.tables import SlackSignatureRow

KEEP_SECONDS = 2 * 300 + 60  # a timestamp up to 5 minutes ahead or behind, plus clock slack


class ReplayLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def first_time(self, signature: str, request_ts: int, now: int) -> bool:
        """Record ``signature``; False when it was already recorded (the request is a replay)."""
        table = SlackSignatureRow.__table__  # type: ignore[attr-defined]
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(table).values(signature=signature, request_ts=request_ts))
        except IntegrityError:
            return False
        with self.engine.begin() as conn:
            conn.execute(delete(table).where(table.c.request_ts < now - KEEP_SECONDS))
        return True

    def forget(self, signature: str) -> None:
        """The request failed on our side (5xx): Slack's retry of the same bytes must be let through."""
        table = SlackSignatureRow.__table__  # type: ignore[attr-defined]
        with self.engine.begin() as conn:
            conn.execute(delete(table).where(table.c.signature == signature))


__all__ = ["KEEP_SECONDS", "ReplayLog"]
