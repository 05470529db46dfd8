"""KServe target: pin traffic back to the last rolled-out revision, or point the predictor at another model.

With a live canary (``canaryTrafficPercent`` below 100 and traffic split between two revisions), the KServe
documented rollback is ``canaryTrafficPercent: 0``: all traffic returns to the previous rolled-out
revision. We also record the version we pinned in the annotation ``rollback-bot/pinned-version``, because
the spec still names the canary's model and KServe's status names revisions, not versions. Otherwise the
predictor's ``storageUri`` is set from the template. Either way we wait for the Ready condition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.targets.common import (
    Waiter,
    duration_problem,
    missing_keys,
    template_problem,
    timeout_seconds,
    unknown_keys,
    version_from_template,
)
from adapters.targets.kube import MERGE, KubeClient, KubeTarget, can_i, failing_condition, namespace_of
from adapters.targets.kubernetes import AUTH_KEYS
from bot.core.errors import TargetError
from bot.core.ports import SwitchRequest, SwitchResult

GROUP = "/apis/serving.kserve.io/v1beta1"
PINNED = "rollback-bot/pinned-version"
KNOWN = {"namespace", "inference_service", "storage_uri", "timeout", "poll_interval"} | AUTH_KEYS
FAILED = {
    ("Ready", "False", "RevisionFailed"),
    ("PredictorReady", "False", "RevisionFailed"),
    ("Ready", "False", "ProgressDeadlineExceeded"),
}
CONFLICT_RETRIES = 5


def _model_spec(isvc: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The predictor block holding storageUri: ``model`` (new schema) or a framework key (old schema)."""
    predictor = isvc.get("spec", {}).get("predictor", {})
    if isinstance(predictor.get("model"), dict):
        return "model", predictor["model"]
    for key, value in predictor.items():
        if isinstance(value, dict) and "storageUri" in value:
            return key, value
    raise TargetError(
        "kserve: the predictor has no storageUri (neither spec.predictor.model nor a framework block)"
    )


def live_canary(isvc: Mapping[str, Any]) -> bool:
    percent = isvc.get("spec", {}).get("predictor", {}).get("canaryTrafficPercent")
    traffic = isvc.get("status", {}).get("components", {}).get("predictor", {}).get("traffic", [])
    split = sum(1 for t in traffic if int(t.get("percent") or 0) > 0) > 1
    return percent is not None and 0 < int(percent) < 100 and split


