"""Prometheus HTTP API as a ``MetricsSource`` (``/api/v1/query`` and ``/api/v1/query_range``).

Synchronous httpx with explicit timeouts: a summary is a handful of small queries, and a stuck
Prometheus must cost seconds, not a hung proposal. The optional bearer token (env
``PROMETHEUS_TOKEN``) lives only in the client's default headers; it is never logged, repr'd or put
in an error message.
"""

from __future__ import annotations

import logging
import math
import os
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from bot.core.metrics import MetricsError, Point, Series, sum_series
from bot.redact import mask_url

log = logging.getLogger(__name__)

TOKEN_ENV = "PROMETHEUS_TOKEN"


def to_unix(moment: datetime) -> float:
    """Aware datetimes are converted; a naive one is read as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def from_unix(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def parse_sample(pair: Any) -> Point:
    """``[1712345678.9, "0.25"]``; Prometheus sends values as strings, including "NaN" and "+Inf"."""
    ts, raw = pair
    return from_unix(float(ts)), float(raw)


def parse_matrix(data: Any) -> Series:
    """A query_range ``data`` object to one series: several series summed, non-finite points dropped."""
    if data.get("resultType") != "matrix":
        raise MetricsError(f"prometheus returned {data.get('resultType')!r} where a matrix was expected")
    return sum_series([parse_sample(p) for p in item.get("values", [])] for item in data.get("result", []))


def parse_instant(data: Any) -> float | None:
    """An instant query ``data`` object to one value: vector summed, scalar as is; None when empty/NaN."""
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "scalar":
        values = [parse_sample(result)[1]]
    elif kind == "vector":
        values = [parse_sample(item["value"])[1] for item in result or []]
    else:
        raise MetricsError(f"prometheus returned a {kind} for an instant query; use an instant vector")
    present = [v for v in values if math.isfinite(v)]
    return sum(present) if present else None


def _seconds(step: timedelta) -> str:
    seconds = step.total_seconds()
    if seconds <= 0:
        raise ValueError(f"step must be positive, got {step}")
    return f"{seconds:g}"


def _without_userinfo(url: str) -> str:
    """The URL for messages: credentials embedded as ``user:pass@`` are cut out."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


class PrometheusSource:
    """``MetricsSource`` over a Prometheus server. Raises ``MetricsError`` for every failure."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._shown = mask_url(_without_userinfo(self.base_url))
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
            transport=transport,
            follow_redirects=False,
        )

    @classmethod
    def from_env(cls, base_url: str, **kwargs: Any) -> PrometheusSource:
        """Reads the bearer token from ``PROMETHEUS_TOKEN`` when set."""
        return cls(base_url, token=os.environ.get(TOKEN_ENV) or None, **kwargs)

    def __repr__(self) -> str:
        return f"PrometheusSource({self._shown!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PrometheusSource:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def query(self, expr: str, at: datetime) -> float | None:
        data = self._get("/api/v1/query", {"query": expr, "time": f"{to_unix(at):.3f}"})
        return parse_instant(data)

    def query_range(self, expr: str, start: datetime, end: datetime, step: timedelta) -> Series:
        params = {"query": expr, "start": f"{to_unix(start):.3f}", "end": f"{to_unix(end):.3f}",
                  "step": _seconds(step)}
        return parse_matrix(self._get("/api/v1/query_range", params))

    def _get(self, path: str, params: dict[str, str]) -> Any:
        try:
            response = self._client.get(path, params=params)
        except httpx.TimeoutException as exc:
            raise MetricsError(f"prometheus at {self._shown} timed out ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise MetricsError(f"prometheus at {self._shown} unreachable: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("status") == "error":
            message = f"prometheus {body.get('errorType', 'error')}: {body.get('error', 'no message')}"
            log.warning("query failed (HTTP %s): %s", response.status_code, message)
            raise MetricsError(message)
        if response.status_code != 200 or not isinstance(body, dict) or body.get("status") != "success":
            snippet = response.text[:200].strip()
            raise MetricsError(f"prometheus at {self._shown} answered HTTP {response.status_code}: {snippet}")
        for warning in body.get("warnings") or []:
            log.info("prometheus warning: %s", warning)
        return body.get("data") or {}
