"""A fake Kubernetes API server: Deployments, ReplicaSets, Argo Rollouts and KServe InferenceServices.

It follows the real API where the adapters depend on it: paths and verbs; the three patch content types
(strategic merge only for built-in kinds, 415 for custom resources); optimistic concurrency (a patch that
carries a stale ``metadata.resourceVersion`` is a 409 Conflict); ``metav1.Status`` bodies for 401, 404,
409, 415 and 422; generation bumped on spec changes only; the status subresource; and controllers that
make progress one step per poll so the adapters' waiting loops are exercised. It answers what lightkube
sends (``?fieldManager=`` on patches, ``labelSelector`` on lists, ``SelfSubjectAccessReview`` posts) and
refuses a ``watch`` (the targets poll), so a change in what the library sends shows up here. ``tls=``
serves HTTPS with a certificate the test made; ``fail_next`` answers the next requests with those codes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import ssl
import threading
from collections.abc import Callable
from typing import Any

from tests.fakes.httpserver import FakeService, LoopbackServer, Request, Response

APPS = "/apis/apps/v1"
ARGO = "/apis/argoproj.io/v1alpha1"
KSERVE = "/apis/serving.kserve.io/v1beta1"
# kserve pkg/constants/constants.go: the controller writes the storageUri into this pod-template annotation
# of the predictor Deployment (pkg/controller/v1beta1/inferenceservice/components/predictor.go)
SOURCE_URI = "internal.serving.kserve.io/storage-initializer-sourceuri"
HASH_LABEL = "rollouts-pod-template-hash"
REVISION = "rollout.argoproj.io/revision"
PATH = re.compile(
    r"^/apis/(?P<group>[^/]+)/(?P<version>[^/]+)/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)"
    r"(?:/(?P<name>[^/]+))?(?:/(?P<sub>status))?$"
)
KINDS = {
    "deployments": ("Deployment", "apps"),
    "replicasets": ("ReplicaSet", "apps"),
    "rollouts": ("Rollout", "argoproj.io"),
    "inferenceservices": ("InferenceService", "serving.kserve.io"),
}
BUILTIN = {"deployments", "replicasets"}


def status(code: int, reason: str, message: str, name: str = "", plural: str = "") -> Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if name:
        body["details"] = {"name": name, "group": KINDS.get(plural, ("", ""))[1], "kind": plural}
    return Response(code, body)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


MERGE_KEYS = {
    "containers": "name",
    "env": "name",
    "initContainers": "name",
    "volumes": "name",
    "ports": "containerPort",
}


def strategic_merge(target: Any, patch: Any) -> Any:
    """Enough of strategic merge: lists of containers and env vars merge by name, others replace."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif key in MERGE_KEYS and isinstance(value, list):
            merged = copy.deepcopy(result.get(key) or [])
            by = MERGE_KEYS[key]
            for item in value:
                for i, old in enumerate(merged):
                    if old.get(by) == item.get(by):
                        merged[i] = strategic_merge(old, item)
                        break
                else:
                    merged.append(copy.deepcopy(item))
            result[key] = merged
        else:
            result[key] = strategic_merge(result.get(key), value)
    return result


def _pointer(doc: Any, path: str) -> tuple[Any, str | int]:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
    for part in parts[:-1]:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    last: str | int = parts[-1]
    if isinstance(doc, list):
        last = len(doc) if last == "-" else int(last)
    return doc, last


def json_patch(target: Any, ops: list[dict[str, Any]]) -> Any:
    """RFC 6902 add/replace/remove/test; raises ValueError like the API server's 422."""
    doc = copy.deepcopy(target)
    for op in ops:
        parent, key = _pointer(doc, op["path"])
        kind = op["op"]
        if kind == "test":
            if parent[key] != op["value"]:
                raise ValueError(f"testing value {op['path']} failed")
        elif kind == "remove":
            del parent[key]
        elif kind == "add" and isinstance(parent, list):
            parent.insert(int(key), copy.deepcopy(op["value"]))
        elif kind in ("add", "replace"):
            if kind == "replace" and (key not in parent if isinstance(parent, dict) else int(key) >= len(parent)):
                raise ValueError(f"replace operation does not apply: doc is missing path: {op['path']}")
            parent[key] = copy.deepcopy(op["value"])
        else:
            raise ValueError(f"unsupported op {kind}")
    return doc


