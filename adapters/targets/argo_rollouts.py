"""Argo Rollouts target: abort the update and return the Rollout to a known revision, as the plugin does.

``kubectl argo rollouts abort`` sends the merge patch ``{"status":{"abort":true}}`` to the status
subresource (falling back to the main resource when it is absent): traffic goes back to the stable
ReplicaSet at once. ``kubectl argo rollouts undo`` then JSON-patches ``/spec/template`` with the template
of the wanted ReplicaSet (minus its ``rollouts-pod-template-hash`` label), so the Rollout stops trying to go
to the bad version. A Rollout with ``spec.workloadRef`` has no template of its own: the pod template comes
from the referenced Deployment (or ReplicaSet), and undo patches that object instead (argo-rollouts
``pkg/kubectl-argo-rollouts/cmd/undo/undo.go``, ``undoWorkloadRef``). We do the same, then wait for
``status.phase == Healthy`` with the stable ReplicaSet being the current one. A version with no ReplicaSet
left is set through the ``image`` template instead.
"""

from __future__ import annotations

import copy
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
)
from adapters.targets.kube import DEPLOYMENT, JSON_PATCH, MERGE, REPLICASET, ROLLOUT, KubeClient, KubeTarget
from adapters.targets.kubeconfig import settings_problems
from adapters.targets.kubernetes import AUTH_KEYS, pick_container, version_in
from bot.core.errors import TargetError
from bot.core.ports import SwitchRequest, SwitchResult, TrafficSplit

HASH_LABEL = "rollouts-pod-template-hash"
REVISION = "rollout.argoproj.io/revision"
KNOWN = {"namespace", "rollout", "container", "image", "timeout", "poll_interval"} | AUTH_KEYS
CONFLICT_RETRIES = 5
WORKLOAD_KINDS = {("apps/v1", "Deployment"): DEPLOYMENT, ("apps/v1", "ReplicaSet"): REPLICASET}


def canary_weight(ro: Mapping[str, Any]) -> int:
    """The canary's share of the traffic, as the controller computes it.

    With traffic routing the controller writes the split it set in ``status.canary.weights``; otherwise the
    weight is upstream's ``GetCurrentSetWeight`` (``utils/replicaset/canary.go``): 0 once aborted, 100 past the
    last step, else the nearest ``setWeight`` at or before ``status.currentStepIndex``.
    """
    st = ro.get("status", {})
    weights = (st.get("canary") or {}).get("weights") or {}
    if isinstance(weights.get("canary"), dict) and weights["canary"].get("weight") is not None:
        return int(weights["canary"]["weight"])
    if st.get("abort"):
        return 0
    steps = ro.get("spec", {}).get("strategy", {}).get("canary", {}).get("steps") or []
    index = int(st.get("currentStepIndex") or 0)
    if index >= len(steps):
        return 100
    for step in reversed(steps[: index + 1]):
        if step.get("setWeight") is not None:
            return int(step["setWeight"])
    return 0


def canary_in_progress(ro: Mapping[str, Any]) -> bool:
    """A canary update under way: a canary strategy, a stable ReplicaSet and a different current one."""
    st = ro.get("status", {})
    stable = st.get("stableRS") or (st.get("canary") or {}).get("stableRS")
    return (
        "canary" in (ro.get("spec", {}).get("strategy") or {})
        and bool(stable)
        and st.get("currentPodHash") not in (None, stable)
        and not st.get("abort")
        and not st.get("promoteFull")
    )


