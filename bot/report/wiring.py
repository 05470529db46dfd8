"""Build the one `Reports` a process uses from its container (database, metrics source, link key)."""

from __future__ import annotations

import logging
from typing import Any

from bot.report.links import LinkConfigError, LinkSigner, signer_from_env
from bot.report.reports import Reports, public_base
from bot.store.report_queries import ReportQueries

log = logging.getLogger(__name__)


def _signer(container: Any) -> LinkSigner | None:
    try:
        return signer_from_env(container.settings.extra, container.clock)
    except LinkConfigError as exc:  # `rollback-bot check` names it too; the pages still open with the token
        log.error("incident page links are disabled: %s", exc)
        return None


def reports_for(container: Any) -> Reports:
    """Cached on the container, so the web app, Slack and the CLI share one instance per process."""
    found = container.extras.get("reports")
    if isinstance(found, Reports):
        return found
    settings = container.settings
    insight = getattr(container, "insight", None) or container.extras.get("insight")
    reports = Reports(
        queries=ReportQueries(container.engine),
        clock=container.clock,
        metrics=getattr(insight, "source", None),
        graph_url=public_base(settings.prometheus_url),
        signer=_signer(container),
        public_url=settings.public_url,
    )
    container.extras["reports"] = reports
    return reports