def model_block(predictor: dict[str, Any]) -> dict[str, Any]:
    """The predictor block holding storageUri: ``model`` (current schema) or a framework key (older one)."""
    if isinstance(predictor.get("model"), dict):
        return dict(predictor["model"])
    return next(v for v in predictor.values() if isinstance(v, dict) and "storageUri" in v)


def template_hash(template: dict[str, Any]) -> str:
    clean = copy.deepcopy(template)
    clean.get("metadata", {}).get("labels", {}).pop(HASH_LABEL, None)
    return hashlib.sha256(json.dumps(clean, sort_keys=True).encode()).hexdigest()[:10]


class FakeKube(FakeService):
    """State plus the handler; start it with ``with FakeKube() as kube: kube.url``."""

    def __init__(
        self, token: str = "test-token", tls: tuple[str, str] | None = None, client_ca: str | None = None
    ) -> None:
        self.token = token
        self.fail_next: list[int] = []
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.sim: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.lock = threading.RLock()
        self.rv = 1000
        self.before_patch: list[Callable[[FakeKube], None]] = []
        self.deny: set[str] = set()
        self.role_rules: list[dict[str, Any]] | None = None  # a Role's rules: enforce them (403 otherwise)
        self.server = LoopbackServer(self.handle)
        self.scheme = "http"
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            if client_ca:  # mutual TLS, as kubeadm's admin kubeconfig uses: no client certificate, no handshake
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(client_ca)
            self.server.server.socket = ctx.wrap_socket(self.server.server.socket, server_side=True)
            self.scheme = "https"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server.server_address[1]}"

    def _next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    # -- seeding --------------------------------------------------------------------------------------------
    def put(self, plural: str, ns: str, obj: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            kind, _ = KINDS[plural]
            meta = obj.setdefault("metadata", {})
            meta.update(namespace=ns, resourceVersion=self._next_rv(), uid=f"uid-{meta['name']}")
            meta.setdefault("generation", 1)
            obj.setdefault("kind", kind)
            obj.setdefault("status", {})
            self.objects[(plural, ns, meta["name"])] = obj
            return obj

    def add_deployment(
        self, ns: str, name: str, image: str, replicas: int = 3, env: list[dict[str, str]] | None = None
    ) -> dict[str, Any]:
        container: dict[str, Any] = {"name": "model", "image": image}
        if env:
            container["env"] = env
        return self.put(
            "deployments",
            ns,
            {
                "apiVersion": "apps/v1",
                "metadata": {"name": name, "generation": 1},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}},
                },
                "status": {
                    "observedGeneration": 1,
                    "replicas": replicas,
                    "updatedReplicas": replicas,
                    "availableReplicas": replicas,
                    "readyReplicas": replicas,
                    "conditions": [
                        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
                    ],
                },
            },
        )

    def add_rollout(self, ns: str, name: str, image: str, replicas: int = 2) -> dict[str, Any]:
        template = {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "model", "image": image}]},
        }
        ro = self.put(
            "rollouts",
            ns,
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "metadata": {"name": name},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": {"app": name}},
                    "template": template,
                    "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}},
                },
                "status": {},
            },
        )
        h = self._ensure_rs(ns, ro)
        ro["status"] = {
            "phase": "Healthy",
            "stableRS": h,
            "currentPodHash": h,
            "observedGeneration": "1",
            "replicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": replicas,
        }
        return ro

    def add_rollout_object(self, ns: str, ro: dict[str, Any]) -> dict[str, Any]:
        """Seed a Rollout as written in a manifest (e.g. an upstream example), already Healthy."""
        ro = self.put("rollouts", ns, copy.deepcopy(ro))
        h = self._ensure_rs(ns, ro)
        replicas = int(ro["spec"].get("replicas", 1))
        ro["status"] = {
            "phase": "Healthy",
            "stableRS": h,
            "currentPodHash": h,
            "observedGeneration": str(ro["metadata"]["generation"]),
            "replicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": replicas,
        }
        return ro

    def add_as_is(self, plural: str, ns: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Seed an object as an upstream test or doc shows it, status and uid included (mid-canary objects)."""
        uid = obj.get("metadata", {}).get("uid")
        stored = self.put(plural, ns, copy.deepcopy(obj))
        if uid:
            stored["metadata"]["uid"] = uid
        if plural == "inferenceservices":
            pred = stored.get("status", {}).get("components", {}).get("predictor", {})
            revisions = {t["revisionName"]: "" for t in pred.get("traffic", [])}
            self.sim[("inferenceservices", ns, stored["metadata"]["name"])] = {
                "revisions": revisions, "n": len(revisions), "kgen": 1, "raw": False}
        return stored

    def _template_source(self, ns: str, ro: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """(pod template, selector labels): the Rollout's own, or those of the Deployment its workloadRef names."""
        ref = ro["spec"].get("workloadRef")
        if ref:
            dep = self.objects[("deployments", ns, ref["name"])]
            return dep["spec"]["template"], dep["spec"]["selector"]["matchLabels"]
        return ro["spec"]["template"], ro["spec"]["selector"]["matchLabels"]

    def add_isvc(self, ns: str, name: str, storage_uri: str, raw: bool = False) -> dict[str, Any]:
        return self.add_isvc_object(
            ns,
            {
                "apiVersion": "serving.kserve.io/v1beta1",
                "metadata": {"name": name},
                "spec": {
                    "predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": storage_uri}}
                },
            },
            raw=raw,
        )

    def add_isvc_object(self, ns: str, obj: dict[str, Any], raw: bool = False) -> dict[str, Any]:
        """Seed an InferenceService as written in a manifest (e.g. a KServe sample), already rolled out."""
        isvc = self.put("inferenceservices", ns, copy.deepcopy(obj))
        name = isvc["metadata"]["name"]
        storage_uri = model_block(isvc["spec"]["predictor"])["storageUri"]
        self.sim[("inferenceservices", ns, name)] = {"revisions": {}, "n": 0, "kgen": 1, "raw": raw}
        if raw:
            # raw (Standard) mode: no revisions or traffic in the status, a predictor Deployment instead
            dep = self.add_deployment(ns, f"{name}-predictor", "kserve/sklearnserver:v0.14.0", replicas=2)
            dep["spec"]["template"]["metadata"]["annotations"] = {SOURCE_URI: storage_uri}
            isvc["status"] = {
                "observedGeneration": 1,
                "deploymentMode": "RawDeployment",
                "conditions": [
                    {"type": "PredictorReady", "status": "True"},
                    {"type": "IngressReady", "status": "True"},
                    {"type": "Ready", "status": "True"},
                ],
                "components": {"predictor": {"url": f"http://{name}-predictor.{ns}.svc.cluster.local"}},
            }
            return isvc
        self._isvc_new_revision(isvc, initial=True)
        return isvc

    def isvc_autoscale(self, ns: str, name: str, times: int = 5) -> None:
        """The autoscaler changed the Knative Service (or the raw Deployment) ``times`` times: its generation
        moved, and KServe copies that into the InferenceService's ``status.observedGeneration``."""
        with self.lock:
            sim = self.sim[("inferenceservices", ns, name)]
            sim["kgen"] += times
            self.objects[("inferenceservices", ns, name)]["status"]["observedGeneration"] = sim["kgen"]

    def get(self, plural: str, ns: str, name: str) -> dict[str, Any]:
        return self.objects[(plural, ns, name)]

    # -- external actors (CI deploying, another writer) -----------------------------------------------------
    def apply_spec(self, plural: str, ns: str, name: str, change: Callable[[dict[str, Any]], None]) -> None:
        with self.lock:
            obj = self.objects[(plural, ns, name)]
            before = copy.deepcopy(obj["spec"])
            change(obj)
            self._after_write(plural, ns, obj, before)

    def touch(self, plural: str, ns: str, name: str) -> None:
        """Another writer changed annotations: resourceVersion moves, generation does not."""
        with self.lock:
            obj = self.objects[(plural, ns, name)]
            obj["metadata"].setdefault("annotations", {})["other-writer"] = self._next_rv()
            obj["metadata"]["resourceVersion"] = self._next_rv()

    # -- HTTP -----------------------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        if self.fail_next:
            code = self.fail_next.pop(0)
            return status(code, "InternalError" if code >= 500 else "TooManyRequests", f"injected {code}")
        if req.query.get("watch"):
            return status(400, "BadRequest", "this stand-in serves no watch; the targets poll")
        if req.headers.get("authorization") != f"Bearer {self.token}":
            return status(401, "Unauthorized", "Unauthorized")
        if req.path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" and req.method == "POST":
            review = req.json()
            attrs = review["spec"]["resourceAttributes"]
            review["status"] = {"allowed": f"{attrs['verb']}:{attrs['resource']}" not in self.deny}
            return Response(201, review)
        m = PATH.match(req.path)
        if not m or m["plural"] not in KINDS:
            return status(404, "NotFound", "the server could not find the requested resource")
        plural, ns, name, sub = m["plural"], m["ns"], m["name"], m["sub"]
        refused = self._forbidden(req.method, KINDS[plural][1], plural + (f"/{sub}" if sub else ""), name)
        if refused:
            return refused
        with self.lock:
            if name is None and req.method == "GET":
                return self._list(plural, ns, req)
            key = (plural, ns, name or "")
            if key not in self.objects:
                return status(
                    404, "NotFound", f'{plural}.{KINDS[plural][1]} "{name}" not found', name or "", plural
                )
            if req.method == "GET":
                self._tick(plural, ns, self.objects[key])
                return Response(200, self.objects[key])
            if req.method == "PATCH":
                return self._patch(plural, ns, key, req, sub)
        return status(405, "MethodNotAllowed", f"method {req.method} not allowed")

    def _forbidden(self, method: str, group: str, resource: str, name: str | None) -> Response | None:
        """RBAC as the API server applies a Role: verb, API group, resource (with subresource), name."""
        if self.role_rules is None:
            return None
        verb = {"GET": "get" if name else "list", "PATCH": "patch", "PUT": "update", "POST": "create"}[method]
        for rule in self.role_rules:
            if (
                group in rule.get("apiGroups", [])
                and resource in rule.get("resources", [])
                and verb in rule.get("verbs", [])
                and (not rule.get("resourceNames") or name in rule["resourceNames"])
            ):
                return None
        return status(
            403,
            "Forbidden",
            f'{resource.split("/")[0]}.{group} "{name or ""}" is forbidden: User "system:serviceaccount:ml:'
            f'rollback-bot" cannot {verb} resource "{resource}" in API group "{group}" in the namespace "ml"',
        )

    def _list(self, plural: str, ns: str, req: Request) -> Response:
        selector = dict(
            part.split("=", 1) for part in req.query.get("labelSelector", [""])[0].split(",") if part
        )
        items = [
            o
            for (p, n, _), o in self.objects.items()
            if p == plural
            and n == ns
            and all(o["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())
        ]
        kind = KINDS[plural][0]
        return Response(
            200,
            {
                "kind": f"{kind}List",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": str(self.rv)},
                "items": items,
            },
        )

    def _patch(
        self, plural: str, ns: str, key: tuple[str, str, str], req: Request, sub: str | None
    ) -> Response:
        if self.before_patch:  # one hook per PATCH, in order: lets a test interleave another writer
            self.before_patch.pop(0)(self)
        obj = self.objects[key]
        ctype = req.headers.get("content-type", "").split(";")[0].strip()
        try:
            body = req.json()
        except ValueError:
            return status(400, "BadRequest", "error decoding patch: invalid JSON")
        try:
            if ctype == "application/strategic-merge-patch+json" and plural in BUILTIN:
                new = strategic_merge(obj, body)
            elif ctype == "application/merge-patch+json":
                new = merge_patch(obj, body)
            elif ctype == "application/json-patch+json":
                new = json_patch(obj, body)
            else:
                return status(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types include: "
                    "application/json-patch+json, application/merge-patch+json, "
                    "application/apply-patch+yaml",
                )
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            return status(
                422,
                "Invalid",
                f"the server rejected our request due to an error in our request: {exc}",
                key[2],
                plural,
            )
        if new["metadata"].get("resourceVersion") != obj["metadata"]["resourceVersion"]:
            return status(
                409,
                "Conflict",
                f"Operation cannot be fulfilled on {plural}.{KINDS[plural][1]} "
                f'"{key[2]}": the object has been modified; please apply your '
                f"changes to the latest version and try again",
                key[2],
                plural,
            )
        problem = self._invalid(plural, new)
        if problem:
            kind = KINDS[plural][0]
            return status(
                422, "Invalid", f'{kind}.{KINDS[plural][1]} "{key[2]}" is invalid: {problem}', key[2], plural
            )
        before = copy.deepcopy(obj["spec"])
        if sub == "status":
            obj["status"] = new.get("status", {})
        elif plural in ("rollouts", "inferenceservices", "deployments"):  # status subresource: ignored here
            new["status"] = obj.get("status", {})
            obj.clear()
            obj.update(new)
        else:
            obj.clear()
            obj.update(new)
        self._after_write(plural, ns, obj, before)
        return Response(200, obj)

    @staticmethod
    def _invalid(plural: str, obj: dict[str, Any]) -> str | None:
        if plural in ("deployments", "rollouts") and "template" in obj["spec"]:
            for i, c in enumerate(obj["spec"]["template"]["spec"]["containers"]):
                if not c.get("image"):
                    return f"spec.template.spec.containers[{i}].image: Required value"
        if plural == "inferenceservices":
            pct = obj["spec"]["predictor"].get("canaryTrafficPercent")
            if pct is not None and not 0 <= int(pct) <= 100:
                return "spec.predictor.canaryTrafficPercent: Invalid value: must be between 0 and 100"
        return None

    def _after_write(self, plural: str, ns: str, obj: dict[str, Any], before: dict[str, Any]) -> None:
        obj["metadata"]["resourceVersion"] = self._next_rv()
        if obj["spec"] != before:
            obj["metadata"]["generation"] = int(obj["metadata"].get("generation", 1)) + 1
            if plural == "deployments":
                self._deploy_start(ns, obj)
                for (p, n, _), ro in list(self.objects.items()):
                    ref = ro.get("spec", {}).get("workloadRef") if p == "rollouts" and n == ns else None
                    if ref and ref.get("kind") == "Deployment" and ref.get("name") == obj["metadata"]["name"]:
                        self._rollout_start(ns, ro)
            elif plural == "rollouts":
                self._rollout_start(ns, obj)
            elif plural == "inferenceservices":
                self._isvc_start(ns, obj, before)

    # -- controllers: one step per GET ----------------------------------------------------------------------
    def _tick(self, plural: str, ns: str, obj: dict[str, Any]) -> None:
        sim = self.sim.get((plural, ns, obj["metadata"]["name"]))
        if sim and sim.get("steps"):
            step = sim["steps"].pop(0)
            step(obj)
        elif plural == "rollouts":
            self.rollout_abort_seen(ns, obj["metadata"]["name"])

    def _deploy_start(self, ns: str, obj: dict[str, Any]) -> None:
        want = int(obj["spec"].get("replicas", 1))
        gen = obj["metadata"]["generation"]
        broken = any("broken" in c.get("image", "") for c in obj["spec"]["template"]["spec"]["containers"])

        def observed(o: dict[str, Any]) -> None:
            o["status"].update(
                observedGeneration=gen, updatedReplicas=1, replicas=want + 1, availableReplicas=want
            )

        def half(o: dict[str, Any]) -> None:
            o["status"].update(updatedReplicas=want, replicas=want + 1, availableReplicas=want)

        def done(o: dict[str, Any]) -> None:
            o["status"].update(
                updatedReplicas=want, replicas=want, availableReplicas=want, readyReplicas=want
            )

        def deadline(o: dict[str, Any]) -> None:
            for cond in o["status"]["conditions"]:
                if cond["type"] == "Progressing":
                    cond.update(
                        status="False",
                        reason="ProgressDeadlineExceeded",
                        message=f'ReplicaSet "{o["metadata"]["name"]}-7d9f" has timed out progressing.',
                    )

        steps = [lambda o: None, observed, deadline] if broken else [lambda o: None, observed, half, done]
        self.sim[("deployments", ns, obj["metadata"]["name"])] = {"steps": steps}

    def _ensure_rs(self, ns: str, ro: dict[str, Any]) -> str:
        source, match = self._template_source(ns, ro)
        h = template_hash(source)
        revisions = [
            int(o["metadata"]["annotations"][REVISION])
            for (p, n, _), o in self.objects.items()
            if p == "replicasets" and n == ns
        ]
        key = ("replicasets", ns, f"{ro['metadata']['name']}-{h}")
        if key in self.objects:
            self.objects[key]["metadata"]["annotations"][REVISION] = str(max(revisions) + 1)
            return h
        template = copy.deepcopy(source)
        template["metadata"]["labels"][HASH_LABEL] = h
        self.put(
            "replicasets",
            ns,
            {
                "apiVersion": "apps/v1",
                "metadata": {
                    "name": key[2],
                    "labels": {**match, HASH_LABEL: h},
                    "annotations": {REVISION: str(max(revisions, default=0) + 1)},
                    "ownerReferences": [
                        {
                            "apiVersion": "argoproj.io/v1alpha1",
                            "kind": "Rollout",
                            "name": ro["metadata"]["name"],
                            "uid": ro["metadata"]["uid"],
                            "controller": True,
                        }
                    ],
                },
                "spec": {"replicas": ro["spec"].get("replicas", 1), "template": template},
            },
        )
        return h

    def _rollout_start(self, ns: str, ro: dict[str, Any]) -> None:
        h = self._ensure_rs(ns, ro)
        gen = str(ro["metadata"]["generation"])
        st = ro["status"]
        to_stable = h == st.get("stableRS")

        def observe(o: dict[str, Any]) -> None:
            o["status"].update(
                observedGeneration=gen,
                currentPodHash=h,
                phase="Progressing",
                message="more replicas need to be updated",
            )
            if to_stable:
                o["status"]["abort"] = False
                o["status"].pop("abortedAt", None)

        def settle(o: dict[str, Any]) -> None:
            if to_stable:
                o["status"].update(phase="Healthy", message="")
            else:  # a new version: canary step 1 done, waiting at the pause step
                o["status"].update(phase="Paused", message="CanaryPauseStep", currentStepIndex=1)

        self.sim[("rollouts", ns, ro["metadata"]["name"])] = {"steps": [observe, settle]}
        if st.get("abort") and not to_stable:
            st["abort"] = False

    def rollout_abort_seen(self, ns: str, name: str) -> None:
        ro = self.objects[("rollouts", ns, name)]
        if ro["status"].get("abort"):
            rev = max(
                int(o["metadata"]["annotations"][REVISION])
                for (p, n, _), o in self.objects.items()
                if p == "replicasets" and n == ns
            )
            ro["status"].update(
                phase="Degraded", message=f"RolloutAborted: Rollout aborted update to revision {rev}"
            )

    def _isvc_new_revision(self, isvc: dict[str, Any], initial: bool = False) -> str:
        sim = self.sim[("inferenceservices", isvc["metadata"]["namespace"], isvc["metadata"]["name"])]
        sim["n"] += 1
        rev = f"{isvc['metadata']['name']}-predictor-{sim['n']:05d}"
        sim["revisions"][rev] = model_block(isvc["spec"]["predictor"])["storageUri"]
        if initial:
            isvc["status"] = {
                "observedGeneration": 1,
                "url": f"http://{isvc['metadata']['name']}.example.com",
                "conditions": [
                    {"type": "PredictorReady", "status": "True"},
                    {"type": "IngressReady", "status": "True"},
                    {"type": "Ready", "status": "True"},
                ],
                "components": {
                    "predictor": {
                        "latestCreatedRevision": rev,
                        "latestReadyRevision": rev,
                        "latestRolledoutRevision": rev,
                        "traffic": [{"revisionName": rev, "percent": 100, "latestRevision": True}],
                    }
                },
            }
        return rev

    def _isvc_start(self, ns: str, isvc: dict[str, Any], before: dict[str, Any]) -> None:
        sim = self.sim[("inferenceservices", ns, isvc["metadata"]["name"])]
        sim["kgen"] += 1
        gen = sim["kgen"]  # the Knative Service's generation, not the InferenceService's
        predictor = isvc["spec"]["predictor"]
        if sim["raw"]:
            self._isvc_raw_start(ns, isvc)
            return
        pred = isvc["status"]["components"]["predictor"]
        new_model = model_block(predictor) != model_block(before["predictor"])
        rev = self._isvc_new_revision(isvc) if new_model else pred["latestCreatedRevision"]
        broken = "broken" in model_block(predictor)["storageUri"]
        canary = predictor.get("canaryTrafficPercent")

        def ready(o: dict[str, Any], value: str, reason: str = "", message: str = "") -> None:
            why = {"reason": reason, "message": message} if reason else {}
            o["status"]["conditions"] = [
                {"type": "PredictorReady", "status": value, **why},
                {"type": "IngressReady", "status": "True"},
                {"type": "Ready", "status": value, **why},
            ]

        def observe(o: dict[str, Any]) -> None:
            o["status"]["observedGeneration"] = gen
            o["status"]["components"]["predictor"]["latestCreatedRevision"] = rev
            ready(o, "Unknown")

        def settle(o: dict[str, Any]) -> None:
            p = o["status"]["components"]["predictor"]
            if broken:
                ready(
                    o,
                    "False",
                    "RevisionFailed",
                    f'Revision "{rev}" failed with message: container exited with code 1.',
                )
                return
            p["latestReadyRevision"] = rev
            stable = p.get("latestRolledoutRevision")
            if canary is None or canary == 100 or stable == rev:
                if stable != rev:
                    p["previousRolledoutRevision"] = stable
                p["latestRolledoutRevision"] = rev
                p["traffic"] = [{"revisionName": rev, "percent": 100, "latestRevision": True}]
            else:
                p["traffic"] = [
                    {"revisionName": rev, "percent": int(canary), "latestRevision": True, "tag": "latest"},
                    {
                        "revisionName": stable,
                        "percent": 100 - int(canary),
                        "latestRevision": False,
                        "tag": "prev",
                    },
                ]
            ready(o, "True")

        # the first read after a change still shows the old status (Ready, old revision at 100 %): the
        # controller has not reconciled yet
        sim["steps"] = [lambda o: None, observe, settle]

    def _isvc_raw_start(self, ns: str, isvc: dict[str, Any]) -> None:
        uri = model_block(isvc["spec"]["predictor"])["storageUri"]
        name = f"{isvc['metadata']['name']}-predictor"

        def push(o: dict[str, Any]) -> None:  # the controller rewrites the predictor Deployment
            def change(dep: dict[str, Any]) -> None:
                dep["spec"]["template"]["metadata"]["annotations"] = {SOURCE_URI: uri}

            self.apply_spec("deployments", ns, name, change)
            o["status"]["observedGeneration"] = self.objects[("deployments", ns, name)]["status"]["observedGeneration"]

        # Ready stays True from before the change: only the Deployment tells when the rollout is over
        self.sim[("inferenceservices", ns, isvc["metadata"]["name"])]["steps"] = [lambda o: None, push]

    def isvc_revision_uri(self, ns: str, name: str, revision: str) -> str:
        return str(self.sim[("inferenceservices", ns, name)]["revisions"][revision])
