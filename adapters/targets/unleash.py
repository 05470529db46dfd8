"""Unleash target: switch the flag that picks the model version, through the Admin API.

Two modes (setting ``mode``):
- ``toggle``: the flag on means ``on_version``, off means ``off_version``; the switch calls
  ``POST .../environments/{env}/on`` or ``/off``.
- ``variant`` (default): each version is a variant named after it. The switch gives the target the whole
  weight: it is the only ``variable`` variant (Unleash hands it 1000) and the others become ``fix`` at 0,
  so they stay listed for later rollbacks (Unleash refuses a list without a variable variant). Unleash 7
  refuses new *environment* variants ("deprecated ... use strategy variants"), so the variants of the
  flag's strategies in that environment are rewritten (``PUT .../strategies/{id}``; setting
  ``strategy_id`` narrows it to one); a flag that still has legacy environment variants gets
  ``PUT .../environments/{env}/variants`` instead.
The admin token (``UNLEASH_API_TOKEN``) goes raw in the Authorization header, as Unleash expects.

Canary (``ReportsCanary``, variant mode only): variants weighted between two versions (say ``1.4.0`` fixed at
200 and ``1.3.0`` variable at 800) are a percentage rollout of the new version; the smaller
share is the canary. Aborting it gives the stable variant the whole weight, as a switch to it does. The
strategy's own ``rollout`` percentage is not read as a canary: users outside it get no variant at all (the
application's default), not a version the bot could name. In toggle mode a rollback turns the flag off, which
already gives the canary (``on_version``) 0 %.
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

TOKEN_ENV = "UNLEASH_API_TOKEN"
KNOWN = {
    "strategy_id",
    "url",
    "project",
    "environment",
    "flag",
    "mode",
    "on_version",
    "off_version",
    "stickiness",
    "timeout",
    "attempts",
}


def variant_split(variant_lists: list[list[dict[str, Any]]]) -> TrafficSplit | None:
    """Two versions sharing the variant weight (out of 1000), the same in every strategy, read as a canary.

    One version at 1000 is no canary; an even split, more than two versions or strategies that disagree name
    none either, and the bot then rolls back as for any target."""
    splits = set()
    for variants in variant_lists:
        live = sorted(((int(v.get("weight", 0)), str(v.get("name"))) for v in variants
                       if int(v.get("weight", 0)) > 0), reverse=True)
        if len(live) != 2 or live[0][0] == live[1][0]:
            return None
        (_, stable), (weight, canary) = live
        splits.add((stable, canary, round(weight / 10)))
    if len(splits) != 1:
        return None
    stable, canary, percent = splits.pop()
    return TrafficSplit(stable, canary, percent, "variant weights of the flag")


class UnleashTarget:
    name = "unleash"

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
            raise TargetError(f"unleash: environment variable {TOKEN_ENV} is not set")
        url = str(settings.get("url") or "")
        if not url:
            raise TargetError("unleash: setting 'url' is missing")
        return HttpClient(
            "unleash",
            base_url=url,
            headers={"Authorization": token},
            client=self._client,
            timeout=timeout_seconds(settings, "timeout", "10s"),
            attempts=int(settings.get("attempts", 3)),
            sleep=self._sleep,
        )

    @staticmethod
    def _names(settings: Mapping[str, Any]) -> tuple[str, str, str, str]:
        mode = str(settings.get("mode", "variant"))
        return (
            str(settings.get("project", "default")),
            str(settings.get("environment", "development")),
            str(settings["flag"]),
            mode,
        )

    def _feature(self, settings: Mapping[str, Any]) -> str:
        project, _, flag, _ = self._names(settings)
        return f"/api/admin/projects/{project}/features/{flag}"

    def _environment(self, http: HttpClient, settings: Mapping[str, Any]) -> dict[str, Any]:
        _, environment, flag, _ = self._names(settings)
        data = http.get_json(self._feature(settings), operation=f"read flag {flag}")
        for env in (data or {}).get("environments", []):
            if env.get("name") == environment:
                return dict(env)
        raise TargetError(f"unleash: flag {flag} has no environment '{environment}'")

    def _enabled(self, http: HttpClient, settings: Mapping[str, Any]) -> bool:
        return bool(self._environment(http, settings).get("enabled"))

    def _legacy_variants(self, http: HttpClient, settings: Mapping[str, Any]) -> list[dict[str, Any]]:
        _, environment, flag, _ = self._names(settings)
        data = http.get_json(
            f"{self._feature(settings)}/environments/{environment}/variants",
            operation=f"read the environment variants of {flag}",
        )
        variants = data.get("variants", []) if isinstance(data, dict) else []
        return [v for v in variants if isinstance(v, dict)]

    def _strategies(self, http: HttpClient, settings: Mapping[str, Any]) -> list[dict[str, Any]]:
        _, environment, flag, _ = self._names(settings)
        strategies = [
            st for st in self._environment(http, settings).get("strategies", []) if isinstance(st, dict)
        ]
        wanted = settings.get("strategy_id")
        if wanted:
            strategies = [st for st in strategies if st.get("id") == wanted]
        if not strategies:
            which = f"strategy {wanted}" if wanted else "strategy"
            raise TargetError(
                f"unleash: flag {flag} has no {which} in '{environment}'; add one whose variants are "
                "named after the versions"
            )
        return strategies

    @staticmethod
    def _full_weight(variants: list[dict[str, Any]]) -> str | None:
        full = [str(v.get("name")) for v in variants if int(v.get("weight", 0)) == 1000]
        return full[0] if full else None

    def validate(self, settings: Mapping[str, Any]) -> list[str]:
        problems = missing_keys(settings, ("url", "flag"), self.name) + unknown_keys(
            settings, KNOWN, self.name
        )
        mode = settings.get("mode", "variant")
        if mode not in ("variant", "toggle"):
            problems.append(f'unleash: \'mode\' must be "variant" or "toggle", not {mode!r}')
        if mode == "toggle":
            problems += missing_keys(settings, ("on_version", "off_version"), self.name)
        if env_value(self._env, TOKEN_ENV) is None:
            problems.append(f"unleash: environment variable {TOKEN_ENV} is not set (admin API token)")
        return problems + duration_problem(settings, "timeout", self.name)

    def describe(self, request: SwitchRequest) -> str:
        s = request.settings
        project, environment, flag, mode = self._names(s)
        base = f"{s.get('url')}/api/admin/projects/{project}/features/{flag}/environments/{environment}"
        if mode == "toggle":
            action = "on" if str(s.get("on_version")) == request.to_version else "off"
            return f"POST {base}/{action} (flag {action} = version {request.to_version})"
        return (
            f"PUT {base}/strategies/<id> (or legacy {base}/variants) with variant {request.to_version} "
            "taking weight 1000, others fixed at 0"
        )

    def current_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
        _, _, _, mode = self._names(settings)
        with self._http(settings) as http:
            if mode == "toggle":
                on = self._enabled(http, settings)
                return str(settings.get("on_version" if on else "off_version"))
            legacy = self._legacy_variants(http, settings)
            if legacy:
                return self._full_weight(legacy)
            versions = {
                self._full_weight(list(st.get("variants") or [])) for st in self._strategies(http, settings)
            }
        return versions.pop() if len(versions) == 1 else None  # strategies disagree: no single version

    def served_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
        return self.current_version(model, settings)

    def switch(self, request: SwitchRequest) -> SwitchResult:
        s, to = request.settings, request.to_version
        _, environment, flag, mode = self._names(s)
        base = f"{self._feature(s)}/environments/{environment}"
        with self._http(s) as http:
            if mode == "toggle":
                if to not in (str(s.get("on_version")), str(s.get("off_version"))):
                    raise TargetError(
                        f"unleash: flag {flag} switches between {s.get('on_version')} (on) and "
                        f"{s.get('off_version')} (off); {to} is neither"
                    )
                action = "on" if to == str(s.get("on_version")) else "off"
                http.request("POST", f"{base}/{action}", operation=f"turn flag {flag} {action}")
                detail = f"Unleash flag {flag} ({environment}) turned {action}"
            else:
                detail = self._switch_variants(http, s, base, to)
        now = self.current_version(request.model, s)
        if now != to:
            raise TargetError(f"unleash: flag {flag} reads back as {now!r}, not {to!r}", retryable=True)
        return SwitchResult(detail=detail, served_version=to)

    def _switch_variants(self, http: HttpClient, s: Mapping[str, Any], base: str, to: str) -> str:
        _, environment, flag, _ = self._names(s)
        stickiness = str(s.get("stickiness", "default"))
        legacy = self._legacy_variants(http, s)
        if legacy:
            http.request(
                "PUT",
                f"{base}/variants",
                json_body=self._reweigh(legacy, to, stickiness),
                operation=f"set the environment variants of {flag} to {to}",
            )
            return f"Unleash flag {flag} ({environment}): environment variant {to} weighted 1000"
        strategies = self._strategies(http, s)
        for st in strategies:
            body: dict[str, Any] = {
                k: st[k] for k in ("name", "title", "disabled", "constraints", "parameters") if k in st
            }
            body["segments"] = [
                seg if isinstance(seg, int) else seg.get("id") for seg in st.get("segments", [])
            ]
            body["variants"] = self._reweigh(list(st.get("variants") or []), to, stickiness)
            http.request(
                "PUT",
                f"{base}/strategies/{st['id']}",
                json_body=body,
                operation=f"set the variants of {flag} strategy {st.get('name')} to {to}",
            )
        count = len(strategies)
        return f"Unleash flag {flag} ({environment}): variant {to} weighted 1000 in {count} strategy(ies)"

    @staticmethod
    def _reweigh(variants: list[dict[str, Any]], to: str, stickiness: str) -> list[dict[str, Any]]:
        keep = ("name", "payload", "stickiness", "overrides")
        out = []
        for variant in variants:
            clean = {k: variant[k] for k in keep if k in variant}
            if variant.get("name") == to:
                clean.update(weight=1000, weightType="variable")
            else:
                clean.update(weight=0, weightType="fix")
            out.append(clean)
        if not any(v.get("name") == to for v in variants):
            out.append(
                {
                    "name": to,
                    "weight": 1000,
                    "weightType": "variable",
                    "stickiness": stickiness,
                    "payload": {"type": "string", "value": to},
                }
            )
        return out

    # -- ReportsCanary ----------------------------------------------------------------------------------------
    def canary(self, model: str, settings: Mapping[str, Any]) -> TrafficSplit | None:
        if self._names(settings)[3] == "toggle":
            return None
        with self._http(settings) as http:
            return self._split(http, settings)

    def _split(self, http: HttpClient, settings: Mapping[str, Any]) -> TrafficSplit | None:
        legacy = self._legacy_variants(http, settings)
        if legacy:
            return variant_split([legacy])
        return variant_split([list(st.get("variants") or []) for st in self._strategies(http, settings)])

    def describe_abort(self, request: SwitchRequest) -> str:
        return f"{self.describe(request)} (ends the percentage rollout: the canary gets 0 %)"

    def abort_canary(self, request: SwitchRequest) -> SwitchResult:
        """The stable variant takes the whole weight (the switch to it); the strategies' rest stays as it is."""
        s = request.settings
        split = None if self._names(s)[3] == "toggle" else self.canary(request.model, s)
        if split is None:
            raise TargetError(f"unleash: flag {s.get('flag')} has no percentage rollout between two versions any "
                              "more; nothing was aborted. Ask for a rollback instead")
        if split.stable_version != request.to_version:
            raise TargetError(f"unleash: flag {s.get('flag')} now splits {split.stable_version} (stable) and "
                              f"{split.canary_version}; not aborting towards {request.to_version}")
        return self.switch(request)

    def check_connection(self, model: str, settings: Mapping[str, Any]) -> str:
        _, environment, flag, mode = self._names(settings)
        with self._http(settings) as http:
            enabled = self._enabled(http, settings)
        version = self.current_version(model, settings)
        return (
            f"unleash: flag {flag} found ({environment}: {'on' if enabled else 'off'}, mode {mode}, "
            f"version {version}); writing needs an admin token"
        )
