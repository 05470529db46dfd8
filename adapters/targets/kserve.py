"""KServe target: pin traffic back to the last rolled-out revision, or point the predictor at another model.

With a live canary (``canaryTrafficPercent`` below 100 and traffic split between two revisions), the KServe
documented rollback is ``canaryTrafficPercent: 0``: all traffic returns to the previous rolled-out
revision. We also record the version we pinned in the annotation ``rollback-bot/pinned-version``, because
the spec still names the canary's model and KServe's status names revisions, not versions. Otherwise the
predictor's ``storageUri`` is set from the template.

When it is done is judged the way KServe reports it, never by ``status.observedGeneration``: KServe copies
that field from the Knative Service (serverless) or the predictor Deployment (raw mode), whose generation
moves with every autoscaler change (kserve ``pkg/apis/serving/v1beta1/inference_service_status.go``,
``PropagateStatus`` / ``PropagateRawStatus``). Serverless: ``Ready`` plus the traffic split of
``status.components.predictor`` giving 100 % to the revision we expect (the previous rolled-out revision
after a pin; after a new ``storageUri``, a revision created after our patch that is the latest ready one).
Raw mode has no revisions in the status: the predictor Deployment (``<name>-predictor``) must carry the new
``storageUri`` in its pod template and have finished its rollout (as ``kubectl rollout status`` judges it),
and the InferenceService must be ``Ready``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
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
from adapters.targets.kube import DEPLOYMENT, INFERENCE_SERVICE, MERGE, KubeClient, KubeTarget, failing_condition
from adapters.targets.kubeconfig import settings_problems
from adapters.targets.kubernetes import AUTH_KEYS, rollout_state
from bot.core.errors import TargetError
from bot.core.ports import SwitchRequest, SwitchResult, TrafficSplit

PINNED = "rollback-bot/pinned-version"
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
RAW_MODES = {"RawDeployment", "Standard"}
KNOWN = {"namespace", "inference_service", "storage_uri", "timeout", "poll_interval"} | AUTH_KEYS
FAILED = {
    ("Ready", "False", "RevisionFailed"),
    ("PredictorReady", "False", "RevisionFailed"),
    ("Ready", "False", "ProgressDeadlineExceeded"),
    ("PredictorReady", "False", "ProgressDeadlineExceeded"),
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


def _predictor_status(isvc: Mapping[str, Any]) -> dict[str, Any]:
    return dict(isvc.get("status", {}).get("components", {}).get("predictor") or {})


def traffic_by_revision(isvc: Mapping[str, Any]) -> dict[str, int]:
    """Percent per revision, summed as KServe does (a revision may appear twice under two tags)."""
    out: dict[str, int] = {}
    for t in _predictor_status(isvc).get("traffic") or []:
        if t.get("percent") is not None and t.get("revisionName"):
            out[str(t["revisionName"])] = out.get(str(t["revisionName"]), 0) + int(t["percent"])
    return out


def serving_revision(isvc: Mapping[str, Any]) -> str | None:
    """The revision the status says takes 100 % of the traffic, if one does."""
    full = [rev for rev, pct in traffic_by_revision(isvc).items() if pct >= 100]
    return full[0] if full else None


def is_ready(isvc: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in isvc.get("status", {}).get("conditions") or []
    )


def is_raw(isvc: Mapping[str, Any]) -> bool:
    mode = isvc.get("status", {}).get("deploymentMode") or (isvc.get("metadata", {}).get("annotations") or {}).get(
        MODE_ANNOTATION
    )
    return str(mode) in RAW_MODES


def live_canary(isvc: Mapping[str, Any]) -> bool:
    percent = isvc.get("spec", {}).get("predictor", {}).get("canaryTrafficPercent")
    split = sum(1 for pct in traffic_by_revision(isvc).values() if pct > 0) > 1
    return percent is not None and 0 < int(percent) < 100 and split


@dataclass
class Expectation:
    """What the status must show before the switch counts as done."""

    pinned_to: str | None = None  # serverless pin: this revision at 100 %
    created_before: str | None = None  # serverless new storageUri: a revision other than this one
    uri: str | None = None  # raw mode: the predictor Deployment's template carries this


class KServeTarget(KubeTarget):
    name = "kserve"

    def _read(self, kube: KubeClient, settings: Mapping[str, Any]) -> dict[str, Any]:
        name = str(settings["inference_service"])
        return kube.get(INFERENCE_SERVICE, name, f"read InferenceService {name}")

    def _spec_version(self, isvc: Mapping[str, Any], settings: Mapping[str, Any]) -> str | None:
        _, model = _model_spec(isvc)
        return version_from_template(str(settings.get("storage_uri", "")), str(model.get("storageUri", "")))

    def _version(self, isvc: Mapping[str, Any], settings: Mapping[str, Any]) -> str | None:
        percent = isvc.get("spec", {}).get("predictor", {}).get("canaryTrafficPercent")
        pinned = (isvc.get("metadata", {}).get("annotations") or {}).get(PINNED)
        if pinned and percent is not None and int(percent) == 0:
            return str(pinned)
        return self._spec_version(isvc, settings)

    # -- DeploymentTarget -----------------------------------------------------------------------------------
    def validate(self, settings: Mapping[str, Any]) -> list[str]:
        problems = missing_keys(settings, ("inference_service", "storage_uri"), self.name)
        problems += unknown_keys(settings, KNOWN, self.name)
        problems += settings_problems(settings, self.name)
        if settings.get("storage_uri"):
            problems += template_problem(str(settings["storage_uri"]), "storage_uri", self.name)
        return problems + duration_problem(settings, "timeout", self.name)

    def describe(self, request: SwitchRequest) -> str:
        s = request.settings
        uri = str(s.get("storage_uri", "<storage_uri missing>")).replace("{version}", request.to_version)
        return (
            f"PATCH ({MERGE}) inferenceservices/{s.get('inference_service')}: with a live canary "
            f"spec.predictor.canaryTrafficPercent: 0, otherwise storageUri {uri}; wait up to "
            f"{s.get('timeout', '5m')} for Ready with the expected revision at 100 % of the traffic"
        )

    def current_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
        with self._kube(settings) as kube:
            return self._version(self._read(kube, settings), settings)

    def served_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
        """Known only when the service is Ready and one revision takes all traffic: the one the spec names."""
        with self._kube(settings) as kube:
            isvc = self._read(kube, settings)
        if not is_ready(isvc) or live_canary(isvc):
            return None
        predictor = _predictor_status(isvc)
        serving = serving_revision(isvc)
        pinned = (isvc.get("metadata", {}).get("annotations") or {}).get(PINNED)
        if serving and not pinned and serving != predictor.get("latestCreatedRevision"):
            return None  # a newer revision exists but the old one still takes the traffic
        return self._version(isvc, settings)

    # -- ReportsCanary ----------------------------------------------------------------------------------------
    def canary(self, model: str, settings: Mapping[str, Any]) -> TrafficSplit | None:
        """The live canary: the spec's model takes ``latestCreatedRevision``'s share, the rest stays on
        ``latestRolledoutRevision``. KServe's status names revisions, not versions: the stable version is left
        for the bot's own history to name."""
        with self._kube(settings) as kube:
            isvc = self._read(kube, settings)
        if is_raw(isvc) or not live_canary(isvc):
            return None
        predictor = _predictor_status(isvc)
        created, stable = predictor.get("latestCreatedRevision"), predictor.get("latestRolledoutRevision")
        traffic = traffic_by_revision(isvc)
        percent = traffic.get(str(created)) if created else None
        if percent is None:
            percent = int(isvc["spec"]["predictor"]["canaryTrafficPercent"])
        return TrafficSplit(None, self._spec_version(isvc, settings), int(percent),
                            f"revision {created} (canary) beside {stable} (last rolled out)")

    def describe_abort(self, request: SwitchRequest) -> str:
        s = request.settings
        return (
            f"PATCH ({MERGE}) inferenceservices/{s.get('inference_service')}: spec.predictor.canaryTrafficPercent: "
            f"0 (KServe's documented canary rollback): the last rolled-out revision ({request.to_version}) takes "
            f"100 % and is not changed; wait up to {s.get('timeout', '5m')} for Ready with that split"
        )

    def abort_canary(self, request: SwitchRequest) -> SwitchResult:
        """``canaryTrafficPercent: 0`` only; refused when no canary is live any more (a rollback is then due)."""
        s = request.settings
        with self._kube(s) as kube:
            isvc = self._read(kube, s)
        if not live_canary(isvc):
            raise TargetError(
                f"kserve: InferenceService {s['inference_service']} has no live canary any more; nothing was "
                "aborted. Ask for a rollback instead"
            )
        return self.switch(request)

    def switch(self, request: SwitchRequest) -> SwitchResult:
        s, to = request.settings, request.to_version
        name = str(s["inference_service"])
        started = self._clock()
        with self._kube(s) as kube:
            for attempt in range(1, CONFLICT_RETRIES + 1):
                isvc = self._read(kube, s)
                predictor = _predictor_status(isvc)
                meta: dict[str, Any] = {"resourceVersion": isvc["metadata"]["resourceVersion"]}
                if live_canary(isvc) and self._spec_version(isvc, s) != to:
                    meta["annotations"] = {PINNED: to}
                    body: dict[str, Any] = {
                        "metadata": meta,
                        "spec": {"predictor": {"canaryTrafficPercent": 0}},
                    }
                    how = "canary traffic set to 0%, all traffic back on the previous rolled-out revision"
                    others = [r for r in traffic_by_revision(isvc) if r != predictor.get("latestCreatedRevision")]
                    stable = predictor.get("latestRolledoutRevision") or (others[0] if others else None)
                    expect = Expectation(pinned_to=stable)
                else:
                    key, model_block = _model_spec(isvc)
                    uri = str(s["storage_uri"]).format(version=to)
                    meta["annotations"] = {PINNED: None}
                    body = {
                        "metadata": meta,
                        "spec": {"predictor": {"canaryTrafficPercent": None, key: {"storageUri": uri}}},
                    }
                    how = f"storageUri set to {uri}"
                    changed = model_block.get("storageUri") != uri
                    expect = Expectation(
                        created_before=predictor.get("latestCreatedRevision") if changed else None, uri=uri
                    )
                try:
                    kube.patch(INFERENCE_SERVICE, name, body, PatchType.MERGE, f"switch {name} to {to}")
                    break
                except TargetError as exc:
                    if exc.status != 409 or attempt == CONFLICT_RETRIES:
                        raise
            words = self._wait(kube, s, expect)
        took = self._clock() - started
        return SwitchResult(
            detail=f"InferenceService {name}: {how}; {words} in {took:.1f}s",
            served_version=to,
        )

    def _done(self, kube: KubeClient, isvc: Mapping[str, Any], expect: Expectation) -> tuple[bool, bool, str]:
        """(done?, is the failure ours to report?, words) for one read of the InferenceService."""
        ready = is_ready(isvc)
        if is_raw(isvc):
            return self._done_raw(kube, isvc, expect, ready)
        predictor = _predictor_status(isvc)
        serving = serving_revision(isvc)
        created, latest_ready = predictor.get("latestCreatedRevision"), predictor.get("latestReadyRevision")
        split = ", ".join(f"{rev} {pct}%" for rev, pct in traffic_by_revision(isvc).items()) or "no traffic yet"
        if expect.pinned_to:
            ok = ready and serving == expect.pinned_to
            return ok, True, f"Ready, {expect.pinned_to} takes 100 % of the traffic" if ok else f"traffic: {split}"
        ours = expect.created_before is None or (created is not None and created != expect.created_before)
        if not ours:
            return False, False, f"waiting for KServe to create a new revision (traffic: {split})"
        ok = ready and created == latest_ready and serving == latest_ready
        return ok, True, f"Ready, {serving} takes 100 % of the traffic" if ok else f"traffic: {split}"

    def _done_raw(
        self, kube: KubeClient, isvc: Mapping[str, Any], expect: Expectation, ready: bool
    ) -> tuple[bool, bool, str]:
        name = f"{isvc['metadata']['name']}-predictor"
        dep = kube.get(DEPLOYMENT, name, f"read predictor deployment {name}")
        template = json.dumps(dep.get("spec", {}).get("template", {}))
        if expect.uri and expect.uri not in template:
            return False, False, f"waiting for KServe to update deployment {name}"
        complete, words = rollout_state(dep)
        ok = ready and complete
        return ok, True, f"Ready, deployment {name} rolled out ({words})" if ok else f"deployment {name}: {words}"

    def _wait(self, kube: KubeClient, settings: Mapping[str, Any], expect: Expectation) -> str:
        waiter = Waiter(
            poll_interval=self._poll or float(settings.get("poll_interval", 2)),
            sleep=self._sleep,
            clock=self._clock,
        )
        deadline = waiter.deadline(timeout_seconds(settings, "timeout", "5m"))
        name = settings["inference_service"]
        while True:
            isvc = self._read(kube, settings)
            done, ours, words = self._done(kube, isvc, expect)
            if done:
                return words
            problem = failing_condition(isvc.get("status", {}).get("conditions"), FAILED) if ours else None
            if problem:
                raise TargetError(f"kserve: InferenceService {name} failed: {problem}")
            if waiter.expired(deadline):
                raise TargetError(
                    f"kserve: InferenceService {name} not serving the rollback within "
                    f"{settings.get('timeout', '5m')} ({words})",
                    retryable=True,
                )
            waiter.pause(deadline)

    def check_connection(self, model: str, settings: Mapping[str, Any]) -> str:
        with self._kube(settings) as kube:
            isvc = self._read(kube, settings)
            perm = kube.can_i("patch", "serving.kserve.io", "inferenceservices", str(settings["inference_service"]))
        canary = " (canary live)" if live_canary(isvc) else ""
        mode = "raw" if is_raw(isvc) else "serverless"
        return (
            f"kserve ({kube.source}): InferenceService {kube.namespace}/{settings['inference_service']} found "
            f"({mode} mode), running {self._version(isvc, settings)}{canary}; {perm}"
        )
