"""``GET /openapi.json``: the OpenAPI 3.1 document of the HTTP API, generated from the pydantic schemas.

Each operation is declared once below, with the schema models the handler validates with; the JSON Schemas
come from pydantic, so the document cannot drift from what the server checks. ``/slack/events`` is left
out on purpose: Slack, not an API client, defines what it sends there. Every other route of the app must
be declared here; ``undocumented()`` names those that are not (a test holds it empty).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from starlette.routing import BaseRoute, Route

from bot.web import schemas as s
from bot.web.limits import ALERTS_MAX_BODY, DEFAULT_MAX_BODY, DEPLOYMENTS_MAX_BODY

REF = "#/components/schemas/{model}"
ALERT_SOURCES = ("alertmanager", "grafana", "datadog", "generic")
UNDESCRIBED = {"/slack/events"}


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # path | query
    schema: dict[str, Any]
    description: str
    required: bool = False


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    ok: int
    ok_schema: type[BaseModel] | dict[str, Any] | None
    errors: tuple[int, ...]
    description: str = ""
    body: type[BaseModel] | dict[str, Any] | None = None
    params: tuple[Param, ...] = ()
    secured: bool = True
    ok_media: str = "application/json"
    tags: tuple[str, ...] = ()
    extra_ok: dict[int, type[BaseModel]] = field(default_factory=dict)


ERROR_TEXT = {
    400: "Malformed request: the body is not JSON or not an object, or a query or path parameter is invalid "
         "(the answer names it).",
    401: "Missing or wrong bearer token (Authorization: Bearer <ALERT_WEBHOOK_TOKEN>), or a refused signature.",
    404: "No such model, proposal or alert source.",
    409: "The request conflicts with the current state (for example a rollback already running).",
    413: "The body is over this endpoint's size limit.",
    422: "A JSON object whose fields do not match the schema (the answer names each field).",
    503: "The database is unavailable: nothing was stored, send it again later.",
}

MODEL_PATH = Param("model", "path", {"type": "string", "minLength": 1, "maxLength": s.MAX_NAME,
                                     "pattern": r"^[^/\s\x00-\x1f\x7f]([^/\x00-\x1f\x7f]*[^/\s\x00-\x1f\x7f])?$"},
                   "The model's name, as in the policy file.", required=True)
VERSION_PATH = Param("version", "path", {"type": "string", "minLength": 1, "maxLength": s.MAX_NAME,
                                         "pattern": r"^[^/\s\x00-\x1f\x7f]([^/\x00-\x1f\x7f]*[^/\s\x00-\x1f\x7f])?$"},
                     "The version, as reported in POST /deployments.", required=True)
PROPOSAL_PATH = Param("id", "path", {"type": "integer", "minimum": 1, "maximum": s.MAX_ID},
                      "The proposal's number.", required=True)
ALERT_BODY: dict[str, Any] = {
    "description": "The sender's own webhook payload, unchanged: Alertmanager's webhook_config body, Grafana's "
                   "webhook contact point body, Datadog's webhook template, or the policy's [sources.generic] "
                   "shape. The sender defines it; the server answers 400 naming what it could not read.",
}


def _audit_params() -> tuple[Param, ...]:
    props = s.AuditQuery.model_json_schema()["properties"]
    return tuple(Param(name, "query", _without_null(props[name]), str(props[name].get("description", "")))
                 for name in ("model", "since", "limit"))


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent, never null: keep the non-null branch of ``X | None``."""
    schema = {k: v for k, v in schema.items() if k not in {"title", "description", "default"}}
    options = [o for o in schema.pop("anyOf", []) if o.get("type") != "null"]
    if len(options) == 1:
        schema.update(options[0])
    return schema


