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
from bot.core.ports import SwitchRequest, SwitchResult

HASH_LABEL = "rollouts-pod-template-hash"
REVISION = "rollout.argoproj.io/revision"
KNOWN = {"namespace", "rollout", "container", "image", "timeout", "poll_interval"} | AUTH_KEYS
CONFLICT_RETRIES = 5
WORKLOAD_KINDS = {("apps/v1", "Deployment"): DEPLOYMENT, ("apps/v1", "ReplicaSet"): REPLICASET}


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
        stable = ro.get("status", {}).get("stableRS")
        for rs in self._replicasets(kube, ro, self._source(kube, ro, settings)):
            if self._hash(rs) == stable:
                return self._version(rs.get("spec", {}).get("template", {}), settings)
        return None

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
