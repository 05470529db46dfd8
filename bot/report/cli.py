"""`rollback-bot report ID [--format md|json]`: the post-incident report from the database, on stdout."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bot.core.errors import NotFound

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


def add_parser(sub: Any) -> None:
    report = sub.add_parser("report", help="the post-incident report of a proposal (Markdown or JSON)")
    report.add_argument("proposal_id", metavar="ID", help="the proposal's number, as on its Slack card")
    report.add_argument("--format", dest="report_format", choices=["md", "json"], default="md")


def run(args: argparse.Namespace, settings: Any) -> int:
    """Needs only the database (and PROMETHEUS_URL for the numbers now); no policy file, no Slack."""
    from bot.core.clock import SystemClock
    from bot.report.json_view import report_json
    from bot.report.links import signer_from_env
    from bot.report.markdown import render_markdown
    from bot.report.reports import Reports, public_base
    from bot.store.db import make_engine
    from bot.store.migrate import upgrade
    from bot.store.report_queries import ReportQueries

    raw = str(args.proposal_id).removeprefix("#")
    if not raw.isdigit() or len(raw) > 12:
        print(f"report: ID must be a proposal number such as 12, not '{args.proposal_id}'", file=sys.stderr)
        return EXIT_USAGE
    if settings.database_url.startswith("sqlite"):
        upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        metrics = None
        if settings.prometheus_url:
            from adapters.metrics.prometheus import PrometheusSource

            metrics = PrometheusSource.from_env(settings.prometheus_url)
        clock = SystemClock()
        reports = Reports(ReportQueries(engine), clock, metrics=metrics, graph_url=public_base(settings.prometheus_url),
                          signer=signer_from_env(settings.extra, clock), public_url=settings.public_url)
        try:
            report = reports.build(int(raw))
        except NotFound as exc:
            print(f"report: {exc}", file=sys.stderr)
            return EXIT_PROBLEM
        page_url = reports.page_url(report.proposal.id)
        if args.report_format == "json":
            print(json.dumps(report_json(report, page_url), indent=2, allow_nan=False))
        else:
            sys.stdout.write(render_markdown(report, page_url))
        return EXIT_OK
    finally:
        engine.dispose()
