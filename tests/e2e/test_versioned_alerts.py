"""Never roll back the wrong thing, through the real server on SQLite and PostgreSQL: alerts count against the
version they name, Datadog's Warn is a warning whatever the monitor's priority, and `never` always asks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from bot.core.clock import ManualClock
from bot.core.policy import Policy
from bot.core.proposal import Proposal, State
from bot.policy_file import TARGETS, parse_policy
from tests.conftest import BASE_POLICY
from tests.e2e.slackbot import SlackBot, slack_bot
from tests.integration.alert_helpers import am_alert, am_body, load

AUTH = {"Authorization": "Bearer e2e-alert-token"}
MODEL = "fraud-detector"


def policy(**defaults: Any) -> Policy:
    loaded = parse_policy({"defaults": {**BASE_POLICY["defaults"], **defaults}, "models": BASE_POLICY["models"]},
                          "e2e.toml", known_targets=(*TARGETS, "fake"))
    assert loaded.policy is not None, loaded.problems
    return loaded.policy


def call(bot: SlackBot, path: str, body: dict[str, Any], status: int = 202) -> dict[str, Any]:
    r = httpx.post(f"{bot.url}{path}", json=body, headers=AUTH, timeout=30)
    assert r.status_code == status, r.text
    answer: dict[str, Any] = r.json()
    return answer


def deploy(bot: SlackBot, *versions: str) -> None:
    for version in versions:
        call(bot, "/deployments", {"model": MODEL, "version": version, "deployed_by": "ci"}, 201)
    bot.target.live[MODEL] = versions[-1]


def live(bot: SlackBot) -> str:
    r = httpx.get(f"{bot.url}/api/models/{MODEL}", headers=AUTH, timeout=30)
    assert r.status_code == 200, r.text
    return str(r.json()["current_version"])


def wait_for(check: Callable[[], Any], what: str, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what} not within {timeout} s")


def proposals(bot: SlackBot) -> list[Proposal]:
    return bot.container.store.proposals(model=MODEL)


def decided(bot: SlackBot, fingerprint: str) -> tuple[str, str]:
    """The decider's outcome and reason for one stored alert (the request only records it)."""
    def outcome() -> tuple[str, str] | None:
        rows = [r for r in bot.container.store.firing_alerts(MODEL) if r.fingerprint == fingerprint]
        if not rows:
            return None
        found = bot.container.store.alert_outcomes([rows[0].id]).get(rows[0].id)
        return (str(found[0]), str(found[1])) if found and found[2] is not None else None
    result: tuple[str, str] = wait_for(outcome, f"the decision on alert {fingerprint}")
    return result


@pytest.fixture
def zero_cooldown(db_url: str, clock: ManualClock) -> Iterator[SlackBot]:
    with slack_bot(db_url, policy(cooldown="0s"), clock) as bot:
        yield bot


def test_two_alerts_about_version_3_end_at_version_2_not_1(zero_cooldown: SlackBot) -> None:
    bot = zero_cooldown
    deploy(bot, "1", "2", "3")
    call(bot, "/alerts/alertmanager", am_body(am_alert(MODEL, "v3-first", severity="critical", version="3")))
    [first] = wait_for(lambda: [p for p in proposals(bot) if p.state is State.SUCCEEDED], "the rollback of 3")
    assert (first.from_version, first.to_version) == ("3", "2") and live(bot) == "2"
    call(bot, "/alerts/alertmanager", am_body(am_alert(MODEL, "v3-second", severity="critical", version="3",
                                                       starts="2026-11-02T11:59:00Z")))
    outcome, why = decided(bot, "v3-second")
    assert outcome == "stale" and why.startswith("names version 3; live is 2")
    assert live(bot) == "2" and len(proposals(bot)) == 1
    assert [(s.from_version, s.to_version) for s in bot.target.switches] == [("3", "2")]
    card = " ".join(bot.wait_card(first.id, "no longer live").split())
    assert "Alerts (2)" in card and "waiting for" not in card.lower()
    assert card.count("names version `3`") == 2 and card.count("stale") == 1  # the first one is the cause
    assert "stale: names version `3`, which was no longer live (not acted on)" in card
    assert "name version 3, live is 2" in bot.wait_thread(first.id, "shown as stale")
    # both alerts about 3 still fire: they keep 3 from looking quiet, never 2 (verification, stability)
    store, since = bot.container.store, bot.clock.now()
    assert store.quiet_since(MODEL, since) is None and store.quiet_since(MODEL, since, "3") is None
    assert store.quiet_since(MODEL, since, "2") == since


