"""Charts: a real PNG of the right size, with the deployment and rollback marked, matplotlib loaded lazily."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from matplotlib.dates import date2num
from matplotlib.figure import Figure
from matplotlib.image import imread
from matplotlib.lines import Line2D

from bot.charts import DEPLOY_COLOR, ROLLBACK_COLOR, build_figure, chart_for_metric, markers_for, render_png
from bot.core.metrics import Series

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
DEPLOYED = NOW - timedelta(minutes=75)
ROLLED_BACK = NOW - timedelta(minutes=20)


def incident(step: timedelta = timedelta(minutes=1)) -> Series:
    start = NOW - timedelta(hours=3)
    points = []
    t = start
    while t <= NOW:
        bad = DEPLOYED <= t < ROLLED_BACK
        points.append((t, 0.4 if bad else 0.01))
        t += step
    return points


def x_of(when: datetime) -> float:
    """Where matplotlib places a time on a date axis."""
    return float(date2num(when))  # type: ignore[no-untyped-call]  # matplotlib.dates is not annotated


def vertical_lines(fig: Figure) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in fig.axes[0].lines:
        assert isinstance(line, Line2D)
        xs = np.asarray(line.get_xdata(), dtype=float)
        if len(xs) == 2 and xs[0] == xs[1] and str(line.get_gid()).startswith("marker:"):
            found[str(line.get_label())] = float(xs[0])
    return found


def test_png_decodes_to_the_requested_size() -> None:
    png = render_png("error_rate", incident(), now=NOW, markers=markers_for(DEPLOYED, ROLLED_BACK),
                     size=(6.0, 2.5))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(io.BytesIO(png), format="png")
    assert image.shape[:2] == (250, 600)
    assert image.std() > 0.01  # something was drawn


def test_deployment_and_rollback_markers_are_drawn_where_they_happened() -> None:
    markers = markers_for(DEPLOYED, ROLLED_BACK, "deployed v8", "rolled back to v7")
    fig = build_figure("error_rate", incident(), now=NOW, markers=markers)
    lines = vertical_lines(fig)
    assert lines == {"deployed v8": pytest.approx(x_of(DEPLOYED)),
                     "rolled back to v7": pytest.approx(x_of(ROLLED_BACK))}
    colours = {line.get_label(): line.get_color() for line in fig.axes[0].lines}
    assert colours["deployed v8"] == DEPLOY_COLOR and colours["rolled back to v7"] == ROLLBACK_COLOR
    labels = {text.get_text() for text in fig.axes[0].texts}
    assert {"deployed v8", "rolled back to v7"} <= labels


def test_window_stretches_back_to_an_older_deployment_but_not_beyond_a_day() -> None:
    five_hours = NOW - timedelta(hours=5)
    fig = build_figure("e", incident(), now=NOW, markers=markers_for(five_hours, ROLLED_BACK))
    left, right = fig.axes[0].get_xlim()
    assert left < x_of(five_hours) and right == pytest.approx(x_of(NOW))
    assert set(vertical_lines(fig)) == {"deployed", "rolled back"}
    last_month = NOW - timedelta(days=30)
    fig = build_figure("e", incident(), now=NOW, markers=markers_for(last_month, ROLLED_BACK))
    assert fig.axes[0].get_xlim()[0] == pytest.approx(x_of(NOW - timedelta(hours=3)))
    assert set(vertical_lines(fig)) == {"rolled back"}


def test_missing_samples_break_the_line() -> None:
    points = [p for p in incident() if not (NOW - timedelta(minutes=50) < p[0] < NOW - timedelta(minutes=30))]
    fig = build_figure("e", points, now=NOW)
    (data_line,) = [line for line in fig.axes[0].lines if line.get_label() == "e"]
    assert int(np.isnan(np.asarray(data_line.get_ydata(), dtype=float)).sum()) == 1


def test_no_data_chart_still_renders() -> None:
    fig = build_figure("e", [], now=NOW, markers=markers_for(DEPLOYED, None))
    assert "no data" in {text.get_text() for text in fig.axes[0].texts}
    assert render_png("e", [], now=NOW)[:4] == b"\x89PNG"


class RangeOnly:
    def __init__(self) -> None:
        self.asked: list[tuple[datetime, datetime, timedelta]] = []

    def query(self, expr: str, at: datetime) -> float | None:
        raise AssertionError("a chart needs only the range")

    def query_range(self, expr: str, start: datetime, end: datetime, step: timedelta) -> Series:
        self.asked.append((start, end, step))
        return incident()


def test_chart_for_metric_queries_the_chart_window() -> None:
    source = RangeOnly()
    png = chart_for_metric("error_rate", "sum(rate(x[5m]))", source, NOW, DEPLOYED, ROLLED_BACK)
    assert png[:4] == b"\x89PNG"
    ((start, end, step),) = source.asked
    assert end == NOW and start == NOW - timedelta(hours=3) and step == timedelta(seconds=45)


def test_importing_the_module_does_not_import_matplotlib() -> None:
    code = "import sys, bot.charts; sys.exit('matplotlib' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    assert subprocess.run([sys.executable, "-c", code], check=False, cwd=root, env=env).returncode == 0
