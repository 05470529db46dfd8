"""The app's Prometheus counters, in their own registry (one per app, so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("rollback_bot_http_requests", "HTTP requests by route and status",
                                ["route", "status"], registry=self.registry)
        self.alerts = Counter("rollback_bot_alerts", "Alerts received by source and outcome",
                              ["source", "outcome"], registry=self.registry)
