"""Who acts: a value built once where a request comes in (Slack, CLI, HTTP, alert intake, the bot itself).

Authorization and reports ask an ``Actor`` for its kind instead of looking at string prefixes. Audit rows,
approvals and ``decided_by`` keep the established text form ``<kind>:<name>`` (``str(actor)``), so
reports, exports and the audit chain read the same as before; ``Actor.parse`` is the one place that text
is read back.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ActorKind(StrEnum):
    SLACK_USER = "slack"  # a person in chat, by Slack user id; approver groups are asked of the directory
    CLI_USER = "cli"  # an operator at a shell holding the database credentials (break-glass)
    API = "api"  # CI/CD or a script through the HTTP API
    ALERT = "alert"  # an alert source reporting
    BOT = "bot"  # the bot's own decisions under the policy (policy, timeout, recovery, verification...)
    UNKNOWN = "unknown"  # text that is none of the above: may ask for nothing


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    name: str
    text: str = ""  # the text it was parsed from, when that was not a known kind (kept for audit rows)

    def __str__(self) -> str:
        if self.kind is ActorKind.UNKNOWN:
            return self.text
        return f"{self.kind.value}:{self.name}"

    @classmethod
    def parse(cls, text: str) -> Actor:
        """An actor read back from its text form; anything unrecognised is ``UNKNOWN`` (never an error)."""
        prefix, sep, name = text.partition(":")
        try:
            kind = ActorKind(prefix)
        except ValueError:
            kind = ActorKind.UNKNOWN
        if not sep or not name or kind is ActorKind.UNKNOWN:
            return cls(ActorKind.UNKNOWN, "", text)
        return cls(kind, name)

    @classmethod
    def of(cls, actor: Actor | str) -> Actor:
        return actor if isinstance(actor, Actor) else cls.parse(actor)

    @classmethod
    def slack_user(cls, user_id: str) -> Actor:
        return cls(ActorKind.SLACK_USER, user_id) if user_id else cls(ActorKind.UNKNOWN, "", "slack:")

    @classmethod
    def cli_user(cls, name: str) -> Actor:
        return cls(ActorKind.CLI_USER, name or "unknown")

    @classmethod
    def api(cls, who: str) -> Actor:
        return cls(ActorKind.API, who or "ci")

    @classmethod
    def alert(cls, source: str) -> Actor:
        return cls(ActorKind.ALERT, source)

    @classmethod
    def bot(cls, job: str) -> Actor:
        return cls(ActorKind.BOT, job)

    @property
    def is_bot(self) -> bool:
        return self.kind is ActorKind.BOT

    @property
    def slack_id(self) -> str | None:
        return self.name if self.kind is ActorKind.SLACK_USER else None


def is_bot(actor: str | None) -> bool:
    """Was this stored actor text (``decided_by``, an audit row's actor) the bot itself?"""
    return actor is not None and Actor.parse(actor).is_bot


def kind_of(actor: str | None) -> ActorKind:
    return Actor.parse(actor).kind if actor else ActorKind.UNKNOWN


__all__ = ["Actor", "ActorKind", "is_bot", "kind_of"]
