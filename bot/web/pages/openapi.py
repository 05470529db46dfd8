"""OpenAPI 3.1 descriptions of the report endpoint and the incident pages, merged into `/openapi.json`."""

from __future__ import annotations

from typing import Any

_ERROR = {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}},
                                          "required": ["error"]}}}
_HTML = {"text/html": {"schema": {"type": "string"}}}
_LINK_PARAMS = [
    {"name": "exp", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "expiry (Unix seconds) of a signed link the bot posted; ignored when the API token is sent"},
    {"name": "sig", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "HMAC-SHA256 signature of the path and the expiry under PAGE_LINK_KEY"},
]
_PAGE_ANSWERS = {
    "200": {"description": "the page", "content": _HTML},
    "400": {"description": "a filter or id that is not valid, named", "content": _HTML},
    "401": {"description": "neither a signed link nor the API token", "content": _HTML},
    "403": {"description": "the signed link was altered or has expired", "content": _HTML},
    "404": {"description": "no such incident or model", "content": _HTML},
}


def _page(summary: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    return {"get": {"summary": summary, "tags": ["incident pages"], "parameters": params + _LINK_PARAMS,
                    "security": [{}, {"bearerAuth": []}], "responses": _PAGE_ANSWERS}}


def report_paths() -> dict[str, Any]:
    pid = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
    return {
        "/api/proposals/{id}/report": {"get": {
            "summary": "The post-incident report of a proposal",
            "description": "JSON by default; Markdown with `Accept: text/markdown`. Built from the database.",
            "tags": ["reports"], "parameters": [pid], "security": [{"bearerAuth": []}],
            "responses": {
                "200": {"description": "the report", "content": {
                    "application/json": {"schema": {"type": "object", "required": [
                        "proposal", "timeline", "durations", "decision", "policy", "changes", "alerts"]}},
                    "text/markdown": {"schema": {"type": "string"}}}},
                "400": {"description": "the id is not a number", "content": _ERROR},
                "401": {"description": "missing or wrong token", "content": _ERROR},
                "404": {"description": "no such proposal", "content": _ERROR},
            }}},
        "/incidents": _page("Every rollback proposal, newest first, filtered and paginated", [
            {"name": "model", "in": "query", "required": False, "schema": {"type": "string"}},
            {"name": "state", "in": "query", "required": False, "schema": {"type": "string", "enum": [
                "", "proposed", "approved", "executing", "succeeded", "failed", "denied", "expired", "cancelled"]}},
            {"name": "since", "in": "query", "required": False,
             "schema": {"anyOf": [{"type": "string", "format": "date"}, {"const": ""}]},
             "description": "YYYY-MM-DD; empty (as an HTML form sends it) means no bound"},
            {"name": "until", "in": "query", "required": False,
             "schema": {"anyOf": [{"type": "string", "format": "date"}, {"const": ""}]},
             "description": "YYYY-MM-DD; empty (as an HTML form sends it) means no bound"},
            {"name": "page", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": 100000}},
        ]),
        "/incidents/{id}": _page("One incident's report", [pid]),
        "/models/{model}": _page("A model's versions (live, stable, bad) and rollback history", [
            {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}]),
    }
