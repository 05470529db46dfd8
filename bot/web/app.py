"""The HTTP app: deployments, read API, health. Slack and alert intake mount onto the same app.

Routes live in bot/web/routes/; what they share (token check, error mapping) in bot/web/handling.py.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import Lifespan

from bot.bootstrap import Container
from bot.web.handling import Handler, error, guarded, http_exception, json_body, protected, unexpected
from bot.web.limits import BodyLimit
from bot.web.metrics import Metrics
from bot.web.openapi import openapi_document
from bot.web.routes import all_routes


def create_app(container: Container, *, extra_routes: list[Route] | None = None,
               lifespan: Lifespan[Starlette] | None = None) -> Starlette:
    metrics = Metrics()

    def protect(route: str, handler: Handler) -> Handler:
        return protected(container, metrics, route, handler)

    routes = [*all_routes(container, protect, metrics, openapi_document()), *(extra_routes or [])]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(BodyLimit)],
                    exception_handlers={HTTPException: http_exception, Exception: unexpected})
    app.state.container = container
    app.state.metrics = metrics
    app.state.protect = protect
    return app


__all__ = ["Metrics", "create_app", "error", "guarded", "json_body"]
