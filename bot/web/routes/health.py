"""Unauthenticated probes and documents: liveness, readiness, Prometheus metrics, the OpenAPI document."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.bootstrap import Container
from bot.database_health import OUTAGE, is_database_error, reason
from bot.store.migrate import is_current
from bot.web.metrics import Metrics


def health_routes(container: Container, metrics: Metrics, document: dict[str, Any]) -> list[Route]:
    store = container.store

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

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
