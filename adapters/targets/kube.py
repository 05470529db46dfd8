"""The Kubernetes API through lightkube: bounded retries, and every failure a one-line TargetError.

Why a wrapper at all: lightkube raises its own and httpx's exceptions and does not retry. The targets need
the rules every other target follows (``adapters.targets.http``): retry 5xx, 429, timeouts and connection
errors with backoff up to ``attempts``; never retry another 4xx; quote the API server's ``Status.message``;
a certificate that does not verify is reported as such, at once, and never retried or worked around.
Credentials and the kubeconfig rules live in ``adapters.targets.kubeconfig``.
"""

from __future__ import annotations

import random
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx2
import msgspec
from lightkube import Client
from lightkube.core.exceptions import ApiError, ConfigError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.authorization_v1 import ResourceAttributes, SelfSubjectAccessReviewSpec
from lightkube.resources.authorization_v1 import SelfSubjectAccessReview
from lightkube.types import PatchType

from adapters.targets import kubeconfig
from adapters.targets.kubeconfig import Connection, one_line
from bot.core.errors import TargetError

STRATEGIC = PatchType.STRATEGIC.value
MERGE = PatchType.MERGE.value
JSON_PATCH = PatchType.JSON.value
FIELD_MANAGER = "rollback-bot"
BODY_LIMIT = 2000

# Generic (dict) resources, not lightkube's typed models: a typed decode refuses an object missing a field
# the model calls required, and the targets read a handful of fields from plain dicts anyway.
DEPLOYMENT: Any = create_namespaced_resource("apps", "v1", "Deployment", "deployments")
REPLICASET: Any = create_namespaced_resource("apps", "v1", "ReplicaSet", "replicasets")
ROLLOUT: Any = create_namespaced_resource("argoproj.io", "v1alpha1", "Rollout", "rollouts")
INFERENCE_SERVICE: Any = create_namespaced_resource(
    "serving.kserve.io", "v1beta1", "InferenceService", "inferenceservices"
)

T = TypeVar("T")

NOT_ALLOWED = "may NOT"  # how can_i says the credentials may not do it (the readiness gate reads it)


