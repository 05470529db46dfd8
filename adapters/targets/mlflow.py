"""MLflow Model Registry target: the rollback moves an alias (default ``champion``) to another version.

REST over httpx only, so MLflow never becomes a runtime dependency of the bot.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from adapters.targets.common import duration_problem, env_value, missing_keys, timeout_seconds, unknown_keys
from adapters.targets.http import HttpClient
from bot.core.errors import TargetError
from bot.core.ports import SwitchRequest, SwitchResult
from bot.redact import mask_url

API = "/api/2.0/mlflow"
KNOWN = {"tracking_uri", "registered_model", "alias", "timeout", "attempts"}


class MlflowTarget:
    name = "mlflow"

    def __init__(
        self,
        *,
        client: httpx.Client | None = None,
        env: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._env = env
        self._sleep = sleep

    # -- plumbing -------------------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        token = env_value(self._env, "MLFLOW_TRACKING_TOKEN")
        if token:
            return {"Authorization": f"Bearer {token}"}
        user = env_value(self._env, "MLFLOW_TRACKING_USERNAME")
        password = env_value(self._env, "MLFLOW_TRACKING_PASSWORD") or ""
        if user:
            return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
        return {}

    def _http(self, settings: Mapping[str, Any]) -> HttpClient:
        uri = settings.get("tracking_uri")
        if not uri:
            raise TargetError("mlflow: setting 'tracking_uri' is missing in [models.<model>.mlflow]")
        return HttpClient(
            "mlflow",
            base_url=str(uri),
            headers=self._headers(),
            client=self._client,
            timeout=timeout_seconds(settings, "timeout", "10s"),
            attempts=int(settings.get("attempts", 3)),
            sleep=self._sleep,
        )

    @staticmethod
    def _names(model: str, settings: Mapping[str, Any]) -> tuple[str, str]:
        return str(settings.get("registered_model") or model), str(settings.get("alias") or "champion")

    def _alias(self, http: HttpClient, name: str, alias: str) -> str | None:
        response = http.request(
            "GET",
            f"{API}/registered-models/alias",
            params={"name": name, "alias": alias},
            operation=f"read alias '{alias}' of '{name}'",
            ok=(400, 404),
        )
        if response.status_code in (400, 404):
            data = response.json() if response.content else {}
            code = data.get("error_code", "") if isinstance(data, dict) else ""
            known = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
            if code in known and "alias" in response.text.lower():
                return None  # the alias is not set: MLflow answers 400 or 404, not an empty body
            raise http.error_for("GET", f"read alias '{alias}' of '{name}'", response, 1, False)
        version = response.json().get("model_version", {}).get("version")
        return None if version is None else str(version)

    # -- DeploymentTarget -----------------------------------------------------------------------------------
    def validate(self, settings: Mapping[str, Any]) -> list[str]:
        problems = missing_keys(settings, ("tracking_uri",), self.name)
        problems += unknown_keys(settings, KNOWN, self.name)
        uri = str(settings.get("tracking_uri", ""))
        if uri and not uri.startswith(("http://", "https://")):
            problems.append(
                "mlflow: 'tracking_uri' must be the server's http(s) URL (a file store has no REST API)"
            )
        return problems + duration_problem(settings, "timeout", self.name)

    def describe(self, request: SwitchRequest) -> str:
        name, alias = self._names(request.model, request.settings)
        uri = request.settings.get("tracking_uri", "<tracking_uri missing>")
        return (
            f"POST {mask_url(str(uri))}{API}/registered-models/alias {{name: {name}, alias: {alias}, "
            f"version: {request.to_version}}}, then read the alias back"
        )

    def current_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
        name, alias = self._names(model, settings)
        with self._http(settings) as http:
            return self._alias(http, name, alias)

    def served_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
        return None  # the registry knows the alias, not what a server has loaded

    def switch(self, request: SwitchRequest) -> SwitchResult:
        name, alias = self._names(request.model, request.settings)
        version = request.to_version
        with self._http(request.settings) as http:
            http.request(
                "GET",
                f"{API}/model-versions/get",
                params={"name": name, "version": version},
                operation=f"find version {version} of '{name}'",
            )
            http.request(
                "POST",
                f"{API}/registered-models/alias",
                json_body={"name": name, "alias": alias, "version": version},
                operation=f"set alias '{alias}' of '{name}' to version {version}",
            )
            now = self._alias(http, name, alias)
        if now != version:
            raise TargetError(
                f"mlflow: alias '{alias}' of '{name}' reads back as {now!r}, not {version!r}; "
                "someone else may have moved it",
                retryable=True,
            )
        return SwitchResult(
            detail=f"MLflow alias '{alias}' of '{name}' now points to version {version}", served_version=None
        )

    def check_connection(self, model: str, settings: Mapping[str, Any]) -> str:
        name, alias = self._names(model, settings)
        with self._http(settings) as http:
            data = http.get_json(
                f"{API}/registered-models/get",
                params={"name": name},
                operation=f"read registered model '{name}'",
            )
            current = self._alias(http, name, alias)
        latest = data.get("registered_model", {}).get("latest_versions", []) if isinstance(data, dict) else []
        return (
            f"mlflow: '{name}' found ({len(latest)} latest version(s)); alias '{alias}' -> "
            f"{current or 'not set'}. Setting an alias needs EDIT permission on the model."
        )

    def version_metrics(self, model: str, version: str, settings: Mapping[str, Any]) -> dict[str, float]:
        return version_metrics(model, version, settings, client=self._client, env=self._env)

    def version_run(self, model: str, version: str, settings: Mapping[str, Any]) -> dict[str, Any]:
        return version_run(model, version, settings, client=self._client, env=self._env)


def version_metrics(
    model: str,
    version: str,
    settings: Mapping[str, Any],
    *,
    client: httpx.Client | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, float]:
    """The latest value of each metric of the run that produced ``version`` (for ``val_auc 0.91 → 0.90``).

    Empty when the version has no run (registered from an external URI).
    """
    return dict(version_run(model, version, settings, client=client, env=env)["metrics"])


def version_run(
    model: str,
    version: str,
    settings: Mapping[str, Any],
    *,
    client: httpx.Client | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The run behind ``version``: its id, parameters, latest metrics and tags, for the post-incident diff.

    ``run_id`` is None (and the rest empty) when the version was registered without a run.
    """
    target = MlflowTarget(client=client, env=env)
    name, _ = target._names(model, settings)
    with target._http(settings) as http:
        mv = http.get_json(
            f"{API}/model-versions/get",
            params={"name": name, "version": version},
            operation=f"read version {version} of '{name}'",
        )
        run_id = (mv or {}).get("model_version", {}).get("run_id")
        if not run_id:
            return {"run_id": None, "params": {}, "metrics": {}, "tags": {}}
        run = http.get_json(
            f"{API}/runs/get", params={"run_id": str(run_id)}, operation=f"read the run of version {version}"
        )
    data = (run or {}).get("run", {}).get("data", {})
    latest: dict[str, tuple[int, int, float]] = {}
    for metric in data.get("metrics", []):
        key = str(metric.get("key"))
        rank = (int(metric.get("step", 0)), int(metric.get("timestamp", 0)), float(metric.get("value", "nan")))
        if key not in latest or rank[:2] >= latest[key][:2]:
            latest[key] = rank
    return {
        "run_id": str(run_id),
        "params": {str(p.get("key")): str(p.get("value")) for p in data.get("params", [])},
        "metrics": {key: value for key, (_, _, value) in sorted(latest.items())},
        "tags": {str(t.get("key")): str(t.get("value")) for t in data.get("tags", [])},
    }
