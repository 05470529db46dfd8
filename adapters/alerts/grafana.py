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

SOURCE = "grafana"
LINK_FIELDS: tuple[str, ...] = ("generatorURL", "dashboardURL", "panelURL", "silenceURL", "imageURL")

# What Grafana's webhook settings show as the signature header's default name.
SIGNATURE_HEADER = "X-Grafana-Alerting-Signature"
# The name grafana/alerting's signer falls back to when the header setting is left empty.
LEGACY_SIGNATURE_HEADER = "X-Grafana-Alert-Signature"


def parse(payload: object) -> list[Alert]:
    """Every alert in a Grafana webhook body, with Grafana's extra links and ``values``."""
    alerts = parse_group(payload, SOURCE, LINK_FIELDS)
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


def verify_grafana_signature(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    signature_header: str | None = None,
    timestamp_header: str | None = None,
    max_age_seconds: float | None = 300.0,
    now: float | None = None,
) -> bool:
    """True when the request carries Grafana's HMAC-SHA256 signature of ``body`` under ``secret``.

    Grafana signs ``hex(HMAC-SHA256(secret, body))``, or ``timestamp + ":" + body`` when the contact
    point names a timestamp header (Unix seconds, no default name: pass the same ``timestamp_header``).
    Without ``signature_header`` both names Grafana uses are tried. With a timestamp, one older or newer
    than ``max_age_seconds`` is refused against replays (``None`` disables the check).
    """
    if not secret:
        return False
    names = [signature_header] if signature_header else [SIGNATURE_HEADER, LEGACY_SIGNATURE_HEADER]
    received = next((value for name in names if (value := _header(headers, name))), None)
    if not received:
        return False
    mac = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256)
    if timestamp_header:
        stamp = _header(headers, timestamp_header)
        if not stamp or not (stamp.isascii() and stamp.isdigit()):
            return False
        if max_age_seconds is not None:
            current = time.time() if now is None else now
            if abs(current - int(stamp)) > max_age_seconds:
                return False
        mac.update(stamp.encode("ascii"))
        mac.update(b":")
    mac.update(body)
    # bytes, not str: compare_digest refuses non-ASCII text, and headers may carry any byte.
    return hmac.compare_digest(
        mac.hexdigest().encode("ascii"), received.strip().lower().encode("utf-8", "replace")
    )
