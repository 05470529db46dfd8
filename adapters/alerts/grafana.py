"""Grafana unified alerting webhook contact point, and its optional HMAC signature.

The body is Alertmanager's (Grafana embeds Alertmanager) plus ``orgId``, ``state``, ``title``,
``message`` at the top and ``values``, ``dashboardURL``, ``panelURL``, ``silenceURL``, ``imageURL``
on each alert.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import replace

from adapters.alerts._fields import at, expect_list, expect_object, float_map, index
from adapters.alerts.alertmanager import parse_group
from bot.core.alert import Alert
from bot.core.severity import SeverityTable, default_table

SOURCE = "grafana"
LINK_FIELDS: tuple[str, ...] = ("generatorURL", "dashboardURL", "panelURL", "silenceURL", "imageURL")

# grafana/alerting ``http/hmac.go``: the header the signer uses when the contact point leaves it empty.
SIGNATURE_HEADER = "X-Grafana-Alert-Signature"
# The name Grafana's contact point form shows as the header's placeholder; people often type it in.
PLACEHOLDER_SIGNATURE_HEADER = "X-Grafana-Alerting-Signature"
LEGACY_SIGNATURE_HEADER = SIGNATURE_HEADER  # kept for callers of the earlier name
MAX_SIGNATURE_AGE_SECONDS = 300.0  # a signed timestamp older (or newer) than 5 minutes is a replay


def parse(payload: object, severity: SeverityTable | None = None) -> list[Alert]:
    """Every alert in a Grafana webhook body, with Grafana's extra links and ``values``; ``severity`` reads
    the ``severity`` label (the policy's ``[sources.grafana.severity]`` over the defaults)."""
    alerts = parse_group(payload, SOURCE, LINK_FIELDS, severity or default_table(SOURCE))
    items = expect_list(expect_object(payload, "")["alerts"], "alerts", len(alerts))
    result: list[Alert] = []
    for i, (alert, item) in enumerate(zip(alerts, items, strict=True)):
        obj = expect_object(item, index("alerts", i))
        values = float_map(obj.get("values"), at(index("alerts", i), "values"))
        result.append(replace(alert, values=values))
    return result


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that works on plain dicts as well as Starlette's Headers."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def check_grafana_signature(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    signature_header: str | None = None,
    timestamp_header: str | None = None,
    max_age_seconds: float | None = MAX_SIGNATURE_AGE_SECONDS,
    now: float | None = None,
) -> str | None:
    """None when the request carries Grafana's HMAC-SHA256 signature of ``body``; else why not.

    grafana/alerting (``http/hmac.go``) signs ``hex(HMAC-SHA256(secret, body))``, or
    ``hex(HMAC-SHA256(secret, timestamp + ":" + body))`` when the contact point names a timestamp
    header (Unix seconds; Grafana has no default name, so pass the same ``timestamp_header``).
    Grafana's default header name, or none given, also accepts the name its form shows as placeholder.
    A timestamp more than ``max_age_seconds`` away from now is refused so a captured request cannot be
    replayed (``None`` disables the check). The reason names headers and settings, never the secret.
    """
    if not secret:
        return "no Grafana HMAC secret is configured (GRAFANA_WEBHOOK_SECRET)"
    wanted = signature_header or SIGNATURE_HEADER
    names = [wanted]
    if wanted.lower() == SIGNATURE_HEADER.lower():
        names.append(PLACEHOLDER_SIGNATURE_HEADER)
    received = next((value for name in names if (value := _header(headers, name))), None)
    if not received:
        return (f"missing Grafana signature header {wanted}: set the contact point's HMAC secret to "
                "GRAFANA_WEBHOOK_SECRET (and its header to GRAFANA_SIGNATURE_HEADER if you changed it)")
    mac = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256)
    if timestamp_header:
        stamp = _header(headers, timestamp_header)
        if not stamp:
            return (f"missing Grafana timestamp header {timestamp_header}: set the contact point's HMAC "
                    "'Timestamp header' to the name in GRAFANA_TIMESTAMP_HEADER")
        stamp = stamp.strip()
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            return f"Grafana timestamp header {timestamp_header} is not Unix seconds: {stamp[:20]!r}"
        if max_age_seconds is not None:
            current = time.time() if now is None else now
            age = current - int(stamp)
            if abs(age) > max_age_seconds:
                when = f"{int(age)} s old" if age > 0 else f"{int(-age)} s in the future"
                return (f"Grafana timestamp {stamp} is {when}; signatures more than "
                        f"{int(max_age_seconds)} s from now are refused as replays (check both clocks)")
        mac.update(stamp.encode("ascii"))
        mac.update(b":")
    mac.update(body)
    # bytes, not str: compare_digest refuses non-ASCII text, and headers may carry any byte.
    if hmac.compare_digest(mac.hexdigest().encode("ascii"),
                           received.strip().lower().encode("utf-8", "replace")):
        return None
    hint = ("" if timestamp_header else
            "; if the contact point sets a 'Timestamp header', name it in GRAFANA_TIMESTAMP_HEADER")
    return (f"wrong Grafana signature in {wanted}: the contact point's HMAC secret must equal "
            f"GRAFANA_WEBHOOK_SECRET{hint}")


def verify_grafana_signature(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    signature_header: str | None = None,
    timestamp_header: str | None = None,
    max_age_seconds: float | None = MAX_SIGNATURE_AGE_SECONDS,
    now: float | None = None,
) -> bool:
    """True when ``check_grafana_signature`` finds nothing wrong."""
    return check_grafana_signature(
        body, headers, secret, signature_header=signature_header, timestamp_header=timestamp_header,
        max_age_seconds=max_age_seconds, now=now,
    ) is None
