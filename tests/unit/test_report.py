"""The report's rules without I/O: an in-memory ReportSource, the version diff, signed links, the parser,
the renderers' escaping and the metric labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.clock import ManualClock
from bot.core.errors import NotFound
from bot.core.proposal import Kind, Proposal, State
from bot.core.report import (
    CAPTURE_ACTION,
    AlertFacts,
    AuditFacts,
    DecisionFacts,
    DeploymentFacts,
    build_report,
    decision_kind,
)
from bot.core.version_diff import diff_runs, difference, side_by_side
from bot.report.links import LinkConfigError, LinkSigner, signer_from_env
from bot.report.markdown import esc, render_markdown
from bot.report.metrics import decision_label, verdict_label
from bot.slack.commands import CommandError, Report, parse_command
from bot.slack.report_blocks import report_blocks, report_text
from bot.slack.report_post import report_due
from bot.store.report_queries import ProposalTimes

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def proposal(**changes: object) -> Proposal:
    base = Proposal(id=7, model="ranker", from_version="2", to_version="1", state=State.SUCCEEDED, kind=Kind.ALERT,
                    requested_by="alert:alertmanager", reason="errors", target_note="last stable", severity="critical",
                    decision_reason="critical alert", required_approvals=1, dry_run=False, created_at=at(65),
                    decided_by="bot:policy", decided_at=at(65), started_at=at(65), finished_at=at(65.5),
                    verification="recovered: fine", summary={})
    return replace(base, **changes)  # type: ignore[arg-type]


@dataclass
class MemorySource:
    p: Proposal
    deps: list[DeploymentFacts] = field(default_factory=list)
    votes: list[DecisionFacts] = field(default_factory=list)
    fired: list[AlertFacts] = field(default_factory=list)
    rows: list[AuditFacts] = field(default_factory=list)

    def proposal(self, proposal_id: int) -> Proposal:
        if proposal_id != self.p.id:
            raise NotFound(f"no proposal #{proposal_id}")
        return self.p

    def deployments(self, model: str) -> Sequence[DeploymentFacts]:
        return self.deps

    def decisions(self, proposal_id: int) -> Sequence[DecisionFacts]:
        return self.votes

    def alerts(self, proposal_id: int) -> Sequence[AlertFacts]:
        return self.fired

    def audit(self, proposal_id: int) -> Sequence[AuditFacts]:
        return self.rows


def dep(i: int, version: str, minutes: float, **meta: object) -> DeploymentFacts:
    return DeploymentFacts(i, version, at(minutes), "ci", "argo", dict(meta), None, None)


def automatic_source() -> MemorySource:
    return MemorySource(
        proposal(),
        deps=[dep(1, "1", 0, commit="aaa"), dep(2, "2", 60, commit="bbb"), dep(3, "1", 65.5)],
        fired=[AlertFacts(1, "alertmanager", "Errors", "critical", "resolved", "s", at(63), at(64), at(70),
                          {"generatorURL": "http://prom/graph", "bad": "javascript:alert(1)"})],
        rows=[AuditFacts(1, at(65), "alert:am", "proposal.created", "errors", {"policy": {"cooldown": "30m"}}),
              AuditFacts(2, at(65), "bot:policy", "proposal.approved", "critical", {}),
              AuditFacts(3, at(66), "bot:report", CAPTURE_ACTION, None, {
                  "from": {"run_id": "r2", "params": {"lr": "0.1"}, "metrics": {"auc": 0.8}, "tags": {}},
                  "to": {"run_id": "r1", "params": {"lr": "0.1"}, "metrics": {"auc": 0.9}, "tags": {"x": "y"}}}),
              AuditFacts(4, at(71), "bot:verification", "rollback.verified.recovered", "ok", {})])


def test_automatic_rollback_report() -> None:
    report = build_report(automatic_source(), 7, now=at(90))
    assert [(e.what, e.offset_s) for e in report.timeline] == [
        ("version 2 deployed via argo", 0.0), ("first alert fired: Errors", 180.0),
        ("proposal #7 opened (alert): 2 → 1", 300.0), ("decided automatically", 300.0),
        ("switch started", 300.0), ("switch finished", 330.0), ("alerts resolved", 600.0),
        ("verification: recovered", 660.0)]
    d = report.durations
    assert (d.detect_s, d.decide_s, d.roll_back_s, d.recover_s, d.total_s) == (180.0, 120.0, 30.0, 330.0, 660.0)
    assert report.decision == "automatic" and report.policy == {"cooldown": "30m"}
    # the restored version's own deployment (with CI's metadata), not the rollback's re-deployment
    assert report.restored is not None and report.restored.id == 1
    assert [(r.key, r.bad, r.restored) for r in report.changes.metadata] == [("commit", "bbb", "aaa")]
    assert [(r.kind, r.key) for r in report.changes.runs] == [("tag", "x"), ("metric", "auc")]
    assert report.changes.run_ids == ("r2", "r1") and report.verdict == "recovered"


def test_denied_proposal_without_deployment_or_policy_snapshot() -> None:
    p = proposal(state=State.DENIED, decided_by="slack:U0LEAD", started_at=None, finished_at=None,
                 verification=None, summary={"version_metrics": {"from": {"auc": 0.8}, "to": {"auc": 0.9}}})
    src = MemorySource(p, votes=[DecisionFacts("slack:U0LEAD", "deny", "not the model", at(66))])
    report = build_report(src, 7, now=at(90))
    assert report.decision == "denied" and report.bad is None
    assert [e.what for e in report.timeline] == ["proposal #7 opened (alert): 2 → 1", "refused (deny)"]
    assert all(e.offset_s is None for e in report.timeline)
    assert report.durations.decide_s is None and report.durations.roll_back_s is None
    assert "only the values kept on the proposal row" in report.policy_note
    assert report.policy == {"required_approvals": 1, "dry_run": False}
    assert [r.key for r in report.changes.runs] == ["auc"] and "were not captured" in report.changes.runs_note
    with pytest.raises(NotFound):
        build_report(src, 8, now=at(90))


@pytest.mark.parametrize(("changes", "kind"), [
    ({"decided_by": "slack:U0LEAD"}, "approved"), ({"decided_by": "bot:timeout"}, "automatic"),
    ({"decided_by": "cli:ops"}, "break_glass"), ({"state": State.EXPIRED}, "expired"),
    ({"state": State.PROPOSED, "decided_by": None}, "waiting"), ({"state": State.CANCELLED}, "cancelled"),
])
def test_decision_kinds(changes: dict[str, object], kind: str) -> None:
    p = proposal(**changes)
    assert decision_kind(p) == kind
    row = ProposalTimes(p.model, p.state.value, False, p.decided_by, p.created_at, p.decided_at, None, None, None)
    assert decision_label(row) == kind


def test_diff_orders_by_how_much_versions_differ() -> None:
    assert difference(1.0, 1.0) == 0.0 and difference("a", "b") == 1.0 and difference(None, 3) == 1.0
    assert difference("0.1", "0.05") == pytest.approx(0.5) and difference(0, 0.0) == 0.0
    assert difference(float("nan"), float("nan")) == 0.0 and difference(True, False) == 1.0
    rows = diff_runs({"params": {"a": "1", "same": "x"}, "metrics": {"m": 10.0, "n": 1.0}},
                     {"params": {"a": "2", "same": "x"}, "metrics": {"m": 9.0, "n": 1.0}, "tags": {"t": "v"}})
    assert [(r.kind, r.key, round(r.score, 3)) for r in rows] == [("tag", "t", 1.0), ("param", "a", 0.5),
                                                                  ("metric", "m", 0.1)]
    meta = side_by_side({"commit": "a", "region": "eu"}, {"commit": "b", "region": "eu"})
    assert [(r.key, r.differs) for r in meta] == [("commit", True), ("region", False)]


def test_signed_links() -> None:
    clock = ManualClock(T0)
    signer = LinkSigner("k" * 20, clock)
    link = signer.sign("/incidents/7", query={"page": "2", "empty": ""})
    path, query = link.split("?")
    params = dict(kv.split("=") for kv in query.split("&"))
    assert path == "/incidents/7" and params["page"] == "2" and "empty" not in params
    assert int(params["exp"]) == int((T0 + timedelta(days=7)).timestamp())
    assert signer.check("/incidents/7", params["exp"], params["sig"]).ok
    assert "altered" in signer.check("/incidents/8", params["exp"], params["sig"]).reason
    assert "altered" in signer.check("/incidents/7", str(int(params["exp"]) + 1), params["sig"]).reason
    assert "altered" in signer.check("/incidents/7", "12ab", params["sig"]).reason
    assert not LinkSigner("j" * 20, clock).check("/incidents/7", params["exp"], params["sig"]).ok
    clock.advance(timedelta(days=7))
    assert "expired" in signer.check("/incidents/7", params["exp"], params["sig"]).reason
    assert signer.sign("/models/a b").startswith("/models/a%20b?")
    with pytest.raises(LinkConfigError, match="at least 16"):
        LinkSigner("short", clock)
    assert signer_from_env({}, clock) is None
    assert signer_from_env({"PAGE_LINK_KEY": "k" * 16, "PAGE_LINK_TTL": "1h"}, clock).ttl == timedelta(hours=1)  # type: ignore[union-attr]
    with pytest.raises(LinkConfigError, match="PAGE_LINK_TTL"):
        signer_from_env({"PAGE_LINK_KEY": "k" * 16, "PAGE_LINK_TTL": "soon"}, clock)


def test_report_subcommand_parses() -> None:
    assert parse_command("report 12") == Report(12)
    assert parse_command("REPORT #12") == Report(12)
    for bad in ("report", "report x", "report 1 2", "report 0", "report -3"):
        with pytest.raises(CommandError) as err:
            parse_command(bad)
        assert "/rollback report ID" in str(err.value)


def test_renderers_escape_what_people_and_senders_wrote() -> None:
    src = automatic_source()
    src.p = proposal(reason="<script>x</script> | [link](javascript:alert(1))", model="ranker")
    report = build_report(src, 7, now=at(90))
    md = render_markdown(report, "https://bot.example/incidents/7?exp=1&sig=a")
    assert "\\<script\\>" in md and "\\[link\\](javascript:alert(1))" in md  # no live link, no tag
    assert "[generatorURL](http://prom/graph)" in md and "[bad]" not in md
    assert esc("a|b\nc") == "a\\|b c"
    text = report_text(report, "https://bot.example/incidents/7?exp=1&sig=a")
    assert "&lt;script&gt;" not in text  # the reason is not in the summary; ids and numbers are
    assert "<https://bot.example/incidents/7?exp=1&sig=a|Open the incident page>" in text
    blocks = [b.to_dict() for b in report_blocks(report, None)]
    assert blocks[0]["type"] == "header" and len(blocks[1]["fields"]) == 5


@pytest.mark.parametrize(("event", "changes", "due"), [
    ("verification", {}, True), ("failed", {"state": State.FAILED}, True),
    ("succeeded", {"verify_at": None}, True), ("succeeded", {"verify_at": at(70)}, False),
    ("created", {}, False), ("approved", {}, False),
])
def test_report_is_posted_when_the_story_ends(event: str, changes: dict[str, object], due: bool) -> None:
    assert report_due(event, proposal(**changes)) is due


def test_verdict_labels() -> None:
    assert verdict_label("recovered: ok") == "recovered"
    assert verdict_label("not recovered: an alert") == "not_recovered"
    assert verdict_label("inconclusive: no data") == "inconclusive"
    assert verdict_label(None) is None and verdict_label("weird") is None


def test_json_has_no_nan_and_check_names_a_bad_link_key() -> None:
    import json

    from bot.config import check_settings, settings_from
    from bot.report.json_view import report_json

    src = automatic_source()
    src.rows[2] = replace(src.rows[2], inputs={"from": {"metrics": {"auc": float("nan"), "loss": float("inf")}},
                                               "to": {"metrics": {"auc": 0.9, "loss": 1.0}}})
    data = report_json(build_report(src, 7, now=at(90)))
    json.dumps(data, allow_nan=False)
    assert {r["key"]: r["rolled_back"] for r in data["changes"]["runs"]} == {"auc": None, "loss": None}
    problems = check_settings(settings_from({"PAGE_LINK_KEY": "short", "ALERT_WEBHOOK_TOKEN": "t"}), command="check")
    assert "PAGE_LINK_KEY must be at least 16 characters long" in problems
    assert "short" not in " ".join(problems)


def test_access_log_never_keeps_a_signature() -> None:
    import logging

    from bot.report.links import RedactSignatures, redact

    assert redact("/incidents/7?exp=1&sig=abc-_DEF") == "/incidents/7?exp=1&sig=[redacted]"
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", "/incidents/7?sig=secretsig&exp=9", "1.1", 200), None)
    assert RedactSignatures().filter(record)
    assert "secretsig" not in record.getMessage() and "sig=[redacted]&exp=9" in record.getMessage()


def test_openapi_paths_describe_every_route() -> None:
    from bot.web.pages.openapi import report_paths

    paths = report_paths()
    assert set(paths) == {"/api/proposals/{id}/report", "/incidents", "/incidents/{id}", "/models/{model}"}
    assert set(paths["/incidents/{id}"]["get"]["responses"]) == {"200", "400", "401", "403", "404", "503"}
    for page in ("/incidents", "/incidents/{id}", "/models/{model}"):  # pages answer HTML, refusals included
        answers = paths[page]["get"]["responses"].values()
        assert all(set(a["content"]) == {"text/html"} for a in answers), page


def test_graph_links_never_carry_credentials() -> None:
    from bot.report.reports import public_base

    assert public_base("https://user:pw@prom.example:9090/prom/") == "https://prom.example:9090/prom/"
    assert public_base("http://127.0.0.1:9090") == "http://127.0.0.1:9090" and public_base(None) is None


def test_report_names_the_abort_canary_action_and_the_traffic_split() -> None:
    from bot.core.ports import TrafficSplit
    from bot.core.proposal import ProposalAction
    from bot.report.json_view import report_json

    split = TrafficSplit("1", "2", 20, "step 1 of 8")
    source = automatic_source()
    source.p = proposal(action=ProposalAction.ABORT_CANARY,
                        summary={"traffic": {"before": split.as_dict(), "after": split.aborted().as_dict()}})
    report = build_report(source, 7, now=at(90))
    assert report.action == "abort_canary" and report.action_words == "abort canary"
    md = render_markdown(report)
    assert "- Action: **abort canary** (traffic before: stable 1 80 %, canary 2 20 %; after: stable 1 100 %, " \
           "canary 2 0 %)" in md
    assert "succeeded; action abort canary (traffic before: stable 1 80 %" in report_text(report)
    assert "action" not in report_text(build_report(automatic_source(), 7, now=at(90)))
    data = report_json(report)
    assert data["action"] == "abort_canary" and data["traffic"]["after"]["canary_percent"] == 0
    plain = build_report(automatic_source(), 7, now=at(90))
    assert plain.action == "rollback" and "- Action: **roll back**\n" in render_markdown(plain) + "\n"
