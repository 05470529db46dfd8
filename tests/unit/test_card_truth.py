"""Cards tell the truth: which version each alert names, what finally happened, and no invented mentions."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.proposal import Kind, Proposal, State
from bot.slack.cards import CardAlert, CardData, build_card, thread_details
from bot.slack.mrkdwn import mention, mention_ids
from devkit.text_render import render_blocks

NOW = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
KNOWN = frozenset({"U0LEAD", "U0BOB", "S0ONCALL", "S0SRE"})
# Everything Slack turns into a notification: user, group and channel-wide mentions.
MENTION = re.compile(r"<@([^>|]*)[^>]*>|<!subteam\^([^>|]*)[^>]*>|<!(channel|here|everyone)[^>]*>")


def proposal(state: State = State.PROPOSED, **changes: object) -> Proposal:
    base = Proposal(
        id=3, model="fraud-detector", from_version="3", to_version="2", state=state, kind=Kind.ALERT,
        requested_by="alert:alertmanager", reason="ErrorRateHigh firing", target_note="last stable version",
        severity="warning", required_approvals=1, dry_run=False, created_at=NOW,
        decision_reason="severity warning is below auto_rollback_severity critical: waiting for 1 approval(s)",
        deadline_at=NOW + timedelta(minutes=15),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def text_of(card: CardData) -> str:
    return render_blocks([b.to_dict() for b in build_card(card)], width=2000)


def test_each_alert_shows_the_version_it_names_and_stale_ones_say_so() -> None:
    alerts = [CardAlert("ErrorRateHigh", "critical", "firing", "", version="3"),
              CardAlert("LatencyHigh", "critical", "firing", "", version="4"),
              CardAlert("Saturation", "warning", "firing", "")]
    text = text_of(CardData(proposal(), alerts=alerts))
    assert "ErrorRateHigh (critical, firing) · names version `3`" in text
    assert "stale: names version `4`, live is `3` (not acted on)" in text
    assert "Saturation (warning, firing)\n" in text + "\n"  # no version: nothing added
    done = proposal(State.SUCCEEDED, decided_by="bot:policy", finished_at=NOW)
    late = [CardAlert("ErrorRateHigh", "critical", "firing", "", version="3"),
            CardAlert("ErrorRateHigh", "critical", "firing", "", version="3", stale=True)]
    text = text_of(CardData(done, alerts=late))
    assert text.count("names version `3`") == 2
    assert "stale: names version `3`, which was no longer live (not acted on)" in text


@pytest.mark.parametrize(("changes", "outcome"), [
    ({"state": State.SUCCEEDED, "decided_by": "U0LEAD", "approvals": ["U0LEAD"]},
     "fraud-detector was switched from `3` to `2`"),
    ({"state": State.DENIED, "decided_by": "U0LEAD"}, "denied by @U0LEAD"),
    ({"state": State.EXPIRED}, "expired without a decision"),
    ({"state": State.FAILED, "error": "fake reports version 4 live"}, "the rollback to `2` failed"),
    ({"state": State.CANCELLED, "decided_by": "alert:alertmanager"}, "cancelled"),
])
def test_finished_cards_drop_the_waiting_line_and_say_what_happened(changes: dict[str, object],
                                                                     outcome: str) -> None:
    text = text_of(CardData(proposal(**changes), approvers=["U0LEAD"]))  # type: ignore[arg-type]
    assert "waiting for" not in text.lower() and "approval(s)" not in text
    assert "Proposed because: severity warning is below auto_rollback_severity critical" in text
    assert f"Outcome: {outcome}" in text


def test_a_waiting_card_still_says_why_it_waits() -> None:
    assert "waiting for 1 approval(s)" in text_of(CardData(proposal()))


def test_utc_and_other_capitalised_words_never_become_mentions() -> None:
    detail = "ErrorRateHigh resolved at 16:12 UTC; WARNING from SLO U0LEAD (group S0ONCALL) W3C"
    assert mention_ids(detail, KNOWN) == ("ErrorRateHigh resolved at 16:12 UTC; WARNING from SLO <@U0LEAD> "
                                          "(<!subteam^S0ONCALL>) W3C")
    assert "<@UTC>" not in mention_ids("frozen until 16:12 UTC by U0LEAD")
    assert mention("UTC") == "UTC" and mention("U0LEAD") == "<@U0LEAD>"


def mentioned(text: str) -> set[str]:
    found = set()
    for user, group, everyone in MENTION.findall(text):
        found.add(user or group or f"!{everyone}")
    return found


alert_words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80)
id_like = st.from_regex(r"(group )?[UWS][A-Z0-9]{1,11}", fullmatch=True)
alert_text = st.lists(st.one_of(alert_words, id_like, st.sampled_from(
    ["<@U0EVIL>", "<!channel>", "<!here>", "<!subteam^S0EVIL>", "@U0EVIL", "UTC", "<@U0LEAD|x>", "&lt;@U1&gt;"])),
    max_size=6).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(name=alert_text, summary=alert_text, version=st.one_of(st.none(), alert_words))
def test_no_alert_text_mentions_anything_but_a_real_id(name: str, summary: str, version: str | None) -> None:
    alert = CardAlert(name or "x", "critical", "firing", summary, version=version)
    card = CardData(proposal(), alerts=[alert], approvers=sorted(KNOWN))
    bodies = [text_of(card)] + [render_blocks([b.to_dict() for b in m.blocks]) for m in thread_details(card)]
    raw = [str(b.to_dict()) for b in build_card(card)]
    thread = mention_ids(f"{name} resolved at 16:12 UTC; 1 of 2 still firing ({summary})", KNOWN)
    for text in [*raw, thread]:
        assert mentioned(text) <= KNOWN, text
    assert bodies  # rendered without error
