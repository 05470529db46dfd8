"""``GET /api/models/{model}/versions/{version}``: CI asks "may I deploy this version?" before it deploys."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.bootstrap import Container
from bot.core.blocking import VersionBlocked
from bot.web.schemas import model_name, version_name
from bot.web.views import block_json, deployment_json

Handler = Callable[[Request], Awaitable[Response]]


def blocked_response(exc: VersionBlocked) -> JSONResponse:
    """The 409 of ``POST /deployments``: who rolled the version back, when and why, in words and as fields."""
    return JSONResponse({"error": str(exc), "field": "version", "blocked": block_json(exc.block)}, status_code=409)


def version_routes(container: Container, protect: Callable[[str, Handler], Handler]) -> list[Route]:
    service, store = container.service, container.store

    async def version(request: Request) -> Response:
        model = model_name(request.path_params["model"])
        wanted = version_name(request.path_params["version"])

        def read() -> dict[str, Any]:
            answer = service.may_deploy(model, wanted)
            history = store.history(model)
            blocks = store.blocks(model, wanted)
            return {
                "model": model, "version": wanted, "deployable": answer.deployable, "reason": answer.reason,
                "current": bool(history) and history[-1].version == wanted,
                "blocked": block_json(answer.block) if answer.block and answer.block.active else None,
                "blocks": [block_json(b) for b in blocks],
                "deployments": [deployment_json(d) for d in reversed(history) if d.version == wanted],
            }

        return JSONResponse(await run_in_threadpool(read))

    return [Route("/api/models/{model}/versions/{version}", protect("/api/models/versions", version),
                  methods=["GET"])]


__all__ = ["blocked_response", "version_routes"]
