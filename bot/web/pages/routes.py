"""`/incidents`, `/incidents/{id}` and `/models/{model}`, plus `GET /api/proposals/{id}/report`."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from bot.config import reveal
from bot.core.errors import NotFound, RollbackError
from bot.core.proposal import State
from bot.core.report import decision_kind
from bot.report.json_view import report_json
from bot.report.markdown import render_markdown
from bot.report.reports import Reports
from bot.report.text import DURATION_LABELS, metric, offset, seconds, traffic_words, value, when
from bot.store.report_queries import IncidentFilter
from bot.web.pages.access import Access, page_access

Handler = Callable[[Request], Awaitable[Response]]
MAX_PAGE = 100_000
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$")
SECURITY_HEADERS = {
    # No script may run, nothing is framed, and the signed link never leaks through a Referer header.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def safe_href(url: str) -> str | None:
    return url if url.startswith(("http://", "https://")) else None


def templates() -> Environment:
    env = Environment(loader=PackageLoader("bot.web.pages", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(seconds=seconds, offset=offset, when=when, value=value, metric=metric, safe_href=safe_href)
    env.globals.update(DURATION_LABELS=DURATION_LABELS, decision_kind=decision_kind)
    return env


class BadInput(RollbackError):
    pass


def _date(raw: str | None, name: str) -> datetime | None:
    if not raw:
        return None
    try:
        return datetime.combine(date.fromisoformat(raw), datetime.min.time(), UTC)
    except ValueError:
        raise BadInput(f"{name} must be a date like 2026-11-30, not '{raw[:40]}'") from None


def page_routes(container: Any, reports: Reports, protect: Callable[[str, Handler], Handler]) -> list[Route]:
    env = templates()
    token = reveal(container.settings.alert_webhook_token)
    known_models = set(container.policy.models)

    def html(status: int, name: str, **ctx: Any) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**ctx), status_code=status, headers=SECURITY_HEADERS)

    def linker(access: Access) -> Callable[..., str]:
        def link(path: str, **query: Any) -> str:
            params = {k: str(v) for k, v in query.items() if v not in (None, "")}
            if reports.signer is not None:
                return reports.signer.sign(path, expires=access.expires, query=params)
            return path + (f"?{urlencode(params)}" if params else "")

        return link

    def page(render: Callable[[Request, Callable[..., str]], Awaitable[HTMLResponse]]) -> Handler:
        async def handler(request: Request) -> Response:
            access = page_access(request, reports.signer, token)
            if not access.ok:
                title = "Access refused" if access.status == 403 else "Sign-in needed"
                refused = html(access.status, "error.html", title=title, reason=access.reason, link=None)
                if access.status == 401:
                    refused.headers["WWW-Authenticate"] = 'Bearer realm="rollback-bot"'
                return refused
            link = linker(access)
            try:
                return await render(request, link)
            except NotFound as exc:
                return html(404, "error.html", title="Not found", reason=str(exc), link=link)
            except RollbackError as exc:
                return html(400, "error.html", title="Bad request", reason=str(exc), link=link)

        return handler

    async def incidents(request: Request, link: Callable[..., str]) -> HTMLResponse:
        q = request.query_params
        model = q.get("model") or None
        if model is not None and not _MODEL.match(model):
            raise BadInput("model must be a model name")
        state = q.get("state") or None
        if state is not None and state not in {s.value for s in State}:
            raise BadInput(f"state must be one of {', '.join(s.value for s in State)}")
        since, until = _date(q.get("since"), "since"), _date(q.get("until"), "until")
        raw_page = q.get("page") or "1"
        if not raw_page.isdigit() or not 1 <= int(raw_page) <= MAX_PAGE:
            raise BadInput(f"page must be a whole number from 1 to {MAX_PAGE}")
        end = until + timedelta(days=1) if until and until.date() < date.max else None
        flt = IncidentFilter(model, state, since, end)
        found = await run_in_threadpool(reports.queries.incidents, flt, int(raw_page))
        models = sorted(known_models | set(await run_in_threadpool(reports.queries.models)))
        filters = {"model": model or "", "state": state or "", "since": q.get("since") or "",
                   "until": q.get("until") or ""}
        return html(200, "incidents.html", title="Incidents", link=link, found=found, filters=filters,
                    models=models, states=[s.value for s in State], signed=signed_fields(request))

    def signed_fields(request: Request) -> dict[str, str]:
        """The link's exp and sig, carried through the filter form (only the path is signed)."""
        q = request.query_params
        return {k: q[k] for k in ("exp", "sig") if k in q}

    async def incident(request: Request, link: Callable[..., str]) -> HTMLResponse:
        raw = request.path_params["id"]
        if not raw.isdigit() or len(raw) > 12:
            raise BadInput(f"incident id must be a number, not '{raw[:40]}'")
        report = await run_in_threadpool(reports.build, int(raw))
        return html(200, "incident.html", title=f"Rollback #{report.proposal.id}: {report.proposal.model}",
                    link=link, r=report, p=report.proposal, traffic=traffic_words(report))

    async def model_page(request: Request, link: Callable[..., str]) -> HTMLResponse:
        model = request.path_params["model"]
        if not _MODEL.match(model):
            raise BadInput("model must be a model name")

        def read() -> tuple[list[Any], list[Any]]:
            deployments = list(reports.queries.deployments(model))
            proposals = reports.queries.model_proposals(model)
            if not deployments and not proposals and model not in known_models:
                raise NotFound(f"no model named '{model}'")
            return deployments, proposals

        deployments, proposals = await run_in_threadpool(read)
        live_id = deployments[-1].id if deployments else None
        rows = []
        for d in reversed(deployments):
            marks = (["live"] if d.id == live_id else []) + (["stable"] if d.stable_at else [])
            if d.rolled_back_at:
                marks.append("bad: rolled back, never chosen again automatically")
            rows.append({"d": d, "marks": marks})
        return html(200, "model.html", title=f"Model {model}", link=link, model=model, rows=rows,
                    proposals=proposals)

    async def report_api(request: Request) -> Response:
        raw = request.path_params["id"]
        if not raw.isdigit() or len(raw) > 12:
            raise RollbackError(f"proposal id must be a number, got '{raw[:40]}'")
        report = await run_in_threadpool(reports.build, int(raw))
        page_url = reports.page_url(report.proposal.id)
        if "text/markdown" in request.headers.get("accept", ""):
            return Response(render_markdown(report, page_url), media_type="text/markdown; charset=utf-8")
        return JSONResponse(report_json(report, page_url))

    return [
        Route("/api/proposals/{id}/report", protect("/api/proposals/report", report_api), methods=["GET"]),
        Route("/incidents", page(incidents), methods=["GET"]),
        Route("/incidents/{id}", page(incident), methods=["GET"]),
        Route("/models/{model:path}", page(model_page), methods=["GET"]),
    ]


def report_routes(container: Any, protect: Callable[[str, Handler], Handler], registry: Any) -> list[Route]:
    """The report API and the pages, and the rollback metrics on ``registry`` (the app's /metrics)."""
    import logging

    from bot.report.links import RedactSignatures
    from bot.report.metrics import RollbackCollector
    from bot.report.wiring import reports_for

    access_log = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactSignatures) for f in access_log.filters):
        access_log.addFilter(RedactSignatures())
    reports = reports_for(container)
    registry.register(RollbackCollector(reports.queries))
    return page_routes(container, reports, protect)