def _containers(template: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(template.get("spec", {}).get("containers", []))


def _clean(template: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(template))
    labels = out.get("metadata", {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return out


@dataclass
class Source:
    """Where the Rollout's pod template lives: the Rollout itself, or the object its workloadRef names."""

    kind: Any
    name: str
    obj: dict[str, Any]
    label: str
    plural: str = "rollouts"

    @property
    def template(self) -> dict[str, Any]:
        return dict(self.obj.get("spec", {}).get("template", {}))


class ArgoRolloutsTarget(KubeTarget):
    name = "argo-rollouts"

    def _rollout(self, kube: KubeClient, settings: Mapping[str, Any]) -> dict[str, Any]:
        return kube.get(ROLLOUT, str(settings["rollout"]), f"read rollout {settings.get('rollout')}")

    def _source(self, kube: KubeClient, ro: Mapping[str, Any], settings: Mapping[str, Any]) -> Source:
        ref = ro.get("spec", {}).get("workloadRef")
        if not ref:
            return Source(ROLLOUT, str(settings["rollout"]), dict(ro), f"rollout {settings['rollout']}")
        key = (str(ref.get("apiVersion", "apps/v1")), str(ref.get("kind")))
        kind = WORKLOAD_KINDS.get(key)
        if kind is None:
            raise TargetError(
                f"argo-rollouts: rollout {settings['rollout']} refers to a {key[1]} ({key[0]}); "
                "only a Deployment or ReplicaSet workloadRef is supported"
            )
        name = str(ref.get("name"))
        obj = kube.get(kind, name, f"read {key[1]} {name} (workloadRef of rollout {settings['rollout']})")
        label = f"{key[1].lower()} {name} (workloadRef of rollout {settings['rollout']})"
        return Source(kind, name, obj, label, f"{key[1].lower()}s")

    def _version(self, template: Mapping[str, Any], settings: Mapping[str, Any], where: str = "") -> str | None:
        container = pick_container(
            _containers(template),
            settings.get("container"),
            f"argo-rollouts: {where or 'rollout ' + str(settings.get('rollout'))}",
        )
        return version_in(container, settings)

    def _replicasets(
        self, kube: KubeClient, ro: Mapping[str, Any], source: Source
    ) -> list[dict[str, Any]]:
        labels = ro.get("spec", {}).get("selector", {}).get("matchLabels") or (
            source.obj.get("spec", {}).get("selector", {}).get("matchLabels", {}) if source.kind is not ROLLOUT else {}
        )
        items = kube.list(REPLICASET, "list the rollout's ReplicaSets", labels=labels or None)
        uid = ro.get("metadata", {}).get("uid")
        owned = [
            rs
            for rs in items
            if any(
                ref.get("uid") == uid and ref.get("controller")
                for ref in rs.get("metadata", {}).get("ownerReferences", [])
            )
        ]
        return sorted(
            owned,
            key=lambda rs: int((rs["metadata"].get("annotations") or {}).get(REVISION, "0")),
            reverse=True,
        )

    def _hash(self, rs: Mapping[str, Any]) -> str:
        return str((rs.get("metadata", {}).get("labels") or {}).get(HASH_LABEL, ""))

    # -- DeploymentTarget -----------------------------------------------------------------------------------
    def validate(self, settings: Mapping[str, Any]) -> list[str]:
        problems = missing_keys(settings, ("rollout",), self.name)
        problems += unknown_keys(settings, KNOWN, self.name)
        problems += settings_problems(settings, self.name)
        if settings.get("image"):
            problems += template_problem(str(settings["image"]), "image", self.name)
        else:
            problems.append(
                "argo-rollouts: setting 'image' (\"repo/x:{version}\") is required to tell versions apart"
            )
        return problems + duration_problem(settings, "timeout", self.name)

    def describe(self, request: SwitchRequest) -> str:
        s = request.settings
        return (
            f'PATCH ({MERGE}) rollouts/{s.get("rollout")}/status {{"status":{{"abort":true}}}} if an '
            f"update is in progress; then PATCH ({JSON_PATCH}) /spec/template (of the rollout, or of the "
            f"Deployment its workloadRef names) back to the ReplicaSet running {request.to_version} (or image "
            f"{str(s.get('image', '?')).replace('{version}', request.to_version)}); wait up to "
            f"{s.get('timeout', '5m')} for phase Healthy"
        )

    def current_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
        with self._kube(settings) as kube:
            source = self._source(kube, self._rollout(kube, settings), settings)
        return self._version(source.template, settings, source.label)

    def served_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
        """The stable ReplicaSet's version: what takes the traffic that is not canary traffic."""
        with self._kube(settings) as kube:
            return self._stable_version(kube, settings)

    def _stable_version(self, kube: KubeClient, settings: Mapping[str, Any]) -> str | None:
        ro = self._rollout(kube, settings)
        st = ro.get("status", {})
        stable = st.get("stableRS") or (st.get("canary") or {}).get("stableRS")
        for rs in self._replicasets(kube, ro, self._source(kube, ro, settings)):
            if self._hash(rs) == stable:
                return self._version(rs.get("spec", {}).get("template", {}), settings)
        return None

    # -- ReportsCanary ----------------------------------------------------------------------------------------
    def canary(self, model: str, settings: Mapping[str, Any]) -> TrafficSplit | None:
        with self._kube(settings) as kube:
            ro = self._rollout(kube, settings)
            if not canary_in_progress(ro):
                return None
            source = self._source(kube, ro, settings)
            canary_version = self._version(source.template, settings, source.label)
            stable_version = self._stable_version(kube, settings)
        steps = ro.get("spec", {}).get("strategy", {}).get("canary", {}).get("steps") or []
        index = int(ro.get("status", {}).get("currentStepIndex") or 0)
        step = f"step {min(index + 1, len(steps))} of {len(steps)}" if steps else None
        return TrafficSplit(stable_version, canary_version, canary_weight(ro), step)

    def describe_abort(self, request: SwitchRequest) -> str:
        name = request.settings.get("rollout")
        return (
            f'PATCH ({MERGE}) rollouts/{name}/status {{"status":{{"abort":true}}}} (as `kubectl argo rollouts '
            f"abort`): the canary gets 0 %, the stable ReplicaSet ({request.to_version}) keeps serving and is not "
            f"changed; wait up to {request.settings.get('timeout', '5m')} for the controller to report the abort"
        )

    def abort_canary(self, request: SwitchRequest) -> SwitchResult:
        """Only the abort: the template and the stable ReplicaSet stay as they are (no undo)."""
        s = request.settings
        started = self._clock()
        with self._kube(s) as kube:
            ro = self._rollout(kube, s)
            st = ro.get("status", {})
            if not st.get("abort"):
                if not canary_in_progress(ro):
                    raise TargetError(
                        f"argo-rollouts: rollout {s['rollout']} has no canary in progress any more "
                        f"(phase {st.get('phase')}); nothing was aborted. Ask for a rollback instead"
                    )
                self._abort(kube, s)
            words = self._wait_aborted(kube, s)
        took = self._clock() - started
        return SwitchResult(
            detail=f"rollout {s['rollout']}: canary aborted, {words}; the stable ReplicaSet "
            f"({request.to_version}) was not changed; {took:.1f}s",
            served_version=request.to_version,
        )

    def _wait_aborted(self, kube: KubeClient, settings: Mapping[str, Any]) -> str:
        waiter = Waiter(
            poll_interval=self._poll or float(settings.get("poll_interval", 2)),
            sleep=self._sleep,
            clock=self._clock,
        )
        deadline = waiter.deadline(timeout_seconds(settings, "timeout", "5m"))
        while True:
            ro = self._rollout(kube, settings)
            st = ro.get("status", {})
            if st.get("abort") and st.get("phase") == "Degraded" and canary_weight(ro) == 0:
                return f"phase {st.get('phase')}: {st.get('message') or 'aborted'}; canary weight 0 %"
            if waiter.expired(deadline):
                raise TargetError(
                    f"argo-rollouts: rollout {settings['rollout']} did not report the abort within "
                    f"{settings.get('timeout', '5m')} (phase {st.get('phase')}: {st.get('message') or ''})",
                    retryable=True,
                )
            waiter.pause(deadline)

    def switch(self, request: SwitchRequest) -> SwitchResult:
        s, to = request.settings, request.to_version
        started = self._clock()
        with self._kube(s) as kube:
            ro = self._rollout(kube, s)
            status = ro.get("status", {})
            aborted = False
            if status.get("currentPodHash") != status.get("stableRS") and not status.get("abort"):
                self._abort(kube, s)
                aborted = True
            for attempt in range(1, CONFLICT_RETRIES + 1):
                ro = self._rollout(kube, s)
                source = self._source(kube, ro, s)
                wanted_hash, ops, how = self._plan(kube, ro, source, s, to)
                if not ops:
                    break
                try:
                    kube.patch(source.kind, source.name, ops, PatchType.JSON, f"restore {source.label} to {to}")
                    break
                except TargetError as exc:
                    if exc.status != 409 or attempt == CONFLICT_RETRIES:
                        raise
            self._wait(kube, s, wanted_hash, to)
        took = self._clock() - started
        prefix = "aborted the update, " if aborted else ""
        return SwitchResult(
            detail=f"rollout {s['rollout']}: {prefix}{how}; Healthy in {took:.1f}s", served_version=to
        )

    def _abort(self, kube: KubeClient, settings: Mapping[str, Any]) -> None:
        body = {"status": {"abort": True}}
        name = str(settings["rollout"])
        try:
            kube.patch(ROLLOUT, name, body, PatchType.MERGE, f"abort rollout {name}", status=True)
        except TargetError as exc:
            if exc.status != 404:
                raise
            kube.patch(ROLLOUT, name, body, PatchType.MERGE, f"abort rollout {name}")

    def _plan(
        self, kube: KubeClient, ro: Mapping[str, Any], source: Source, settings: Mapping[str, Any], to: str
    ) -> tuple[str | None, list[dict[str, Any]], str]:
        """(hash we expect to become stable, JSON patch ops, words). Empty ops: nothing to change."""
        rv = source.obj["metadata"]["resourceVersion"]
        guard = {"op": "replace", "path": "/metadata/resourceVersion", "value": rv}  # stale -> 409
        template = source.template
        stable = ro.get("status", {}).get("stableRS")
        candidates = [
            rs
            for rs in self._replicasets(kube, ro, source)
            if self._version(rs.get("spec", {}).get("template", {}), settings) == to
        ]
        candidates.sort(key=lambda rs: self._hash(rs) != stable)  # the stable one first
        where = "" if source.kind is ROLLOUT else f" of {source.label}"
        if candidates:
            rs = candidates[0]
            restored = _clean(rs["spec"]["template"])
            revision = (rs["metadata"].get("annotations") or {}).get(REVISION, "?")
            if _clean(template) == restored:
                return self._hash(rs), [], f"template{where} already at revision {revision} ({to})"
            return (
                self._hash(rs),
                [guard, {"op": "replace", "path": "/spec/template", "value": restored}],
                f"template{where} restored to revision {revision} ({to})",
            )
        if not settings.get("image"):
            raise TargetError(
                f"argo-rollouts: no ReplicaSet of rollout {settings['rollout']} runs {to} and "
                "no 'image' template is set"
            )
        containers = _containers(template)
        container = pick_container(containers, settings.get("container"), f"argo-rollouts: {source.label}")
        index = containers.index(container)
        image = str(settings["image"]).format(version=to)
        return (
            None,
            [
                guard,
                {"op": "replace", "path": f"/spec/template/spec/containers/{index}/image", "value": image},
            ],
            f"image{where} set to {image}",
        )

    def _wait(self, kube: KubeClient, settings: Mapping[str, Any], wanted_hash: str | None, to: str) -> None:
        waiter = Waiter(
            poll_interval=self._poll or float(settings.get("poll_interval", 2)),
            sleep=self._sleep,
            clock=self._clock,
        )
        deadline = waiter.deadline(timeout_seconds(settings, "timeout", "5m"))
        while True:
            ro = kube.get(ROLLOUT, str(settings["rollout"]), f"watch rollout {settings['rollout']}")
            st = ro.get("status", {})
            observed = str(st.get("observedGeneration", "")) == str(ro["metadata"].get("generation", ""))
            stable_now = st.get("stableRS") == st.get("currentPodHash")
            right = wanted_hash is None or st.get("stableRS") == wanted_hash
            words = f"phase {st.get('phase')}: {st.get('message') or 'no message'}"
            if observed and stable_now and right and st.get("phase") == "Healthy":
                if wanted_hash is None and self._stable_version(kube, settings) != to:
                    raise TargetError(
                        f"argo-rollouts: rollout {settings['rollout']} is Healthy but its "
                        f"stable ReplicaSet does not run {to}"
                    )
                return
            if observed and st.get("phase") == "Degraded" and not st.get("abort"):
                raise TargetError(
                    f"argo-rollouts: rollout {settings['rollout']} is Degraded: {st.get('message', '')}"
                )
            if waiter.expired(deadline):
                raise TargetError(
                    f"argo-rollouts: rollout {settings['rollout']} did not become Healthy "
                    f"within {settings.get('timeout', '5m')} ({words})",
                    retryable=True,
                )
            waiter.pause(deadline)

    def check_connection(self, model: str, settings: Mapping[str, Any]) -> str:
        with self._kube(settings) as kube:
            ro = self._rollout(kube, settings)
            source = self._source(kube, ro, settings)
            perm = kube.can_i("patch", "argoproj.io", "rollouts", str(settings["rollout"]))
            if source.kind is not ROLLOUT:
                perm += "; " + kube.can_i("patch", "apps", source.plural, source.name)
        st = ro.get("status", {})
        via = f" via {source.label}" if source.kind is not ROLLOUT else ""
        return (
            f"argo-rollouts ({kube.source}): rollout {kube.namespace}/{settings['rollout']} found{via}, phase "
            f"{st.get('phase')}, running {self._version(source.template, settings, source.label)}; {perm}"
        )
