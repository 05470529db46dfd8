"""The read API: a model's state, one proposal, the audit log. Reads only; nothing here changes state."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.bootstrap import Container
from bot.core.durations import parse_duration
from bot.core.selection import last_stable
from bot.web.errors import ApiError, validation_error
from bot.web.handling import Protect
from bot.web.schemas import MAX_ID, AuditQuery, model_name
from bot.web.views import audit_json, block_json, deployment_json, proposal_json


def read_routes(container: Container, protect: Protect) -> list[Route]:
    service = container.service
    store = container.store

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

    return [
        Route("/api/models/{model}", protect("/api/models", model_status), methods=["GET"]),
        Route("/api/proposals/{id}", protect("/api/proposals", proposal), methods=["GET"]),
        Route("/api/audit", protect("/api/audit", audit), methods=["GET"]),
    ]
