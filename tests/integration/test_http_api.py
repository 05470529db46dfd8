"""The HTTP app: deployments, read API, health, auth and body limits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from bot.core.requests import RollbackRequest
from bot.web.app import create_app

AUTH = {"Authorization": "Bearer test-token"}


@pytest.fixture
def client(container: Any) -> Iterator[TestClient]:
    with TestClient(create_app(container)) as c:
        yield c


def test_deployments_and_model_status(client: TestClient, container: Any) -> None:
    r = client.post("/deployments", json={"model": "fraud-detector", "version": "6", "deployed_by": "ci",
                                          "stable": True}, headers=AUTH)
    assert r.status_code == 201 and r.json()["deployment"]["version"] == "6"
    r = client.post("/deployments", json={"model": "fraud-detector", "version": 7, "source": "argo",
                                          "metadata": {"commit": "abc"}}, headers=AUTH)
    assert r.status_code == 201
    status = client.get("/api/models/fraud-detector", headers=AUTH).json()
    assert status["current_version"] == "7" and status["last_stable_version"] == "6"
    assert status["frozen"] is False and [d["version"] for d in status["deployments"]] == ["7", "6"]
    audit = client.get("/api/audit?model=fraud-detector&limit=5", headers=AUTH).json()
    assert audit["count"] == 2 and audit["records"][0]["action"] == "deploy"


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"version": "1"}, 422, "field 'model' is required"),
    ({"model": "fraud-detector"}, 422, "field 'version' is required"),
    ({"model": "fraud-detector", "version": "1", "metadata": []}, 422, "'metadata' must be a JSON object"),
    ({"model": "nope", "version": "1"}, 404, "unknown model 'nope'"),
    ([], 400, "body must be a JSON object"),
])
def test_bad_deployments_are_refused_with_the_reason(client: TestClient, container: Any, body: Any, status: int,
                                                     words: str) -> None:
    r = client.post("/deployments", json=body, headers=AUTH)
    assert r.status_code == status and words in r.json()["error"]
    assert container.store.history("fraud-detector") == []


def test_malformed_json_and_huge_bodies(client: TestClient) -> None:
    r = client.post("/deployments", content=b'{"model": "fraud', headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    r = client.post("/deployments", content=b"x" * (128 * 1024 + 1), headers=AUTH)
    assert r.status_code == 413 and "over the 131072-byte limit of /deployments" in r.json()["error"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}])
def test_token_is_required(client: TestClient, headers: dict[str, str]) -> None:
    for method, path in (("POST", "/deployments"), ("GET", "/api/models/fraud-detector"), ("GET", "/api/audit"),
                         ("GET", "/api/proposals/1")):
        r = client.request(method, path, headers=headers, json={})
        assert r.status_code == 401, path
        assert "test-token" not in r.text


def test_proposal_read_api(client: TestClient, container: Any) -> None:
    container.service.deploy("fraud-detector", "6", actor="api:ci")
    container.service.deploy("fraud-detector", "7", actor="api:ci")
    p = container.service.request_rollback(RollbackRequest("fraud-detector", actor="alert:x", reason="r"))
    body = client.get(f"/api/proposals/{p.id}", headers=AUTH).json()
    assert body["state"] == "proposed" and body["to_version"] == "6"
    assert client.get("/api/proposals/999", headers=AUTH).status_code == 404
    assert client.get("/api/proposals/abc", headers=AUTH).status_code == 400


def test_health_ready_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
    client.get("/api/audit", headers=AUTH)
    assert 'rollback_bot_http_requests_total{route="/api/audit",status="200"} 1.0' in client.get("/metrics").text


def test_no_token_configured_refuses_everything(container: Any) -> None:
    container.settings = container.settings.model_copy(update={"alert_webhook_token": None})
    with TestClient(create_app(container)) as c:
        r = c.get("/api/audit", headers={"Authorization": "Bearer anything"})
    assert r.status_code == 401 and "no ALERT_WEBHOOK_TOKEN configured" in r.json()["error"]


def test_database_down_is_503(container: Any, client: TestClient) -> None:
    from bot.store.db import make_engine

    container.store.engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    r = client.post("/deployments", json={"model": "fraud-detector", "version": "1"}, headers=AUTH)
    assert r.status_code == 503 and "database unavailable" in r.json()["error"]
    assert client.get("/readyz").status_code == 503


def test_readyz_names_a_schema_behind_the_code(client: TestClient, container: Any) -> None:
    from alembic import command

    from bot.store.migrate import alembic_config

    command.downgrade(alembic_config(container.settings.database_url), "0001")
    r = client.get("/readyz")
    assert r.status_code == 503 and "run `rollback-bot db upgrade`" in r.json()["checks"]["database"]
    command.upgrade(alembic_config(container.settings.database_url), "head")
    assert client.get("/readyz").status_code == 200
