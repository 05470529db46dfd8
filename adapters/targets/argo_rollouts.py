"""Argo Rollouts target: abort the update and return the Rollout to a known revision, as the plugin does.

``kubectl argo rollouts abort`` sends the merge patch ``{"status":{"abort":true}}`` to the status
subresource (falling back to the main resource when it is absent): traffic goes back to the stable
ReplicaSet at once. ``kubectl argo rollouts undo`` then JSON-patches ``/spec/template`` with the template
of the wanted ReplicaSet (minus its ``rollouts-pod-template-hash`` label), so the Rollout stops trying to go
to the bad version. We do both, then wait for ``status.phase == Healthy`` with the stable ReplicaSet being
the current one. A version with no ReplicaSet left is set through the ``image`` template instead.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from adapters.targets.common import (
    Waiter,
    duration_problem,
    missing_keys,
    template_problem,
    timeout_seconds,
    unknown_keys,
)
from adapters.targets.kube import JSON_PATCH, MERGE, KubeClient, KubeTarget, can_i, namespace_of
from adapters.targets.kubernetes import AUTH_KEYS, pick_container, version_in
from bot.core.errors import TargetError
from bot.core.ports import SwitchRequest, SwitchResult

GROUP = "/apis/argoproj.io/v1alpha1"
HASH_LABEL = "rollouts-pod-template-hash"
REVISION = "rollout.argoproj.io/revision"
KNOWN = {"namespace", "rollout", "container", "image", "timeout", "poll_interval"} | AUTH_KEYS
CONFLICT_RETRIES = 5


def _containers(template: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(template.get("spec", {}).get("containers", []))


def _clean(template: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(template))
    labels = out.get("metadata", {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return out


class ArgoRolloutsTarget(KubeTarget):
    name = "argo-rollouts"

    def _path(self, kube: KubeClient, settings: Mapping[str, Any]) -> str:
        return f"{GROUP}/namespaces/{namespace_of(settings, kube.auth)}/rollouts/{settings['rollout']}"

    def _version(self, template: Mapping[str, Any], settings: Mapping[str, Any]) -> str | None:
        container = pick_container(
            _containers(template),
            settings.get("container"),
            f"argo-rollouts: rollout {settings.get('rollout')}",
        )
        return version_in(container, settings)

    def _replicasets(
        self, kube: KubeClient, ro: Mapping[str, Any], settings: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        labels = ro.get("spec", {}).get("selector", {}).get("matchLabels", {})
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        data = kube.get(
            f"/apis/apps/v1/namespaces/{namespace_of(settings, kube.auth)}/replicasets",
            "list the rollout's ReplicaSets",
            params={"labelSelector": selector},
        )
        uid = ro.get("metadata", {}).get("uid")
        owned = [
            rs
            for rs in data.get("items", [])
            if any(
                ref.get("uid") == uid and ref.get("controller")
                for ref in rs.get("metadata", {}).get("ownerReferences", [])
            )
        ]
        return sorted(
            owned, key=lambda rs: int(rs["metadata"].get("annotations", {}).get(REVISION, "0")), reverse=True
        )

    def _hash(self, rs: Mapping[str, Any]) -> str:
        return str(rs.get("metadata", {}).get("labels", {}).get(HASH_LABEL, ""))

    # -- DeploymentTarget -----------------------------------------------------------------------------------
    def validate(self, settings: Mapping[str, Any]) -> list[str]:
        problems = missing_keys(settings, ("rollout",), self.name)
        problems += unknown_keys(settings, KNOWN, self.name)
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
            f"update is in progress; then PATCH ({JSON_PATCH}) /spec/template back to the ReplicaSet "
            f"running {request.to_version} (or image "
            f"{str(s.get('image', '?')).replace('{version}', request.to_version)}); wait up to "
            f"{s.get('timeout', '5m')} for phase Healthy"
        )

    def current_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
        with self._kube(settings) as kube:
            ro = kube.get(self._path(kube, settings), f"read rollout {settings.get('rollout')}")
        return self._version(ro.get("spec", {}).get("template", {}), settings)

    def served_version(self, model: str, settings: Mapping[str, Any]) -> str | None:
        """The stable ReplicaSet's version: what takes the traffic that is not canary traffic."""
        with self._kube(settings) as kube:
            ro = kube.get(self._path(kube, settings), f"read rollout {settings.get('rollout')}")
            stable = ro.get("status", {}).get("stableRS")
            for rs in self._replicasets(kube, ro, settings):
                if self._hash(rs) == stable:
                    return self._version(rs.get("spec", {}).get("template", {}), settings)
        return None

    def switch(self, request: SwitchRequest) -> SwitchResult:
        s, to = request.settings, request.to_version
        started = self._clock()
        with self._kube(s) as kube:
            path = self._path(kube, s)
            ro = kube.get(path, f"read rollout {s['rollout']}")
            status = ro.get("status", {})
            aborted = False
            if status.get("currentPodHash") != status.get("stableRS") and not status.get("abort"):
                self._abort(kube, path, s)
                aborted = True
            for attempt in range(1, CONFLICT_RETRIES + 1):
                ro = kube.get(path, f"read rollout {s['rollout']}")
                wanted_hash, ops, how = self._plan(kube, ro, s, to)
                if not ops:
                    break
                try:
                    kube.patch(path, ops, JSON_PATCH, f"restore rollout {s['rollout']} to {to}")
                    break
                except TargetError as exc:
                    if exc.status != 409 or attempt == CONFLICT_RETRIES:
                        raise
            self._wait(kube, path, s, wanted_hash, to)
        took = self._clock() - started
        prefix = "aborted the update, " if aborted else ""
        return SwitchResult(
            detail=f"rollout {s['rollout']}: {prefix}{how}; Healthy in {took:.1f}s", served_version=to
        )

    def _abort(self, kube: KubeClient, path: str, settings: Mapping[str, Any]) -> None:
        body = {"status": {"abort": True}}
        try:
            kube.patch(f"{path}/status", body, MERGE, f"abort rollout {settings['rollout']}")
        except TargetError as exc:
            if exc.status != 404:
                raise
            kube.patch(path, body, MERGE, f"abort rollout {settings['rollout']}")

    def _plan(
        self, kube: KubeClient, ro: Mapping[str, Any], settings: Mapping[str, Any], to: str
    ) -> tuple[str | None, list[dict[str, Any]], str]:
        """(hash we expect to become stable, JSON patch ops, words). Empty ops: nothing to change."""
        rv = ro["metadata"]["resourceVersion"]
        guard = {"op": "replace", "path": "/metadata/resourceVersion", "value": rv}  # stale -> 409
        template = ro.get("spec", {}).get("template", {})
        stable = ro.get("status", {}).get("stableRS")
        candidates = [
            rs
            for rs in self._replicasets(kube, ro, settings)
            if self._version(rs.get("spec", {}).get("template", {}), settings) == to
        ]
        candidates.sort(key=lambda rs: self._hash(rs) != stable)  # the stable one first
        if candidates:
            rs = candidates[0]
            restored = _clean(rs["spec"]["template"])
            revision = rs["metadata"].get("annotations", {}).get(REVISION, "?")
            if _clean(template) == restored:
                return self._hash(rs), [], f"template already at revision {revision} ({to})"
            return (
                self._hash(rs),
                [guard, {"op": "replace", "path": "/spec/template", "value": restored}],
                f"template restored to revision {revision} ({to})",
            )
        if not settings.get("image"):
            raise TargetError(
                f"argo-rollouts: no ReplicaSet of rollout {settings['rollout']} runs {to} and "
                "no 'image' template is set"
            )
        containers = _containers(template)
        container = pick_container(
            containers, settings.get("container"), f"argo-rollouts: rollout {settings['rollout']}"
        )
        index = containers.index(container)
        image = str(settings["image"]).format(version=to)
        return (
            None,
            [
                guard,
                {"op": "replace", "path": f"/spec/template/spec/containers/{index}/image", "value": image},
            ],
            f"image set to {image}",
        )

    def _wait(
        self, kube: KubeClient, path: str, settings: Mapping[str, Any], wanted_hash: str | None, to: str
    ) -> None:
        waiter = Waiter(
            poll_interval=self._poll or float(settings.get("poll_interval", 2)),
            sleep=self._sleep,
            clock=self._clock,
        )
        deadline = waiter.deadline(timeout_seconds(settings, "timeout", "5m"))
        while True:
            ro = kube.get(path, f"watch rollout {settings['rollout']}")
            st = ro.get("status", {})
            observed = str(st.get("observedGeneration", "")) == str(ro["metadata"].get("generation", ""))
            stable_now = st.get("stableRS") == st.get("currentPodHash")
            right = wanted_hash is None or st.get("stableRS") == wanted_hash
            words = f"phase {st.get('phase')}: {st.get('message') or 'no message'}"
            if observed and stable_now and right and st.get("phase") == "Healthy":
                if wanted_hash is None and self.served_version("", settings) != to:
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
            ro = kube.get(self._path(kube, settings), f"read rollout {settings.get('rollout')}")
            ns = namespace_of(settings, kube.auth)
            perm = can_i(kube, "patch", "argoproj.io", "rollouts", ns, str(settings["rollout"]))
        st = ro.get("status", {})
        return (
            f"argo-rollouts ({kube.auth.source}): rollout {ns}/{settings['rollout']} found, phase "
            f"{st.get('phase')}, running {self._version(ro['spec']['template'], settings)}; {perm}"
        )