def test_an_alert_naming_a_never_deployed_version_proposes_nothing(db_url: str, clock: ManualClock) -> None:
    with slack_bot(db_url, policy(), clock) as bot:  # the default cooldown
        deploy(bot, "1", "2", "3")
        answer = call(bot, "/alerts/alertmanager",
                      am_body(am_alert(MODEL, "ghost", severity="critical", version="9")))
        assert answer["stored"] == 1
        outcome, why = decided(bot, "ghost")
        assert outcome == "stale" and "names version 9, which was never deployed; live is 3" in why
        assert proposals(bot) == [] and bot.target.switches == [] and live(bot) == "3"
        [row] = bot.container.store.firing_alerts(MODEL)
        assert row.version == "9"


def test_a_stale_alert_is_shown_on_the_open_card(db_url: str, clock: ManualClock) -> None:
    with slack_bot(db_url, policy(), clock) as bot:
        deploy(bot, "1", "2", "3")
        call(bot, "/alerts/alertmanager", am_body(am_alert(MODEL, "w3", severity="warning", version="3")))
        [proposal] = wait_for(lambda: proposals(bot), "a proposal from the warning about version 3")
        call(bot, "/alerts/alertmanager", am_body(am_alert(MODEL, "c2", severity="critical", version="2")))
        card = " ".join(bot.wait_card(proposal.id, "stale").split())  # the card as one line, unwrapped
        assert "names version `3`" in card, card and "stale: names version `2`, live is `3` (not acted on)" in card
        assert bot.container.store.get_proposal(proposal.id).state is State.PROPOSED and bot.target.switches == []
        # a second alert about 3 joins, then resolves: the thread says when, and "UTC" mentions no one
        second = {"severity": "warning", "version": "3", "starts": "2026-11-02T11:59:00Z"}
        call(bot, "/alerts/alertmanager", am_body(am_alert(MODEL, "w3b", **second)))
        bot.wait_card(proposal.id, "Alerts (3)")
        call(bot, "/alerts/alertmanager", am_body(am_alert(MODEL, "w3b", status="resolved",
                                                           ends="2026-11-02T12:12:00Z", **second)))
        said = bot.wait_thread(proposal.id, "resolved at 12:12 UTC")
        assert "<@" not in said and "<!" not in said
        # the last alert about 3 resolves: the stale one, still firing, does not hold the proposal open
        call(bot, "/alerts/alertmanager", am_body(am_alert(MODEL, "w3", severity="warning", version="3",
                                                           status="resolved", ends="2026-11-02T12:13:00Z")))
        wait_for(lambda: bot.container.store.get_proposal(proposal.id).state is State.CANCELLED,
                 "the proposal cancelled once every alert about version 3 resolved")
        assert bot.target.switches == []


def test_datadog_warn_on_a_p1_monitor_posts_a_card_and_waits(db_url: str, clock: ManualClock) -> None:
    with slack_bot(db_url, policy(), clock) as bot:
        deploy(bot, "6", "7")
        # Datadog's documented variable values, as the bot's payload template sends them; the monitor is P1
        # and only crossed its warning threshold.
        warn = load("datadog-triggered.json") | {
            "transition": "Warn", "alert_type": "warning", "priority": "P1",
            "title": "[P1] [Warn on {model:fraud-detector}] fraud-detector error rate is high",
            "alert_title": "[Warn on {model:fraud-detector}] fraud-detector error rate is high"}
        call(bot, "/alerts/datadog", warn)
        [proposal] = wait_for(lambda: proposals(bot), "a proposal from the Datadog warning")
        assert proposal.severity == "warning" and proposal.state is State.PROPOSED
        card = bot.wait_card(proposal.id, "Waiting for 1 approval")
        assert "[ Approve ]" in card and "(warning, firing)" in card
        assert bot.target.switches == []


def test_never_asks_even_for_a_critical_alert(db_url: str, clock: ManualClock) -> None:
    with slack_bot(db_url, policy(auto_rollback_severity="never"), clock) as bot:
        deploy(bot, "6", "7")
        call(bot, "/alerts/alertmanager", am_body(am_alert(MODEL, "crit", severity="critical", version="7")))
        [proposal] = wait_for(lambda: proposals(bot), "a proposal from the critical alert")
        card = bot.wait_card(proposal.id, "Waiting for 1 approval")
        assert "auto_rollback_severity = never" in card and "[ Approve ]" in card
        assert proposal.severity == "critical" and bot.target.switches == []
