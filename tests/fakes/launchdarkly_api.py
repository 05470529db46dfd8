"""A fake LaunchDarkly REST API (v2) for flags: GET a flag, PATCH it with a semantic patch.

Shapes as documented: variations carry ``_id`` and ``value``; ``environments.<key>`` has ``on``,
``fallthrough.variation`` (an index) and ``offVariation``; errors are ``{"code", "message"}``; a semantic
patch needs ``Content-Type: application/json; domain-model=launchdarkly.semanticpatch`` and an
``environmentKey``; the raw API token goes in the Authorization header.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from tests.fakes.httpserver import FakeService, LoopbackServer, Request, Response


def error(status: int, code: str, message: str) -> Response:
    return Response(status, {"code": code, "message": message})


class FakeLaunchDarkly(FakeService):
    def __init__(self, token: str = "api-test-token") -> None:
        self.token = token
        self.flags: dict[tuple[str, str], dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.fail_next: list[int] = []
        self.server = LoopbackServer(self.handle)

    def add_flag(self, project: str, key: str, values: list[str], serving: str, on: bool = True) -> None:
        variations = [{"_id": f"var-{i}-{v}", "value": v, "name": v} for i, v in enumerate(values)]
        env = {
            "on": on,
            "fallthrough": {"variation": values.index(serving)},
            "offVariation": 0,
            "_version": 1,
        }
        self.flags[(project, key)] = {
            "key": key,
            "kind": "multivariate",
            "variations": variations,
            "environments": {"production": copy.deepcopy(env), "staging": copy.deepcopy(env)},
            "_version": 1,
        }

    def set_rollout(self, project: str, key: str, weights: dict[str, int], environment: str = "production") -> None:
        """A percentage rollout of the default rule: ``{value: weight}``, weights in thousandths of a percent."""
        flag = self.flags[(project, key)]
        values = [v["value"] for v in flag["variations"]]
        flag["environments"][environment]["fallthrough"] = {"rollout": {"variations": [
            {"variation": values.index(value), "weight": weight} for value, weight in weights.items()]}}

    def handle(self, req: Request) -> Response:
        if self.fail_next:
            return error(self.fail_next.pop(0), "internal_server_error", "temporary failure")
        if req.headers.get("authorization") != self.token:
            return error(401, "unauthorized", "Invalid access token")
        parts = req.path.strip("/").split("/")
        if len(parts) != 5 or parts[:3] != ["api", "v2", "flags"]:
            return error(404, "not_found", "Unknown resource")
        key = (parts[3], parts[4])
        with self.lock:
            flag = self.flags.get(key)
            if flag is None:
                return error(404, "not_found", "Unknown resource")
            if req.method == "GET":
                return Response(200, flag)
            if req.method == "PATCH":
                return self._patch(flag, req)
        return error(405, "method_not_allowed", "Method not allowed")

    def _patch(self, flag: dict[str, Any], req: Request) -> Response:
        ctype = req.headers.get("content-type", "")
        if "domain-model=launchdarkly.semanticpatch" not in ctype:
            return error(
                400,
                "invalid_request",
                "Expected a JSON patch array (use the semantic patch domain model for instructions)",
            )
        body = req.json()
        env_key = body.get("environmentKey")
        if env_key not in flag["environments"]:
            return error(400, "invalid_request", "environmentKey is required and must name an environment")
        env = copy.deepcopy(flag["environments"][env_key])
        ids = [v["_id"] for v in flag["variations"]]
        for ins in body.get("instructions", []):
            kind = ins.get("kind")
            if kind == "turnFlagOn":
                env["on"] = True
            elif kind == "turnFlagOff":
                env["on"] = False
            elif kind == "updateFallthroughVariationOrRollout":
                if ins.get("variationId") not in ids:
                    return error(400, "invalid_request", f"Unknown variation ID: {ins.get('variationId')}")
                env["fallthrough"] = {"variation": ids.index(ins["variationId"])}
            else:
                return error(400, "invalid_request", f"Unknown instruction kind: {kind}")
        env["_version"] += 1
        flag["environments"][env_key] = env
        flag["_version"] += 1
        return Response(200, flag)
