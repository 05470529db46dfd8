"""A pure parser for the text after ``/rollback`` (SPEC §6). No Slack, no database.

Words that name a subcommand (``help``, ``status``, ``versions``, ``history``, ``audit``, ``freeze``,
``unfreeze``, ``unblock``, ``report``, ``drill``) always mean the subcommand, case-insensitively: a model
literally named ``status`` cannot be rolled back with ``/rollback status``; use the CLI
(``rollback-bot rollback status --reason …``).
Likewise ``to`` right after the model always introduces a version: ``/rollback m to reduce errors``
asks for version ``reduce``. These rules keep the grammar predictable for people typing fast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from bot.core.durations import parse_duration
from bot.slack.mrkdwn import unescape

MAX_HISTORY = 100
DEFAULT_HISTORY = 10
DEFAULT_AUDIT_SINCE = timedelta(days=7)

USAGE_LINES: dict[str, str] = {
    "help": "/rollback help",
    "status": "/rollback status [MODEL]",
    "versions": "/rollback versions MODEL",
    "history": f"/rollback history MODEL [N]  (N from 1 to {MAX_HISTORY}, default {DEFAULT_HISTORY})",
    "audit": "/rollback audit [MODEL] [since=7d] [by=@user]",
    "rollback": "/rollback MODEL [to VERSION] [reason…]",
    "freeze": "/rollback freeze MODEL [for 2h] [reason…]",
    "unfreeze": "/rollback unfreeze MODEL",
    "unblock": "/rollback unblock MODEL VERSION [reason…]",
    "report": "/rollback report ID",
    "drill": "/rollback drill MODEL",
}

USAGE = "\n".join(
    [
        "*Usage*",
        "`/rollback MODEL [to VERSION] [reason…]`: propose rolling MODEL back "
        "(to its last stable version unless you name one)",
        "`/rollback status [MODEL]`: open proposals, or one model's live version and state",
        "`/rollback versions MODEL`: the deployed versions, which are stable, rolled back, and blocked",
        f"`/rollback history MODEL [N]`: the last N rollbacks of MODEL (default {DEFAULT_HISTORY}, "
        f"at most {MAX_HISTORY})",
        "`/rollback audit [MODEL] [since=7d] [by=@user]`: the audit trail",
        "`/rollback freeze MODEL [for 2h] [reason…]`: no automatic or proposed rollbacks for a while",
        "`/rollback unfreeze MODEL`: lift a freeze",
        "`/rollback unblock MODEL VERSION [reason…]`: let a version the bot rolled back be deployed again "
        "(approvers only)",
        "`/rollback report ID`: the post-incident report of proposal ID",
        "`/rollback drill MODEL`: rehearse a rollback of MODEL in dry run (approvers; nothing is switched)",
        "`/rollback help`: this text",
        "Subcommand words win over model names of the same spelling.",
    ]
)

SUBCOMMANDS = frozenset({"help", "status", "versions", "history", "audit", "freeze", "unfreeze", "unblock",
                         "report", "drill"})

_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+@/-]{0,127}$")
_USER_ESCAPED = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_USER_ID = re.compile(r"^@?([UW][A-Z0-9]{2,})$")
_USER_NAME = re.compile(r"^@?([a-z0-9][a-z0-9._-]{0,79})$")


class CommandError(ValueError):
    """Bad ``/rollback`` input. ``str()`` is what the person sees: what was wrong, then the usage."""

    def __init__(self, problem: str, subcommand: str | None = None) -> None:
        self.problem = problem
        self.subcommand = subcommand
        if subcommand is None:
            self.usage = USAGE
        else:
            self.usage = f"Usage: `{USAGE_LINES[subcommand]}`"
        super().__init__(f"{problem}\n{self.usage}")


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class Status:
    model: str | None = None


@dataclass(frozen=True)
class Versions:
    model: str


@dataclass(frozen=True)
class History:
    model: str
    limit: int = DEFAULT_HISTORY


@dataclass(frozen=True)
class Audit:
    """``by`` is a Slack user id (``U…``) when Slack escaped the mention, else the name as typed."""

    model: str | None = None
    since: timedelta = DEFAULT_AUDIT_SINCE
    by: str | None = None


@dataclass(frozen=True)
class Rollback:
    model: str
    to_version: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class Freeze:
    """``duration`` is None when none was given; the caller applies its default."""

    model: str
    duration: timedelta | None = None
    reason: str = ""


@dataclass(frozen=True)
class Unfreeze:
    model: str


@dataclass(frozen=True)
class Unblock:
    model: str
    version: str
    reason: str = ""


@dataclass(frozen=True)
class Report:
    proposal_id: int


@dataclass(frozen=True)
class Drill:
    model: str


Command = Help | Status | Versions | History | Audit | Rollback | Freeze | Unfreeze | Unblock | Report | Drill


def parse_command(text: str) -> Command:
    """Parse the slash-command text; raise :class:`CommandError` for anything it cannot accept."""
    raw = unescape(text or "").strip()
    words = raw.split()
    if not words:
        return Help()
    head = words[0].lower()
    if head in SUBCOMMANDS:
        args = words[1:]
        rest = raw[len(words[0]) :].strip()
        return _PARSERS[head](args, rest)
    return _rollback(words, raw)


def _model(word: str, sub: str) -> str:
    if not _MODEL.match(word):
        raise CommandError(
            f"'{word}' is not a model name (letters, digits, '.', '_', '-', ':', '/'; up to 128).", sub
        )
    return word


def _help(args: list[str], rest: str) -> Command:
    return Help()


def _status(args: list[str], rest: str) -> Command:
    if len(args) > 1:
        raise CommandError(f"status takes at most one model, got {len(args)} words.", "status")
    return Status(_model(args[0], "status") if args else None)


def _versions(args: list[str], rest: str) -> Command:
    if len(args) != 1:
        problem = (
            "versions needs a model." if not args else f"versions takes one model, got {len(args)} words."
        )
        raise CommandError(problem, "versions")
    return Versions(_model(args[0], "versions"))


def _history(args: list[str], rest: str) -> Command:
    if not args:
        raise CommandError("history needs a model.", "history")
    if len(args) > 2:
        raise CommandError(f"history takes a model and an optional N, got {len(args)} words.", "history")
    model = _model(args[0], "history")
    if len(args) == 1:
        return History(model)
    n_text = args[1]
    if not re.fullmatch(r"\d+", n_text):
        raise CommandError(f"N must be a whole number from 1 to {MAX_HISTORY}, not '{n_text}'.", "history")
    n = int(n_text)
    if not 1 <= n <= MAX_HISTORY:
        raise CommandError(f"N must be from 1 to {MAX_HISTORY}, not {n}.", "history")
    return History(model, n)


def _user(value: str) -> str:
    for pattern in (_USER_ESCAPED, _USER_ID, _USER_NAME):
        match = pattern.match(value)
        if match:
            return match.group(1)
    raise CommandError(f"by= needs a person (@name or a mention), not '{value}'.", "audit")


def _audit(args: list[str], rest: str) -> Command:
    model: str | None = None
    since = DEFAULT_AUDIT_SINCE
    by: str | None = None
    seen: set[str] = set()
    for word in args:
        key, eq, value = word.partition("=")
        if eq:
            key = key.lower()
            if key not in {"since", "by"}:
                raise CommandError(f"unknown option '{key}='; audit knows since= and by=.", "audit")
            if key in seen:
                raise CommandError(f"{key}= given twice.", "audit")
            seen.add(key)
            if not value:
                raise CommandError(f"{key}= needs a value.", "audit")
            if key == "since":
                since = _duration(value, "audit", "since")
            else:
                by = _user(value)
        else:
            if model is not None:
                raise CommandError(f"audit takes one model, got '{model}' and '{word}'.", "audit")
            model = _model(word, "audit")
    return Audit(model=model, since=since, by=by)


def _duration(value: str, sub: str, what: str) -> timedelta:
    try:
        duration = parse_duration(value)
    except ValueError as exc:
        raise CommandError(f"{what}: {exc}", sub) from None
    if duration <= timedelta(0):
        raise CommandError(f"{what}: the duration must be longer than zero, not '{value}'.", sub)
    return duration


def _after(raw: str, count: int) -> str:
    """``raw`` without its first ``count`` words, keeping the reason's own spacing."""
    rest = raw
    for _ in range(count):
        rest = rest.lstrip()
        cut = len(rest.split(maxsplit=1)[0]) if rest.strip() else 0
        rest = rest[cut:]
    return rest.strip()


