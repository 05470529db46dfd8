"""Alert intake parsers, one module per sender, keyed by the path name of ``POST /alerts/<source>``.

Adding a source is one module exposing ``parse(payload) -> list[Alert]`` plus one line in ``PARSERS``.
Every parser raises only ``PayloadError`` on bad input.
"""

from __future__ import annotations

from collections.abc import Callable

from adapters.alerts import alertmanager, datadog, generic, grafana
from adapters.alerts._fields import decode_form, decode_json, is_form
from adapters.alerts.errors import MappingError, PayloadError
from adapters.alerts.generic import GenericMapping, mapping_from_dict
from adapters.alerts.grafana import check_grafana_signature, verify_grafana_signature
from bot.core.alert import Alert
from bot.core.severity import SeverityTable

AlertParser = Callable[[object], list[Alert]]

PARSERS: dict[str, AlertParser] = {
    "alertmanager": alertmanager.parse,
    "grafana": grafana.parse,
    "datadog": datadog.parse,
    "generic": generic.parse,  # default mapping; use parser_for("generic", mapping) for the policy's
}


def parser_for(source: str, generic_mapping: GenericMapping | None = None,
               severity: SeverityTable | None = None) -> AlertParser:
    """The parser for ``source``; ``generic`` uses ``generic_mapping`` from the policy file when given,
    every source reads severities through ``severity`` (the policy's table) when given."""
    if source == "generic" and (generic_mapping is not None or severity is not None):
        return generic.bind(generic_mapping or generic.DEFAULT_MAPPING, severity)
    try:
        parser = PARSERS[source]
    except KeyError:
        raise KeyError(f"unknown alert source {source!r} (known: {', '.join(sorted(PARSERS))})") from None
    if severity is None:
        return parser
    table = severity
    with_table: dict[str, AlertParser] = {
        "alertmanager": lambda payload: alertmanager.parse(payload, table),
        "grafana": lambda payload: grafana.parse(payload, table),
        "datadog": lambda payload: datadog.parse(payload, table),
    }
    return with_table.get(source, parser)


def parse_body(
    source: str, body: bytes, generic_mapping: GenericMapping | None = None, content_type: str = "",
    severity: SeverityTable | None = None,
) -> list[Alert]:
    """Decode a raw request body and parse it: the one call the intake endpoint needs.

    Datadog's "Encode as form" sends the payload template as ``application/x-www-form-urlencoded``;
    every other body (and every other sender) is JSON.
    """
    if source == "datadog" and is_form(content_type, body):
        return datadog.parse(decode_form(body), severity)
    return parser_for(source, generic_mapping, severity)(decode_json(body))


__all__ = [
    "PARSERS",
    "AlertParser",
    "GenericMapping",
    "MappingError",
    "PayloadError",
    "check_grafana_signature",
    "decode_json",
    "mapping_from_dict",
    "parse_body",
    "parser_for",
    "verify_grafana_signature",
]
