"""PrometheusSource: request shape, parsing of recorded answers, error mapping, token hygiene."""

from __future__ import annotations

import json
import logging
import math
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.metrics.prometheus import PrometheusSource, from_unix, parse_instant, parse_matrix, to_unix
from bot.core.metrics import MetricsError, MetricsSource

FIXTURES = Path(__file__).parents[1] / "fixtures" / "prometheus"
SECRET = "s3cr3t-token-value"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def serving(status: int, body: Any, seen: list[httpx.Request] | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    return httpx.MockTransport(handler)


def test_is_a_metrics_source() -> None:
    with PrometheusSource("http://127.0.0.1:9") as src:
        assert isinstance(src, MetricsSource)


def test_times_are_naive_utc() -> None:
    moment = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    assert to_unix(moment) == to_unix(moment.replace(tzinfo=UTC)) == 1772366400.0
    assert from_unix(1772366400.5) == moment + timedelta(milliseconds=500)


def test_parse_recorded_matrix_drops_nan_and_inf() -> None:
    assert parse_matrix(fixture("range_nan")["data"]) == []
    assert parse_matrix(fixture("range_inf")["data"]) == []
    assert parse_matrix(fixture("range_empty")["data"]) == []
    ratio = parse_matrix(fixture("range_ratio")["data"])
    raw = fixture("range_ratio")["data"]["result"][0]["values"]
    assert [(to_unix(t), v) for t, v in ratio] == [(float(t), float(v)) for t, v in raw]


def test_parse_instant_results() -> None:
    assert parse_instant(fixture("instant_vector")["data"]) == pytest.approx(0.3324875949367089)
    assert parse_instant(fixture("instant_scalar")["data"]) == pytest.approx(49.375)
    assert parse_instant(fixture("instant_empty")["data"]) is None
    assert parse_instant(fixture("instant_nan")["data"]) is None
    two = {"resultType": "vector", "result": [{"metric": {}, "value": [1, "2"]},
                                              {"metric": {}, "value": [1, "NaN"]},
                                              {"metric": {}, "value": [1, "3.5"]}]}
    assert parse_instant(two) == 5.5
    with pytest.raises(MetricsError, match="matrix"):
        parse_instant({"resultType": "matrix", "result": []})
    with pytest.raises(MetricsError, match="vector"):
        parse_matrix(fixture("instant_vector")["data"])


def test_query_and_query_range_send_what_prometheus_expects() -> None:
    seen: list[httpx.Request] = []
    at = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    transport = serving(200, fixture("range_ratio"), seen)
    with PrometheusSource("http://prom.test/prefix/", transport=transport) as src:
        points = src.query_range('x{a="b"}', at - timedelta(minutes=5), at, timedelta(seconds=15))
    assert points and all(math.isfinite(v) for _, v in points)
    (request,) = seen
    assert request.method == "GET"
    assert request.url.path == "/prefix/api/v1/query_range"
    assert dict(request.url.params) == {"query": 'x{a="b"}', "start": "1772366100.000",
                                        "end": "1772366400.000", "step": "15"}
    assert "authorization" not in request.headers
    seen.clear()
    with PrometheusSource("http://prom.test", transport=serving(200, fixture("instant_vector"), seen)) as src:
        assert src.query("x", at) == pytest.approx(0.3324875949367089)
    assert seen[0].url.path == "/api/v1/query" and seen[0].url.params["time"] == "1772366400.000"


@pytest.mark.parametrize(
    ("name", "message"),
    [("error_bad_data", "prometheus bad_data: invalid parameter \"query\": 1:33: parse error: unclosed left "
                        "parenthesis"),
     ("error_range_too_many_points", "prometheus bad_data: exceeded maximum resolution of 11,000 points")],
)
def test_error_bodies_become_one_metrics_error_with_the_message(name: str, message: str) -> None:
    with PrometheusSource("http://prom.test", transport=serving(400, fixture(name))) as src, \
            pytest.raises(MetricsError) as caught:
        src.query_range("x", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC), timedelta(seconds=1))
    assert str(caught.value).startswith(message)


def test_error_status_with_success_status_code_is_still_an_error() -> None:
    body = {"status": "error", "errorType": "timeout", "error": "query timed out in expression evaluation"}
    with PrometheusSource("http://prom.test", transport=serving(503, body)) as src, \
            pytest.raises(MetricsError, match="prometheus timeout: query timed out"):
        src.query("x", datetime(2026, 1, 1, tzinfo=UTC))


def test_non_json_answer_names_the_status() -> None:
    transport = serving(502, "<html>bad gateway</html>")
    with PrometheusSource("http://u:pw@prom.test", transport=transport) as src, \
            pytest.raises(MetricsError) as caught:
        src.query("x", datetime(2026, 1, 1, tzinfo=UTC))
    assert "HTTP 502" in str(caught.value) and "bad gateway" in str(caught.value)
    assert "pw" not in str(caught.value) and "pw" not in repr(src)


def test_timeout_is_a_metrics_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    with PrometheusSource("http://prom.test", transport=httpx.MockTransport(handler)) as src, \
            pytest.raises(MetricsError, match="timed out"):
        src.query("x", datetime(2026, 1, 1, tzinfo=UTC))


def test_refused_connection_on_loopback_is_a_metrics_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with PrometheusSource(f"http://127.0.0.1:{port}", timeout=2.0) as src, \
            pytest.raises(MetricsError, match="unreachable"):
        src.query("up", datetime(2026, 1, 1, tzinfo=UTC))


def test_bearer_token_from_env_is_sent_and_never_shown(monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("PROMETHEUS_TOKEN", SECRET)
    seen: list[httpx.Request] = []
    caplog.set_level(logging.DEBUG)
    with PrometheusSource.from_env("http://prom.test", transport=serving(400, fixture("error_bad_data"),
                                                                         seen)) as src:
        with pytest.raises(MetricsError) as caught:
            src.query("sum(", datetime(2026, 1, 1, tzinfo=UTC))
        assert SECRET not in repr(src) and SECRET not in str(caught.value)
    assert seen[0].headers["authorization"] == f"Bearer {SECRET}"
    assert caplog.records, "the failure is logged"
    assert SECRET not in caplog.text


def test_empty_token_sends_no_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_TOKEN", "")
    seen: list[httpx.Request] = []
    transport = serving(200, fixture("instant_empty"), seen)
    with PrometheusSource.from_env("http://prom.test", transport=transport) as src:
        assert src.query("x", datetime(2026, 1, 1, tzinfo=UTC)) is None
    assert "authorization" not in seen[0].headers


def test_step_must_be_positive() -> None:
    with PrometheusSource("http://prom.test", transport=serving(200, fixture("range_empty"))) as src, \
            pytest.raises(ValueError, match="positive"):
        src.query_range("x", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), timedelta(0))
