"""Helpers the adapters share: reading settings, credentials from the environment, waiting with a deadline."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from bot.core.durations import parse_duration
from bot.core.errors import TargetError
from bot.core.ports import Checkable, DeploymentTarget, ValidatesSettings


@runtime_checkable
class CheckableTarget(DeploymentTarget, ValidatesSettings, Checkable, Protocol):
    """What every remote target here offers: the switch, a check of its settings (``check``) and of its reach
    (``check --connect``)."""


def text(settings: Mapping[str, Any], key: str, default: str | None = None) -> str | None:
    value = settings.get(key, default)
    return None if value is None else str(value)


def required(settings: Mapping[str, Any], key: str, target: str) -> str:
    value = settings.get(key)
    if value is None or str(value).strip() == "":
        raise TargetError(f"{target}: setting '{key}' is missing in [models.<model>.{target}]")
    return str(value)


def missing_keys(settings: Mapping[str, Any], keys: tuple[str, ...], target: str) -> list[str]:
    return [
        f"{target}: setting '{key}' is required"
        for key in keys
        if settings.get(key) is None or str(settings.get(key)).strip() == ""
    ]


def unknown_keys(settings: Mapping[str, Any], known: set[str], target: str) -> list[str]:
    return [
        f"{target}: unknown setting '{key}' (known: {', '.join(sorted(known))})"
        for key in settings
        if key not in known
    ]


def timeout_seconds(settings: Mapping[str, Any], key: str, default: str) -> float:
    raw = settings.get(key, default)
    if isinstance(raw, int | float):
        return float(raw)
    return parse_duration(str(raw)).total_seconds()


def duration_problem(settings: Mapping[str, Any], key: str, target: str) -> list[str]:
    if key not in settings or isinstance(settings[key], int | float):
        return []
    try:
        parse_duration(str(settings[key]))
    except ValueError as exc:
        return [f"{target}: setting '{key}': {exc}"]
    return []


def env_value(env: Mapping[str, str] | None, name: str) -> str | None:
    source = os.environ if env is None else env
    value = source.get(name)
    return value if value else None


def template_problem(template: str, key: str, target: str) -> list[str]:
    if "{version}" not in template:
        return [f"{target}: setting '{key}' must contain '{{version}}' (e.g. \"repo/x:{{version}}\")"]
    try:
        template.format(version="1")
    except (KeyError, IndexError, ValueError) as exc:
        return [f"{target}: setting '{key}' is not a valid template ({exc}); only {{version}} is filled in"]
    return []


def version_from_template(template: str, value: str) -> str | None:
    """Invert ``prefix{version}suffix``: the version inside ``value``, or None when it does not fit."""
    prefix, _, suffix = template.partition("{version}")
    if not value.startswith(prefix) or not value.endswith(suffix) or len(value) < len(prefix) + len(suffix):
        return None
    return value[len(prefix) : len(value) - len(suffix)] or None


class Waiter:
    """Poll until a condition holds or a deadline passes; injected clock and sleep keep tests fast."""

    def __init__(
        self,
        *,
        poll_interval: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.poll_interval = poll_interval
        self.sleep = sleep
        self.clock = clock

    def deadline(self, seconds: float) -> float:
        return self.clock() + seconds

    def expired(self, deadline: float) -> bool:
        return self.clock() >= deadline

    def pause(self, deadline: float) -> None:
        self.sleep(max(0.0, min(self.poll_interval, deadline - self.clock())))
