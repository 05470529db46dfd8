from datetime import UTC, datetime, timedelta

import pytest

from bot.core.policy import Action, ModelPolicy, ModelState, decide
from bot.core.severity import Severity

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
POLICY = ModelPolicy(name="fraud-detector", cooldown=timedelta(minutes=30))
FROZEN = ModelState(frozen_until=NOW + timedelta(hours=1), frozen_reason="migration", frozen_by="slack:U1")
COOLING = ModelState(last_rollback_at=NOW - timedelta(minutes=10))
COOLED = ModelState(last_rollback_at=NOW - timedelta(minutes=31))
BLOCKED = ModelState(auto_blocked_reason="verification of #4 failed")


@pytest.mark.parametrize(
    ("severity", "state", "action", "words"),
    [
        (Severity.INFO, ModelState(), Action.IGNORE, "below min_severity warning"),
        (Severity.WARNING, ModelState(), Action.PROPOSE, "waiting for 1 approval"),
        (Severity.CRITICAL, ModelState(), Action.AUTO_EXECUTE, "at or above auto_rollback_severity"),
        (Severity.CRITICAL, FROZEN, Action.IGNORE, "frozen until 2026-11-02 13:00 UTC by slack:U1: migration"),
        (Severity.WARNING, FROZEN, Action.IGNORE, "frozen"),
        (Severity.CRITICAL, COOLING, Action.PROPOSE, "cooldown 30m, 20m left"),
        (Severity.WARNING, COOLING, Action.PROPOSE, "waiting"),
        (Severity.CRITICAL, COOLED, Action.AUTO_EXECUTE, "at or above"),
        (Severity.CRITICAL, BLOCKED, Action.PROPOSE, "automatic rollback is paused"),
        (Severity.INFO, FROZEN, Action.IGNORE, "below min_severity"),
    ],
)
def test_policy_table(severity: Severity, state: ModelState, action: Action, words: str) -> None:
    decision = decide(severity, POLICY, state, NOW)
    assert decision.action is action
    assert words in decision.reason


def test_expired_freeze_no_longer_applies() -> None:
    state = ModelState(frozen_until=NOW - timedelta(seconds=1), frozen_by="x")
    assert decide(Severity.CRITICAL, POLICY, state, NOW).action is Action.AUTO_EXECUTE


def test_dry_run_decides_the_same_but_says_so() -> None:
    policy = ModelPolicy(name="m", dry_run=True)
    decision = decide(Severity.CRITICAL, policy, ModelState(), NOW)
    assert decision.action is Action.AUTO_EXECUTE
    assert decision.dry_run


def test_custom_thresholds() -> None:
    policy = ModelPolicy(name="m", min_severity=Severity.INFO, auto_rollback_severity=Severity.WARNING)
    assert decide(Severity.INFO, policy, ModelState(), NOW).action is Action.PROPOSE
    assert decide(Severity.WARNING, policy, ModelState(), NOW).action is Action.AUTO_EXECUTE
