"""PNG charts of one metric around an incident, with the deployment and the rollback marked.

matplotlib is imported inside the functions: it costs a noticeable fraction of a second to import,
and the bot should answer Slack's first request before anyone asks for a chart. The object API
(``Figure`` + the Agg canvas) is used instead of pyplot, so there is no global figure state to leak
between threads.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING

from bot.core.metrics import MetricsSource, Point

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def available() -> bool:
    """Whether matplotlib (the `charts` extra) is installed: the slim install and image leave it out."""
    try:
        return importlib.util.find_spec("matplotlib") is not None
    except ValueError:  # a sys.modules entry without a spec, e.g. an import blocked on purpose
        return False


DEFAULT_SPAN = timedelta(hours=3)
MAX_SPAN = timedelta(hours=24)
CHART_POINTS = 240
DEPLOY_COLOR = "tab:orange"
ROLLBACK_COLOR = "tab:green"


@dataclass(frozen=True)
class Marker:
    at: datetime
    label: str
    color: str


def markers_for(deployed_at: datetime | None, rolled_back_at: datetime | None,
                deployed_label: str = "deployed", rollback_label: str = "rolled back") -> list[Marker]:
    found = []
    if deployed_at is not None:
        found.append(Marker(deployed_at, deployed_label, DEPLOY_COLOR))
    if rolled_back_at is not None:
        found.append(Marker(rolled_back_at, rollback_label, ROLLBACK_COLOR))
    return found


def chart_window(now: datetime, markers: Sequence[Marker], span: timedelta = DEFAULT_SPAN) -> datetime:
    """Where the chart starts: ``span`` before now, earlier if needed to show a marker (up to a day).

    A deployment 5 hours ago is exactly what the reader needs to see; one from last month is not,
    and stretching the axis to it would flatten the incident into a few pixels.
    """
    start = now - span
    for marker in markers:
        if now - MAX_SPAN <= marker.at < start + span / 20:
            start = min(start, marker.at - span / 10)
    return max(start, now - MAX_SPAN)


def _with_gaps(points: Sequence[Point]) -> tuple[list[datetime], list[float]]:
    """Break the line where samples are missing instead of drawing a straight line across the hole."""
    xs: list[datetime] = []
    ys: list[float] = []
    gaps = [b[0] - a[0] for a, b in pairwise(points)]
    usual = min(gaps) if gaps else timedelta(0)
    for i, (t, v) in enumerate(points):
        if i and usual and t - points[i - 1][0] > usual * 1.5:
            xs.append(points[i - 1][0] + (t - points[i - 1][0]) / 2)
            ys.append(float("nan"))
        xs.append(t)
        ys.append(v)
    return xs, ys


def _num(moment: datetime) -> float:
    """matplotlib's date number (days since its epoch) for a UTC datetime."""
    from matplotlib.dates import date2num

    return float(date2num(moment))  # type: ignore[no-untyped-call]


def build_figure(
    title: str,
    points: Sequence[Point],
    *,
    now: datetime,
    markers: Sequence[Marker] = (),
    span: timedelta = DEFAULT_SPAN,
    subtitle: str | None = None,
    size: tuple[float, float] = (8.0, 3.2),
) -> Figure:
    """The chart as a matplotlib Figure (tests inspect it; ``render_png`` saves it).

    Each marker is a labelled vertical line; markers outside the window are left out.
    """
    from matplotlib.dates import AutoDateLocator, DateFormatter
    from matplotlib.figure import Figure

    start = chart_window(now, markers, span)
    shown = [(t, v) for t, v in points if start <= t <= now]
    fig = Figure(figsize=size, dpi=100, layout="constrained")
    ax = fig.add_subplot()
    xs, ys = _with_gaps(shown)
    if xs:
        ax.plot([_num(x) for x in xs], ys, color="tab:blue", linewidth=1.5, label=title)
    else:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="grey")
    for marker in markers:
        if start <= marker.at <= now:
            ax.axvline(_num(marker.at), color=marker.color, linestyle="--", linewidth=1.2,
                       label=marker.label, gid=f"marker:{marker.label}")
            ax.annotate(marker.label, xy=(_num(marker.at), 1.0), xycoords=("data", "axes fraction"),
                        xytext=(3, -12), textcoords="offset points", color=marker.color, fontsize=8,
                        bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1})
    ax.set_xlim(_num(start), _num(now))
    ax.xaxis.set_major_locator(AutoDateLocator(maxticks=8))  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M"))  # type: ignore[no-untyped-call]
    ax.set_xlabel("UTC")
    ax.grid(True, alpha=0.3)
    ax.set_title(title if subtitle is None else f"{title}\n{subtitle}", fontsize=10, loc="left")
    return fig


def render_png(
    title: str,
    points: Sequence[Point],
    *,
    now: datetime,
    markers: Sequence[Marker] = (),
    span: timedelta = DEFAULT_SPAN,
    subtitle: str | None = None,
    size: tuple[float, float] = (8.0, 3.2),
) -> bytes:
    """PNG bytes of ``build_figure``, ready to upload to Slack."""
    fig = build_figure(title, points, now=now, markers=markers, span=span, subtitle=subtitle, size=size)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")  # Agg renders PNG whatever the default backend
    return buffer.getvalue()


def chart_for_metric(
    name: str,
    expr: str,
    source: MetricsSource,
    now: datetime,
    deployed_at: datetime | None,
    rolled_back_at: datetime | None = None,
    *,
    span: timedelta = DEFAULT_SPAN,
    deployed_label: str = "deployed",
    rollback_label: str = "rolled back",
) -> bytes:
    """Query ``expr`` over the chart window and render it. Raises ``MetricsError`` like the source."""
    markers = markers_for(deployed_at, rolled_back_at, deployed_label, rollback_label)
    start = chart_window(now, markers, span)
    step = max((now - start) / CHART_POINTS, timedelta(seconds=1))
    points = source.query_range(expr, start, now, step)
    shown_expr = expr if len(expr) <= 90 else expr[:87] + "..."
    return render_png(name, points, now=now, markers=markers, span=span, subtitle=shown_expr)