class KServeTarget(KubeTarget):
    name = "kserve"

    def _path(self, kube: KubeClient, settings: Mapping[str, Any]) -> str:
        ns = namespace_of(settings, kube.auth)
        return f"{GROUP}/namespaces/{ns}/inferenceservices/{settings['inference_service']}"

    def _read(self, kube: KubeClient, settings: Mapping[str, Any]) -> dict[str, Any]:
        name = settings.get("inference_service")
        return kube.get(self._path(kube, settings), f"read InferenceService {name}")

    def _spec_version(self, isvc: Mapping[str, Any], settings: Mapping[str, Any]) -> str | None:
        _, model = _model_spec(isvc)
        return version_from_template(str(settings.get("storage_uri", "")), str(model.get("storageUri", "")))

    def _version(self, isvc: Mapping[str, Any], settings: Mapping[str, Any]) -> str | None:
        percent = isvc.get("spec", {}).get("predictor", {}).get("canaryTrafficPercent")
        pinned = isvc.get("metadata", {}).get("annotations", {}).get(PINNED)
        if pinned and percent is not None and int(percent) == 0:
            return str(pinned)
        return self._spec_version(isvc, settings)

    # -- DeploymentTarget -----------------------------------------------------------------------------------
    def validate(self, settings: Mapping[str, Any]) -> list[str]:
        problems = missing_keys(settings, ("inference_service", "storage_uri"), self.name)
        problems += unknown_keys(settings, KNOWN, self.name)
        if settings.get("storage_uri"):
            problems += template_problem(str(settings["storage_uri"]), "storage_uri", self.name)
        return problems + duration_problem(settings, "timeout", self.name)

    def describe(self, request: SwitchRequest) -> str:
        s = request.settings
        uri = str(s.get("storage_uri", "<storage_uri missing>")).replace("{version}", request.to_version)
        return (
            f"PATCH ({MERGE}) inferenceservices/{s.get('inference_service')}: with a live canary "
            f"spec.predictor.canaryTrafficPercent: 0, otherwise storageUri {uri}; wait up to "
            f"{s.get('timeout', '5m')} for Ready"
        )

    def current_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
        with self._kube(settings) as kube:
            return self._version(self._read(kube, settings), settings)

    def served_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
        """Known only when one revision takes all traffic and the service is Ready."""
        with self._kube(settings) as kube:
            isvc = self._read(kube, settings)
        conditions = isvc.get("status", {}).get("conditions", [])
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        return self._version(isvc, settings) if ready and not live_canary(isvc) else None

    def switch(self, request: SwitchRequest) -> SwitchResult:
        s, to = request.settings, request.to_version
        started = self._clock()
        with self._kube(s) as kube:
            path = self._path(kube, s)
            for attempt in range(1, CONFLICT_RETRIES + 1):
                isvc = self._read(kube, s)
                meta: dict[str, Any] = {"resourceVersion": isvc["metadata"]["resourceVersion"]}
                if live_canary(isvc) and self._spec_version(isvc, s) != to:
                    meta["annotations"] = {PINNED: to}
                    body: dict[str, Any] = {
                        "metadata": meta,
                        "spec": {"predictor": {"canaryTrafficPercent": 0}},
                    }
                    how = "canary traffic set to 0%, all traffic back on the previous rolled-out revision"
                else:
                    key, _ = _model_spec(isvc)
                    uri = str(s["storage_uri"]).format(version=to)
                    meta["annotations"] = {PINNED: None}
                    body = {
                        "metadata": meta,
                        "spec": {"predictor": {"canaryTrafficPercent": None, key: {"storageUri": uri}}},
                    }
                    how = f"storageUri set to {uri}"
                try:
                    patched = kube.patch(path, body, MERGE, f"switch {s['inference_service']} to {to}")
                    break
                except TargetError as exc:
                    if exc.status != 409 or attempt == CONFLICT_RETRIES:
                        raise
            self._wait(kube, path, s, int(patched.get("metadata", {}).get("generation", 0)))
        took = self._clock() - started
        return SwitchResult(
            detail=f"InferenceService {s['inference_service']}: {how}; Ready in {took:.1f}s",
            served_version=to,
        )

    def _wait(self, kube: KubeClient, path: str, settings: Mapping[str, Any], generation: int) -> None:
        waiter = Waiter(
            poll_interval=self._poll or float(settings.get("poll_interval", 2)),
            sleep=self._sleep,
            clock=self._clock,
        )
        deadline = waiter.deadline(timeout_seconds(settings, "timeout", "5m"))
        name = settings["inference_service"]
        while True:
            isvc = kube.get(path, f"watch InferenceService {name}")
            st = isvc.get("status", {})
            observed = int(st.get("observedGeneration", 0)) >= generation
            conditions = st.get("conditions", [])
            ready = [c for c in conditions if c.get("type") == "Ready"]
            if observed and ready and ready[0].get("status") == "True":
                return
            problem = failing_condition(conditions, FAILED) if observed else None
            if problem:
                raise TargetError(f"kserve: InferenceService {name} failed: {problem}")
            if waiter.expired(deadline):
                words = ready[0].get("message") or ready[0].get("status") if ready else "no Ready condition"
                raise TargetError(
                    f"kserve: InferenceService {name} not Ready within "
                    f"{settings.get('timeout', '5m')} ({words})",
                    retryable=True,
                )
            waiter.pause(deadline)

    def check_connection(self, model: str, settings: Mapping[str, Any]) -> str:
        with self._kube(settings) as kube:
            isvc = self._read(kube, settings)
            ns = namespace_of(settings, kube.auth)
            perm = can_i(
                kube,
                "patch",
                "serving.kserve.io",
                "inferenceservices",
                ns,
                str(settings["inference_service"]),
            )
        canary = " (canary live)" if live_canary(isvc) else ""
        return (
            f"kserve ({kube.auth.source}): InferenceService {ns}/{settings['inference_service']} found, "
            f"running {self._version(isvc, settings)}{canary}; {perm}"
        )
