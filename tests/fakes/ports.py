"""Fakes that implement the same Protocols as the real adapters (bot.core.ports)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from bot.core.errors import TargetError
from bot.core.ports import SwitchRequest, SwitchResult, TrafficSplit
from bot.core.proposal import Proposal


class FakeTarget:
    """A deployment target in memory: records every switch; can be told to fail or to be slow."""

    name = "fake"

    def __init__(self, live: dict[str, str] | None = None) -> None:
        self.live: dict[str, str] = dict(live or {})
        self.switches: list[SwitchRequest] = []
        self.fail_with: TargetError | None = None
        self.delay = 0.0
        self._lock = threading.Lock()

    def current_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
        return self.live.get(model)

    def served_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
        return self.live.get(model)

    def switch(self, request: SwitchRequest) -> SwitchResult:
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            self.switches.append(request)
            if self.fail_with is not None:
                raise self.fail_with
            self.live[request.model] = request.to_version
        return SwitchResult(f"fake switched {request.model} to {request.to_version}", request.to_version)

    def describe(self, request: SwitchRequest) -> str:
        return f"switch {request.model} to {request.to_version} in the fake target"


class RecordingNotifier:
    """A Notifier that remembers every event, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[int, str, str | None, str]] = []
        self._lock = threading.Lock()

    def changed(self, proposal: Proposal, event: str, detail: str | None = None) -> None:
        with self._lock:
            self.events.append((proposal.id, event, detail, proposal.state.value))

    def names(self) -> list[str]:
        return [e[1] for e in self.events]


class FakeCanaryTarget(FakeTarget):
    """A target that also reports a canary (bot.core.ports.ReportsCanary); records aborts apart from switches."""

    def __init__(self, live: dict[str, str] | None = None, split: TrafficSplit | None = None) -> None:
        super().__init__(live)
        self.split = split
        self.aborts: list[SwitchRequest] = []
        self.broken = False

    def canary(self, model: str, settings: Mapping[str, Any]) -> TrafficSplit | None:
        if self.broken:
            raise TargetError("fake: cannot read the canary")
        return self.split

    def abort_canary(self, request: SwitchRequest) -> SwitchResult:
        self.aborts.append(request)
        self.split = None
        return SwitchResult(f"fake aborted the canary of {request.model}", request.to_version)

    def describe_abort(self, request: SwitchRequest) -> str:
        return f"abort the canary of {request.model} in the fake target"
