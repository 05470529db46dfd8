"""`POST /deployments`: CI says what it deployed; a blocked version is refused unless overridden."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.bootstrap import Container
from bot.core.actor import Actor
from bot.core.blocking import Override, VersionBlocked
from bot.web.auth import read_body
from bot.web.handling import Protect, parse_model
from bot.web.routes.versions import blocked_response
from bot.web.schemas import DeploymentIn
from bot.web.views import deployment_json


def deployment_routes(container: Container, protect: Protect) -> list[Route]:
    service = container.service

    async def deployments(request: Request) -> Response:
        body: DeploymentIn = parse_model(DeploymentIn, await read_body(request))
        actor = str(Actor.api(body.deployed_by or "ci"))
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

    return [Route("/deployments", protect("/deployments", deployments), methods=["POST"])]
