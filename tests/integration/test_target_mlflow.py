"""MLflow target against a real ``mlflow server`` (own virtualenv, SQLite, loopback, no telemetry)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from adapters.targets.mlflow import MlflowTarget, version_metrics
from bot.core.errors import TargetError
from bot.core.ports import SwitchRequest
from tests.integration.realservers import record

pytestmark = pytest.mark.mlflow
API = "/api/2.0/mlflow"


def post(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{url}{API}/{path}", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.fixture(scope="module")
def ranker(mlflow_url: str) -> str:
    """Registered model 'ranker' with versions 1 (val_auc 0.91) and 2 (0.90); alias champion -> 2."""
    return registered_model(mlflow_url, "ranker")


def registered_model(mlflow_url: str, name: str) -> str:
    """A registered model with versions 1 (val_auc 0.91) and 2 (0.90), and alias champion -> 2."""
    post(mlflow_url, "registered-models/create", {"name": name})
    for auc in (0.91, 0.90):
        run = post(mlflow_url, "runs/create", {"experiment_id": "0", "start_time": int(time.time() * 1000)})
        run_id = run["run"]["info"]["run_id"]
        for step, value in ((0, auc - 0.05), (1, auc)):
            post(
                mlflow_url,
                "runs/log-metric",
                {
                    "run_id": run_id,
                    "key": "val_auc",
                    "value": value,
                    "timestamp": int(time.time() * 1000),
                    "step": step,
                },
            )
        post(
            mlflow_url,
            "model-versions/create",
            {"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id},
        )
    post(mlflow_url, "registered-models/alias", {"name": name, "alias": "champion", "version": "2"})
    return name


def settings(url: str, **extra: Any) -> dict[str, Any]:
    return {"tracking_uri": url, **extra}


def test_switch_moves_alias_and_reads_back(mlflow_url: str, ranker: str) -> None:
    target = MlflowTarget(env={})
    s = settings(mlflow_url)
    assert target.current_version(ranker, s) == "2"
    started = time.monotonic()
    result = target.switch(SwitchRequest(ranker, "2", "1", 1, "auc drop", s))
    record("mlflow switch", time.monotonic() - started)
    assert "now points to version 1" in result.detail
    assert target.current_version(ranker, s) == "1"
    target.switch(SwitchRequest(ranker, "1", "2", 2, "roll forward", s))
    assert target.current_version(ranker, s) == "2"


def test_version_metrics(mlflow_url: str, ranker: str) -> None:
    assert version_metrics(ranker, "1", settings(mlflow_url), env={}) == {"val_auc": pytest.approx(0.91)}
    assert MlflowTarget(env={}).version_metrics(ranker, "2", settings(mlflow_url)) == {
        "val_auc": pytest.approx(0.90)
    }


def test_unset_alias_is_none_and_unknown_version_is_error(mlflow_url: str, ranker: str) -> None:
    target = MlflowTarget(env={})
    assert target.current_version(ranker, settings(mlflow_url, alias="challenger")) is None
    with pytest.raises(TargetError) as info:
        target.switch(SwitchRequest(ranker, "2", "99", 3, "x", settings(mlflow_url)))
    assert info.value.status in (400, 404) and "mlflow: find version 99" in str(info.value)
    assert target.current_version(ranker, settings(mlflow_url)) == "2"  # untouched


def test_registered_model_setting_and_check(mlflow_url: str, ranker: str) -> None:
    target = MlflowTarget(env={"MLFLOW_TRACKING_TOKEN": "tok-not-needed"})
    s = settings(mlflow_url, registered_model=ranker)
    assert target.current_version("other-name", s) == "2"
    assert "alias 'champion' -> 2" in target.check_connection("other-name", s)
    assert target.validate(s) == []
    assert "registered-models/alias" in target.describe(SwitchRequest(ranker, "2", "1", 1, "x", s))
    with pytest.raises(TargetError) as info:
        target.check_connection("missing-model", settings(mlflow_url))
    assert "tok-not-needed" not in str(info.value)
