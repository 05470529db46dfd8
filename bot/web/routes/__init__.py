"""Every HTTP route, one module per area; each module's function returns its routes given the container."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from bot.bootstrap import Container
from bot.web.handling import Protect
from bot.web.metrics import Metrics
from bot.web.pages.routes import report_routes  # report hook: report API, incident pages, rollback metrics
from bot.web.routes.alerts import alert_routes
from bot.web.routes.deployments import deployment_routes
from bot.web.routes.health import health_routes
from bot.web.routes.read_api import read_routes
from bot.web.routes.readiness import readiness_routes
from bot.web.routes.versions import version_routes


def all_routes(container: Container, protect: Protect, metrics: Metrics, document: dict[str, Any]) -> list[Route]:
    return [
        *deployment_routes(container, protect),
        *read_routes(container, protect),
        *health_routes(container, metrics, document),
        *version_routes(container, protect),
        *alert_routes(container, protect, metrics),
        *readiness_routes(container, protect),
        *report_routes(container, protect, metrics.registry),  # report hook
    ]
