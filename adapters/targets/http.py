"""One HTTP helper for every HTTP-based target: timeouts, bounded retries, errors keeping the remote's words.

Why one helper: each target must fail the same way (a ``TargetError`` naming the system and the operation,
with the remote status and a truncated body) and must never leak a credential into a message or a log.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx

from bot.core.errors import TargetError
from bot.redact import mask_url

log = logging.getLogger(__name__)

BODY_LIMIT = 2000
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "cookie"})


def truncate(text: str, limit: int = BODY_LIMIT) -> str:
    """Cut a remote body so an audit row or a card never carries megabytes."""
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more chars]"


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers safe to log: credentials replaced by a marker."""
    return {k: ("<redacted>" if k.lower() in SENSITIVE_HEADERS else v) for k, v in headers.items()}


def remote_message(response: httpx.Response) -> str:
    """The human part of an error body (Kubernetes Status, MLflow, Unleash, LaunchDarkly: 'message')."""
    try:
        data = response.json()
    except (ValueError, UnicodeDecodeError):
        return truncate(response.text.strip(), 300)
    if isinstance(data, dict):
        for key in ("message", "error", "details", "error_code"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return truncate(value, 300)
            if isinstance(value, list) and value and isinstance(value[0], dict):
                inner = value[0].get("message") or value[0].get("description")
                if isinstance(inner, str):
                    return truncate(inner, 300)
    return truncate(json.dumps(data), 300)


class HttpClient:
    """A small sync client for one remote system; retries 5xx, 429, connect errors and timeouts only."""

    def __init__(
        self,
        system: str,
        *,
        base_url: str = "",
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        attempts: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        verify: Any = True,
        cert: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.system = system
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._headers = dict(headers or {})
        self._owns_client = client is None
        self._client = client or httpx.Client(
            base_url=base_url,
            timeout=timeout,
            transport=transport,
            verify=verify,
            cert=cert,
            follow_redirects=False,
        )
        self._base_url = base_url.rstrip("/")

    def __repr__(self) -> str:  # never show headers: they may hold a token
        return f"HttpClient(system={self.system!r}, base_url={mask_url(self._base_url)!r})"

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")) or not self._base_url:
            return path
        return f"{self._base_url}/{path.lstrip('/')}"

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None and response.status_code == 429:
            retry_after = response.headers.get("Retry-After", "")
            if retry_after.isdigit():
                return min(float(retry_after), self.max_backoff)
        base = min(self.max_backoff, self.backoff * (2.0 ** (attempt - 1)))
        return base * (0.5 + random.random() / 2)  # "equal jitter": never zero, never above the cap

    def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        json_body: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        ok: Iterable[int] = (),
    ) -> httpx.Response:
        """Send, retrying what is safe to retry; return a 2xx (or an ``ok``) response, else raise."""
        allowed = set(ok)
        merged = {**self._headers, **(headers or {})}
        url = self._url(path)
        last_error = ""
        for attempt in range(1, self.attempts + 1):
            response: httpx.Response | None = None
            started = time.monotonic()
            try:
                response = self._client.request(
                    method, url, json=json_body, content=content, params=params, headers=merged
                )
            except httpx.TimeoutException as exc:
                last_error = f"timed out ({type(exc).__name__})"
            except httpx.TransportError as exc:
                last_error = f"cannot connect ({type(exc).__name__}: {exc})"
            elapsed = (time.monotonic() - started) * 1000
            if response is not None:
                status = response.status_code
                log.debug(
                    "%s %s %s %s -> %s in %.0f ms (attempt %d, headers %s)",
                    self.system,
                    operation,
                    method,
                    url,
                    status,
                    elapsed,
                    attempt,
                    redact_headers(merged),
                )
                if status < 300 or status in allowed:
                    return response
                retryable = status >= 500 or status == 429
                if not retryable or attempt == self.attempts:
                    raise self.error_for(method, operation, response, attempt, retryable)
            else:
                log.debug(
                    "%s %s %s %s failed: %s (attempt %d)",
                    self.system,
                    operation,
                    method,
                    url,
                    last_error,
                    attempt,
                )
                if attempt == self.attempts:
                    break
            delay = self._delay(attempt, response)
            log.info(
                "%s: %s failed (attempt %d of %d), retrying in %.2fs",
                self.system,
                operation,
                attempt,
                self.attempts,
                delay,
            )
            self._sleep(delay)
        raise TargetError(
            f"{self.system}: {operation} failed after {self.attempts} attempt(s): {last_error} "
            f"({method} {mask_url(url)})",
            retryable=True,
        )

    def error_for(
        self, method: str, operation: str, response: httpx.Response, attempts: int, retryable: bool
    ) -> TargetError:
        status = response.status_code
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        message = (
            f"{self.system}: {operation} failed{tries}: HTTP {status} {response.reason_phrase}: "
            f"{remote_message(response)} ({method} {mask_url(str(response.request.url))})"
        )
        return TargetError(message, status=status, body=truncate(response.text), retryable=retryable)

    def get_json(self, path: str, *, operation: str, params: Mapping[str, str] | None = None) -> Any:
        return decode_json(
            self.request("GET", path, operation=operation, params=params), self.system, operation
        )


def decode_json(response: httpx.Response, system: str, operation: str) -> Any:
    """JSON of a 2xx response, or a TargetError saying the remote answered something else."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError as exc:
        raise TargetError(
            f"{system}: {operation}: the answer is not JSON",
            status=response.status_code,
            body=truncate(response.text),
        ) from exc
