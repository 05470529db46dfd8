"""A minimal Kubernetes REST client over httpx: credentials, GET, PATCH, and Status-shaped errors.

Credentials, first match wins: settings ``api_url`` (+ env ``KUBERNETES_TOKEN``); a kubeconfig from
settings ``kubeconfig`` or env ``KUBECONFIG`` (current context; token, tokenFile or client certificate);
the in-cluster service account; ``~/.kube/config``. ``exec`` credential plugins are not supported.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from adapters.targets import miniyaml
from adapters.targets.common import env_value
from adapters.targets.http import HttpClient, decode_json
from bot.core.errors import TargetError

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


@dataclass
class KubeAuth:
    server: str
    headers: dict[str, str] = field(default_factory=dict)
    verify: Any = True
    namespace: str | None = None
    source: str = ""


def _pick(items: Any, name: str | None, key: str) -> dict[str, Any]:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            value = item.get(key)
            return value if isinstance(value, dict) else {}
    raise TargetError(f"kubernetes: kubeconfig has no {key} named '{name}'")


def _ssl_context(
    ca_file: str | None, ca_data: str | None, cert: tuple[bytes, bytes] | None, insecure: bool
) -> Any:
    if insecure:
        return False
    ctx = ssl.create_default_context(
        cafile=ca_file, cadata=base64.b64decode(ca_data).decode() if ca_data else None
    )
    if cert:
        # ssl needs files for a client certificate: write them 0600 and remove them at once
        with tempfile.TemporaryDirectory() as tmp:
            cert_path, key_path = Path(tmp, "c.pem"), Path(tmp, "k.pem")
            for path, data in ((cert_path, cert[0]), (key_path, cert[1])):
                path.touch(mode=0o600)
                path.write_bytes(data)
            ctx.load_cert_chain(str(cert_path), str(key_path))
    return ctx


def from_kubeconfig(path: str) -> KubeAuth:
    try:
        config = miniyaml.loads(Path(path).expanduser().read_text())
    except OSError as exc:
        raise TargetError(f"kubernetes: cannot read kubeconfig {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise TargetError(f"kubernetes: cannot parse kubeconfig {path}: {exc}") from exc
    if not isinstance(config, dict):
        raise TargetError(f"kubernetes: kubeconfig {path} is not a mapping")
    context = _pick(config.get("contexts"), config.get("current-context"), "context")
    cluster = _pick(config.get("clusters"), context.get("cluster"), "cluster")
    user = _pick(config.get("users"), context.get("user"), "user") if context.get("user") else {}
    if "exec" in user or "auth-provider" in user:
        raise TargetError(
            "kubernetes: kubeconfig user uses an exec/auth-provider plugin, which the bot "
            "does not run; give it a service-account token instead"
        )
    base = Path(path).expanduser().parent

    def rel(value: Any) -> str | None:
        return None if not value else str(base / str(value))

    headers: dict[str, str] = {}
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(str(rel(user["tokenFile"]))).read_text().strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif user.get("username"):
        pair = f"{user['username']}:{user.get('password', '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    cert: tuple[bytes, bytes] | None = None
    if user.get("client-certificate-data") and user.get("client-key-data"):
        cert = (base64.b64decode(user["client-certificate-data"]), base64.b64decode(user["client-key-data"]))
    elif user.get("client-certificate") and user.get("client-key"):
        cert = (
            Path(str(rel(user["client-certificate"]))).read_bytes(),
            Path(str(rel(user["client-key"]))).read_bytes(),
        )
    server = str(cluster.get("server") or "")
    verify: Any = True
    if server.startswith("https://"):
        verify = _ssl_context(
            rel(cluster.get("certificate-authority")),
            cluster.get("certificate-authority-data"),
            cert,
            bool(cluster.get("insecure-skip-tls-verify")),
        )
    return KubeAuth(
        server=server,
        headers=headers,
        verify=verify,
        namespace=context.get("namespace"),
        source=f"kubeconfig {path}",
    )


def resolve_auth(settings: Mapping[str, Any], env: Mapping[str, str] | None = None) -> KubeAuth:
    """Find the API server and credentials; see the module docstring for the order."""
    if settings.get("api_url"):
        token = env_value(env, "KUBERNETES_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        verify: Any = not bool(settings.get("insecure_skip_tls_verify", False))
        if settings.get("ca_file"):
            verify = ssl.create_default_context(cafile=str(settings["ca_file"]))
        return KubeAuth(server=str(settings["api_url"]), headers=headers, verify=verify, source="api_url")
    path = settings.get("kubeconfig") or env_value(env, "KUBECONFIG")
    if path:
        return from_kubeconfig(str(path).split(os.pathsep)[0])
    host, port = env_value(env, "KUBERNETES_SERVICE_HOST"), env_value(env, "KUBERNETES_SERVICE_PORT")
    if host and (SA_DIR / "token").exists():
        namespace_file = SA_DIR / "namespace"
        return KubeAuth(
            server=f"https://{host if ':' not in host else f'[{host}]'}:{port or '443'}",
            headers={"Authorization": f"Bearer {(SA_DIR / 'token').read_text().strip()}"},
            verify=ssl.create_default_context(cafile=str(SA_DIR / "ca.crt")),
            namespace=namespace_file.read_text().strip() if namespace_file.exists() else None,
            source="in-cluster service account",
        )
    home = Path("~/.kube/config").expanduser()
    if home.exists():
        return from_kubeconfig(str(home))
    raise TargetError(
        "kubernetes: no credentials: set 'api_url' (+ KUBERNETES_TOKEN), 'kubeconfig' or "
        "KUBECONFIG, or run in a cluster with a service account"
    )


class KubeClient:
    """GET and PATCH on one API server; every failure is a TargetError quoting the Status message."""

    def __init__(
        self,
        system: str,
        settings: Mapping[str, Any],
        *,
        client: httpx.Client | None = None,
        env: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.auth = resolve_auth(settings, env)
        self.system = system
        self.http = HttpClient(
            system,
            base_url=self.auth.server,
            headers=self.auth.headers,
            client=client,
            verify=self.auth.verify,
            timeout=float(settings.get("request_timeout", 10)),
            attempts=int(settings.get("attempts", 3)),
            sleep=sleep,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, operation: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        data = self.http.get_json(path, operation=operation, params=params)
        if not isinstance(data, dict):
            raise TargetError(f"{self.system}: {operation}: expected an object")
        return data

    def patch(self, path: str, body: Any, content_type: str, operation: str) -> dict[str, Any]:
        response = self.http.request(
            "PATCH", path, json_body=body, headers={"Content-Type": content_type}, operation=operation
        )
        data = decode_json(response, self.system, operation)
        return data if isinstance(data, dict) else {}


def namespace_of(settings: Mapping[str, Any], auth: KubeAuth) -> str:
    return str(settings.get("namespace") or auth.namespace or "default")


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


def can_i(kube: KubeClient, verb: str, group: str, resource: str, namespace: str, name: str) -> str:
    """Ask the API server (SelfSubjectAccessReview) whether our credentials may ``verb`` the object."""
    attrs = {"namespace": namespace, "verb": verb, "group": group, "resource": resource, "name": name}
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attrs},
    }
    response = kube.http.request(
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        json_body=review,
        operation=f"check {verb} permission",
        ok=(403, 404),
    )
    if response.status_code >= 300:
        return f"{verb} permission unknown (access review answered {response.status_code})"
    allowed = (response.json() or {}).get("status", {}).get("allowed")
    return f"may {verb} it" if allowed else f"may NOT {verb} {resource}/{name}"


class KubeTarget:
    """What every target on the Kubernetes API shares: injectable client, clock and sleep for tests."""

    name = "kubernetes-api"

    def __init__(
        self,
        *,
        client: httpx.Client | None = None,
        env: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        poll_interval: float | None = None,
    ) -> None:
        self._client, self._env, self._sleep, self._clock = client, env, sleep, clock
        self._poll = poll_interval

    def _kube(self, settings: Mapping[str, Any]) -> KubeClient:
        return KubeClient(self.name, settings, client=self._client, env=self._env, sleep=self._sleep)
