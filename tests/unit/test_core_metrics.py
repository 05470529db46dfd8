"""summarise(), sparkline() and verify(): the numbers an approver sees and the rollback verdict."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.metrics.prometheus import PrometheusSource
from bot.core.metrics import (
    MetricLine,
    MetricsSource,
    Recovery,
    Series,
    Tolerance,
    mean,
    sparkline,
    sum_series,
    summarise,
    verify,
)
from bot.core.policy import NoData

FIXTURES = Path(__file__).parents[1] / "fixtures" / "prometheus"
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def values(name: str) -> list[float]:
    """Every raw value of a recorded matrix, parsed the way Prometheus means them."""
    return [float(v) for item in fixture(name)["data"]["result"] for _, v in item["values"]]


def recorded(instant: str, range_: str) -> PrometheusSource:
    """The real adapter, answering from recorded responses instead of the network."""

    def handler(request: httpx.Request) -> httpx.Response:
        name = instant if request.url.path.endswith("/query") else range_
        body = fixture(name)
        return httpx.Response(400 if body["status"] == "error" else 200, json=body)

    return PrometheusSource("http://prometheus.test", transport=httpx.MockTransport(handler))


class FakeSource:
    """Answers from in-memory series and records what it was asked."""

    def __init__(self, points: Series, current: float | None) -> None:
        self.points = points
        self.current = current
        self.ranges: list[tuple[datetime, datetime, timedelta]] = []

    def query(self, expr: str, at: datetime) -> float | None:
        return self.current

    def query_range(self, expr: str, start: datetime, end: datetime, step: timedelta) -> Series:
        self.ranges.append((start, end, step))
        return [(t, v) for t, v in self.points if start <= t <= end]


def test_fake_source_satisfies_the_protocol() -> None:
    assert isinstance(FakeSource([], None), MetricsSource)


# --- sparkline -----------------------------------------------------------------------------------


def test_sparkline_scales_between_min_and_max_and_shows_gaps_as_spaces() -> None:
    step = timedelta(minutes=1)
    points = [(T0 + step * i, float(i)) for i in range(8)] + [(T0 + step * 9, 7.0)]
    assert sparkline(points, T0, step, width=10) == "▁▂▃▄▅▆▇█ █"


def test_sparkline_is_fixed_width_and_blank_without_points() -> None:
    assert sparkline([], T0, timedelta(minutes=3)) == " " * 20
    assert len(sparkline([(T0, 1.0)], T0, timedelta(minutes=3))) == 20


def test_flat_sparkline_sits_on_the_lowest_level_and_ignores_nan_and_outside_points() -> None:
    step = timedelta(seconds=10)
    points = [(T0, 2.0), (T0 + step, math.nan), (T0 + step * 2, 2.0)]
    points += [(T0 - step, 99.0), (T0 + step * 5, 99.0)]  # outside the drawn span
    assert sparkline(points, T0, step, width=4) == "▁ ▁ "


# --- series arithmetic ---------------------------------------------------------------------------


def test_sum_series_adds_point_by_point_like_promql_sum() -> None:
    a = [(T0, 1.0), (T0 + timedelta(seconds=1), 2.0)]
    b = [(T0 + timedelta(seconds=1), 10.0), (T0 + timedelta(seconds=2), math.inf)]
    assert sum_series([a, b]) == [(T0, 1.0), (T0 + timedelta(seconds=1), 12.0)]


def test_two_recorded_series_summed_equal_what_prometheus_sum_returned() -> None:
    with recorded("instant_vector", "range_two_series") as src:
        ours = src.query_range("x", T0, T0, timedelta(seconds=1))
    with recorded("instant_vector", "range_two_series_sum") as src:
        theirs = src.query_range("sum(x)", T0, T0, timedelta(seconds=1))
    assert [t for t, _ in ours] == [t for t, _ in theirs]
    assert [v for _, v in ours] == pytest.approx([v for _, v in theirs], rel=1e-12)


def test_mean_of_nothing_is_none() -> None:
    assert mean([]) is None
    assert mean([(T0, math.nan)]) is None


# --- summarise over recorded responses -----------------------------------------------------------


def test_summarise_recorded_ratio() -> None:
    now_value = float(fixture("instant_vector")["data"]["result"][0]["value"][1])
    baseline = sum(values("range_ratio")) / len(values("range_ratio"))
    with recorded("instant_vector", "range_ratio") as src:
        line = summarise("error_rate", "expr", src, T0, T0 - timedelta(minutes=5), timedelta(minutes=10))
    assert line.now == pytest.approx(now_value)
    assert line.baseline == pytest.approx(baseline)
    assert line.delta == pytest.approx(now_value - baseline)
    assert line.delta_pct == pytest.approx((now_value - baseline) / baseline * 100)
    assert line.no_data is False and line.error is None
    assert len(line.sparkline) == 20


def test_summarise_empty_result_is_no_data() -> None:
    with recorded("instant_empty", "range_empty") as src:
        line = summarise("error_rate", "expr", src, T0, T0 - timedelta(minutes=5), timedelta(minutes=10))
    assert (line.now, line.baseline, line.delta, line.delta_pct) == (None, None, None, None)
    assert line.no_data is True
    assert line.sparkline == " " * 20


def test_summarise_nan_strings_are_no_data_not_numbers() -> None:
    assert all(math.isnan(v) for v in values("range_nan"))
    with recorded("instant_nan", "range_nan") as src:
        line = summarise("error_rate", "expr", src, T0, T0 - timedelta(minutes=5), timedelta(minutes=10))
    assert line.now is None and line.baseline is None and line.no_data is True


def test_summarise_plus_inf_baseline_is_dropped() -> None:
    assert values("range_inf") and all(v == math.inf for v in values("range_inf"))
    with recorded("instant_vector", "range_inf") as src:
        line = summarise("error_rate", "expr", src, T0, T0 - timedelta(minutes=5), timedelta(minutes=10))
    assert line.now is not None and line.baseline is None and line.delta is None
    assert line.no_data is False


def test_summarise_single_point_is_its_own_mean() -> None:
    (point,) = values("range_single_point")
    with recorded("instant_vector", "range_single_point") as src:
        line = summarise("error_rate", "expr", src, T0, T0 - timedelta(minutes=5), timedelta(minutes=10))
    assert line.baseline == pytest.approx(point)


def test_summarise_scalar_instant_result() -> None:
    with recorded("instant_scalar", "range_two_series_sum") as src:
        line = summarise("rps", "expr", src, T0, T0, timedelta(seconds=10))
    assert line.now == pytest.approx(49.375)


def test_summarise_backend_error_becomes_a_no_data_line_with_the_message() -> None:
    with recorded("error_bad_data", "error_bad_data") as src:
        line = summarise("error_rate", "sum(", src, T0, T0, timedelta(minutes=10))
    assert line.no_data is True and line.now is None
    assert line.error is not None and "unclosed left parenthesis" in line.error


def test_summarise_asks_for_the_window_before_the_deployment_and_the_last_hour() -> None:
    deployed = T0 - timedelta(minutes=30)
    window = timedelta(minutes=10)
    points = [(deployed - timedelta(minutes=m), 0.02) for m in range(0, 11)]
    points += [(T0 - timedelta(minutes=m), 0.5) for m in range(0, 29)]
    src = FakeSource(points, 0.5)
    line = summarise("error_rate", "expr", src, T0, deployed, window)
    (b_start, b_end, b_step), (s_start, s_end, s_step) = src.ranges
    assert (b_start, b_end) == (deployed - window, deployed)
    assert b_step == timedelta(seconds=10)
    assert s_end == T0 and s_step == timedelta(minutes=3) and T0 - s_start == timedelta(minutes=57)
    assert line.baseline == pytest.approx(0.02)
    assert line.delta == pytest.approx(0.48)
    assert line.delta_pct == pytest.approx(2400.0)
    # the last 29 minutes are high, the half hour before them is low or empty
    assert line.sparkline.endswith("█" * 10)
    assert line.sparkline[:9].strip(" ▁") == ""


def test_zero_baseline_has_an_absolute_delta_but_no_percentage() -> None:
    src = FakeSource([(T0 - timedelta(minutes=20), 0.0)], 0.3)
    line = summarise("error_rate", "expr", src, T0, T0 - timedelta(minutes=10), timedelta(minutes=15))
    assert line.baseline == 0.0 and line.delta == pytest.approx(0.3) and line.delta_pct is None


def test_without_a_deployment_there_is_no_baseline() -> None:
    line = summarise("error_rate", "expr", FakeSource([], 0.3), T0, None, timedelta(minutes=15))
    assert line.now == 0.3 and line.baseline is None and line.delta is None and line.no_data is False


def test_metric_line_round_trips_through_json() -> None:
    line = MetricLine("error_rate", 'sum(x{a="b"})', 0.5, 0.02, 0.48, 2400.0, "▁▁█", False)
    stored = json.loads(json.dumps(line.to_dict()))
    assert MetricLine.from_dict(stored) == line
    gap = MetricLine("p99", "y", None, None, None, None, "    ", True, "prometheus timed out")
    assert MetricLine.from_dict(json.loads(json.dumps(gap.to_dict()))) == gap


def test_metric_line_from_an_older_record_without_error_field() -> None:
    line = MetricLine.from_dict({"name": "e", "expr": "x", "now": None, "baseline": 1, "delta": None,
                                 "delta_pct": None, "sparkline": ""})
    assert line.no_data is True and line.baseline == 1.0 and line.error is None


# --- verify --------------------------------------------------------------------------------------


def line(name: str, now: float | None, baseline: float | None, error: str | None = None) -> MetricLine:
    return MetricLine(name, "expr", now, baseline, None, None, "", now is None, error)


INCIDENT = [line("error_rate", 0.5, 0.02)]


def test_alert_still_firing_is_not_recovered_whatever_the_metrics() -> None:
    verdict = verify(INCIDENT, [line("error_rate", 0.02, 0.5)], True, NoData.PASS)
    assert verdict.outcome is Recovery.NOT_RECOVERED
    assert "still firing" in verdict.reason


def test_back_within_tolerance_of_the_old_baseline_is_recovered() -> None:
    # lines_now's own baseline is the incident: the one from before must be used
    verdict = verify(INCIDENT, [line("error_rate", 0.021, 0.5)], False, NoData.FAIL)
    assert verdict.outcome is Recovery.RECOVERED
    assert "within" in verdict.details[0]


def test_halfway_back_is_not_recovered() -> None:
    verdict = verify(INCIDENT, [line("error_rate", 0.26, 0.5)], False, NoData.PASS)
    assert verdict.outcome is Recovery.NOT_RECOVERED
    assert verdict.reason == "not back to baseline: error_rate"
    assert "0.26" in verdict.details[0] and "incident value 0.5" in verdict.details[0]


def test_better_than_baseline_away_from_the_incident_is_recovered_both_directions() -> None:
    assert verify(INCIDENT, [line("error_rate", 0.0, None)], False, NoData.FAIL).outcome is Recovery.RECOVERED
    throughput = [line("rps", 10.0, 100.0)]
    assert verify(throughput, [line("rps", 150.0, None)], False, NoData.FAIL).outcome is Recovery.RECOVERED
    assert verify(throughput, [line("rps", 50.0, None)], False, NoData.FAIL).outcome is Recovery.NOT_RECOVERED


def test_absolute_floor_for_a_zero_baseline() -> None:
    before = [line("error_rate", 0.3, 0.0)]

    def outcome(value: float, tolerance: Tolerance | None = None) -> Recovery:
        return verify(before, [line("error_rate", value, 0.3)], False, NoData.FAIL, tolerance).outcome

    assert outcome(0.0005) is Recovery.RECOVERED
    assert outcome(0.01) is Recovery.NOT_RECOVERED
    assert outcome(0.01, Tolerance(relative=0.1, absolute=0.02)) is Recovery.RECOVERED


@pytest.mark.parametrize(
    ("policy", "outcome"),
    [(NoData.FAIL, Recovery.NOT_RECOVERED), (NoData.PASS, Recovery.RECOVERED),
     (NoData.INCONCLUSIVE, Recovery.INCONCLUSIVE)],
)
def test_no_data_follows_the_policy(policy: NoData, outcome: Recovery) -> None:
    now = [line("error_rate", None, None, error="prometheus timed out")]
    verdict = verify(INCIDENT, now, False, policy)
    assert verdict.outcome is outcome
    assert "no data for: error_rate" in verdict.reason and f"no_data = {policy}" in verdict.reason
    assert "prometheus timed out" in verdict.details[0]


def test_missing_baseline_or_missing_line_is_no_data() -> None:
    assert verify([line("e", 0.5, None)], [line("e", 0.0, None)], False,
                  NoData.INCONCLUSIVE).outcome is Recovery.INCONCLUSIVE
    assert verify(INCIDENT, [], False, NoData.INCONCLUSIVE).outcome is Recovery.INCONCLUSIVE


def test_no_metrics_configured_follows_the_policy() -> None:
    assert verify([], [], False, NoData.INCONCLUSIVE).outcome is Recovery.INCONCLUSIVE
    assert verify([], [], False, NoData.PASS).outcome is Recovery.RECOVERED


def test_a_failing_metric_outweighs_a_missing_one() -> None:
    before = [line("e", 0.5, 0.02), line("p99", 2.0, 0.3)]
    verdict = verify(before, [line("e", 0.4, 0.5), line("p99", None, None)], False, NoData.INCONCLUSIVE)
    assert verdict.outcome is Recovery.NOT_RECOVERED
    assert len(verdict.details) == 2
    assert verdict.to_dict()["outcome"] == "not_recovered"

