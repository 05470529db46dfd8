from datetime import timedelta

import pytest

from bot.core.durations import format_duration, parse_duration
from bot.core.severity import Severity, parse_severity


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("15m", 900), ("2h", 7200), ("1h30m", 5400),
                                               ("7d", 604800), ("1w", 604800), (" 2H ", 7200), ("0s", 0)])
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "15", "m15", "1.5h", "15 minutes", "-5m", "5x"])
def test_bad_durations_name_the_accepted_form(text: str) -> None:
    with pytest.raises(ValueError, match="30s, 15m, 2h"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["3000000d", "99999999999d", "3651d", "522w", "87601h", "9" * 5000 + "s",
                                  "3650d1s"])
def test_durations_are_bounded_to_ten_years(text: str) -> None:
    with pytest.raises(ValueError, match="longest duration accepted, 3650d"):
        parse_duration(text)
    assert parse_duration("3650d") == timedelta(days=3650)


def test_format_duration_round_trips() -> None:
    assert format_duration(timedelta(seconds=5400)) == "1h30m"
    assert format_duration(timedelta(0)) == "0s"


@pytest.mark.parametrize(("label", "severity"), [("info", Severity.INFO), ("warning", Severity.WARNING),
                                                 ("critical", Severity.CRITICAL), ("page", Severity.CRITICAL),
                                                 ("HIGH", Severity.CRITICAL), ("error", Severity.WARNING),
                                                 ("bogus", Severity.WARNING), (None, Severity.WARNING)])
def test_severity_aliases(label: str | None, severity: Severity) -> None:
    assert parse_severity(label) is severity
    assert Severity.INFO < Severity.WARNING < Severity.CRITICAL