OPERATIONS: tuple[Operation, ...] = (
    Operation("post", "/deployments", "Record a deployment", 201, s.DeploymentCreated,
              (400, 401, 404, 409, 413, 422, 503), body=s.DeploymentIn, tags=("deployments",),
              description=f"CI/CD reports that a version of a model now serves. Body at most "
                          f"{DEPLOYMENTS_MAX_BODY} bytes. A version the bot rolled back is blocked: its deployment "
                          "is refused with 409, whose `blocked` names who rolled it back, when and why, unless "
                          "the body carries `override: {reason}` (audited as deployment.override and posted in "
                          "the model's channel). A new deployment cancels the model's waiting proposals as "
                          "superseded."),
    Operation("get", "/api/models/{model}/versions/{version}", "May this version be deployed? Its history",
              200, s.VersionOut, (400, 401, 404, 503), params=(MODEL_PATH, VERSION_PATH), tags=("read",),
              description="For CI to ask before it deploys: `deployable` is false while the version is blocked "
                          "after a rollback by the bot (until an approver runs `/rollback unblock`); `reason` "
                          "says who rolled it back, when and why. `rollback_ready` and `readiness` fold in the "
                          "readiness gate for this deployment (would a rollback of it work now; the version to "
                          "return to counts the version running now): a separate field, so CI can tell "
                          "\"blocked\" from \"not ready\". A strict gate requires both. The answer is 200 "
                          "either way."),
    Operation("get", "/api/models/{model}", "A model's state and deployment history", 200, s.ModelStatusOut,
              (400, 401, 404, 503), params=(MODEL_PATH,), tags=("read",)),
    Operation("get", "/api/models/{model}/readiness", "Would a rollback of this model work now?", 200,
              s.ModelReadinessOut, (400, 401, 404), params=(MODEL_PATH,), tags=("read",),
              extra_ok={503: s.ModelReadinessOut},
              description="Checks, one by one, the policy, the target (reachable, allowed to switch), a version to "
                          "return to, approvers and escalation groups in Slack, the bot's membership of the "
                          "channel and the metrics queries. 200 when every check passes, 503 (same body) when "
                          "one fails: CI can stop a deployment whose rollback would not work."),
    Operation("get", "/api/proposals/{id}", "One proposal", 200, s.ProposalOut, (400, 401, 404, 503),
              params=(PROPOSAL_PATH,), tags=("read",)),
    Operation("get", "/api/audit", "The audit trail, newest first", 200, s.AuditListOut, (400, 401, 503),
              params=_audit_params(), tags=("read",)),
    *(Operation(method, f"/alerts/{source}", f"Alert intake from {source}", 202, s.IntakeOut,
                (400, 401, 413, 503), body=ALERT_BODY, tags=("alerts",),
                description=f"Body at most {ALERTS_MAX_BODY} bytes. Answered only after the whole batch is "
                            "stored; a 4xx means the body will never be accepted, a 503 means send it again."
                            + (" PUT is taken too: Grafana's webhook contact point can be set to use it."
                               if method == "put" else ""))
      for source in ALERT_SOURCES for method in ("post", "put")),
    Operation("get", "/healthz", "Liveness", 200, s.HealthOut, (), secured=False, tags=("operations",)),
    Operation("get", "/readyz", "Readiness: database schema current, Slack reachable", 200, s.ReadyOut, (),
              secured=False, tags=("operations",), extra_ok={503: s.ReadyOut}),
    Operation("get", "/metrics", "Prometheus metrics", 200, {"type": "string"}, (), secured=False,
              ok_media="text/plain", tags=("operations",)),
    Operation("get", "/openapi.json", "This document", 200, {"type": "object"}, (), secured=False,
              tags=("operations",)),
)


class _Components:
    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {"MetadataValue": _resolve_markers(s.METADATA_VALUE_SCHEMA)}

    def ref(self, model: type[BaseModel] | dict[str, Any] | None) -> dict[str, Any]:
        if model is None:
            return {}
        if isinstance(model, dict):
            return model
        schema = _resolve_markers(model.model_json_schema(ref_template=REF))
        self.schemas.update(schema.pop("$defs", {}))
        self.schemas[model.__name__] = schema
        return {"$ref": REF.format(model=model.__name__)}