def _freeze(args: list[str], rest: str) -> Command:
    if not args:
        raise CommandError("freeze needs a model.", "freeze")
    model = _model(args[0], "freeze")
    if len(args) >= 2 and args[1].lower() == "for":
        if len(args) < 3:
            raise CommandError("'for' needs a duration, e.g. 'for 2h'.", "freeze")
        duration = _duration(args[2], "freeze", "for")
        return Freeze(model, duration, _after(rest, 3))
    return Freeze(model, None, _after(rest, 1))


def _unfreeze(args: list[str], rest: str) -> Command:
    if len(args) != 1:
        problem = (
            "unfreeze needs a model." if not args else f"unfreeze takes one model, got {len(args)} words."
        )
        raise CommandError(problem, "unfreeze")
    return Unfreeze(_model(args[0], "unfreeze"))


def _unblock(args: list[str], rest: str) -> Command:
    if len(args) < 2:
        raise CommandError("unblock needs a model and a version." if not args else "unblock needs a version.",
                           "unblock")
    model = _model(args[0], "unblock")
    if not _VERSION.match(args[1]):
        raise CommandError(f"'{args[1]}' is not a version.", "unblock")
    return Unblock(model, args[1], _after(rest, 2))


def _report(args: list[str], rest: str) -> Command:
    if len(args) != 1:
        problem = "report needs a proposal id." if not args else f"report takes one id, got {len(args)} words."
        raise CommandError(problem, "report")
    raw = args[0].removeprefix("#")
    if not re.fullmatch(r"\d{1,12}", raw) or int(raw) == 0:
        raise CommandError(f"'{args[0]}' is not a proposal id (a number such as 12).", "report")
    return Report(int(raw))


def _drill(args: list[str], rest: str) -> Command:
    if len(args) != 1:
        problem = "drill needs a model." if not args else f"drill takes one model, got {len(args)} words."
        raise CommandError(problem, "drill")
    return Drill(_model(args[0], "drill"))


def _rollback(words: list[str], raw: str) -> Command:
    if not _MODEL.match(words[0]):
        raise CommandError(f"'{words[0]}' is neither a subcommand nor a model name.")
    model = words[0]
    if len(words) >= 2 and words[1].lower() == "to":
        if len(words) < 3:
            raise CommandError("'to' needs a version, e.g. 'to 6'.", "rollback")
        version = words[2]
        if not _VERSION.match(version):
            raise CommandError(f"'{version}' is not a version.", "rollback")
        return Rollback(model, version, _after(raw, 3))
    return Rollback(model, None, _after(raw, 1))


_PARSERS = {
    "help": _help,
    "status": _status,
    "versions": _versions,
    "history": _history,
    "audit": _audit,
    "freeze": _freeze,
    "unfreeze": _unfreeze,
    "unblock": _unblock,
    "report": _report,
    "drill": _drill,
}
