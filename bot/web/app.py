"""The HTTP app: deployments, read API, health. Slack and alert intake mount onto the same app."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from sqlalchemy.exc import OperationalError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Lifespan

from bot.bootstrap import Container
from bot.config import reveal
from bot.core.durations import parse_duration
from bot.core.errors import NotFound, Refused, RollbackError, UnknownModel, UnknownVersion
from bot.core.selection import last_stable
from bot.database_health import OUTAGE, is_database_error, reason
from bot.store.migrate import is_current
from bot.web.alerts import alert_routes
from bot.web.auth import BodyTooLarge, bearer_ok, read_body
from bot.web.pages.routes import report_routes  # report hook: report API, incident pages, rollback metrics
from bot.web.views import audit_json, deployment_json, proposal_json

log = logging.getLogger(__name__)
Handler = Callable[[Request], Awaitable[Response]]


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


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
    try:
        return await handler(request)
    except BodyTooLarge as exc:
        return error(413, str(exc))
    except (UnknownModel, NotFound) as exc:
        return error(404, str(exc))
    except UnknownVersion as exc:
        return error(400, str(exc))
    except Refused as exc:
        return error(409, str(exc))
    except RollbackError as exc:
        return error(400, str(exc))
    except OperationalError as exc:
        OUTAGE.failed(exc, request.url.path)
        return error(503, "database unavailable; retry later")


async def json_body(request: Request) -> Any:
    raw = await read_body(request)
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RollbackError(f"body is not valid JSON: {exc}") from None


def create_app(container: Container, *, extra_routes: list[Route] | None = None,
               lifespan: Lifespan[Starlette] | None = None) -> Starlette:
    metrics = Metrics()
    service = container.service
    store = container.store

    async def deployments(request: Request) -> Response:
        body = await json_body(request)
        if not isinstance(body, dict):
            raise RollbackError("body must be a JSON object: {\"model\": \"…\", \"version\": \"…\"}")
        for key in ("model", "version"):
            if not isinstance(body.get(key), str | int) or str(body.get(key)).strip() == "":
                raise RollbackError(f"field '{key}' is required and must be a non-empty string")
        for key in ("deployed_by", "source"):
            if body.get(key) is not None and not isinstance(body[key], str):
                raise RollbackError(f"field '{key}' must be a string")
        if body.get("metadata") is not None and not isinstance(body["metadata"], dict):
            raise RollbackError("field 'metadata' must be a JSON object")
        if not isinstance(body.get("stable", False), bool):
            raise RollbackError("field 'stable' must be true or false")
        dep = await run_in_threadpool(
            lambda: service.deploy(
                str(body["model"]), str(body["version"]), actor=f"api:{body.get('deployed_by') or 'ci'}",
                deployed_by=body.get("deployed_by"), source=body.get("source"),
                metadata=body.get("metadata") or {}, stable=bool(body.get("stable", False)),
            )
        )
        return JSONResponse({"model": dep.model, "deployment": deployment_json(dep)}, status_code=201)

    async def model_status(request: Request) -> Response:
        model = request.path_params["model"]

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
            }

        return JSONResponse(await run_in_threadpool(read))

    async def proposal(request: Request) -> Response:
        raw = request.path_params["id"]
        if not raw.isdigit():
            raise RollbackError(f"proposal id must be a number, got '{raw}'")
        p = await run_in_threadpool(store.get_proposal, int(raw))
        return JSONResponse(proposal_json(p))

    async def audit(request: Request) -> Response:
        q = request.query_params
        since = None
        if q.get("since"):
            try:
                since = container.clock.now() - parse_duration(q["since"])
            except ValueError as exc:
                raise RollbackError(f"since: {exc}") from None
        limit_raw = q.get("limit", "100")
        if not limit_raw.isdigit() or not 1 <= int(limit_raw) <= 1000:
            raise RollbackError("limit must be a whole number from 1 to 1000")
        rows = await run_in_threadpool(lambda: store.audit_records(
            model=q.get("model") or None, since=since, limit=int(limit_raw), newest_first=True))
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
        *alert_routes(container, p, metrics),
        *report_routes(container, p, metrics.registry),  # report hook
        *(extra_routes or []),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.container = container
    app.state.metrics = metrics
    app.state.protect = p
    return app


__all__ = ["create_app", "error", "guarded", "json_body"]
