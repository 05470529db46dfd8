"""Version-aware alerts, severity tables, `never`, and No Data: the decider's rules on the in-memory fakes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.core.alert import Alert
from bot.core.clock import ManualClock
from bot.core.errors import Refused, TargetError
from bot.core.intake import AlertIntake
from bot.core.policy import Policy
from bot.core.ports import SwitchRequest, SwitchResult
from bot.core.proposal import Kind, State
from bot.core.requests import AlertEvidence, RollbackRequest
from bot.core.service import RollbackService
from bot.core.severity import Severity
from bot.policy_file import TARGETS, parse_policy, severity_tables
from tests.conftest import BASE_POLICY, make_policy
from tests.fakes.memory_store import MemoryStore
from tests.fakes.ports import FakeTarget, RecordingNotifier
from tests.unit.alert_builders import alert

MODEL = "fraud-detector"


def world(policy: Policy | None = None) -> tuple[MemoryStore, RollbackService, FakeTarget, AlertIntake,
                                                 RecordingNotifier]:
    """Versions 5, 6 and 7 deployed (7 live, 5 and 6 stable), cooldown 0s unless the policy says otherwise."""
    clock = ManualClock(datetime(2026, 11, 2, 12, 0, tzinfo=UTC))
    store = MemoryStore(clock)
    target = FakeTarget({MODEL: "7"})
    notifier = RecordingNotifier()
    service = RollbackService(store, policy or make_policy({"cooldown": "0s"}), {"fake": target}, clock,
                              notifier=notifier)
    for version, stable in (("5", True), ("6", True), ("7", False)):
        service.deploy(MODEL, version, actor="api:ci", stable=stable)
    return store, service, target, AlertIntake(service, store, clock), notifier


def versioned(fingerprint: str, severity: str, version: str | None, label: str = "version") -> Alert:
    base = alert(fingerprint, severity)
    labels = dict(base.labels) | ({label: version} if version is not None else {})
    return replace(base, labels=labels)


def send(intake: AlertIntake, *alerts: Alert, source: str = "alertmanager") -> list[tuple[str, str]]:
    result, ids = intake.record(source, list(alerts), intake.clock.now())
    for model in intake.models_to_decide(result):
        intake.merge(result, ids, intake.decide(model))
    return [(a.outcome.value, a.reason) for a in result.alerts]


def policy_with(defaults: dict[str, Any] | None = None, sources: dict[str, Any] | None = None) -> Policy:
    data = {"defaults": {**BASE_POLICY["defaults"], **(defaults or {})}, "models": BASE_POLICY["models"],
            "sources": sources or {}}
    loaded = parse_policy(data, "test-policy.toml", known_targets=(*TARGETS, "fake"))
    assert loaded.policy is not None, loaded.problems
    return loaded.policy


def test_two_alerts_about_version_7_roll_back_7_only() -> None:
    store, service, target, intake, notifier = world()
    [(first, _)] = send(intake, versioned("a1", "critical", "7"))
    assert first == "executed" and target.live[MODEL] == "6"
    [(second, why)] = send(intake, versioned("a2", "critical", "7"))
    assert second == "stale" and why.startswith("names version 7; live is 6")
    assert [s.to_version for s in target.switches] == ["6"] and len(store.proposals) == 1
    assert service.store.history(MODEL)[-1].version == "6"
    # the second alert is on the incident about 7 (its timeline), flagged as stale
    [p1] = store.proposals.values()
    assert {(a.fingerprint, a.outcome) for a in store.alerts_for_proposal(p1.id)} == {("a1", "executed"),
                                                                                      ("a2", "stale")}
    assert notifier.events[-1][1] == "timeline" and "name version 7, live is 6" in str(notifier.events[-1][2])
    now = intake.clock.now()
    assert store.quiet_since(MODEL, now) is None and store.quiet_since(MODEL, now, "6") == now


def test_an_alert_about_a_version_never_deployed_proposes_nothing() -> None:
    store, _, target, intake, _ = world(make_policy())
    [(outcome, why)] = send(intake, versioned("n1", "critical", "9"))
    assert outcome == "stale" and "names version 9, which was never deployed; live is 7" in why
    assert store.proposals == {} and not target.switches
    [record] = store.alerts.values()
    assert record.version == "9" and store.decided[record.id] == ("stale", why)


def test_alerts_without_a_version_keep_todays_behaviour() -> None:
    _, _, target, intake, _ = world()
    assert send(intake, versioned("u1", "critical", None))[0][0] == "executed"
    assert send(intake, versioned("u2", "critical", None))[0][0] == "executed"
    assert [s.to_version for s in target.switches] == ["6", "5"]


def test_a_stale_alert_joins_the_open_incident_but_never_moves_it() -> None:
    store, _, target, intake, notifier = world(make_policy())
    [(opened, _)] = send(intake, versioned("w7", "warning", "7"))
    assert opened == "proposed"
    [(joined, why)] = send(intake, versioned("c6", "critical", "6"))  # critical, but about version 6
    assert joined == "stale" and "live is 7" in why
    [proposal] = store.proposals.values()
    assert proposal.state is State.PROPOSED and proposal.severity == "warning" and not target.switches
    assert "shown as stale" in str(notifier.events[-1][2])
    # the alert about 7 resolves: the stale one still firing does not hold the proposal open
    send(intake, replace(versioned("w7", "warning", "7"), status=alert("w7", "warning", resolved=True).status,
                         ends_at=alert("w7", "warning", resolved=True).ends_at))
    assert store.get_proposal(proposal.id).state is State.CANCELLED


def test_version_label_is_set_per_source() -> None:
    policy = policy_with(sources={"alertmanager": {"version_label": "model_version"}})
    store, _, _, intake, _ = world(policy)
    [(outcome, _)] = send(intake, versioned("l1", "warning", "9", label="model_version"))
    assert outcome == "stale"
    [(other, _)] = send(intake, versioned("l2", "warning", "9"))  # "version" is not this source's label
    assert other == "proposed"
    assert [r.version for r in store.alerts.values()] == ["9", None]


def test_a_request_for_another_version_than_the_alert_names_is_refused() -> None:
    _, service, target, _, _ = world()
    with pytest.raises(Refused, match="names version 6, but fraud-detector runs 7 now"):
        service.request_rollback(RollbackRequest(MODEL, actor="alert:alertmanager", reason="x", kind=Kind.ALERT,
                                 alerts=AlertEvidence(Severity.CRITICAL, expect_from="6")))
    assert not target.switches


def test_never_asks_even_for_a_critical_alert() -> None:
    store, _, target, intake, _ = world(make_policy({"auto_rollback_severity": "never"}))
    [(outcome, why)] = send(intake, versioned("c1", "critical", "7"))
    assert outcome == "proposed" and "auto_rollback_severity = never" in why and not target.switches
    [proposal] = store.proposals.values()
    assert proposal.state is State.PROPOSED and proposal.deadline_at is not None


@pytest.mark.parametrize(("no_data", "severity", "outcome"), [
    ("fail", Severity.CRITICAL, "executed"),
    ("inconclusive", Severity.WARNING, "proposed"),
    ("pass", Severity.INFO, "ignored"),
])
def test_no_data_reads_as_the_models_no_data_says(no_data: str, severity: Severity, outcome: str) -> None:
    store, _, _, intake, _ = world(make_policy({"no_data": no_data}))
    nodata = replace(versioned("nd", "critical", None), source="datadog", no_data=True,
                     severity=Severity.CRITICAL)
    assert send(intake, nodata, source="datadog")[0][0] == outcome
    assert next(iter(store.alerts.values())).severity is severity


def test_policy_reads_source_tables_and_reports_bad_entries() -> None:
    policy = policy_with({"auto_rollback_severity": "never"}, {
        "alertmanager": {"severity": {"page": "warning", "SEV1": "critical"}},
        "datadog": {"severity": {"P4": "info"}, "version_label": "release"},
        "generic": {"severity": {"p1": "critical"}, "severity_field": "priority", "version_label": "rev"},
    })
    assert policy.models[MODEL].auto_rollback_severity is Severity.NEVER
    am = policy.alert_source("alertmanager")
    assert am.severity.read("PAGE") is Severity.WARNING and am.severity.read("sev1") is Severity.CRITICAL
    assert am.severity.read("high") is Severity.CRITICAL and am.severity.read("odd") is Severity.WARNING
    assert policy.alert_source("datadog").version_label == "release"
    assert policy.alert_source("grafana").severity.read("page") is Severity.CRITICAL  # defaults untouched
    lines = severity_tables(policy)
    assert any(line.startswith("alertmanager: version label 'version'; severity: ")
               and "page, warn, warning → warning" in line for line in lines)
    assert any(line.startswith("datadog: version label 'release'") and "p4 → info" in line for line in lines)
    assert any("Warn/Re-Warn → warning" in line for line in lines)
    bad = parse_policy({"defaults": BASE_POLICY["defaults"], "models": BASE_POLICY["models"], "sources": {
        "alertmanager": {"severity": {"page": "urgent"}, "labels": "x", "version_label": ""},
        "grafana": {"severity": "critical"}}}, "p.toml", known_targets=(*TARGETS, "fake"))
    keys = {p.key for p in bad.problems}
    assert {"sources.alertmanager.severity.page", "sources.alertmanager.labels",
            "sources.alertmanager.version_label", "sources.grafana.severity"} <= keys
    never = parse_policy({"defaults": {**BASE_POLICY["defaults"], "min_severity": "never"},
                          "models": BASE_POLICY["models"]}, "p.toml", known_targets=(*TARGETS, "fake"))
    assert [p.key for p in never.problems] == ["defaults.min_severity"]


def test_a_failed_rollback_names_the_version_the_target_reports() -> None:
    class Moving(FakeTarget):
        """Fails the switch, and by then serves whatever someone else deployed meanwhile."""

        after: str | None = "4"

        def switch(self, request: SwitchRequest) -> SwitchResult:
            if self.after is None:
                self.live.pop(request.model, None)
            else:
                self.live[request.model] = self.after
            raise TargetError("the deployer answered 500")

    target = Moving({MODEL: "7"})
    clock = ManualClock(datetime(2026, 11, 2, 12, 0, tzinfo=UTC))
    store = MemoryStore(clock)
    service = RollbackService(store, make_policy(), {"fake": target}, clock)
    for version in ("6", "7"):
        service.deploy(MODEL, version, actor="api:ci")
    proposal = service.request_rollback(RollbackRequest(MODEL, actor="slack:U0LEAD", reason="x"))
    service.approve(proposal.id, "slack:U0BOB")
    failed = store.get_proposal(proposal.id)
    assert failed.state is State.FAILED and failed.error is not None
    assert failed.error.endswith("fake reports version 4 live")
    target.after, target.live[MODEL] = None, "7"
    again = service.request_rollback(RollbackRequest(MODEL, actor="slack:U0LEAD", reason="y"))
    service.approve(again.id, "slack:U0BOB")
    assert str(store.get_proposal(again.id).error).endswith("fake could not say which version is live")


def test_only_alerts_about_the_finished_incidents_version_join_its_timeline() -> None:
    store, _, target, intake, _ = world()
    send(intake, versioned("a1", "critical", "7"))
    [p1] = store.proposals.values()
    outcomes = send(intake, versioned("late7", "critical", "7"), versioned("ghost9", "critical", "9"))
    assert [o for o, _ in outcomes] == ["stale", "stale"] and "never deployed" in outcomes[1][1]
    assert {a.fingerprint for a in store.alerts_for_proposal(p1.id)} == {"a1", "late7"}
    assert len(store.proposals) == 1 and [s.to_version for s in target.switches] == ["6"]
