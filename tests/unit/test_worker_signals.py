"""A NOTIFY wakes the worker it names; an unnamed one (an older replica) wakes every worker."""

from __future__ import annotations

from bot.workers.loop import DECIDE, EXECUTE, SLACK, Signals


def woken(signals: Signals) -> set[str]:
    return {name for name in (DECIDE, EXECUTE, SLACK) if signals.event(name).is_set()}


def test_a_named_notification_wakes_only_that_worker() -> None:
    signals = Signals()
    signals.wake_named("decide")
    assert woken(signals) == {DECIDE}


def test_an_unnamed_or_unknown_notification_wakes_every_worker() -> None:
    for payload in ("", "something-newer"):
        signals = Signals()
        signals.wake_named(payload)
        assert woken(signals) == {DECIDE, EXECUTE, SLACK}
