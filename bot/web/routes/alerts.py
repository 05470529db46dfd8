"""``POST /alerts/{source}``: alert intake over HTTP.

Status codes are chosen for the senders: Alertmanager retries only on 5xx, so a 4xx must mean "this body
will never be accepted" (malformed, too large, wrong token) and 503 "not stored, send it again"
(database down). A 202 is only ever sent after the whole batch is committed, and once it is committed the
answer is 202 whatever happens next: the request is the inbox, it takes no lock, decides nothing and calls
neither a target nor Slack (the decider worker does, woken as the request ends). In builds without workers
(embedded use, tests) the same decider runs after the commit, in the request, and its outcome is in the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.alerts import PARSERS, PayloadError, check_grafana_signature, mapping_from_dict, parse_body
from adapters.alerts.generic import GenericMapping
from bot.config import reveal
from bot.core.intake import AlertBatch, IntakeResult
from bot.database_health import OUTAGE
from bot.web.auth import read_body
from bot.web.metrics import Metrics
from bot.workers.loop import DECIDE

if TYPE_CHECKING:
    from bot.bootstrap import Container

log = logging.getLogger(__name__)
INLINE_PARSE_BYTES = 64 * 1024
Handler = Callable[[Request], Awaitable[Response]]
Protect = Callable[[str, Handler], Handler]


def _error(status: int, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def generic_mapping(container: Container) -> GenericMapping | None:
    """The policy's ``[sources.generic]`` mapping (the policy loader already refused a bad one)."""
    table = container.policy.sources.get("generic")
    return mapping_from_dict(table) if isinstance(table, dict) and table else None


def alert_routes(container: Container, protect: Protect, metrics: Metrics | None = None) -> list[Route]:
    """The intake route, wrapped by ``protect`` (bearer token in constant time, error mapping, counting)."""
    intake, inbox = container.intake, container.inbox
    mapping = generic_mapping(container)
    settings = container.settings
    secret = reveal(settings.grafana_webhook_secret)
    sources = ", ".join(f"/alerts/{name}" for name in sorted(PARSERS))

    def count(source: str, result: IntakeResult) -> None:
        if metrics is not None:
            for outcome in result.alerts:
                metrics.alerts.labels(source, outcome.outcome.value).inc()

    async def receive(request: Request) -> Response:
        source = request.path_params["source"]
        if source not in PARSERS:
            return _error(404, f"unknown alert source '{source[:60]}'; use one of {sources}")
        body = await read_body(request)
        if source == "grafana" and secret and (why := check_grafana_signature(
                body, request.headers, secret, signature_header=settings.grafana_signature_header,
                timestamp_header=settings.grafana_timestamp_header)):
            return _error(401, why)
        content_type = request.headers.get("content-type", "")
        received_at = container.clock.now()

        def parse() -> AlertBatch:
            alerts = parse_body(source, body, mapping if source == "generic" else None, content_type,
                                severity=container.policy.alert_source(source).severity)
            return intake.batch(source, alerts, received_at)

        try:
            # A usual Alertmanager group is parsed on the event loop (cheaper than a thread hop); a large
            # body, which is CPU work for milliseconds, off it.
            batch = parse() if len(body) <= INLINE_PARSE_BYTES else await run_in_threadpool(parse)
            if inbox is not None:  # `serve`: shares the next transaction with the requests waiting beside it
                result, ids = await inbox.submit(batch)
            else:
                result, ids = await run_in_threadpool(lambda: intake.record_many([batch])[0])
        except PayloadError as exc:
            return _error(400, str(exc), field=exc.field)
        except IntegrityError:
            log.exception("alert intake hit a constraint it should have handled")
            return _error(503, "could not store the alerts; retry later")
        except SQLAlchemyError as exc:
            OUTAGE.failed(exc, "alert intake")
            return _error(503, "database unavailable; the alerts were not stored, retry later")
        # Committed: from here on nothing may turn the answer into "not stored".
        models = intake.models_to_decide(result)
        if models and container.run_workers:
            container.signals.wake(DECIDE)
        elif models:
            try:
                await run_in_threadpool(decide_inline, models, result, ids)
            except Exception as exc:  # noqa: BLE001  stored; the decider sweep retries the rest
                log.warning("alert intake: stored, deciding later: %s: %s", type(exc).__name__, str(exc)[:200])
        try:
            count(source, result)
        except Exception:
            log.exception("counting alerts failed")
        return JSONResponse(result.as_json(), status_code=202)

    def decide_inline(models: list[str], result: IntakeResult, ids: list[int]) -> None:
        for model in models:
            intake.merge(result, ids, container.decider.decide_now(model))

    # PUT too: Grafana's webhook contact point can be set to send with it.
    return [Route("/alerts/{source}", protect("/alerts", receive), methods=["POST", "PUT"])]


__all__ = ["alert_routes", "generic_mapping"]
