"""The incident pages' query and path parameters, as pydantic models.

The pages validate with these and ``/openapi.json`` describes the pages from them (pages/openapi.py), so a
fuzzer reading the document and the handlers agree on what is valid. An HTML form sends every field, empty
when nothing is chosen, so the empty string means "no filter" and is declared as such; anything else must
be a real value, and a parameter the page does not know is refused rather than silently ignored.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, TypeAdapter, ValidationError, WithJsonSchema

from bot.core.proposal import State
from bot.web.errors import describe
from bot.web.schemas import MAX_ID, Name

MAX_PAGE = 100_000
MAX_LINK_PARAM = 200
STATES = tuple(s.value for s in State)
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_DIGITS = re.compile(r"^[0-9]+$")
_NAME = TypeAdapter(Name)
NAME_SCHEMA: dict[str, Any] = _NAME.json_schema()
ID_SCHEMA: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


class BadParameter(ValueError):
    """A page parameter that is not valid; the message names it and says what it must be."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _or_empty(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"const": ""}]}


def _whole(raw: str, low: int, high: int) -> int | None:
    """ASCII digits only: int() would also take "²", " 7", "1_000" and "٣", which no schema calls integers."""
    if not _DIGITS.match(raw) or len(raw) > len(str(high)) or not low <= int(raw) <= high:
        return None
    return int(raw)


def _model(raw: Any) -> str | None:
    if raw == "" or raw is None:
        return None
    try:
        return str(_NAME.validate_python(raw))
    except ValidationError:
        raise ValueError("model must be a model name (no control characters, no white space at either end, "
                         "at most 200 characters)") from None


def _state(raw: Any) -> str | None:
    if raw == "" or raw is None:
        return None
    if raw not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}")
    return str(raw)


def _date(name: str) -> Any:
    def parse(raw: Any) -> date | None:
        if raw == "" or raw is None:
            return None
        if isinstance(raw, str) and re.match(DATE_PATTERN, raw):
            try:
                return date.fromisoformat(raw)
            except ValueError:
                pass
        raise ValueError(f"{name} must be a date like 2026-11-30, not '{str(raw)[:40]}'")

    return parse


def _page(raw: Any) -> int:
    if raw == "" or raw is None:
        return 1
    if isinstance(raw, int) and not isinstance(raw, bool) and 1 <= raw <= MAX_PAGE:
        return raw
    found = _whole(raw, 1, MAX_PAGE) if isinstance(raw, str) else None
    if found is None:
        raise ValueError(f"page must be a whole number from 1 to {MAX_PAGE}")
    return found


def _link_param(raw: Any) -> str | None:
    if not isinstance(raw, str) or len(raw) > MAX_LINK_PARAM:
        raise ValueError(f"must be at most {MAX_LINK_PARAM} characters")
    return raw


LinkParam = Annotated[str | None, BeforeValidator(_link_param),
                      WithJsonSchema({"type": "string", "maxLength": MAX_LINK_PARAM})]


class IncidentsQuery(BaseModel):
    """``GET /incidents``: the filter form's fields, the page number, and a signed link's ``exp`` and ``sig``."""

    model_config = ConfigDict(extra="forbid")

    model: Annotated[str | None, BeforeValidator(_model), WithJsonSchema(_or_empty(NAME_SCHEMA))] = None
    state: Annotated[str | None, BeforeValidator(_state),
                     WithJsonSchema({"type": "string", "enum": ["", *STATES]})] = None
    since: Annotated[date | None, BeforeValidator(_date("since")), WithJsonSchema(_or_empty(
        {"type": "string", "format": "date", "pattern": DATE_PATTERN}))] = None
    until: Annotated[date | None, BeforeValidator(_date("until")), WithJsonSchema(_or_empty(
        {"type": "string", "format": "date", "pattern": DATE_PATTERN}))] = None
    page: Annotated[int, BeforeValidator(_page), WithJsonSchema(_or_empty(
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}))] = 1
    exp: LinkParam = None
    sig: LinkParam = None


class LinkQuery(BaseModel):
    """The query of a single incident's or a model's page: only a signed link's ``exp`` and ``sig``."""

    model_config = ConfigDict(extra="forbid")

    exp: LinkParam = None
    sig: LinkParam = None


DESCRIPTIONS = {
    "model": "Only this model's incidents; empty (as the form sends it) means every model.",
    "state": "Only proposals in this state; empty means any state.",
    "since": "From this day (YYYY-MM-DD, UTC); empty means no bound.",
    "until": "Up to and including this day (YYYY-MM-DD, UTC); empty means no bound.",
    "page": f"Page of 25 incidents, from 1 to {MAX_PAGE}; empty means the first.",
    "exp": "Expiry (Unix seconds) of a signed link the bot posted; ignored when the API token is sent.",
    "sig": "HMAC-SHA256 signature of the path and the expiry under PAGE_LINK_KEY.",
}


def parse_query(schema: type[BaseModel], params: dict[str, str]) -> Any:
    """The query validated by ``schema``, or BadParameter naming the first parameter at fault."""
    try:
        return schema.model_validate(params)
    except ValidationError as exc:
        problem = exc.errors(include_url=False, include_input=False)[0]
        field = str(problem["loc"][0]) if problem.get("loc") else "query"
        if problem.get("type") == "extra_forbidden":
            known = ", ".join(schema.model_fields)
            raise BadParameter(field, f"'{field[:40]}' is not a parameter of this page (it takes {known})") from None
        raise BadParameter(field, describe(problem)) from None


def incident_id(raw: str) -> int:
    found = _whole(raw, 1, MAX_ID)
    if found is None:
        raise BadParameter("id", f"incident id must be a whole number from 1 to {MAX_ID}, not '{raw[:40]}'")
    return found


def model_name(raw: str) -> str:
    try:
        return str(_NAME.validate_python(raw))
    except ValidationError:
        raise BadParameter("model", "model must be a model name (no control characters, no white space at "
                                    "either end, at most 200 characters)") from None


__all__ = ["DESCRIPTIONS", "ID_SCHEMA", "MAX_PAGE", "NAME_SCHEMA", "BadParameter", "IncidentsQuery", "LinkQuery",
           "incident_id", "model_name", "parse_query"]
