"""The HTTP app: deployments, read API, health. Slack and alert intake mount onto the same app."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Lifespan

from bot.bootstrap import Container
from bot.config import reveal
from bot.core.blocking import Override, VersionBlocked
from bot.core.durations import parse_duration
from bot.core.errors import NotFound, Refused, RollbackError, UnknownModel, UnknownVersion
from bot.core.selection import last_stable
from bot.database_health import OUTAGE, is_database_error, reason
from bot.store.migrate import is_current
from bot.web.alerts import alert_routes
from bot.web.auth import BodyTooLarge, bearer_ok, read_body
from bot.web.errors import ApiError, validation_error
from bot.web.limits import BodyLimit
from bot.web.openapi import openapi_document
from bot.web.pages.routes import report_routes  # report hook: report API, incident pages, rollback metrics
from bot.web.readiness import readiness_routes
from bot.web.schemas import MAX_ID, AuditQuery, DeploymentIn, model_name
from bot.web.versions import blocked_response, version_routes
from bot.web.views import audit_json, block_json, deployment_json, proposal_json

log = logging.getLogger(__name__)
Handler = Callable[[Request], Awaitable[Response]]


def error(status: int, message: str, *, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("rollback_bot_http_requests", "HTTP requests by route and status",
                                ["route", "status"], registry=self.registry)
        self.alerts = Counter("rollback_bot_alerts", "Alerts received by source and outcome",
                              ["source", "outcome"], registry=self.registry)


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


def create_app(container: Container, *, extra_routes: list[Route] | None = None,
               lifespan: Lifespan[Starlette] | None = None) -> Starlette:
    metrics = Metrics()
    service = container.service
    store = container.store

    async def deployments(request: Request) -> Response:
        body: DeploymentIn = parse_model(DeploymentIn, await read_body(request))
        actor = f"api:{body.deployed_by or 'ci'}"
        override = Override(body.override.reason) if body.override is not None else None
        try:
            dep = await run_in_threadpool(
                lambda: service.deploy(
                    body.model, body.version, actor=actor, deployed_by=body.deployed_by, source=body.source,
                    metadata=body.metadata or {}, stable=body.stable, override=override,
                )
            )
        except VersionBlocked as exc:
            return blocked_response(exc)
        return JSONResponse({"model": dep.model, "deployment": deployment_json(dep)}, status_code=201)

    async def model_status(request: Request) -> Response:
        model = model_name(request.path_params["model"])

        def read() -> dict[str, Any]:
            policy = service.model_policy(model)
            history = store.history(model)
            state = store.model_state(model)
            now = container.clock.now()
            stable = last_stable(history)
            open_p = store.open_proposal(model)
            return {
                "model": model, "target": policy.target,
                "current_version": history[-1].version if history else None,
                "served_version": store.served_version(model) if policy.target == "local" else None,
                "last_stable_version": stable.version if stable else None,
                "frozen": state.frozen(now),
                "frozen_until": state.frozen_until.isoformat() if state.frozen(now) and state.frozen_until else None,
                "frozen_reason": state.frozen_reason if state.frozen(now) else None,
                "last_rollback_at": state.last_rollback_at.isoformat() if state.last_rollback_at else None,
                "open_proposal": proposal_json(open_p) if open_p else None,
                "deployments": [deployment_json(d) for d in reversed(history)],
                "blocked_versions": [block_json(b) for b in service.blocked_versions(model)],
            }

        return JSONResponse(await run_in_threadpool(read))

    async def proposal(request: Request) -> Response:
        raw = request.path_params["id"]
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and 1 <= int(raw) <= MAX_ID):
            raise ApiError(400, f"proposal id must be a whole number from 1 to {MAX_ID}, got '{raw[:40]}'",
                           field="id")
        p = await run_in_threadpool(store.get_proposal, int(raw))
        return JSONResponse(proposal_json(p))

    async def audit(request: Request) -> Response:
        params = dict(request.query_params)
        try:
            query = AuditQuery.model_validate(params)
        except ValidationError as exc:
            raise validation_error(exc, status=400, where="query parameter") from None
        since = None
        if query.since:
            try:
                since = container.clock.now() - parse_duration(query.since)
            except ValueError as exc:
                raise ApiError(400, f"since: {exc}", field="since") from None
        rows = await run_in_threadpool(lambda: store.audit_records(
            model=query.model, since=since, limit=query.limit, newest_first=True))
        return JSONResponse({"count": len(rows), "records": [audit_json(r) for r in rows]})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        checks: dict[str, str] = {}
        try:
            current = await run_in_threadpool(is_current, store.engine, container.settings.database_url)
            checks["database"] = "ok" if current else "schema is behind the code: run `rollback-bot db upgrade`"
            OUTAGE.recovered()
        except Exception as exc:  # noqa: BLE001  readiness reports any failure, it never raises
            if is_database_error(exc):
                OUTAGE.failed(exc, "/readyz")
            checks["database"] = f"unavailable: {reason(exc)}"
        slack_check = container.extras.get("slack_ready")
        if slack_check is not None:
            checks["slack"] = await slack_check()
        ok = all(v == "ok" for v in checks.values())
        body: dict[str, Any] = {"status": "ready" if ok else "not ready", "checks": checks}
        warnings = container.extras.get("readiness_warnings")  # e.g. Slack messages stopped for good
        if warnings is not None:
            try:
                found = await run_in_threadpool(warnings)
            except Exception as exc:  # noqa: BLE001  readiness reports any failure, it never raises
                found = [f"could not read the Slack outbox: {type(exc).__name__}"]
            if found:
                body["warnings"] = found
        return JSONResponse(body, status_code=200 if ok else 503)

    async def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    def p(route: str, handler: Handler) -> Handler:
        return protected(container, metrics, route, handler)

    routes = [
        Route("/deployments", p("/deployments", deployments), methods=["POST"]),
        Route("/api/models/{model}", p("/api/models", model_status), methods=["GET"]),
        Route("/api/proposals/{id}", p("/api/proposals", proposal), methods=["GET"]),
        Route("/api/audit", p("/api/audit", audit), methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        *version_routes(container, p),
        *alert_routes(container, p, metrics),
        *readiness_routes(container, p),
        *report_routes(container, p, metrics.registry),  # report hook
        *(extra_routes or []),
    ]
    document = openapi_document()
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(BodyLimit)],
                    exception_handlers={HTTPException: http_exception, Exception: unexpected})
    app.state.container = container
    app.state.metrics = metrics
    app.state.protect = p
    return app


__all__ = ["create_app", "error", "guarded", "json_body"]