def _as_dict(obj: Any) -> dict[str, Any]:
    if obj is None:
        return {}
    data = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    return data if isinstance(data, dict) else {}


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class KubeClient:
    """One API server for one operation's lifetime; dict in, dict out."""

    def __init__(
        self,
        system: str,
        settings: Mapping[str, Any],
        *,
        env: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.system = system
        self.conn: Connection = kubeconfig.resolve(settings, env)
        self.namespace = str(settings.get("namespace") or self.conn.namespace or "default")
        self.source = self.conn.source
        self.attempts = int(settings.get("attempts", 3))
        self.timeout = float(settings.get("request_timeout", 10))
        self.backoff, self.max_backoff = 0.5, 8.0
        self._sleep = sleep
        self._client = self._build()

    def _build(self) -> Client:
        try:
            return Client(
                config=self.conn.config,
                namespace=self.namespace,
                timeout=httpx2.Timeout(self.timeout),
                field_manager=FIELD_MANAGER,
                proxy=self.conn.proxy,
            )
        except (ConfigError, ssl.SSLError, OSError, ValueError) as exc:
            # a CA or client certificate that cannot be loaded: bad input, not a network problem
            detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise TargetError(f"{self.system}: cannot set up TLS for {self.source}: {one_line(detail)}") from exc

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the retry loop ---------------------------------------------------------------------------------------
    def _delay(self, attempt: int, exc: BaseException | None) -> float:
        response = getattr(exc, "response", None)
        if response is not None and response.status_code == 429:
            retry_after = response.headers.get("Retry-After", "")
            if retry_after.isdigit():
                return min(float(retry_after), self.max_backoff)
        base = min(self.max_backoff, self.backoff * (2.0 ** (attempt - 1)))
        return base * (0.5 + random.random() / 2)

    def call(self, operation: str, fn: Callable[[Client], T]) -> T:
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn(self._client)
            except ApiError as exc:
                code = int(exc.status.code or exc.response.status_code)
                if code == 401 and self.conn.exec_spec is not None and not refreshed:
                    refreshed = True  # the exec credential may have expired: ask the plugin once more
                    self._client.close()
                    self.conn = kubeconfig.refresh_exec(self.conn)
                    self._client = self._build()
                    attempt -= 1
                    continue
                retryable = code >= 500 or code == 429
                if not retryable or attempt >= self.attempts:
                    raise self._api_error(operation, exc, code, exc.status.message or "", attempt, retryable) from exc
                last: BaseException = exc
            except httpx2.HTTPStatusError as exc:  # an answer that is not a Status (a proxy, a load balancer)
                code = exc.response.status_code
                retryable = code >= 500 or code == 429
                text = exc.response.text.strip() or exc.response.reason_phrase
                if not retryable or attempt >= self.attempts:
                    raise self._api_error(operation, exc, code, text, attempt, retryable) from exc
                last = exc
            except httpx2.TransportError as exc:
                tls = _tls_failure(exc)
                if tls is not None:
                    if isinstance(tls, ssl.SSLCertVerificationError):
                        reason = f"certificate verify failed: {tls.verify_message} (check the cluster's "
                        reason += "certificate-authority; verification stays on)"
                    else:  # e.g. the server wants a client certificate the kubeconfig does not give
                        reason = f"{tls.reason or tls} (the server refused the TLS handshake)"
                    raise TargetError(
                        f"{self.system}: {operation} failed: TLS with {self.conn.config.cluster.server} "
                        f"failed: {one_line(reason)}"
                    ) from exc
                if attempt >= self.attempts:
                    kind = "timed out" if isinstance(exc, httpx2.TimeoutException) else "cannot connect"
                    raise TargetError(
                        f"{self.system}: {operation} failed after {attempt} attempt(s): {kind} "
                        f"({type(exc).__name__}: {one_line(str(exc), 200)}) to {self.conn.config.cluster.server}",
                        retryable=True,
                    ) from exc
                last = exc
            except ConfigError as exc:  # e.g. a tokenFile that vanished
                raise TargetError(f"{self.system}: {operation} failed: {one_line(str(exc))}") from exc
            except (msgspec.DecodeError, msgspec.ValidationError, KeyError, ValueError) as exc:
                # KeyError: lightkube reads Content-Type of an error answer without checking it is there
                raise TargetError(
                    f"{self.system}: {operation} failed: the API server's answer cannot be read: {one_line(str(exc))}"
                ) from exc
            self._sleep(self._delay(attempt, last))

    def _api_error(
        self, operation: str, exc: httpx2.HTTPStatusError, code: int, message: str, attempts: int, retryable: bool
    ) -> TargetError:
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        request = exc.request
        body = exc.response.text
        text = (
            f"{self.system}: {operation} failed{tries}: HTTP {code} {exc.response.reason_phrase}: "
            f"{one_line(message)} ({request.method} {request.url.copy_with(query=None)})"
        )
        return TargetError(
            text,
            status=code,
            body=body if len(body) <= BODY_LIMIT else body[:BODY_LIMIT] + "…",
            retryable=retryable,
        )

    # -- verbs ------------------------------------------------------------------------------------------------
    def get(self, kind: Any, name: str, operation: str) -> dict[str, Any]:
        return _as_dict(self.call(operation, lambda c: c.get(kind, name, namespace=self.namespace)))

    def list(self, kind: Any, operation: str, labels: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        selector: dict[str, Any] | None = dict(labels) if labels else None
        return self.call(
            operation, lambda c: [_as_dict(o) for o in c.list(kind, namespace=self.namespace, labels=selector)]
        )

    def patch(
        self, kind: Any, name: str, body: Any, patch_type: PatchType, operation: str, *, status: bool = False
    ) -> dict[str, Any]:
        res = kind.Status if status else kind
        return _as_dict(
            self.call(
                operation,
                lambda c: c.patch(res, name, body, namespace=self.namespace, patch_type=patch_type),
            )
        )

    def can_i(self, verb: str, group: str, resource: str, name: str) -> str:
        """Ask the API server (SelfSubjectAccessReview) whether our credentials may ``verb`` the object."""
        review = SelfSubjectAccessReview(
            spec=SelfSubjectAccessReviewSpec(
                resourceAttributes=ResourceAttributes(
                    namespace=self.namespace, verb=verb, group=group, resource=resource, name=name
                )
            )
        )
        try:
            answer = self.call(f"check {verb} permission", lambda c: c.create(review))
        except TargetError as exc:
            if exc.status in (403, 404):
                return f"{verb} permission unknown (access review answered {exc.status})"
            raise
        allowed = answer.status.allowed if answer.status is not None else False
        return f"may {verb} it" if allowed else f"{NOT_ALLOWED} {verb} {resource}/{name}"


def failing_condition(conditions: Any, bad: set[tuple[str, str, str]]) -> str | None:
    """The message of a condition that means 'this will not finish by itself', else None.

    ``bad`` holds (type, status, reason) triples; a reason of ``*`` matches any reason.
    """
    for cond in conditions or []:
        if not isinstance(cond, dict):
            continue
        kind, status, reason = str(cond.get("type")), str(cond.get("status")), str(cond.get("reason", ""))
        if (kind, status, reason) in bad or (kind, status, "*") in bad:
            return f"{kind}={status} ({reason}): {cond.get('message', '')}".strip()
    return None


class KubeTarget:
    """What every target on the Kubernetes API shares: injectable environment, clock and sleep for tests."""

    name = "kubernetes-api"

    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        poll_interval: float | None = None,
    ) -> None:
        self._env, self._sleep, self._clock = env, sleep, clock
        self._poll = poll_interval

    def _kube(self, settings: Mapping[str, Any]) -> KubeClient:
        return KubeClient(self.name, settings, env=self._env, sleep=self._sleep)
