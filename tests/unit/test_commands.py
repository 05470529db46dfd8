"""The /rollback parser: every subcommand, and the message a person gets for bad input."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from bot.slack.commands import (
    MAX_HISTORY,
    SUBCOMMANDS,
    USAGE,
    USAGE_LINES,
    Audit,
    Command,
    CommandError,
    Freeze,
    Help,
    History,
    Rollback,
    Status,
    Unblock,
    Unfreeze,
    Versions,
    parse_command,
)

GOOD: list[tuple[str, Command]] = [
    ("", Help()),
    ("   ", Help()),
    ("help", Help()),
    ("HELP", Help()),
    ("status", Status()),
    ("status fraud-detector", Status("fraud-detector")),
    ("versions fraud-detector", Versions("fraud-detector")),
    ("history fraud-detector", History("fraud-detector", 10)),
    ("history fraud-detector 25", History("fraud-detector", 25)),
    (f"history fraud-detector {MAX_HISTORY}", History("fraud-detector", MAX_HISTORY)),
    ("history m 1", History("m", 1)),
    ("audit", Audit()),
    ("audit fraud-detector", Audit("fraud-detector")),
    ("audit since=2h", Audit(None, timedelta(hours=2))),
    (
        "audit fraud-detector since=1h30m by=<@U0LEAD|lea>",
        Audit("fraud-detector", timedelta(minutes=90), "U0LEAD"),
    ),
    ("audit by=<@U0LEAD>", Audit(None, timedelta(days=7), "U0LEAD")),
    ("audit by=&lt;@U0LEAD|lea&gt;", Audit(None, timedelta(days=7), "U0LEAD")),  # as Slack escapes it
    ("audit by=@lea.lead", Audit(None, timedelta(days=7), "lea.lead")),
    ("audit by=@U0LEAD since=1d fraud", Audit("fraud", timedelta(days=1), "U0LEAD")),
    ("fraud-detector", Rollback("fraud-detector")),
    ("fraud-detector to 6", Rollback("fraud-detector", "6")),
    (
        "fraud-detector TO v1.2.3-rc1 error spike on EU",
        Rollback("fraud-detector", "v1.2.3-rc1", "error spike on EU"),
    ),
    ("fraud-detector error   spike", Rollback("fraud-detector", None, "error   spike")),
    ("fraud-detector a &amp; b &lt;3", Rollback("fraud-detector", None, "a & b <3")),
    ("freeze fraud-detector", Freeze("fraud-detector")),
    ("freeze fraud-detector for 2h", Freeze("fraud-detector", timedelta(hours=2))),
    (
        "freeze fraud-detector for 30m release train",
        Freeze("fraud-detector", timedelta(minutes=30), "release train"),
    ),
    ("freeze fraud-detector release train", Freeze("fraud-detector", None, "release train")),
    ("unfreeze fraud-detector", Unfreeze("fraud-detector")),
    ("unblock fraud-detector 7", Unblock("fraud-detector", "7")),
    ("UNBLOCK fraud-detector v7.1 fixed in the feature store", Unblock("fraud-detector", "v7.1",
                                                                      "fixed in the feature store")),
    ("  status   ranker  ", Status("ranker")),
]


@pytest.mark.parametrize(("text", "expected"), GOOD)
def test_parses(text: str, expected: Command) -> None:
    assert parse_command(text) == expected


BAD: list[tuple[str, str, str]] = [
    # text, part of the problem, subcommand whose usage line must follow
    ("status a b", "at most one model", "status"),
    ("status ???", "not a model name", "status"),
    ("versions", "needs a model", "versions"),
    ("versions a b", "one model", "versions"),
    ("history", "needs a model", "history"),
    ("history m 0", "from 1 to 100", "history"),
    ("history m 101", "from 1 to 100", "history"),
    ("history m -3", "whole number", "history"),
    ("history m ten", "whole number", "history"),
    ("history m 2.5", "whole number", "history"),
    ("history m 5 6", "got 3 words", "history"),
    ("audit a b", "one model", "audit"),
    ("audit since=soon", "not a duration", "audit"),
    ("audit since=0s", "longer than zero", "audit"),
    ("audit since=", "needs a value", "audit"),
    ("audit until=1d", "unknown option 'until='", "audit"),
    ("audit since=1d since=2d", "given twice", "audit"),
    ("audit by=<#C123|general>", "needs a person", "audit"),
    ("fraud-detector to", "'to' needs a version", "rollback"),
    ("fraud-detector to ???", "not a version", "rollback"),
    ("freeze", "needs a model", "freeze"),
    ("freeze m for", "needs a duration", "freeze"),
    ("freeze m for ever", "not a duration", "freeze"),
    ("freeze m for 0m", "longer than zero", "freeze"),
    ("freeze m for 3000000d", "longer than the longest duration accepted, 3650d", "freeze"),
    ("audit since=99999999999d", "longer than the longest duration accepted", "audit"),
    ("freeze m for " + "9" * 5000 + "d", "longest duration", "freeze"),
    ("unfreeze", "needs a model", "unfreeze"),
    ("unfreeze a b", "one model", "unfreeze"),
    ("unblock", "needs a model and a version", "unblock"),
    ("unblock fraud-detector", "needs a version", "unblock"),
    ("unblock fraud-detector ???", "not a version", "unblock"),
]


@pytest.mark.parametrize(("text", "problem", "sub"), BAD)
def test_bad_input_says_what_and_shows_usage(text: str, problem: str, sub: str) -> None:
    with pytest.raises(CommandError) as err:
        parse_command(text)
    message = str(err.value)
    assert problem in err.value.problem
    assert err.value.subcommand == sub
    assert USAGE_LINES[sub] in message
    assert message.startswith(err.value.problem)


def test_unknown_first_word_gets_the_full_usage() -> None:
    with pytest.raises(CommandError) as err:
        parse_command("¿qué? now")
    assert "neither a subcommand nor a model name" in str(err.value)
    assert err.value.subcommand is None
    assert err.value.usage == USAGE


def test_subcommand_words_win_over_model_names() -> None:
    # A model literally named "status" or "freeze" cannot be rolled back this way (documented).
    assert parse_command("status") == Status()
    assert parse_command("Freeze status") == Freeze("status")
    assert parse_command("unfreeze help") == Unfreeze("help")
    # ...but a model may be named like a subcommand word when it is an argument.
    assert parse_command("history audit 3") == History("audit", 3)


def test_to_right_after_the_model_always_means_a_version() -> None:
    assert parse_command("ranker to reduce errors") == Rollback("ranker", "reduce", "errors")
    assert parse_command("ranker because to be safe") == Rollback("ranker", None, "because to be safe")


PLACEHOLDERS = {"MODEL": "ranker", "VERSION": "6", "N": "3", "ID": "12", "reason…": "load test", "@user": "@U0LEAD"}


def example(usage: str) -> str:
    """A usage line with every option given and every placeholder filled, as a person would type it."""
    text = usage.removeprefix("/rollback ").replace("[", "").replace("]", "")
    return re.sub("|".join(map(re.escape, PLACEHOLDERS)), lambda m: PLACEHOLDERS[m[0]], text)


def test_the_usage_shows_every_subcommand_the_parser_knows() -> None:
    shown = re.findall(r"^`(/rollback [^`]*)`", USAGE, re.M)
    words = {line.split()[1] if line.split()[1] in SUBCOMMANDS else "rollback" for line in shown}
    assert words == SUBCOMMANDS | {"rollback"}


@pytest.mark.parametrize("usage", re.findall(r"^`(/rollback [^`]*)`", USAGE, re.M))
def test_every_usage_line_parses_as_the_subcommand_it_shows(usage: str) -> None:
    command = parse_command(example(usage))
    word = usage.split()[1]
    assert type(command).__name__.lower() == (word if word in SUBCOMMANDS else "rollback")


def test_command_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="needs a model"):
        parse_command("versions")


def test_drill_takes_exactly_one_model() -> None:
    from bot.slack.commands import Drill

    assert parse_command("drill fraud-detector") == Drill("fraud-detector")
    assert parse_command("DRILL ranker") == Drill("ranker")
    for text, problem in [("drill", "drill needs a model"), ("drill a b", "one model, got 2 words"),
                          ("drill ???", "not a model name")]:
        with pytest.raises(CommandError) as err:
            parse_command(text)
        assert problem in str(err.value) and err.value.subcommand == "drill"
