"""``GET /api/models/{model}/versions/{version}``: CI asks "may I deploy this version?" before it deploys.

The answer has two independent verdicts. ``deployable`` is only about the block (a version the bot rolled
back); ``rollback_ready`` is the readiness gate for this deployment (would a rollback of it work now). They
stay separate so CI can tell "this version was rolled back, ask an approver" from "the rollback path is
broken, fix the bot's setup"; a strict pipeline requires both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.bootstrap import Container
from bot.core.blocking import VersionBlocked
from bot.core.readiness import Readiness
from bot.redact import redact
from bot.web.schemas import VersionReadinessOut, model_name, version_name
from bot.web.views import block_json, deployment_json

Handler = Callable[[Request], Awaitable[Response]]


def blocked_response(exc: VersionBlocked) -> JSONResponse:
    """The 409 of ``POST /deployments``: who rolled the version back, when and why, in words and as fields."""
    return JSONResponse({"error": str(exc), "field": "version", "blocked": block_json(exc.block)}, status_code=409)


def readiness_fields(result: Readiness, reason: str, secrets: tuple[str, ...]) -> dict[str, Any]:
    """``rollback_ready``, ``readiness`` and the reason with the readiness sentence (secrets masked)."""
    sentence = redact(result.summary(), secrets)
    folded = VersionReadinessOut(ready=result.ready, failing=result.failing, rollback_to=result.rollback_to)
    return {"rollback_ready": result.ready, "readiness": folded.model_dump(),
            "reason": f"{reason.rstrip('.')}. {sentence[0].upper()}{sentence[1:].rstrip('.')}."}


def version_routes(container: Container, protect: Callable[[str, Handler], Handler]) -> list[Route]:
    from bot.readiness_wiring import readiness_check

    service, store = container.service, container.store
    check = readiness_check(container)
    budget = max(container.timings.deadline_s - 1.0, 0.5)  # answered before the request deadline cuts it
    secrets = tuple(container.settings.secret_values())

    async def version(request: Request) -> Response:
        model = model_name(request.path_params["model"])
        wanted = version_name(request.path_params["version"])

        def read() -> dict[str, Any]:
            answer = service.may_deploy(model, wanted)  # unknown model: 404 before any probe runs
            ready = check.run(model, service.model_policy(model), budget_s=budget, deploying=wanted)
            history = store.history(model)
            blocks = store.blocks(model, wanted)
            return {
                "model": model, "version": wanted, "deployable": answer.deployable,
                **readiness_fields(ready, answer.reason, secrets),
                "current": bool(history) and history[-1].version == wanted,
                "blocked": block_json(answer.block) if answer.block and answer.block.active else None,
                "blocks": [block_json(b) for b in blocks],
                "deployments": [deployment_json(d) for d in reversed(history) if d.version == wanted],
            }

        return JSONResponse(await run_in_threadpool(read))

    return [Route("/api/models/{model}/versions/{version}", protect("/api/models/versions", version),
                  methods=["GET"])]


__all__ = ["blocked_response", "readiness_fields", "version_routes"]
