"""Webhook target: hand the rollback to your own deployer with a signed, idempotent POST.

Signing (document for receivers): the bot sends ``X-Rollback-Timestamp: <unix seconds>`` and
``X-Rollback-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>``. The timestamp is
inside the signed material so a captured request cannot be replayed later: receivers should reject
timestamps more than five minutes off (``verify_signature`` below does both checks). The secret comes
from ``ROLLBACK_WEBHOOK_SECRET``. ``Idempotency-Key: rollback-<proposal_id>-<to_version>`` lets the
receiver ignore the retries of a request it already acted on.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from adapters.targets.common import duration_problem, env_value, missing_keys, required, timeout_seconds, unknown_keys
from adapters.targets.http import HttpClient, decode_json
from bot.core.errors import TargetError
from bot.core.ports import SwitchRequest, SwitchResult
from bot.redact import mask_url

SECRET_ENV = "ROLLBACK_WEBHOOK_SECRET"
SIGNATURE_HEADER = "X-Rollback-Signature"
TIMESTAMP_HEADER = "X-Rollback-Timestamp"
KNOWN = {"url", "status_url", "timeout", "attempts"}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: str,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    tolerance: float = 300,
    now: float | None = None,
) -> bool:
    """What a receiver does: constant-time compare, and refuse stale or future timestamps."""
    try:
        sent = float(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def payload(request: SwitchRequest) -> dict[str, Any]:
    return {
        "model": request.model,
        "from_version": request.from_version,
        "to_version": request.to_version,
        "proposal_id": request.proposal_id,
        "reason": request.reason,
    }


class WebhookTarget:
    name = "webhook"

    def __init__(
        self,
        *,
        client: httpx.Client | None = None,
        env: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._env = env
        self._sleep = sleep
        self._clock = clock

    def _http(self, settings: Mapping[str, Any]) -> HttpClient:
        return HttpClient(
            "webhook",
            client=self._client,
            timeout=timeout_seconds(settings, "timeout", "10s"),
            attempts=int(settings.get("attempts", 3)),
            sleep=self._sleep,
        )

    def validate(self, settings: Mapping[str, Any]) -> list[str]:
        problems = missing_keys(settings, ("url",), self.name) + unknown_keys(settings, KNOWN, self.name)
        for key in ("url", "status_url"):
            value = str(settings.get(key, ""))
            if value and not value.startswith(("http://", "https://")):
                problems.append(f"webhook: setting '{key}' must be an http(s) URL")
        if env_value(self._env, SECRET_ENV) is None:
            problems.append(f"webhook: environment variable {SECRET_ENV} is not set (HMAC secret)")
        return problems + duration_problem(settings, "timeout", self.name)

    def describe(self, request: SwitchRequest) -> str:
        url = request.settings.get("url", "<url missing>")
        key = f"rollback-{request.proposal_id}-{request.to_version}"
        return (
            f"POST {mask_url(str(url))} with {json.dumps(payload(request), sort_keys=True)}, signed with "
            f"{SECRET_ENV} ({SIGNATURE_HEADER}), Idempotency-Key {key}"
        )

    def switch(self, request: SwitchRequest) -> SwitchResult:
        url = required(request.settings, "url", self.name)
        secret = env_value(self._env, SECRET_ENV)
        if secret is None:
            raise TargetError(
                f"webhook: environment variable {SECRET_ENV} is not set; cannot sign the request"
            )
        body = json.dumps(payload(request), separators=(",", ":"), sort_keys=True).encode()
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            "Idempotency-Key": f"rollback-{request.proposal_id}-{request.to_version}",
        }
        with self._http(request.settings) as http:
            response = http.request(
                "POST", url, operation=f"POST rollback of {request.model}", content=body, headers=headers
            )
        served = None
        if response.headers.get("content-type", "").startswith("application/json"):
            data = decode_json(response, "webhook", "read the answer")
            if isinstance(data, dict) and data.get("version") is not None:
                served = str(data["version"])
        if request.settings.get("status_url"):
            served = self.current_version(request.model, request.settings) or served
        return SwitchResult(
            detail=f"webhook accepted the rollback to {request.to_version} (HTTP {response.status_code})",
            served_version=served,
        )

    def current_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
        status_url = settings.get("status_url")
        if not status_url:
            return None
        with self._http(settings) as http:
            data = http.get_json(
                str(status_url), operation=f"read the version of {model}", params={"model": model}
            )
        if isinstance(data, dict) and data.get("version") is not None:
            return str(data["version"])
        return None

    def served_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
        return self.current_version(model, settings)

    def check_connection(self, model: str, settings: Mapping[str, Any]) -> str:
        if settings.get("status_url"):
            version = self.current_version(model, settings)
            return f"webhook: status_url answers; {model} is at {version or 'an unknown version'}"
        url = required(settings, "url", self.name)
        with self._http(settings) as http:  # HEAD: reachability only, never triggers a rollback
            response = http.request("HEAD", url, operation="reach the webhook", ok=range(400, 500))
        return f"webhook: {mask_url(url)} reachable (HEAD answered {response.status_code})"
