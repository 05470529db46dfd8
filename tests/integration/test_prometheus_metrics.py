"""summarise() and verify() against a real Prometheus 2.42 scraping a tiny exporter in this process.

One Prometheus per module (target discovery alone takes ~5 s); the exporter's error ratio is driven
good -> bad -> good by the tests, which run in file order.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from adapters.metrics.prometheus import PrometheusSource, to_unix
from adapters.metrics.promql import selector
from bot.core.clock import utcnow
from bot.core.metrics import MetricsError, Recovery, summarise, verify
from bot.core.policy import NoData

pytestmark = pytest.mark.prometheus

MODEL = "fraud-detector"
GOOD, BAD = 0.01, 0.5
RATIO = (
    f'sum(rate(model_errors_total{{model="{MODEL}"}}[5s]))'
    f' / sum(rate(model_requests_total{{model="{MODEL}"}}[5s]))'
)
BOTH_MODELS = 'rate(model_requests_total{model=~"fraud-detector|ranker"}[5s])'
MISSING = 'sum(rate(model_errors_total{model="does-not-exist"}[5s]))'
WINDOW = timedelta(seconds=4)
ODD = 'say "hi"\\ now\nplease'


def esc(value: str) -> str:
    """Exposition-format label escaping (written independently of the code under test)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Exporter:
    """Counters for three models, advanced by a background thread; ``error_ratio`` drives fraud-detector.

    ranker serves 10 req/s without errors (a second series); idle never serves (0/0 = NaN ratios);
    ODD's name needs escaping both in the exposition format and in PromQL.
    """

    TICK = 0.05

    def __init__(self) -> None:
        self.error_ratio = GOOD
        self.rates = {MODEL: 40.0, "ranker": 10.0, "idle": 0.0, ODD: 5.0}
        self.requests = dict.fromkeys(self.rates, 0.0)
        self.errors = dict.fromkeys(self.rates, 0.0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.exposition().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self._threads = [
            threading.Thread(target=self.server.serve_forever, daemon=True),
            threading.Thread(target=self._advance, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _advance(self) -> None:
        while not self._stop.wait(self.TICK):
            with self._lock:
                for model, rate in self.rates.items():
                    served = rate * self.TICK
                    self.requests[model] += served
                    if model == MODEL:
                        self.errors[model] += served * self.error_ratio

    def reset(self, model: str) -> None:
        """A process restart: the model's counters start again from zero."""
        with self._lock:
            self.requests[model] = self.errors[model] = 0.0

    def exposition(self) -> str:
        with self._lock:
            lines = ["# TYPE model_requests_total counter"]
            lines += [f'model_requests_total{{model="{esc(m)}"}} {v}' for m, v in self.requests.items()]
            lines.append("# TYPE model_errors_total counter")
            lines += [f'model_errors_total{{model="{esc(m)}"}} {v}' for m, v in self.errors.items()]
        return "\n".join(lines) + "\n"

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()


class LocalPrometheus:
    """A throwaway Prometheus on 127.0.0.1 scraping one target every second."""

    def __init__(self, binary: str, workdir: Path, target_port: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: exporter\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
        )
        self.log = workdir / "prometheus.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT,
            )

    def wait_until(self, path: str, ok: str, timeout: float, params: dict[str, str] | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log.read_text()[-2000:]}")
            try:
                response = httpx.get(self.url + path, params=params, timeout=1.0)
                if response.status_code == 200 and ok in response.text:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"prometheus not ready at {path}: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalPrometheus, Exporter]]:
    binary = shutil.which("prometheus")
    if binary is None:
        message = "prometheus binary missing: install the Debian package 'prometheus'"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    exporter = Exporter()
    prom = LocalPrometheus(binary, tmp_path_factory.mktemp("prometheus"), exporter.port)
    try:
        prom.wait_until("/-/ready", "Ready", 20)
        # the ratio needs two scrapes of a discovered target
        prom.wait_until("/api/v1/query", '"value"', 30, params={"query": RATIO})
        yield prom, exporter
    finally:
        prom.stop()
        exporter.stop()


@pytest.fixture(scope="module")
def source(stack: tuple[LocalPrometheus, Exporter]) -> Iterator[PrometheusSource]:
    with PrometheusSource(stack[0].url, timeout=5.0) as src:
        yield src


def whole_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def settled() -> datetime:
    """A whole second already scraped, so Prometheus and we evaluate the very same instant."""
    return whole_second(utcnow()) - timedelta(seconds=1)


def prom_value(prom: LocalPrometheus, expr: str, at: datetime) -> float | None:
    """Ask Prometheus directly, without the adapter."""
    body = httpx.get(f"{prom.url}/api/v1/query", params={"query": expr, "time": str(to_unix(at))}).json()
    assert body["status"] == "success", body
    result = body["data"]["result"]
    return None if not result else float(result[0]["value"][1])


class Timeline:
    """good -> deploy (bad) -> proposal -> a rollback that does not help -> a rollback that does."""

    def __init__(self, prom: LocalPrometheus, exporter: Exporter, source: PrometheusSource) -> None:
        started = time.monotonic()
        time.sleep(5)  # five seconds of good traffic: the baseline window
        self.deployed_at = settled()
        exporter.error_ratio = BAD
        time.sleep(6)  # the 5 s rate window fills with bad traffic
        self.proposed_at = settled()
        self.before = summarise("error_rate", RATIO, source, self.proposed_at, self.deployed_at, WINDOW)
        self.missing_before = summarise("missing", MISSING, source, self.proposed_at, self.deployed_at,
                                        WINDOW)
        # rollback #1 "switches" to a version that is just as bad: nothing changes
        self.useless_rollback_at = self.proposed_at
        exporter.reset("ranker")
        time.sleep(6)
        self.useless_checked_at = settled()
        self.after_useless = summarise("error_rate", RATIO, source, self.useless_checked_at,
                                       self.useless_rollback_at, WINDOW)
        # rollback #2 brings the good version back
        self.rolled_back_at = settled() + timedelta(seconds=1)
        exporter.error_ratio = GOOD
        time.sleep(7)
        self.verified_at = settled()
        self.now = summarise("error_rate", RATIO, source, self.verified_at, self.rolled_back_at, WINDOW)
        self.missing_now = summarise("missing", MISSING, source, self.verified_at, self.rolled_back_at,
                                     WINDOW)
        self.seconds = time.monotonic() - started


@pytest.fixture(scope="module")
def timeline(stack: tuple[LocalPrometheus, Exporter], source: PrometheusSource) -> Timeline:
    return Timeline(stack[0], stack[1], source)


def test_summary_numbers_are_what_prometheus_answers(stack: tuple[LocalPrometheus, Exporter],
                                                     source: PrometheusSource, timeline: Timeline) -> None:
    prom = stack[0]
    line = timeline.before
    assert line.now == prom_value(prom, RATIO, timeline.proposed_at)
    assert line.now is not None and line.now > 0.3
    # baseline: the mean over WINDOW ending at the deployment, which Prometheus computes as a subquery
    avg = f"avg_over_time(({RATIO})[{int(WINDOW.total_seconds())}s:1s])"
    assert line.baseline == pytest.approx(prom_value(prom, avg, timeline.deployed_at), rel=1e-9)
    assert line.baseline == pytest.approx(GOOD, rel=1e-6)
    assert line.delta == pytest.approx(line.now - GOOD, rel=1e-6)
    assert line.delta_pct == pytest.approx((line.now - GOOD) / GOOD * 100, rel=1e-6)
    # the Prometheus that just started has only the newest of the last hour's 20 steps
    assert line.sparkline == " " * 19 + "▁"
    assert line.no_data is False

    # a window straddling the switch to bad traffic: a non-trivial mean
    straddle_end = timeline.deployed_at + timedelta(seconds=3)
    mixed = summarise("error_rate", RATIO, source, timeline.proposed_at, straddle_end, WINDOW)
    expected = prom_value(prom, avg, straddle_end)
    assert expected is not None and GOOD < expected < BAD
    assert mixed.baseline == pytest.approx(expected, rel=1e-9)


def test_several_series_are_summed_like_promql_sum(stack: tuple[LocalPrometheus, Exporter],
                                                   source: PrometheusSource, timeline: Timeline) -> None:
    prom = stack[0]
    at = timeline.verified_at
    line = summarise("rps", BOTH_MODELS, source, at, timeline.rolled_back_at, WINDOW)
    assert line.now == pytest.approx(prom_value(prom, f"sum({BOTH_MODELS})", at), rel=1e-12)
    avg = f"avg_over_time(sum({BOTH_MODELS})[4s:1s])"
    assert line.baseline == pytest.approx(prom_value(prom, avg, timeline.rolled_back_at), rel=1e-9)
    assert line.now == pytest.approx(50.0, rel=0.05)


def test_rate_hides_a_counter_reset(source: PrometheusSource, timeline: Timeline) -> None:
    # ranker's counters restarted from zero at useless_rollback_at; rate() accounts for it
    expr = 'sum(rate(model_requests_total{model="ranker"}[5s]))'
    points = source.query_range(expr, timeline.useless_rollback_at - timedelta(seconds=2),
                                timeline.useless_checked_at, timedelta(seconds=1))
    assert len(points) >= 6
    assert all(v == pytest.approx(10.0, rel=0.15) for _, v in points), points


def test_verify_rollback_that_did_not_help_is_not_recovered(timeline: Timeline) -> None:
    verdict = verify([timeline.before], [timeline.after_useless], False, NoData.INCONCLUSIVE)
    assert timeline.after_useless.now == pytest.approx(BAD, rel=1e-6)
    assert verdict.outcome is Recovery.NOT_RECOVERED, verdict


def test_verify_real_rollback_is_recovered(timeline: Timeline) -> None:
    assert timeline.now.now == pytest.approx(GOOD, rel=1e-6)
    verdict = verify([timeline.before], [timeline.now], False, NoData.INCONCLUSIVE)
    assert verdict.outcome is Recovery.RECOVERED, verdict
    # the same numbers while the alert has not resolved yet
    assert verify([timeline.before], [timeline.now], True, NoData.PASS).outcome is Recovery.NOT_RECOVERED


def test_verify_metric_without_series_is_no_data(timeline: Timeline) -> None:
    assert timeline.missing_now.no_data is True and timeline.missing_now.now is None
    assert timeline.missing_before.baseline is None
    before = [timeline.before, timeline.missing_before]
    now = [timeline.now, timeline.missing_now]
    assert verify(before, now, False, NoData.INCONCLUSIVE).outcome is Recovery.INCONCLUSIVE
    assert verify(before, now, False, NoData.FAIL).outcome is Recovery.NOT_RECOVERED
    assert verify(before, now, False, NoData.PASS).outcome is Recovery.RECOVERED


def test_hostile_label_values_stay_label_values(stack: tuple[LocalPrometheus, Exporter],
                                                source: PrometheusSource, timeline: Timeline) -> None:
    at = timeline.verified_at
    hostile = 'x"} or vector(1) or model_requests_total{model="x'
    naive = f'model_requests_total{{model="{hostile}"}}'
    assert source.query(naive, at) == 1.0  # what interpolating the raw value would have done
    assert source.query(selector("model_requests_total", {"model": hostile}), at) is None
    # a value with a quote, a backslash and a newline matches exactly the series that carries it
    odd = source.query(f'rate({selector("model_requests_total", {"model": ODD})}[5s])', at)
    assert odd == pytest.approx(5.0, rel=0.05)


def test_prometheus_errors_surface_as_metrics_error(source: PrometheusSource, timeline: Timeline) -> None:
    with pytest.raises(MetricsError, match="parse error"):
        source.query("sum(rate(model_errors_total[5s])", timeline.verified_at)
    with pytest.raises(MetricsError, match="11,000 points"):
        source.query_range("up", timeline.verified_at - timedelta(days=1), timeline.verified_at,
                           timedelta(seconds=1))
    assert math.isfinite(timeline.seconds) and timeline.seconds < 40
