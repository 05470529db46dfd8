"""Safe PromQL building: alert label values are attacker-influenced text, never raw PromQL.

A label value such as ``"} or vector(1) or {"`` pasted into a selector would turn a query for one
model into one that always returns 1. Everything that goes between quotes passes through
``escape_label_value``; names that cannot be quoted are validated instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qs, urlsplit

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_label_value(value: str) -> str:
    """Escape for the inside of a double-quoted PromQL string (Go string-literal rules).

    Backslash first (it is the escape character), the double quote (it ends the literal) and
    newline (PromQL refuses a raw newline in a string); carriage return and tab for readability.
    """
    return "".join(_ESCAPES.get(ch, ch) for ch in value)


def quote(value: str) -> str:
    """A complete PromQL string literal."""
    return f'"{escape_label_value(value)}"'


def selector(metric: str, labels: Mapping[str, str]) -> str:
    """``metric{label="value",...}`` with every value escaped; ValueError for an invalid name.

    Names cannot be quoted in PromQL 2.x, so they are checked against the grammar rather than escaped.
    """
    if metric and not _METRIC_NAME.fullmatch(metric):
        raise ValueError(f"invalid metric name {metric!r}: must match {_METRIC_NAME.pattern}")
    for name in labels:
        if not _LABEL_NAME.fullmatch(name):
            raise ValueError(f"invalid label name {name!r}: must match {_LABEL_NAME.pattern}")
    if not metric and not labels:
        raise ValueError("a selector needs a metric name or at least one label")
    matchers = ",".join(f"{name}={quote(value)}" for name, value in labels.items())
    return f"{metric}{{{matchers}}}" if matchers else metric


def expr_from_generator_url(url: str) -> str | None:
    """The rule expression from a Prometheus alert's generatorURL (``/graph?g0.expr=...``), or None."""
    if not url:
        return None
    try:
        query = urlsplit(url).query
    except ValueError:
        return None
    values = parse_qs(query, keep_blank_values=False).get("g0.expr")
    return values[0] if values else None
