"""OpenAPI 3.1 descriptions of the report endpoint and the incident pages, merged into `/openapi.json`.

The pages are for people: every answer, refusals included, is an HTML page (a 4xx page says which parameter
was wrong). Their parameters come from the pydantic models the pages validate with (pages/schemas.py).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from bot.web.pages.schemas import DESCRIPTIONS, ID_SCHEMA, NAME_SCHEMA, IncidentsQuery, LinkQuery

_ERROR = {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}},
                                          "required": ["error"]}}}
_HTML = {"text/html": {"schema": {"type": "string"}}}
_PAGE_ANSWERS = {
    "200": {"description": "the page", "content": _HTML},
    "400": {"description": "a parameter that is not valid or not known, named on an HTML error page",
            "content": _HTML},
    "401": {"description": "neither a signed link nor the API token", "content": _HTML},
    "403": {"description": "the signed link was altered or has expired", "content": _HTML},
    "404": {"description": "no such incident or model", "content": _HTML},
    "503": {"description": "the database is unavailable; try again", "content": _HTML},
}


def query_params(model: type[BaseModel]) -> list[dict[str, Any]]:
    """One optional query parameter per field of ``model``, with the schema that field validates."""
    props = model.model_json_schema()["properties"]
    return [{"name": name, "in": "query", "required": False, "description": DESCRIPTIONS[name],
             "schema": {k: v for k, v in props[name].items() if k not in {"title", "default"}}}
            for name in model.model_fields]


def _page(summary: str, params: list[dict[str, Any]], query: type[BaseModel]) -> dict[str, Any]:
    return {"get": {"summary": summary, "tags": ["incident pages"], "parameters": params + query_params(query),
                    "security": [{}, {"bearerAuth": []}], "responses": _PAGE_ANSWERS}}


def report_paths() -> dict[str, Any]:
    pid = {"name": "id", "in": "path", "required": True, "schema": ID_SCHEMA, "description": "The proposal's number."}
    model = {"name": "model", "in": "path", "required": True, "schema": NAME_SCHEMA,
             "description": "The model's name, as in the policy file."}
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
                "503": {"description": "the database is unavailable; retry later", "content": _ERROR},
            }}},
        "/incidents": _page("Every rollback proposal, newest first, filtered and paginated", [], IncidentsQuery),
        "/incidents/{id}": _page("One incident's report", [pid], LinkQuery),
        "/models/{model}": _page("A model's versions (live, stable, bad) and rollback history", [model], LinkQuery),
    }
