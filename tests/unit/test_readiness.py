"""The readiness gate's use case with fakes: everything in place, then each check failing in turn."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core.clock import ManualClock
from bot.core.metrics import Series
from bot.core.policy import ModelPolicy
from bot.core.readiness import CHECKS, ProbeError, ReadinessCheck
from bot.core.selection import Deployment
from tests.conftest import make_policy
from tests.fakes.memory_store import MemoryStore

NOW = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)


class Probe:
    """Target and Slack probes in one: what each answers is set by the test."""

    def __init__(self) -> None:
        self.target_error: str | None = None
        self.groups: dict[str, set[str]] = {"S0ONCALL": {"U0CAROL"}, "S0SRE": {"U0SRE"}}
        self.users = {"U0LEAD", "U0BOB"}
        self.member_of = {"C0ALERTS"}

    def probe(self, model: str, policy: ModelPolicy) -> str:
        if self.target_error:
            raise ProbeError(self.target_error)
        return f"{policy.target}: {model} found"

    def is_group(self, approver: str) -> bool:
        return approver.startswith("S")

    def group_members(self, group_id: str) -> set[str]:
        if group_id not in self.groups:
            raise ProbeError("usergroups.users.list: no_such_subteam")
        return self.groups[group_id]

    def user_found(self, user_id: str) -> bool:
        return user_id in self.users

    def bot_in_channel(self, channel: str) -> bool:
        return channel in self.member_of


class Metrics:
    def __init__(self, value: float | None) -> None:
        self.value = value

    def query(self, expr: str, at: datetime) -> float | None:
        return self.value

    def query_range(self, expr: str, start: datetime, end: datetime, step: timedelta) -> Series:
        return []


def store_with(versions: list[tuple[str, bool]]) -> MemoryStore:
    store = MemoryStore(ManualClock(NOW))
    for i, (version, stable) in enumerate(versions):
        at = NOW - timedelta(hours=10 - i)
        store.deployments.append(Deployment(i + 1, "fraud-detector", version, at, stable_at=at if stable else None))
    return store


def check(probe: Probe, store: MemoryStore | None = None, metrics: Metrics | None = None,
          model: dict[str, object] | None = None) -> tuple[bool, dict[str, tuple[bool, str]]]:
    policy = make_policy(None, {"fraud-detector": {"target": "fake", **(model or {})}}).model("fraud-detector")
    use_case = ReadinessCheck(store or store_with([("6", True), ("7", False)]), probe, probe, metrics,
                              lambda: NOW)
    result = use_case.run("fraud-detector", policy)
    return result.ready, {c.name: (c.ok, c.detail) for c in result.checks}


def test_everything_in_place_is_ready_and_names_the_version_to_return_to() -> None:
    ready, checks = check(Probe())
    assert ready and list(checks) == list(CHECKS)
    assert all(ok for ok, _ in checks.values())
    assert "from 7 to 6" in checks["version"][1]
    assert "3 person(s) resolve" in checks["approvers"][1]


def test_the_summary_names_the_version_or_every_failing_check() -> None:
    policy = make_policy().model("fraud-detector")
    result = ReadinessCheck(store_with([("6", True), ("7", False)]), Probe(), Probe(), None, lambda: NOW).run(
        "fraud-detector", policy)
    assert result.summary() == "a rollback of fraud-detector would work now (to 6)"
    probe = Probe()
    probe.member_of = set()
    result = ReadinessCheck(store_with([("7", False)]), probe, probe, None, lambda: NOW).run("fraud-detector", policy)
    assert result.summary().startswith("a rollback of fraud-detector would not work now: version: ")
    assert "; channel: the bot is not a member of C0ALERTS" in result.summary()


def test_an_unreachable_target_fails_the_target_check_only() -> None:
    probe = Probe()
    probe.target_error = "mlflow: cannot reach http://127.0.0.1:1 (connection refused)"
    ready, checks = check(probe)
    assert not ready and [n for n, (ok, _) in checks.items() if not ok] == ["target"]
    assert "connection refused" in checks["target"][1]


def test_nothing_to_return_to_fails_the_version_check() -> None:
    ready, checks = check(Probe(), store_with([("7", False)]))
    assert not ready and [n for n, (ok, _) in checks.items() if not ok] == ["version"]
    assert "nothing to roll back to" in checks["version"][1]


def test_an_unknown_group_fails_the_approvers_check() -> None:
    probe = Probe()
    del probe.groups["S0ONCALL"]
    ready, checks = check(probe)
    assert not ready and [n for n, (ok, _) in checks.items() if not ok] == ["approvers"]
    assert "group S0ONCALL does not resolve" in checks["approvers"][1]


def test_an_unknown_escalation_group_fails_the_escalation_check() -> None:
    probe = Probe()
    del probe.groups["S0SRE"]
    _, checks = check(probe)
    assert not checks["escalation"][0] and "S0SRE" in checks["escalation"][1]


def test_the_bot_not_in_the_channel_fails_the_channel_check() -> None:
    probe = Probe()
    probe.member_of = set()
    ready, checks = check(probe)
    assert not ready and [n for n, (ok, _) in checks.items() if not ok] == ["channel"]
    assert "not a member of C0ALERTS" in checks["channel"][1]


def test_metrics_without_data_or_without_prometheus_fail_the_metrics_check() -> None:
    model: dict[str, object] = {"metrics": {"error_rate": "sum(rate(errors[5m]))"}}
    assert check(Probe(), metrics=Metrics(0.01), model=model)[0]
    _, checks = check(Probe(), metrics=Metrics(None), model=model)
    assert checks["metrics"] == (False, "no data now for: error_rate")
    _, checks = check(Probe(), metrics=None, model=model)
    assert not checks["metrics"][0] and "PROMETHEUS_URL" in checks["metrics"][1]


def test_without_slack_the_people_and_channel_checks_fail() -> None:
    policy = make_policy().model("fraud-detector")
    result = ReadinessCheck(store_with([("6", True), ("7", False)]), Probe(), None, None, lambda: NOW).run(
        "fraud-detector", policy)
    assert result.failing == ["approvers", "escalation", "channel"]


def test_a_model_the_policy_lacks_fails_the_policy_check() -> None:
    result = ReadinessCheck(store_with([]), Probe(), Probe(), None, lambda: NOW).run("nope", None)
    assert result.failing == ["policy"] and "no model nope" in result.checks[0].detail


def test_a_probe_that_does_not_answer_within_the_budget_fails_only_its_check() -> None:
    import threading

    release = threading.Event()

    class Hanging(Probe):
        def probe(self, model: str, policy: ModelPolicy) -> str:
            release.wait(10)
            return "too late"

    probe = Hanging()
    policy = make_policy().model("fraud-detector")
    try:
        result = ReadinessCheck(store_with([("6", True), ("7", False)]), probe, probe, None, lambda: NOW).run(
            "fraud-detector", policy, budget_s=0.2)
    finally:
        release.set()
    assert result.failing == ["target"] and result.checks[1].detail == "no answer within 0.2 s"


def test_deploying_a_version_counts_the_one_running_now_as_the_way_back() -> None:
    policy = make_policy().model("fraud-detector")
    use_case = ReadinessCheck(store_with([("6", False)]), Probe(), Probe(), None, lambda: NOW)
    assert use_case.run("fraud-detector", policy).failing == ["version"]  # nothing before 6
    result = use_case.run("fraud-detector", policy, deploying="7")
    assert result.ready and result.rollback_to == "6"
    assert "after deploying 7 goes from 7 to 6" in result.checks[2].detail
    again = use_case.run("fraud-detector", policy, deploying="6")  # 6 already runs: the history as it is
    assert again.failing == ["version"]


def test_the_version_answer_keeps_the_block_and_readiness_apart() -> None:
    from bot.web.routes.versions import readiness_fields

    policy = make_policy().model("fraud-detector")
    probe = Probe()
    probe.member_of = set()
    result = ReadinessCheck(store_with([("6", True)]), probe, probe, None, lambda: NOW).run(
        "fraud-detector", policy, deploying="7")
    fields = readiness_fields(result, "version 7 of fraud-detector is not blocked", ())
    assert fields["rollback_ready"] is False
    assert fields["readiness"] == {"ready": False, "failing": ["channel"], "rollback_to": "6"}
    assert fields["reason"].startswith("version 7 of fraud-detector is not blocked. A rollback of fraud-detector "
                                       "would not work now: channel: the bot is not a member of C0ALERTS")
    assert fields["reason"].endswith(").")
