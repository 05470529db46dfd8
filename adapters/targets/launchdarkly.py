"""LaunchDarkly target: serve the variation whose value is the version, through a semantic patch.

``PATCH /api/v2/flags/{project}/{flag}`` with ``Content-Type: application/json;
domain-model=launchdarkly.semanticpatch`` and instructions ``updateFallthroughVariationOrRollout`` (plus
``turnFlagOn`` when needed), or ``turnFlagOff`` when the version is the setting ``off_version``. The
token (``LAUNCHDARKLY_API_TOKEN``) goes raw in the Authorization header, as LaunchDarkly expects.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from adapters.targets.common import duration_problem, env_value, missing_keys, timeout_seconds, unknown_keys
from adapters.targets.http import HttpClient
from bot.core.errors import TargetError
from bot.core.ports import SwitchRequest, SwitchResult, TrafficSplit

TOKEN_ENV = "LAUNCHDARKLY_API_TOKEN"
DEFAULT_BASE = "https://app.launchdarkly.com"
SEMANTIC = "application/json; domain-model=launchdarkly.semanticpatch"
KNOWN = {"base_url", "project", "environment", "flag", "off_version", "timeout", "attempts"}


def served_value(flag: Mapping[str, Any], environment: str) -> str | None:
    """The value everyone without a specific rule gets: fallthrough when on, the off variation when off."""
    config = flag.get("environments", {}).get(environment)
    if not isinstance(config, dict):
        raise TargetError(f"launchdarkly: flag {flag.get('key')} has no environment '{environment}'")
    variations = flag.get("variations", [])
    if config.get("on"):
        index = config.get("fallthrough", {}).get("variation")
    else:
        index = config.get("offVariation")
    if index is None or not 0 <= int(index) < len(variations):
        return None  # a percentage rollout, or no off variation: no single version
    return str(variations[int(index)].get("value"))


def rollout_split(flag: Mapping[str, Any], environment: str) -> TrafficSplit | None:
    """A percentage rollout of the default rule between two versions, read as a canary.

    ``fallthrough.rollout.variations`` weighs variations in thousandths of a percent (0-100000). With two
    versions sharing the traffic, the smaller share is the canary; an even split (or more than two) names no
    canary, and the bot then rolls back as for any target.
    """
    config = flag.get("environments", {}).get(environment) or {}
    rollout = (config.get("fallthrough") or {}).get("rollout") or {}
    variations = flag.get("variations", [])
    shares = [(int(v.get("weight", 0)), int(v["variation"])) for v in rollout.get("variations") or []
              if v.get("variation") is not None and 0 <= int(v["variation"]) < len(variations)]
    live = sorted((s for s in shares if s[0] > 0), reverse=True)
    if not config.get("on") or len(live) != 2 or live[0][0] == live[1][0]:
        return None
    (_, stable), (weight, canary) = live
    return TrafficSplit(str(variations[stable].get("value")), str(variations[canary].get("value")),
                        round(weight / 1000), "percentage rollout of the default rule")


class LaunchDarklyTarget:
    name = "launchdarkly"

    def __init__(
        self,
        *,
        client: httpx.Client | None = None,
        env: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client, self._env, self._sleep = client, env, sleep

    def _http(self, settings: Mapping[str, Any]) -> HttpClient:
        token = env_value(self._env, TOKEN_ENV)
        if token is None:
            raise TargetError(f"launchdarkly: environment variable {TOKEN_ENV} is not set")
        return HttpClient(
            "launchdarkly",
            base_url=str(settings.get("base_url") or DEFAULT_BASE),
            headers={"Authorization": token, "LD-API-Version": "20240415"},
            client=self._client,
            timeout=timeout_seconds(settings, "timeout", "10s"),
            attempts=int(settings.get("attempts", 3)),
            sleep=self._sleep,
        )

    @staticmethod
    def _path(settings: Mapping[str, Any]) -> str:
        return f"/api/v2/flags/{settings['project']}/{settings['flag']}"

    def _flag(self, http: HttpClient, settings: Mapping[str, Any]) -> dict[str, Any]:
        data = http.get_json(
            self._path(settings),
            params={"env": str(settings["environment"])},
            operation=f"read flag {settings['flag']}",
        )
        if not isinstance(data, dict):
            raise TargetError("launchdarkly: the flag answer is not an object")
        return data

    def validate(self, settings: Mapping[str, Any]) -> list[str]:
        problems = missing_keys(settings, ("project", "environment", "flag"), self.name)
        problems += unknown_keys(settings, KNOWN, self.name)
        if env_value(self._env, TOKEN_ENV) is None:
            problems.append(f"launchdarkly: environment variable {TOKEN_ENV} is not set")
        return problems + duration_problem(settings, "timeout", self.name)

    def _instructions(
        self, flag: Mapping[str, Any], settings: Mapping[str, Any], to: str
    ) -> list[dict[str, Any]]:
        config = flag.get("environments", {}).get(str(settings["environment"]), {})
        if settings.get("off_version") is not None and str(settings["off_version"]) == to:
            return [{"kind": "turnFlagOff"}]
        for variation in flag.get("variations", []):
            if str(variation.get("value")) == to:
                steps = [] if config.get("on") else [{"kind": "turnFlagOn"}]
                return [
                    *steps,
                    {"kind": "updateFallthroughVariationOrRollout", "variationId": variation["_id"]},
                ]
        values = ", ".join(str(v.get("value")) for v in flag.get("variations", []))
        raise TargetError(
            f"launchdarkly: flag {settings['flag']} has no variation with value {to!r} (values: {values})"
        )

    def describe(self, request: SwitchRequest) -> str:
        s = request.settings
        action = (
            "turnFlagOff"
            if str(s.get("off_version")) == request.to_version
            else f"updateFallthroughVariationOrRollout to the variation whose value is {request.to_version}"
        )
        return (
            f"PATCH {s.get('base_url') or DEFAULT_BASE}/api/v2/flags/{s.get('project')}/{s.get('flag')} "
            f"({SEMANTIC}) in environment {s.get('environment')}: {action}"
        )

    def current_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
        with self._http(settings) as http:
            return served_value(self._flag(http, settings), str(settings["environment"]))

    def served_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
        return self.current_version(model, settings)

    def switch(self, request: SwitchRequest) -> SwitchResult:
        s, to = request.settings, request.to_version
        environment = str(s["environment"])
        with self._http(s) as http:
            flag = self._flag(http, s)
            instructions = self._instructions(flag, s, to)
            body = {
                "environmentKey": environment,
                "instructions": instructions,
                "comment": f"rollback-bot proposal #{request.proposal_id}: {request.reason}"[:500],
            }
            http.request(
                "PATCH",
                self._path(s),
                json_body=body,
                headers={"Content-Type": SEMANTIC},
                operation=f"switch flag {s['flag']} to {to}",
            )
            now = served_value(self._flag(http, s), environment)
        if now != to:
            raise TargetError(
                f"launchdarkly: flag {s['flag']} serves {now!r} after the patch, not {to!r}", retryable=True
            )
        kinds = ", ".join(i["kind"] for i in instructions)
        return SwitchResult(
            detail=f"LaunchDarkly flag {s['flag']} ({environment}): {kinds}; serves {to}", served_version=to
        )

    # -- ReportsCanary ----------------------------------------------------------------------------------------
    def canary(self, model: str, settings: Mapping[str, Any]) -> TrafficSplit | None:
        with self._http(settings) as http:
            return rollout_split(self._flag(http, settings), str(settings["environment"]))

    def describe_abort(self, request: SwitchRequest) -> str:
        return f"{self.describe(request)} (ends the percentage rollout: the canary gets 0 %)"

    def abort_canary(self, request: SwitchRequest) -> SwitchResult:
        """The default rule serves the stable variation alone; the flag's other rules stay as they are."""
        s = request.settings
        with self._http(s) as http:
            split = rollout_split(self._flag(http, s), str(s["environment"]))
        if split is None:
            raise TargetError(
                f"launchdarkly: flag {s['flag']} has no percentage rollout any more; nothing was aborted. "
                "Ask for a rollback instead"
            )
        return self.switch(request)

    def check_connection(self, model: str, settings: Mapping[str, Any]) -> str:
        with self._http(settings) as http:
            flag = self._flag(http, settings)
        value = served_value(flag, str(settings["environment"]))
        return (
            f"launchdarkly: flag {settings['flag']} found, {len(flag.get('variations', []))} variations, "
            f"serving {value}; writing needs a token with a writer role (checked on first switch)"
        )