def _resolve_markers(schema: Any) -> Any:
    """``{"x-schema-ref": NAME}`` (see schemas.METADATA_REF) becomes a ``$ref`` to that component."""
    if isinstance(schema, dict):
        if set(schema) == {"x-schema-ref"}:
            return {"$ref": REF.format(model=schema["x-schema-ref"])}
        return {key: _resolve_markers(value) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_resolve_markers(item) for item in schema]
    return schema


def _operation(op: Operation, components: _Components) -> dict[str, Any]:
    error_ref = components.ref(s.ErrorOut)
    responses: dict[str, Any] = {
        str(op.ok): {"description": "OK", "content": {op.ok_media: {"schema": components.ref(op.ok_schema)}}},
    }
    for status, model in op.extra_ok.items():
        responses[str(status)] = {"description": "Not ready", "content": {"application/json": {
            "schema": components.ref(model)}}}
    for status in op.errors:
        responses[str(status)] = {"description": ERROR_TEXT[status],
                                  "content": {"application/json": {"schema": error_ref}}}
    if op.secured and "401" not in responses:
        responses["401"] = {"description": ERROR_TEXT[401], "content": {"application/json": {"schema": error_ref}}}
    if op.body is not None and "413" not in responses:
        responses["413"] = {"description": ERROR_TEXT[413], "content": {"application/json": {"schema": error_ref}}}
    out: dict[str, Any] = {
        "operationId": f"{op.method}_{op.path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}"
                       .replace(".", "_"),
        "summary": op.summary, "tags": list(op.tags), "responses": responses,
    }
    if op.description:
        out["description"] = op.description
    if op.params:
        out["parameters"] = [{"name": p.name, "in": p.where, "required": p.required or p.where == "path",
                              "description": p.description, "schema": p.schema} for p in op.params]
    if op.body is not None:
        out["requestBody"] = {"required": True,
                              "content": {"application/json": {"schema": components.ref(op.body)}}}
    out["security"] = [{"bearerAuth": []}] if op.secured else []
    return out


def openapi_document(operations: Iterable[Operation] = OPERATIONS,
                     extra_paths: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The document; ``extra_paths`` are path items other modules describe themselves (merged by method).

    By default those are the report API and the incident pages, which describe themselves in their package.
    """
    if extra_paths is None:
        from bot.web.pages.openapi import report_paths

        extra_paths = report_paths()
    components = _Components()
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method] = _operation(op, components)
    for path, item in (extra_paths or {}).items():
        paths.setdefault(path, {}).update(item)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "rollback-bot",
            "version": "1",
            "description": "The HTTP API of rollback-bot: deployments reported by CI/CD, alert intake, the read "
                           "API and health. Slack's requests (/slack/events) are not part of it. Every refusal "
                           "is a JSON object {error, field?, errors?} naming what was wrong. Bodies over "
                           f"{DEFAULT_MAX_BODY} bytes are refused (413) on every other endpoint.",
        },
        "paths": paths,
        "components": {
            "schemas": components.schemas,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "ALERT_WEBHOOK_TOKEN"}},
        },
    }


def undocumented(routes: Sequence[BaseRoute], document: dict[str, Any]) -> list[str]:
    """Routes of the app that the document does not describe (``/slack/events`` aside)."""
    described = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    missing = []
    for route in routes:
        if not isinstance(route, Route) or route.path in UNDESCRIBED:
            continue
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # Starlette's {model:path} is OpenAPI's {model}
        paths = [f"/alerts/{source}" for source in ALERT_SOURCES] if path == "/alerts/{source}" else [path]
        for method in sorted((route.methods or set()) - {"HEAD"}):
            missing += [f"{method} {path}" for path in paths if (path, method) not in described]
    return missing


__all__ = ["OPERATIONS", "Operation", "Param", "openapi_document", "undocumented"]
