"""Refusals of the HTTP API as JSON answers that name the field at fault."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.responses import JSONResponse

_PLAIN = {
    "missing": "is required",
    "extra_forbidden": "is not a field of this request",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "string_pattern_mismatch": "must not contain control characters (NUL included), nor begin or end with white space",
}


class ApiError(Exception):
    """A refusal: status, a message saying what was wrong, and the field (dotted path) when there is one."""

    def __init__(self, status: int, message: str, *, field: str | None = None,
                 errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.errors = errors

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"error": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.errors:
            body["errors"] = self.errors
        return JSONResponse(body, status_code=self.status)


def field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def describe(error: Any) -> str:
    kind = error.get("type", "")
    if kind in _PLAIN:
        return _PLAIN[kind]
    message = str(error.get("msg", "is not valid"))
    message = message.removeprefix("Value error, ")
    return message[:1].lower() + message[1:]


def validation_error(exc: ValidationError, *, status: int = 422, where: str = "field") -> ApiError:
    """pydantic's errors, without the input values (they may be huge or hold secrets)."""
    problems = exc.errors(include_url=False, include_input=False)
    first = problems[0]
    if first.get("type") == "json_invalid":
        detail = str(first.get("msg", "")).removeprefix("Invalid JSON: ")
        return ApiError(400, f"body is not valid JSON: {detail}", field="body")
    if not first.get("loc") and first.get("type") in {"model_type", "model_attributes_type"}:
        return ApiError(400, "body must be a JSON object", field="body")
    errors = [{"field": field_path(tuple(p.get("loc", ()))) or "body", "message": describe(p)} for p in problems]
    head = errors[0]
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    joint = " " if head["message"].startswith(("is ", "must ")) else ": "
    return ApiError(status, f"{where} '{head['field']}'{joint}{head['message']}{more}", field=head["field"],
                    errors=errors[:20])


__all__ = ["ApiError", "describe", "field_path", "validation_error"]
