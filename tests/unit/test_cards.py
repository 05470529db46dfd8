"""The proposal card in every state, within Block Kit's limits, with the right buttons."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from bot.core.metrics import MetricLine
from bot.core.proposal import Kind, Proposal, State
from bot.slack.cards import (
    ACTION_APPROVE,
    ACTION_DENY,
    ACTION_UNDO,
    MAX_BLOCKS,
    MAX_SECTION_TEXT,
    CardAlert,
    CardData,
    build_card,
    card_message,
    fallback_text,
    format_number,
    metric_text,
    thread_details,
)
from devkit.text_render import render_blocks

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def card_metric(name: str, now: float | None, baseline: float | None, delta: float | None = None,
                delta_pct: float | None = None, sparkline: str = "", no_data: bool = False) -> MetricLine:
    return MetricLine(name, f"{name}_expr", now, baseline, delta, delta_pct, sparkline, no_data)


def proposal(**changes: Any) -> Proposal:
    base = Proposal(
        id=12,
        model="fraud-detector",
        from_version="7",
        to_version="6",
        state=State.PROPOSED,
        kind=Kind.ALERT,
        requested_by="bot:alertmanager",
        reason="HighErrorRate firing",
        target_note="no earlier version became stable; this is the previous deployment",
        severity="warning",
        decision_reason=(
            "severity warning is below auto_rollback_severity critical: waiting for 2 approval(s)"
        ),
        required_approvals=2,
        dry_run=False,
        created_at=NOW,
        deadline_at=NOW + timedelta(minutes=15),
    )
    return replace(base, **changes)


def alert(i: int = 0) -> CardAlert:
    return CardAlert(
        name=f"HighErrorRate{i}",
        severity="critical",
        status="firing",
        summary=f"error rate above 5% on shard {i}",
        link=f"http://prometheus.local/graph?g0.expr=rate{i}",
        starts_at=NOW - timedelta(minutes=3),
    )


def card(p: Proposal | None = None, **changes: Any) -> CardData:
    data = CardData(
        proposal=p or proposal(),
        alerts=[alert()],
        metrics=[card_metric("error_rate", 0.42, 0.01, 0.41, 4100.0, "▁▂▃▅▇")],
        approvers=["U0LEAD", "S0ONCALL"],
        on_timeout="escalate",
        public_url="http://bot.local/",
    )
    for key, value in changes.items():
        setattr(data, key, value)
    return data


def dicts(blocks: list[Block]) -> list[dict[str, Any]]:
    return [b.to_dict() for b in blocks]  # to_dict() runs slack_sdk's own Block Kit validation


def all_text(blocks: list[Block]) -> str:
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                out.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(dicts(blocks))
    return "\n".join(out)


def buttons(blocks: list[Block]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for b in dicts(blocks):
        if b["type"] == "actions":
            for el in b["elements"]:
                found[el["action_id"]] = el
    return found


def assert_within_limits(blocks: list[Block]) -> None:
    rendered = dicts(blocks)
    assert len(rendered) <= MAX_BLOCKS
    for b in rendered:
        if b["type"] == "section":
            assert len(b["text"]["text"]) <= MAX_SECTION_TEXT
        if b["type"] == "header":
            assert len(b["text"]["text"]) <= 150
        if b["type"] == "context":
            assert len(b["elements"]) <= 10
        if b["type"] == "actions":
            for el in b["elements"]:
                assert len(el["text"]["text"]) <= 75


# --------------------------------------------------------------------------- content


def test_proposed_card_shows_everything_a_decider_needs() -> None:
    p = proposal(approvals=["U1"])
    blocks = build_card(card(p))
    text = all_text(blocks)
    assert dicts(blocks)[0]["type"] == "header"
    assert "fraud-detector" in dicts(blocks)[0]["text"]["text"] and "⏳" in dicts(blocks)[0]["text"]["text"]
    assert "`7` → `6`" in text
    assert "no earlier version became stable; this is the previous deployment" in text
    assert "Waiting for 1 of 2 approvals: approved by <@U1>" in text
    assert "<http://prometheus.local/graph?g0.expr=rate0|HighErrorRate0>" in text
    assert "`error_rate` 0.42 (before 0.01, +0.41, +4100%) ▁▂▃▅▇" in text
    assert "<@U0LEAD>, <!subteam^S0ONCALL>" in text
    assert "<!date^1714565700^{date_short_pretty} {time}|2024-05-01 12:15 UTC>, then escalate" in text
    assert "severity warning is below auto_rollback_severity critical" in text
    assert "<http://bot.local/api/proposals/12|Proposal #12>" in text
    assert_within_limits(blocks)


def test_proposed_without_approvals_yet() -> None:
    text = all_text(build_card(card()))
    assert "Waiting for 2 approvals" in text
    assert "approved by" not in text


def test_approve_and_deny_buttons_only_while_proposed() -> None:
    found = buttons(build_card(card()))
    assert set(found) == {ACTION_APPROVE, ACTION_DENY}
    assert found[ACTION_APPROVE]["style"] == "primary" and found[ACTION_APPROVE]["text"]["text"] == "Approve"
    assert found[ACTION_DENY]["style"] == "danger" and found[ACTION_DENY]["text"]["text"] == "Deny"
    assert found[ACTION_APPROVE]["value"] == "12" == found[ACTION_DENY]["value"]
    for state in State:
        if state is State.PROPOSED:
            continue
        got = buttons(build_card(card(proposal(state=state, decided_by="U2"))))
        assert ACTION_APPROVE not in got and ACTION_DENY not in got, state


def test_undo_only_on_succeeded_automatic_alert_rollback() -> None:
    auto = proposal(state=State.SUCCEEDED, decided_by="bot:auto", started_at=NOW, finished_at=NOW)
    found = buttons(build_card(card(auto)))
    assert set(found) == {ACTION_UNDO}
    assert found[ACTION_UNDO]["value"] == "12"
    assert "7" in found[ACTION_UNDO]["text"]["text"]
    not_undoable = [
        replace(auto, decided_by="U0LEAD"),  # a person approved it
        replace(auto, kind=Kind.MANUAL),  # asked for by a person
        replace(auto, dry_run=True),  # nothing was switched
        replace(auto, state=State.FAILED, error="boom"),
        replace(auto, kind=Kind.UNDO),
    ]
    for p in not_undoable:
        assert buttons(build_card(card(p))) == {}, p


STATE_CASES: list[tuple[dict[str, Any], list[str]]] = [
    ({"state": State.APPROVED, "approvals": ["U1", "U2"], "decided_by": "U2"}, ["Approved by <@U1>, <@U2>"]),
    ({"state": State.EXECUTING, "started_at": NOW}, ["Rolling back to `6`", "<!date^1714564800^{time}|"]),
    (
        {
            "state": State.SUCCEEDED,
            "started_at": NOW,
            "finished_at": NOW + timedelta(seconds=0.4),
            "decided_by": "U2",
            "approvals": ["U1", "U2"],
            "result": "alias champion now points at 6",
        },
        ["Rolled back to `6` in 0.4 s", "approved by <@U1>, <@U2>", "alias champion now points at 6"],
    ),
    (
        {
            "state": State.SUCCEEDED,
            "decided_by": "bot:auto",
            "started_at": NOW,
            "finished_at": NOW + timedelta(seconds=2),
        },
        ["Rolled back to `6` in 2.0 s (automatically)"],
    ),
    (
        {
            "state": State.SUCCEEDED,
            "dry_run": True,
            "decided_by": "U2",
            "started_at": NOW,
            "finished_at": NOW,
        },
        ["Dry run: would have rolled back to `6`", "nothing was switched", "*Dry run*"],
    ),
    (
        {"state": State.FAILED, "error": "MLflow answered 503"},
        ["Rollback to `6` failed: MLflow answered 503"],
    ),
    ({"state": State.FAILED}, ["failed: no error detail was recorded"]),
    ({"state": State.DENIED, "decided_by": "U0LEAD"}, ["Denied by <@U0LEAD> (no reason given)"]),
    ({"state": State.EXPIRED}, ["Expired: no decision before <!date^1714565700^"]),
    (
        {
            "state": State.CANCELLED,
            "decided_by": "cli:alice",
            "decided_at": NOW,
            "result": "fixed by a hotfix",
        },
        ["Cancelled <!date^1714564800^", "by alice (CLI): fixed by a hotfix"],
    ),
    (
        {
            "state": State.CANCELLED,
            "decided_by": "api:ci",
            "decided_at": NOW,
            "result": "superseded by the deployment of version 8 by ci-job-42",
        },
        ["rollback superseded", "Superseded <!date^1714564800^",
         "by the deployment of version 8 by ci-job-42; nothing was switched"],
    ),
    ({"state": State.SUCCEEDED, "kind": Kind.UNDO, "decided_by": "U1"}, ["Rolled forward again to `6`"]),
]


@pytest.mark.parametrize(("changes", "expected"), STATE_CASES)
def test_state_line_for_every_state(changes: dict[str, Any], expected: list[str]) -> None:
    blocks = build_card(card(proposal(**changes)))
    text = all_text(blocks)
    for piece in expected:
        assert piece in text, (piece, text)
    assert_within_limits(blocks)


def test_a_superseded_card_has_no_buttons_and_says_so_in_its_notification_text() -> None:
    p = proposal(state=State.CANCELLED, decided_at=NOW, result="superseded by the deployment of version 8 by ci")
    message = card_message(card(p))
    assert "superseded by a new deployment" in message.text
    assert ACTION_APPROVE not in str(message.to_dict()) and ACTION_DENY not in str(message.to_dict())


def test_every_state_is_covered_by_the_cases() -> None:
    covered = {c["state"] for c, _ in STATE_CASES} | {State.PROPOSED}
    assert covered == set(State)


def test_denied_with_reason_from_the_store() -> None:
    p = proposal(state=State.DENIED, decided_by="U0LEAD")
    text = all_text(build_card(card(p, outcome_reason="the spike is a load test")))
    assert "Denied by <@U0LEAD>: the spike is a load test" in text


def test_verification_text_is_shown() -> None:
    p = proposal(state=State.SUCCEEDED, decided_by="bot:auto", verification="error_rate back to 0.01: passed")
    assert "Verification:* error_rate back to 0.01: passed" in all_text(build_card(card(p)))


def test_escalated_proposal_names_who_it_went_to() -> None:
    text = all_text(build_card(card(proposal(escalated=True), escalate_to=["S0SRE"])))
    assert "escalated to <!subteam^S0SRE>" in text


def test_deadline_only_while_waiting() -> None:
    assert "Deadline" in all_text(build_card(card()))
    assert "Deadline" not in all_text(build_card(card(proposal(state=State.EXECUTING))))


def test_user_text_is_escaped() -> None:
    p = proposal(reason="<!channel> & <http://evil|click>")
    text = all_text(build_card(card(p)))
    assert "<!channel>" not in text
    assert "&lt;!channel&gt; &amp; &lt;http://evil|click&gt;" in text


# --------------------------------------------------------------------------- metrics


def test_metric_without_data_never_shows_a_number() -> None:
    assert metric_text(card_metric("error_rate", None, None, None, None, "", True)) == "`error_rate` no data"
    assert (
        metric_text(card_metric("error_rate", 0.5, 0.1, 0.4, 400.0, "", no_data=True))
        == "`error_rate` no data"
    )
    line = metric_text(card_metric("latency", None, 0.2, None, None))
    assert line == "`latency` no data (before 0.2)"
    line = metric_text(card_metric("latency", 0.3, None, 0.1, 50.0))
    assert line == "`latency` 0.3 (before no data)"


def test_number_formatting() -> None:
    assert [format_number(v) for v in (0, 0.42, 0.0013, 4100, 12.3456, -0.5, 2_500_000)] == [
        "0",
        "0.42",
        "0.0013",
        "4100",
        "12.35",
        "-0.5",
        "2.5e+06",
    ]
    assert "(before 0.5, -0.25, -50%)" in metric_text(card_metric("x", 0.25, 0.5, -0.25, -50.0))
    assert "+2.5%" in metric_text(card_metric("x", 1.025, 1.0, 0.025, 2.5))


# --------------------------------------------------------------------------- limits


def test_two_hundred_alerts_and_ten_metrics_stay_within_limits() -> None:
    many = card(
        alerts=[alert(i) for i in range(200)],
        metrics=[
            card_metric(f"metric_{i}", float(i), 1.0, float(i - 1), 100.0 * (i - 1), "▁▃▅") for i in range(10)
        ],
    )
    blocks = build_card(many)
    assert_within_limits(blocks)
    text = all_text(blocks)
    assert len(re.findall(r"\|HighErrorRate\d+>", text)) == 5
    assert "+195 more" in text
    assert "`metric_2`" in text and "`metric_3`" not in text
    assert "+7 more in the thread" in text

    details = thread_details(many)
    assert details
    joined = "\n".join(all_text(m.blocks) for m in details)
    assert all(f"HighErrorRate{i}*" in joined or f"HighErrorRate{i}>" in joined for i in range(200))
    assert all(f"`metric_{i}`" in joined for i in range(10))
    for m in details:
        assert_within_limits(m.blocks)


def test_huge_texts_are_truncated_with_an_ellipsis() -> None:
    p = proposal(
        model="m" * 400,
        reason="r" * 5000,
        error="e" * 5000,
        state=State.FAILED,
        decision_reason="d" * 5000,
        from_version="v" * 100,
    )
    blocks = build_card(card(p, alerts=[replace(alert(), summary="s" * 5000)]))
    assert_within_limits(blocks)
    sections = [b for b in dicts(blocks) if b["type"] == "section"]
    assert any(s["text"]["text"].endswith("…") for s in sections)


def test_long_undo_button_text_is_cut_to_75() -> None:
    p = proposal(state=State.SUCCEEDED, decided_by="bot:auto", from_version="x" * 200)
    found = buttons(build_card(card(p)))
    assert len(found[ACTION_UNDO]["text"]["text"]) <= 75


def test_thread_details_empty_without_lists() -> None:
    assert thread_details(card(alerts=[], metrics=[])) == []


# --------------------------------------------------------------------------- fallback and rendering


def test_fallback_text_for_notifications() -> None:
    text = fallback_text(card(alerts=[alert(i) for i in range(5)]))
    assert text.startswith("⏳ fraud-detector 7 → 6: rollback proposed")
    assert "HighErrorRate0, HighErrorRate1, HighErrorRate2 +2" in text
    failed = fallback_text(card(proposal(state=State.FAILED, error="timeout <5s>")))
    assert "rollback failed: timeout &lt;5s&gt;" in failed
    assert "(dry run)" in fallback_text(card(proposal(state=State.SUCCEEDED, dry_run=True)))


def test_card_message_is_ready_for_post_message() -> None:
    msg = card_message(card()).to_dict()
    assert set(msg) == {"text", "blocks"}
    assert msg["blocks"][0]["type"] == "header"


def test_card_reads_well_in_a_terminal() -> None:
    out = render_blocks(build_card(card(proposal(approvals=["U1"]))))
    assert "⏳ fraud-detector: rollback proposed\n====" in out
    assert "approved by @U1" in out
    assert "HighErrorRate0 (http://prometheus.local/graph?g0.expr=rate0)" in out
    assert "2024-05-01 12:15 UTC" in out
    assert "@S0ONCALL" in out
    assert out.rstrip().endswith("[ Approve ] [ Deny ]")


def test_alerts_alertmanager_did_not_send_are_counted() -> None:
    from bot.slack.cards import alerts_text, not_sent

    shown = [CardAlert(f"A{i}", "critical", "firing", "", source="alertmanager", not_sent=n)
             for i, n in enumerate((1, 1))]
    text = alerts_text(shown)
    assert "*Alerts* (2)" in text and text.endswith("+1 more that Alertmanager did not send")
    grafana = CardAlert("G", "warning", "firing", "", source="grafana", not_sent=4)
    assert "+4 more that Grafana did not send" in alerts_text([*shown, grafana])
    assert "did not send" not in alerts_text([CardAlert("A", "critical", "firing", "")])
    assert [not_sent({"truncatedAlerts": v}) for v in ("3", "", "-1", "x", "²")] == [3, 0, 0, 0, 0]


def test_abort_canary_card_names_the_action_and_the_traffic_split() -> None:
    from bot.core.ports import TrafficSplit
    from bot.core.proposal import ProposalAction

    split = TrafficSplit("6", "7", 20, "step 1 of 8")
    p = proposal(action=ProposalAction.ABORT_CANARY,
                 summary={"traffic": {"before": split.as_dict(), "after": split.aborted().as_dict()}})
    out = render_blocks(build_card(card(p)))
    assert "rollback proposed" not in out and "canary abort proposed" in out
    assert "(abort canary)" in out
    assert "Traffic: 6 80 % · 7 (canary) 20 % (step 1 of 8) → after the abort: 6 100 % · 7 (canary) 0 %" \
        in " ".join(out.replace("`", "").split())
    done = replace(p, state=State.SUCCEEDED, decided_by="bot:policy", started_at=NOW,
                   finished_at=NOW + timedelta(seconds=3))
    done_text = render_blocks(build_card(card(done)))
    assert "canary aborted" in done_text and "takes 100 % of the traffic" in done_text
    assert "canary abort done" in fallback_text(card(done))
    assert "[ Undo" not in done_text  # the stable version never changed: nothing to roll forward
    dicts(build_card(card(done)))
