"""Kubernetes Deployment target: set the container image (or an env var) to the version, wait for the rollout.

Mirrors ``kubectl set image`` + ``kubectl rollout status``: a strategic-merge patch that carries the
``resourceVersion`` it was computed from (a concurrent writer makes it 409, and we re-read and retry), then
polling until generation is observed and every replica is updated and available.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightkube.types import PatchType

from adapters.targets.common import (
    Waiter,
    duration_problem,
    missing_keys,
    template_problem,
    timeout_seconds,
    unknown_keys,
    version_from_template,
)
from adapters.targets.kube import DEPLOYMENT, STRATEGIC, KubeClient, KubeTarget, failing_condition
from adapters.targets.kubeconfig import settings_problems
from bot.core.errors import TargetError
from bot.core.ports import SwitchRequest, SwitchResult

AUTH_KEYS = {"api_url", "kubeconfig", "insecure_skip_tls_verify", "ca_file", "request_timeout", "attempts"}
KNOWN = {"namespace", "deployment", "container", "image", "env", "timeout", "poll_interval"} | AUTH_KEYS
CONFLICT_RETRIES = 5
FAILED = {("Progressing", "False", "ProgressDeadlineExceeded"), ("ReplicaFailure", "True", "*")}


def pick_container(containers: list[dict[str, Any]], wanted: str | None, where: str) -> dict[str, Any]:
    if wanted:
        for container in containers:
            if container.get("name") == wanted:
                return container
        names = ", ".join(str(c.get("name")) for c in containers)
        raise TargetError(f"{where} has no container '{wanted}' (containers: {names})")
    if len(containers) != 1:
        raise TargetError(f"{where} has {len(containers)} containers; name one with setting 'container'")
    return containers[0]


def version_in(container: Mapping[str, Any], settings: Mapping[str, Any]) -> str | None:
    """The version a container runs, read back through the image template or the env var."""
    if settings.get("env"):
        for item in container.get("env") or []:
            if item.get("name") == settings["env"]:
                value = item.get("value")
                return None if value is None else str(value)
        return None
    return version_from_template(str(settings.get("image", "")), str(container.get("image", "")))


def rollout_state(obj: Mapping[str, Any]) -> tuple[bool, str]:
    """(complete?, words) for a Deployment, the way ``kubectl rollout status`` judges it."""
    spec, status = obj.get("spec", {}), obj.get("status", {})
    want = int(spec.get("replicas", 1))
    generation = int(obj.get("metadata", {}).get("generation", 0))
    observed = int(status.get("observedGeneration", 0))
    updated, available = int(status.get("updatedReplicas", 0)), int(status.get("availableReplicas", 0))
    total = int(status.get("replicas", 0))
    words = f"{updated}/{want} updated, {available}/{want} available, {total} total"
    if observed < generation:
        return False, f"waiting for the controller to observe generation {generation}"
    return updated == want and available == want and total <= want, words


class KubernetesTarget(KubeTarget):
    name = "kubernetes"

    def validate(self, settings: Mapping[str, Any]) -> list[str]:
        problems = missing_keys(settings, ("deployment",), self.name)
        problems += unknown_keys(settings, KNOWN, self.name)
        problems += settings_problems(settings, self.name)
        if bool(settings.get("image")) == bool(settings.get("env")):
            problems.append(
                "kubernetes: set exactly one of 'image' (\"repo/x:{version}\") or 'env' (\"MODEL_VERSION\")"
            )
        if settings.get("image"):
            problems += template_problem(str(settings["image"]), "image", self.name)
        return problems + duration_problem(settings, "timeout", self.name)

    def describe(self, request: SwitchRequest) -> str:
        s = request.settings
        image = str(s.get("image", "<image missing>")).replace("{version}", request.to_version)
        what = f"env {s.get('env')}={request.to_version}" if s.get("env") else f"image {image}"
        return (
            f"PATCH ({STRATEGIC}) deployment {s.get('namespace', '<namespace>')}/{s.get('deployment')} "
            f"container {s.get('container', '<only container>')}: {what}; then wait up to "
            f"{s.get('timeout', '5m')} for the rollout"
        )

    def _read(self, kube: KubeClient, settings: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        obj = kube.get(DEPLOYMENT, str(settings["deployment"]), f"read deployment {settings.get('deployment')}")
        containers = obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        return obj, pick_container(
            containers, settings.get("container"), f"kubernetes: deployment {settings.get('deployment')}"
        )

    def current_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
        with self._kube(settings) as kube:
            _, container = self._read(kube, settings)
        return version_in(container, settings)

    def served_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
        with self._kube(settings) as kube:
            obj, container = self._read(kube, settings)
        complete, _ = rollout_state(obj)
        return version_in(container, settings) if complete else None

    def switch(self, request: SwitchRequest) -> SwitchResult:
        s = request.settings
        started = self._clock()
        with self._kube(s) as kube:
            for attempt in range(1, CONFLICT_RETRIES + 1):
                obj, container = self._read(kube, s)
                before = version_in(container, s)
                change: dict[str, Any] = {"name": container["name"]}
                if s.get("env"):
                    change["env"] = [{"name": str(s["env"]), "value": request.to_version}]
                else:
                    change["image"] = str(s["image"]).format(version=request.to_version)
                body = {
                    "metadata": {
                        "resourceVersion": obj["metadata"]["resourceVersion"],
                        "annotations": {
                            "kubernetes.io/change-cause": f"rollback-bot proposal "
                            f"#{request.proposal_id}: {before} -> {request.to_version}"
                        },
                    },
                    "spec": {"template": {"spec": {"containers": [change]}}},
                }
                try:
                    patched = kube.patch(
                        DEPLOYMENT,
                        str(s["deployment"]),
                        body,
                        PatchType.STRATEGIC,
                        f"set {s['deployment']} to {request.to_version}",
                    )
                    break
                except TargetError as exc:
                    if exc.status != 409 or attempt == CONFLICT_RETRIES:
                        raise
            words = self._wait(kube, patched, s)
        took = self._clock() - started
        return SwitchResult(
            detail=f"deployment {s['deployment']}: {before} -> {request.to_version}; "
            f"rollout complete ({words}) in {took:.1f}s",
            served_version=request.to_version,
        )

    def _wait(self, kube: KubeClient, obj: dict[str, Any], settings: Mapping[str, Any]) -> str:
        waiter = Waiter(
            poll_interval=self._poll or float(settings.get("poll_interval", 2)),
            sleep=self._sleep,
            clock=self._clock,
        )
        deadline = waiter.deadline(timeout_seconds(settings, "timeout", "5m"))
        generation = int(obj.get("metadata", {}).get("generation", 0))
        while True:
            complete, words = rollout_state(obj)
            observed = int(obj.get("status", {}).get("observedGeneration", 0)) >= generation
            if complete and observed:
                return words
            problem = failing_condition(obj.get("status", {}).get("conditions"), FAILED) if observed else None
            if problem:
                raise TargetError(f"kubernetes: rollout of {settings['deployment']} failed: {problem}")
            if waiter.expired(deadline):
                raise TargetError(
                    f"kubernetes: rollout of {settings['deployment']} did not complete within "
                    f"{settings.get('timeout', '5m')}: {words}",
                    retryable=True,
                )
            waiter.pause(deadline)
            obj = kube.get(DEPLOYMENT, str(settings["deployment"]), f"watch the rollout of {settings['deployment']}")

    def check_connection(self, model: str, settings: Mapping[str, Any]) -> str:
        with self._kube(settings) as kube:
            _, container = self._read(kube, settings)
            perm = kube.can_i("patch", "apps", "deployments", str(settings["deployment"]))
        return (
            f"kubernetes ({kube.source}): deployment {kube.namespace}/{settings['deployment']} found, "
            f"running {version_in(container, settings) or container.get('image')}; {perm}"
        )
