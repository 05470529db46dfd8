"""``GET /api/models/{model}/readiness``: the readiness gate CI asks before it deploys.

200 when every check passes and 503 with the same body when one fails, so ``curl --fail`` (or any HTTP
client that treats 5xx as failure) stops a pipeline whose rollback would not work. The checks only read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.bootstrap import Container
from bot.core.readiness import Readiness
from bot.redact import redact
from bot.web.schemas import ModelReadinessOut, ReadinessCheckOut, model_name

Handler = Callable[[Request], Awaitable[Response]]


def readiness_json(result: Readiness, secrets: Sequence[str] = ()) -> dict[str, Any]:
    """The answer's body; ``secrets`` are masked in each detail (a target's error may quote its URL)."""
    body = ModelReadinessOut(model=result.model, ready=result.ready, failing=result.failing,
                             rollback_to=result.rollback_to,
                             checks=[ReadinessCheckOut(name=c.name, ok=c.ok, detail=redact(c.detail, secrets))
                                     for c in result.checks])
    return body.model_dump()


def readiness_routes(container: Container, protect: Callable[[str, Handler], Handler]) -> list[Route]:
    from bot.readiness_wiring import readiness_check

    check = readiness_check(container)
    budget = max(container.timings.deadline_s - 1.0, 0.5)  # answered before the request deadline cuts it

    async def readiness(request: Request) -> Response:
        model = model_name(request.path_params["model"])
        policy = container.service.model_policy(model)  # UnknownModel: 404 naming the known models
        result = await run_in_threadpool(lambda: check.run(model, policy, budget_s=budget))
        body = readiness_json(result, container.settings.secret_values())
        return JSONResponse(body, status_code=200 if result.ready else 503)

    path = "/api/models/{model}/readiness"
    return [Route(path, protect(path, readiness), methods=["GET"])]


__all__ = ["readiness_json", "readiness_routes"]
