"""Small helpers for Slack's mrkdwn: escaping, mentions, dates and length limits.

Kept apart from the card layout so the text renderer and command replies can share them.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, datetime

from bot.core.actor import Actor, ActorKind

ELLIPSIS = "…"


def escape(text: str) -> str:
    """Escape the three characters Slack reserves for markup (&, <, >) in text we did not write."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Undo :func:`escape` (Slack sends slash-command text escaped this way)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, ending with an ellipsis when it was cut."""
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + ELLIPSIS


def mention(actor: str) -> str:
    """Render a user id, user-group id or bot/cli actor the way Slack shows it.

    ``U…``/``W…`` become ``<@U…>``, ``S…`` becomes ``<!subteam^S…>``; ``bot:auto`` and ``cli:alice``
    stay readable words, because they are not Slack users and a mention would not resolve.
    """
    actor = actor.strip()
    if actor.startswith("<") and actor.endswith(">"):
        return actor
    if actor.startswith("@"):
        actor = actor[1:]
    actor = Actor.parse(actor).slack_id or actor
    if _looks_like_id(actor, "UW") and is_slack_id(actor):
        return f"<@{actor}>"
    if _looks_like_id(actor, "S") and is_slack_id(actor):
        return f"<!subteam^{actor}>"
    who = Actor.parse(actor)
    if who.kind is ActorKind.BOT:
        return f"the bot ({escape(who.name)})"
    if who.kind is ActorKind.CLI_USER:
        return f"{escape(who.name)} (CLI)"
    return escape(actor)


def _looks_like_id(value: str, first: str) -> bool:
    return len(value) >= 2 and value[0] in first and value[1:].isalnum() and value.upper() == value


def mentions(actors: list[str] | tuple[str, ...]) -> str:
    return ", ".join(mention(a) for a in actors)


def slack_date(when: datetime, fmt: str = "{date_short_pretty} {time}") -> str:
    """A ``<!date^…>`` token Slack shows in each reader's time zone, with a UTC fallback for others."""
    aware = when if when.tzinfo else when.replace(tzinfo=UTC)
    fallback = aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(aware.timestamp())}^{fmt}|{fallback}>"


def link(url: str, label: str) -> str:
    """A mrkdwn link; ``|`` and ``>`` in the label would end the token early, so they are escaped."""
    safe = escape(label).replace("|", "¦")
    return f"<{url}|{safe}>"


_BARE_ID = re.compile(r"(?<![<@^\w])(group )?([UWS][A-Z0-9]{2,})\b")


def is_slack_id(value: str) -> bool:
    """The shape of a Slack user (U…/W…) or user-group (S…) id: capitals and digits, with a digit.

    The digit is what tells ``U0LEAD`` from the words ``UTC``, ``WARNING`` or ``SLO``.
    """
    return (len(value) >= 2 and value[0] in "UWS" and value.isascii() and value.isalnum()
            and value.upper() == value and any(c.isdigit() for c in value))


def mention_ids(text: str, known: Collection[str] | None = None) -> str:
    """Escape core text for Slack and turn the bare user ids (U…/W…) and groups (``group S…``) in it into
    mentions, so refusals name approvers people can click.

    Only real ids become mentions: with ``known`` (the ids the policy names), only those; without it,
    only words shaped like a Slack id. Text an alert brought ("resolved at 16:12 UTC", an alert name)
    therefore never pings anyone, and its own ``<@…>``/``<!channel>`` arrive escaped.
    """

    def repl(match: re.Match[str]) -> str:
        group, ident = match.group(1), match.group(2)
        real = ident in known if known is not None else is_slack_id(ident)
        if not real:
            return match.group(0)
        if ident.startswith("S"):
            return f"<!subteam^{ident}>" if group else ident
        return f"<@{ident}>"

    return _BARE_ID.sub(repl, escape(text))
