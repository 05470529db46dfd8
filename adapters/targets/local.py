"""`local`: the bot's own registry. Serving code polls `GET /api/models/{model}` for the live version."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from bot.core.ports import SwitchRequest, SwitchResult


class LocalRegistry(Protocol):
    def served_version(self, model: str) -> str | None: ...
    def set_served_version(self, model: str, version: str) -> None: ...


class LocalTarget:
    name = "local"

    def __init__(self, registry: LocalRegistry) -> None:
        self.registry = registry

    def current_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
        return self.registry.served_version(model)

    def served_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
        return self.registry.served_version(model)

    def switch(self, request: SwitchRequest) -> SwitchResult:
        self.registry.set_served_version(request.model, request.to_version)
        return SwitchResult(
            detail=f"the bot's registry now serves {request.model} version {request.to_version}",
            served_version=request.to_version,
        )

    def describe(self, request: SwitchRequest) -> str:
        return (f"set {request.model} to version {request.to_version} in the bot's registry "
                f"(GET /api/models/{request.model})")


def validate(settings: Mapping[str, Any]) -> list[str]:
    return [f"unknown key '{k}'; the local target takes no settings" for k in settings]
