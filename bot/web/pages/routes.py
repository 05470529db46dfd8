"""`/incidents`, `/incidents/{id}` and `/models/{model}`, plus `GET /api/proposals/{id}/report`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy.exc import DataError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from bot.config import reveal
from bot.core.errors import NotFound, RollbackError
from bot.core.proposal import State
from bot.core.report import decision_kind
from bot.database_health import OUTAGE
from bot.report.json_view import report_json
from bot.report.markdown import render_markdown
from bot.report.reports import Reports
from bot.report.text import DURATION_LABELS, metric, offset, seconds, traffic_words, value, when
from bot.store.report_queries import IncidentFilter
from bot.web.errors import ApiError
from bot.web.pages.access import Access, page_access
from bot.web.pages.schemas import BadParameter, IncidentsQuery, LinkQuery, incident_id, model_name, parse_query

Handler = Callable[[Request], Awaitable[Response]]
SECURITY_HEADERS = {
    # No script may run, nothing is framed, and the signed link never leaks through a Referer header.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class AnyText(Convertor[str]):
    """Starlette's ``path`` convertor is ``.*``, which stops at a line break; this one takes every character."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("text", AnyText())


def safe_href(url: str) -> str | None:
    return url if url.startswith(("http://", "https://")) else None


def templates() -> Environment:
    env = Environment(loader=PackageLoader("bot.web.pages", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(seconds=seconds, offset=offset, when=when, value=value, metric=metric, safe_href=safe_href)
    env.globals.update(DURATION_LABELS=DURATION_LABELS, decision_kind=decision_kind)
    return env


def _day(value: date | None) -> datetime | None:
    return datetime.combine(value, datetime.min.time(), UTC) if value else None


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
            except (BadParameter, RollbackError) as exc:
                return html(400, "error.html", title="Bad request", reason=str(exc), link=link)
            except DataError:  # a value the checks let through but the database refused: the input's fault
                return html(400, "error.html", title="Bad request", link=link,
                            reason="a value in the request was refused by the database")
            except OperationalError as exc:
                OUTAGE.failed(exc, request.url.path)
                return html(503, "error.html", title="Database unavailable", link=link,
                            reason="the database is unavailable; try again in a moment")

        return handler

    async def incidents(request: Request, link: Callable[..., str]) -> HTMLResponse:
        q: IncidentsQuery = parse_query(IncidentsQuery, dict(request.query_params))
        since, until = _day(q.since), _day(q.until)
        end = until + timedelta(days=1) if until and until.date() < date.max else None
        flt = IncidentFilter(q.model, q.state, since, end)
        found = await run_in_threadpool(reports.queries.incidents, flt, q.page)
        models = sorted(known_models | set(await run_in_threadpool(reports.queries.models)))
        filters = {"model": q.model or "", "state": q.state or "", "since": q.since.isoformat() if q.since else "",
                   "until": q.until.isoformat() if q.until else ""}
        return html(200, "incidents.html", title="Incidents", link=link, found=found, filters=filters,
                    models=models, states=[s.value for s in State], signed=signed_fields(request))

    def signed_fields(request: Request) -> dict[str, str]:
        """The link's exp and sig, carried through the filter form (only the path is signed)."""
        q = request.query_params
        return {k: q[k] for k in ("exp", "sig") if k in q}

    async def incident(request: Request, link: Callable[..., str]) -> HTMLResponse:
        parse_query(LinkQuery, dict(request.query_params))
        report = await run_in_threadpool(reports.build, incident_id(request.path_params["id"]))
        return html(200, "incident.html", title=f"Rollback #{report.proposal.id}: {report.proposal.model}",
                    link=link, r=report, p=report.proposal, traffic=traffic_words(report))

    async def model_page(request: Request, link: Callable[..., str]) -> HTMLResponse:
        parse_query(LinkQuery, dict(request.query_params))
        model = model_name(request.path_params["model"])

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
        try:
            pid = incident_id(request.path_params["id"])
        except BadParameter as exc:
            raise ApiError(400, str(exc).replace("incident id", "proposal id"), field="id") from None
        report = await run_in_threadpool(reports.build, pid)
        page_url = reports.page_url(report.proposal.id)
        if "text/markdown" in request.headers.get("accept", ""):
            return Response(render_markdown(report, page_url), media_type="text/markdown; charset=utf-8")
        return JSONResponse(report_json(report, page_url))

    return [
        Route("/api/proposals/{id}/report", protect("/api/proposals/report", report_api), methods=["GET"]),
        Route("/incidents", page(incidents), methods=["GET"]),
        # {id:text}: any text after /incidents/ (slashes and line breaks included) reaches the page and gets its
        # HTML 400, not the router's JSON 404
        Route("/incidents/{id:text}", page(incident), methods=["GET"]),
        Route("/models/{model:text}", page(model_page), methods=["GET"]),
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
