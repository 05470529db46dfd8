"""deploy/kubernetes: every overlay and RBAC directory rendered by the real `kubectl kustomize`, each object
validated (strict) against the Kubernetes OpenAPI schemas, and the properties operators rely on asserted."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bot.policy_file import load_policy
from tests.components import require

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("postgres", "sqlite")
RBAC = ("kubernetes", "argo-rollouts", "kserve")
# The oldest Kubernetes the manifests are meant for (policy/v1 PDBs, seccompProfile) and the newest schemas.
SCHEMA_VERSIONS = ("1.25.0", kubernetes_validate.latest_version())
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|KEY|DATABASE_URL", re.IGNORECASE)


def render(directory: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    require(kubectl is not None, "kubectl (with kustomize)",
            "apt-get install kubernetes-client (.ci/run installs it)")
    assert kubectl is not None
    proc = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert docs, f"{directory} rendered nothing"
    return docs


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(KUBE / "overlays" / request.param)


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_every_rendered_object_is_valid_against_the_kubernetes_schemas(
        overlay: tuple[str, list[dict[str, Any]]], version: str) -> None:
    _, docs = overlay
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_really_rejects_a_broken_deployment(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = overlay
    broken = yaml.safe_load(yaml.safe_dump(one(docs, "Deployment")))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, SCHEMA_VERSIONS[-1], strict=True)


def test_replicas_and_update_strategy_fit_the_database(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    name, docs = overlay
    spec = one(docs, "Deployment")["spec"]
    pdb = one(docs, "PodDisruptionBudget")["spec"]
    if name == "sqlite":
        # one process per SQLite file, ever: one replica, and the old pod stops before the new one starts
        assert spec["replicas"] == 1
        assert spec["strategy"] == {"type": "Recreate"}
        assert pdb["minAvailable"] == 0
        claim = one(docs, "PersistentVolumeClaim")
        volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
        assert volumes["data"] == {"name": "data",
                                   "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}}
        env = {e["name"]: e.get("value") for e in spec["template"]["spec"]["containers"][0]["env"]}
        assert env["DATABASE_URL"] == "sqlite:////var/lib/rollback-bot/rollback-bot.db"
    else:
        assert spec["replicas"] == 2
        assert spec["strategy"]["type"] == "RollingUpdate"
        assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
        assert pdb["minAvailable"] == 1
        assert not by_kind(docs, "PersistentVolumeClaim")
    assert pdb["selector"]["matchLabels"] == spec["selector"]["matchLabels"]


def test_probes_resources_and_a_non_root_read_only_container(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = overlay
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (server,) = pod["containers"]
    assert server["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert server["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert server["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert server["ports"] == [{"name": "http", "containerPort": 3000, "protocol": "TCP"}]
    for container in [*pod["containers"], *pod["initContainers"]]:
        assert container["resources"]["requests"]["memory"]
        assert container["resources"]["limits"]["memory"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    service = one(docs, "Service")["spec"]
    assert service["selector"] == one(docs, "Deployment")["spec"]["selector"]["matchLabels"]
    assert service["ports"][0]["targetPort"] == "http"


def test_the_schema_is_upgraded_before_serve_starts(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = overlay
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    (server,) = pod["containers"]
    assert init["args"] == ["db", "upgrade"]
    assert init["image"] == server["image"]
    assert init["envFrom"] == server["envFrom"]


def test_the_policy_configmap_is_mounted_where_the_image_reads_it(
        overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = overlay
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    (server,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert env["ROLLBACK_POLICY"] == "/etc/rollback-bot/rollback.toml"
    mount = next(m for m in server["volumeMounts"] if m["mountPath"] == "/etc/rollback-bot")
    assert mount["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    policy_maps = [c for c in by_kind(docs, "ConfigMap") if c["metadata"]["name"].startswith("rollback-bot-policy")]
    (policy_map,) = policy_maps
    assert volume["configMap"]["name"] == policy_map["metadata"]["name"]  # the generated, hashed name
    assert set(policy_map["data"]) == {"rollback.toml"}
    tomllib.loads(policy_map["data"]["rollback.toml"])


def test_no_secret_values_only_references(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = overlay
    assert not by_kind(docs, "Secret"), "the manifests must reference the Secret, never carry one"
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    for container in [*pod["containers"], *pod["initContainers"]]:
        assert {"secretRef": {"name": "rollback-bot"}} in container["envFrom"]
        for var in container.get("env", []):
            if SECRET_NAME.search(var["name"]) and "value" in var:
                assert "@" not in var["value"] and var["value"].startswith("sqlite:"), var
    for config_map in by_kind(docs, "ConfigMap"):
        for key in config_map.get("data", {}):
            assert not SECRET_NAME.search(key), f"{key} belongs in the Secret"
    assert one(docs, "ServiceAccount")["metadata"]["name"] == pod["serviceAccountName"]
    assert all(d["metadata"].get("namespace") in (None, "rollback-bot") for d in docs)


def test_the_example_policy_is_valid() -> None:
    loaded = load_policy(KUBE / "base" / "rollback.toml")
    assert loaded.policy is not None and not loaded.problems, loaded.problems


EXPECTED_RULES = {
    "kubernetes": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]}],
    "argo-rollouts": [
        {"apiGroups": ["argoproj.io"], "resources": ["rollouts"], "verbs": ["get", "patch"]},
        {"apiGroups": ["argoproj.io"], "resources": ["rollouts/status"], "verbs": ["patch"]},
        {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["list"]},
    ],
    "kserve": [
        {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"], "verbs": ["get", "patch"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]},  # raw mode: the rollout
    ],
}


@pytest.mark.parametrize("target", RBAC)
def test_each_target_gets_only_the_verbs_it_uses_in_one_namespace(target: str) -> None:
    docs = render(KUBE / "rbac" / target)
    for doc in docs:
        kubernetes_validate.validate(doc, SCHEMA_VERSIONS[-1], strict=True)
    role = one(docs, "ClusterRole")
    assert role["rules"] == EXPECTED_RULES[target]
    assert not any(verb in rule["verbs"] for rule in role["rules"] for verb in ("*", "delete", "create", "update"))
    assert not by_kind(docs, "ClusterRoleBinding"), "bound per namespace, never cluster-wide"
    binding = one(docs, "RoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "rollback-bot", "namespace": "rollback-bot"}]


def test_the_image_tag_is_the_package_version(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = overlay
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert {c["image"] for c in [*pod["containers"], *pod["initContainers"]]} == {f"rollback-bot:{version}"}


@pytest.mark.parametrize("target", RBAC)
def test_the_shipped_role_grants_what_the_target_page_documents(target: str) -> None:
    """docs/targets/<target>.md's Role is the one its tests run a whole rollback under; ours must match it."""
    page = (ROOT / "docs" / "targets" / f"{target}.md").read_text()
    documented = [doc for block in re.findall(r"```yaml\n(.*?)```", page, re.S)
                  for doc in yaml.safe_load_all(block) if isinstance(doc, dict) and doc.get("kind") == "Role"]
    assert documented, f"no Role in docs/targets/{target}.md"
    rules = [{k: v for k, v in rule.items() if k != "resourceNames"} for rule in documented[0]["rules"]]
    assert one(render(KUBE / "rbac" / target), "ClusterRole")["rules"] == rules
