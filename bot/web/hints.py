"""Metric hints for cards: each alert's own PromQL, for models whose policy lists no metrics."""

from __future__ import annotations

from collections.abc import Sequence

from adapters.metrics.promql import expr_from_generator_url
from bot.core.intake import AlertRecord


def metric_hints(records: Sequence[AlertRecord]) -> dict[str, str]:
    """Each alert's own PromQL (from its generatorURL) by alert name, for models without policy metrics."""
    hints: dict[str, str] = {}
    for record in records:
        url = record.links.get("generatorURL")
        expr = expr_from_generator_url(url) if url else None
        if expr and len(hints) < 5:
            hints.setdefault(record.name, expr)
    return hints


__all__ = ["metric_hints"]
