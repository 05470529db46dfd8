"""The OpenAPI document: valid 3.1, generated from the request schemas, and strict about undocumented routes."""

from __future__ import annotations

from openapi_spec_validator import validate
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bot.web.openapi import openapi_document, undocumented
from bot.web.schemas import DeploymentIn


def _ok(request: object) -> PlainTextResponse:
    return PlainTextResponse("")


def test_document_is_valid_and_uses_the_request_schema() -> None:
    document = openapi_document()
    validate(document)
    body = document["paths"]["/deployments"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/DeploymentIn"}
    published = document["components"]["schemas"]["DeploymentIn"]
    assert set(published["properties"]) == set(DeploymentIn.model_fields)
    assert published["additionalProperties"] is False
    assert published["properties"]["model"]["maxLength"] == 200
    metadata = published["properties"]["metadata"]["anyOf"][0]
    assert metadata["additionalProperties"] == {"$ref": "#/components/schemas/MetadataValue"}


def test_a_route_missing_from_the_document_is_named() -> None:
    routes = [Route("/deployments", _ok, methods=["POST"]), Route("/api/new-thing", _ok, methods=["GET"]),
              Route("/slack/events", _ok, methods=["POST"]), Route("/alerts/{source}", _ok, methods=["POST"])]
    assert undocumented(routes, openapi_document()) == ["GET /api/new-thing"]
