"""What every protected route shares: the token check, the mapping of errors to JSON answers, body parsing."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.bootstrap import Container
from bot.config import reveal
from bot.core.errors import NotFound, Refused, RollbackError, UnknownModel, UnknownVersion
from bot.database_health import OUTAGE
from bot.web.auth import BodyTooLarge, bearer_ok, read_body
from bot.web.errors import ApiError, validation_error
from bot.web.metrics import Metrics

log = logging.getLogger(__name__)
Handler = Callable[[Request], Awaitable[Response]]
Protect = Callable[[str, Handler], Handler]


def error(status: int, message: str, *, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def protected(container: Container, metrics: Metrics, route: str, handler: Handler) -> Handler:
    """Token check, error mapping and request counting around a handler."""

    async def wrapper(request: Request) -> Response:
        ok, why = bearer_ok(request, reveal(container.settings.alert_webhook_token))
        if not ok:
            response: Response = error(401, why)
        else:
            response = await guarded(handler, request)
        metrics.requests.labels(route, str(response.status_code)).inc()
        return response

    return wrapper


async def guarded(handler: Handler, request: Request) -> Response:
    """Every refusal as a JSON answer that says what was wrong; no input reaches a 500."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except BodyTooLarge as exc:
        return error(413, str(exc), field="body")
    except (UnknownModel, NotFound) as exc:
        return error(404, str(exc))
    except UnknownVersion as exc:
        return error(400, str(exc), field="version")
    except Refused as exc:
        return error(409, str(exc))
    except RollbackError as exc:
        return error(400, str(exc))
    except OperationalError as exc:
        OUTAGE.failed(exc, request.url.path)
        return error(503, "database unavailable; retry later")
    except DataError as exc:  # a value the schema let through but the database refused: still the input's fault
        log.warning("database refused a value on %s: %s", request.url.path, type(exc.orig).__name__)
        return error(400, "a value in the request was refused by the database (too long, or a character it "
                          "cannot store); nothing was stored")
    except IntegrityError as exc:
        log.warning("conflict on %s: %s", request.url.path, type(exc.orig).__name__)
        return error(409, "the request conflicts with what is stored (it may have been sent twice); "
                          "nothing was stored")
    except SQLAlchemyError:
        log.exception("database error")
        return error(503, "database error; retry later")


async def json_body(request: Request) -> Any:
    """The body as JSON (used by routes that take free-form JSON); NaN, Infinity and deep nesting refused."""
    raw = await read_body(request)
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ApiError(400, f"body is not valid JSON: {str(exc)[:200] or type(exc).__name__}", field="body") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_model(schema: type[BaseModel], raw: bytes) -> Any:
    """Validate a JSON body against ``schema``: 400 for a body that is not a JSON object, 422 naming each field."""
    if not raw.strip():
        raise ApiError(400, f"empty body: send a JSON object ({schema.__name__})", field="body")
    try:
        return schema.model_validate_json(raw)
    except ValidationError as exc:
        raise validation_error(exc) from None


async def http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405 (no such route, wrong method) as JSON like every other refusal."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error(404, f"no endpoint at {request.url.path[:100]}; see /openapi.json for the API")
    if exc.status_code == 405:
        return error(405, f"{request.method} is not allowed on {request.url.path[:100]}",
                     headers=dict(exc.headers or {}))
    return error(exc.status_code, str(exc.detail))


async def unexpected(request: Request, exc: Exception) -> Response:
    """A bug, not the input: logged with its traceback, answered without one."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error(500, "internal error; the server log has the details")
