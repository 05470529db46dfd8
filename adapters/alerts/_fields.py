"""Typed reads of untrusted JSON with limits, shared by every parser.

Each helper takes the JSON path of the value it reads so a PayloadError says exactly where the
problem is. Limits keep one hostile or runaway sender from filling the database or the Slack card.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from adapters.alerts.errors import PayloadError

MAX_ALERTS = 1_000  # alerts in one payload
MAX_LABELS = 200  # labels (and annotations) on one alert
MAX_KEY_BYTES = 1_024  # a label or annotation name
MAX_LABEL_BYTES = 1_024  # a label value: labels select models, they are short by nature
MAX_TEXT_BYTES = 16_384  # an annotation value or message: descriptions may be long
MAX_URL_BYTES = 8_192  # generator URLs carry URL-encoded PromQL
MAX_FINGERPRINT = 200  # the alerts table's column width
MAX_NAME = 500  # the alerts table's column width; longer names are cut, not refused
MAX_VALUES = 200  # Grafana ``values`` entries on one alert


def at(path: str, key: str) -> str:
    """The JSON path of ``key`` inside the object at ``path``."""
    return f"{path}.{key}" if path else key


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def kind(value: object) -> str:
    """A JSON type name for error messages (``list``, not Python's ``list`` repr)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def decode_json(body: bytes | str) -> object:
    """Parse a request body; malformed, truncated or absurdly nested JSON becomes a PayloadError."""
    try:
        return json.loads(body)
    except UnicodeDecodeError as exc:
        raise PayloadError("body", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise PayloadError(
            "body", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise PayloadError("body", "JSON nested too deeply") from None


FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 1_000


def is_form(content_type: str, body: bytes) -> bool:
    """A URL-encoded form body (by its Content-Type; a JSON-looking body is JSON whatever the header says)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == FORM_CONTENT_TYPE and body.lstrip()[:1] not in (b"{", b"[")


def decode_form(body: bytes) -> dict[str, object]:
    """A URL-encoded body as the JSON object it was written from.

    Each field is one key of the sender's JSON template; a value that is itself JSON (an object or a
    list) is decoded, so nested template parts survive. One single field holding a whole JSON object
    is that object. The first of repeated fields wins.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError("body", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text.strip()),
                          max_num_fields=MAX_FORM_FIELDS, errors="strict")
    except UnicodeDecodeError:
        raise PayloadError("body", "a form field is not UTF-8 once percent-decoded") from None
    except ValueError as exc:
        raise PayloadError("body", f"not a URL-encoded form: {exc}") from None
    result: dict[str, object] = {}
    for key, value in pairs:
        check_text(key, "body", MAX_KEY_BYTES)
        decoded: object = value
        if value.lstrip()[:1] in ("{", "["):
            try:
                decoded = json.loads(value)
            except (json.JSONDecodeError, RecursionError):
                decoded = value
        result.setdefault(key, decoded)
    if len(result) == 1:
        only = next(iter(result.values()))
        if isinstance(only, dict):
            return only
    return result


def expect_object(value: object, path: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise PayloadError(path, f"expected an object, got {kind(value)}")
    return value


def expect_list(value: object, path: str, limit: int) -> list[object]:
    if not isinstance(value, list):
        raise PayloadError(path, f"expected a list, got {kind(value)}")
    if len(value) > limit:
        raise PayloadError(path, f"{len(value)} items, at most {limit} are accepted")
    return value


def check_text(text: str, path: str, max_bytes: int) -> str:
    """Refuse text the database cannot store (NUL, lone surrogates) or that is over ``max_bytes``."""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise PayloadError(path, "contains an unpaired UTF-16 surrogate (\\ud800-\\udfff)") from None
    if size > max_bytes:
        raise PayloadError(path, f"{size} bytes long, at most {max_bytes} are accepted")
    if "\x00" in text:
        raise PayloadError(path, "contains a NUL character")
    return text


def expect_str(value: object, path: str, max_bytes: int) -> str:
    if not isinstance(value, str):
        raise PayloadError(path, f"expected a string, got {kind(value)}")
    return check_text(value, path, max_bytes)


def optional_str(obj: Mapping[str, object], key: str, path: str, max_bytes: int) -> str | None:
    """A string field that may be absent or null; empty strings read as absent."""
    value = obj.get(key)
    if value is None:
        return None
    text = expect_str(value, at(path, key), max_bytes)
    return text or None


def string_map(
    value: object,
    path: str,
    *,
    max_value_bytes: int,
    coerce_scalars: bool = False,
) -> dict[str, str]:
    """An object of strings (labels, annotations). ``coerce_scalars`` turns numbers and booleans into text."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(path, f"expected an object of strings, got {kind(value)}")
    if len(value) > MAX_LABELS:
        raise PayloadError(path, f"{len(value)} entries, at most {MAX_LABELS} are accepted")
    result: dict[str, str] = {}
    for key, item in value.items():
        item_path = at(path, key)
        check_text(key, item_path, MAX_KEY_BYTES)
        if not key:
            raise PayloadError(path, "has an empty key")
        if coerce_scalars and isinstance(item, bool):
            item = "true" if item else "false"
        elif coerce_scalars and isinstance(item, int | float):
            item = json.dumps(item)
        result[key] = expect_str(item, item_path, max_value_bytes)
    return result


def float_map(value: object, path: str) -> dict[str, float]:
    """Grafana's ``values``: numbers by query ref. Null entries and NaN/Inf are dropped, not refused,
    because losing a firing alert over one odd metric value is worse than losing the value."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(path, f"expected an object of numbers, got {kind(value)}")
    if len(value) > MAX_VALUES:
        raise PayloadError(path, f"{len(value)} entries, at most {MAX_VALUES} are accepted")
    result: dict[str, float] = {}
    for key, item in value.items():
        item_path = at(path, key)
        check_text(key, item_path, MAX_KEY_BYTES)
        if item is None:
            continue
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise PayloadError(item_path, f"expected a number, got {kind(item)}")
        number = float(item)
        if math.isfinite(number):
            result[key] = number
    return result


_EPOCH_MS_THRESHOLD = 100_000_000_000  # larger epoch numbers are milliseconds (after 1973 in ms)


def parse_time(value: object, path: str) -> datetime | None:
    """ISO 8601 text or epoch seconds/milliseconds to aware UTC; Go's zero time and null mean None.

    Text without an offset is read as UTC, the project's convention.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PayloadError(path, f"expected a timestamp, got {kind(value)}")
    if isinstance(value, str):
        check_text(value, path, 64)
    try:
        if isinstance(value, int | float) or re.fullmatch(r"\d{1,16}", value):
            number = float(value)
            if number >= _EPOCH_MS_THRESHOLD:
                number /= 1000
            moment = datetime.fromtimestamp(number, UTC)
        else:
            moment = datetime.fromisoformat(value)
            if moment.year <= 1:  # Go's zero time, "0001-01-01T00:00:00Z": not set
                return None
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        raise PayloadError(path, f"not an ISO 8601 time or epoch number: {str(value)[:64]!r}") from None
    return moment


def labels_fingerprint(labels: Mapping[str, str]) -> str:
    """A stable sha256 of the sorted labels, for senders that give no fingerprint of their own."""
    canonical = json.dumps(sorted(labels.items()), separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def fingerprint_or_hash(value: object, path: str, labels: Mapping[str, str]) -> str:
    """The sender's fingerprint when given, else one computed from the labels."""
    if value is None or value == "":
        return labels_fingerprint(labels)
    return expect_str(value, path, MAX_FINGERPRINT)


def clip_name(name: str) -> str:
    """Names are display text: cut to the column width instead of refusing the alert."""
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 1] + "…"
