"""Where the Kubernetes targets find their API server and credentials, read the way kubectl reads them.

Order (the first that applies wins): settings ``api_url`` (+ env ``KUBERNETES_TOKEN``); settings
``kubeconfig`` or env ``KUBECONFIG`` (a path list, merged); the in-cluster service account; ``~/.kube/config``.

lightkube parses the cluster and user entries (PyYAML, so YAML 1.1: ``insecure-skip-tls-verify: no`` is
false) and builds TLS and bearer/basic/client-certificate auth. What lightkube leaves out is done here, with
kubectl's rules: merging several files (the first file to set a name or ``current-context`` wins, relative
paths resolve against the file that holds them), ``proxy-url``, ``exec`` plugins of every
``client.authentication.k8s.io`` version with one-line errors, and refusing a CA together with
``insecure-skip-tls-verify`` instead of picking one. The merge and path rules follow client-go's
``tools/clientcmd/loader.go`` (``ClientConfigLoadingRules.Load``, ``ResolveLocalPaths``).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import json
import os
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import yaml
from lightkube.config.kubeconfig import SingleConfig
from lightkube.config.models import Cluster, Context, User
from lightkube.core.exceptions import ConfigError

from adapters.targets.common import env_value
from bot.core.errors import TargetError

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
EXEC_VERSIONS = (
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
    "client.authentication.k8s.io/v1alpha1",
)
EXEC_TIMEOUT = 30.0
SECTIONS = (("clusters", "cluster"), ("contexts", "context"), ("users", "user"))
PATH_KEYS = {
    "cluster": ("certificate-authority",),
    "user": ("client-certificate", "client-key", "tokenFile"),
}


def one_line(text: str, limit: int = 300) -> str:
    """Outside words (stderr, YAML errors) squeezed into one line, cut to ``limit``."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


def fail(message: str) -> TargetError:
    return TargetError(f"kubernetes: {one_line(message, 500)}")


@dataclass
class Connection:
    """One resolved API server: lightkube's config plus what lightkube does not carry itself."""

    config: SingleConfig
    source: str
    namespace: str | None = None
    proxy: str | None = None
    exec_spec: dict[str, Any] | None = None
    cluster: dict[str, Any] = field(default_factory=dict)
    plugin_env: dict[str, str] = field(default_factory=dict)  # what an exec plugin runs with


# -- reading and merging kubeconfig files -------------------------------------------------------------------
def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise fail(f"cannot read kubeconfig {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise fail(f"kubeconfig {path} is not UTF-8 text") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise fail(f"kubeconfig {path} is not valid YAML{where}: {problem}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise fail(f"kubeconfig {path} is not a mapping")
    return data


def _resolve_paths(entry: dict[str, Any], kind: str, base: Path) -> dict[str, Any]:
    out = dict(entry)
    for key in PATH_KEYS.get(kind, ()):
        value = out.get(key)
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            out[key] = str(base / value)
        elif isinstance(value, str) and value:
            out[key] = str(Path(value).expanduser())
    exec_spec = out.get("exec")
    if kind == "user" and isinstance(exec_spec, dict):
        command = exec_spec.get("command")
        # a command with a path separator is relative to the kubeconfig; a bare name is looked up in PATH
        if isinstance(command, str) and os.sep in command and not Path(command).is_absolute():
            out["exec"] = {**exec_spec, "command": str(base / command)}
    return out


def merge(files: list[tuple[Path, dict[str, Any]]]) -> dict[str, Any]:
    """kubectl's merge: the first file to set ``current-context`` or to name an entry wins, whole entries only."""
    merged: dict[str, Any] = {"clusters": [], "contexts": [], "users": [], "current-context": None}
    for path, doc in files:
        if merged["current-context"] is None and doc.get("current-context"):
            merged["current-context"] = str(doc["current-context"])
        for section, inner in SECTIONS:
            items = doc.get(section) or []
            if not isinstance(items, list):
                raise fail(f"kubeconfig {path}: '{section}' is not a list")
            for item in items:
                if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                    raise fail(f"kubeconfig {path}: an entry of '{section}' has no name")
                if any(seen["name"] == item["name"] for seen in merged[section]):
                    continue
                body = item.get(inner) or {}
                if not isinstance(body, dict):
                    raise fail(f"kubeconfig {path}: {inner} '{item['name']}' is not a mapping")
                base = path.expanduser().absolute().parent
                merged[section].append({"name": item["name"], inner: _resolve_paths(body, inner, base)})
    return merged


def load_files(paths: list[str], *, explicit: bool) -> tuple[dict[str, Any], str]:
    """Read and merge kubeconfig files. ``KUBECONFIG`` skips missing files as kubectl does; a setting does not."""
    wanted = [Path(p).expanduser() for p in paths if p.strip()]
    present = [p for p in wanted if p.exists()]
    missing = [p for p in wanted if not p.exists()]
    if explicit and missing:
        raise fail(f"kubeconfig {missing[0]} does not exist")
    if not present:
        listed = ", ".join(str(p) for p in wanted) or "(empty)"
        raise fail(f"none of the kubeconfig files in KUBECONFIG exists: {listed}")
    merged = merge([(p, _read(p)) for p in present])
    return merged, "kubeconfig " + os.pathsep.join(str(p) for p in present)


def _named(merged: Mapping[str, Any], section: str, inner: str, name: str) -> dict[str, Any]:
    for item in merged[section]:
        if item["name"] == name:
            return dict(item[inner])
    raise fail(f"kubeconfig has no {inner} named '{name}'")


# -- exec credential plugins ---------------------------------------------------------------------------------
def run_exec_plugin(
    spec: Mapping[str, Any], cluster: Mapping[str, Any], base_env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Run an ``exec`` plugin the way client-go does and return its ExecCredential ``status``.

    The plugin gets ``base_env`` (the bot's environment, `.env` included), its ``env`` entries and
    ``KUBERNETES_EXEC_INFO``; it has no terminal (the bot runs unattended), so ``interactiveMode: Always`` is
    refused up front.
    """
    api = spec.get("apiVersion")
    command = spec.get("command")
    if api not in EXEC_VERSIONS:
        raise fail(f"exec plugin apiVersion '{api}' is not one of {', '.join(EXEC_VERSIONS)}")
    if not isinstance(command, str) or not command:
        raise fail("exec plugin has no command")
    if spec.get("interactiveMode") == "Always":
        raise fail(f"exec plugin {command} needs a terminal (interactiveMode: Always); the bot has none")
    args = spec.get("args") or []
    env = dict(os.environ if base_env is None else base_env)
    for item in spec.get("env") or []:
        if isinstance(item, dict) and "name" in item:
            env[str(item["name"])] = str(item.get("value", ""))
    info: dict[str, Any] = {"apiVersion": api, "kind": "ExecCredential", "spec": {"interactive": False}}
    if spec.get("provideClusterInfo"):
        info["spec"]["cluster"] = {
            k: cluster[k]
            for k in ("server", "certificate-authority-data", "insecure-skip-tls-verify", "proxy-url")
            if k in cluster
        }
    env["KUBERNETES_EXEC_INFO"] = json.dumps(info)
    try:
        proc = subprocess.run(
            [command, *[str(a) for a in args]],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=EXEC_TIMEOUT,
            check=False,
        )
    except FileNotFoundError as exc:
        hint = spec.get("installHint")
        raise fail(f"exec plugin {command} not found" + (f" ({hint})" if hint else "")) from exc
    except subprocess.TimeoutExpired as exc:
        raise fail(f"exec plugin {command} did not answer within {EXEC_TIMEOUT:.0f}s") from exc
    except OSError as exc:
        raise fail(f"exec plugin {command} cannot be run: {exc.strerror or exc}") from exc
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.decode(errors="replace").splitlines() if ln.strip()]
        last = f": {lines[-1]}" if lines else ""
        raise fail(f"exec plugin {command} exited with status {proc.returncode}{one_line(last, 200)}")
    try:
        credential = json.loads(proc.stdout)
    except ValueError as exc:  # never echo the output: it may hold a secret
        raise fail(f"exec plugin {command} printed something that is not JSON (an ExecCredential)") from exc
    if not isinstance(credential, dict) or credential.get("kind") != "ExecCredential":
        raise fail(f"exec plugin {command} did not print an ExecCredential")
    if credential.get("apiVersion") != api:
        raise fail(
            f"exec plugin {command} answered apiVersion '{credential.get('apiVersion')}', "
            f"the kubeconfig asked for '{api}'"
        )
    status = credential.get("status")
    if not isinstance(status, dict):
        raise fail(f"exec plugin {command} printed an ExecCredential without status")
    token = status.get("token")
    cert, key = status.get("clientCertificateData"), status.get("clientKeyData")
    if not (isinstance(token, str) and token) and not (isinstance(cert, str) and isinstance(key, str)):
        raise fail(f"exec plugin {command} gave neither status.token nor a client certificate and key")
    return status


def _user_from_exec(user: User, status: Mapping[str, Any]) -> User:
    changes: dict[str, Any] = {"exec": None}
    if status.get("token"):
        changes["token"] = str(status["token"])
    if status.get("clientCertificateData") and status.get("clientKeyData"):
        # lightkube takes client-certificate-data as kubeconfig does: base64 of the PEM
        changes["client_cert_data"] = base64.b64encode(str(status["clientCertificateData"]).encode()).decode()
        changes["client_key_data"] = base64.b64encode(str(status["clientKeyData"]).encode()).decode()
    return msgspec.structs.replace(user, **changes)


_exec_cache: dict[str, tuple[dict[str, Any], datetime.datetime | None]] = {}
_exec_lock = threading.Lock()


def _expiry(status: Mapping[str, Any]) -> datetime.datetime | None:
    raw = status.get("expirationTimestamp")
    if not isinstance(raw, str):
        return None
    try:
        return datetime.datetime.fromisoformat(raw)
    except ValueError:
        return datetime.datetime.now(datetime.UTC)  # unreadable: treat as expired, run the plugin each time


def exec_credential(
    spec: Mapping[str, Any], cluster: Mapping[str, Any], env: Mapping[str, str], *, fresh: bool = False
) -> dict[str, Any]:
    """The plugin's credential, kept as client-go keeps it: until ``expirationTimestamp`` (with a minute to
    spare), or until the API server answers 401 when the plugin gives no expiry (``fresh=True``)."""
    key = json.dumps([spec, cluster.get("server")], sort_keys=True, default=str)
    now = datetime.datetime.now(datetime.UTC)
    with _exec_lock:
        cached = _exec_cache.get(key)
        if cached and not fresh and (cached[1] is None or cached[1] - datetime.timedelta(minutes=1) > now):
            return cached[0]
        status = run_exec_plugin(spec, cluster, env)
        _exec_cache[key] = (status, _expiry(status))
        return status


def refresh_exec(conn: Connection, *, fresh: bool = True) -> Connection:
    """The connection with the exec plugin's credential; ``fresh`` runs the plugin again (after a 401)."""
    if conn.exec_spec is None or conn.config.user is None:
        return conn
    status = exec_credential(conn.exec_spec, conn.cluster, conn.plugin_env, fresh=fresh)
    user = _user_from_exec(conn.config.user, status)
    return dataclasses.replace(conn, config=conn.config._replace(user=user))


# -- building a connection -----------------------------------------------------------------------------------
def _convert(data: Mapping[str, Any], kind: type[Any], what: str) -> Any:
    try:
        return msgspec.convert(dict(data), kind)
    except msgspec.ValidationError as exc:
        raise fail(f"{what}: {exc}") from exc


def from_merged(
    merged: dict[str, Any], source: str, plugin_env: Mapping[str, str] | None = None
) -> Connection:
    name = merged.get("current-context")
    if not name:
        raise fail(f"{source} sets no current-context")
    context = _named(merged, "contexts", "context", str(name))
    cluster_name = context.get("cluster")
    if not cluster_name:
        raise fail(f"context '{name}' names no cluster")
    cluster_raw = _named(merged, "clusters", "cluster", str(cluster_name))
    user_raw: dict[str, Any] = (
        _named(merged, "users", "user", str(context["user"])) if context.get("user") else {}
    )
    provider = user_raw.get("auth-provider")
    if provider:
        kind = provider.get("name") if isinstance(provider, dict) else provider
        raise fail(
            f"user '{context.get('user')}' uses auth-provider '{kind}', which the bot does not support; "
            "give it an exec plugin or a token"
        )
    if not cluster_raw.get("server"):
        raise fail(f"cluster '{cluster_name}' has no server")
    has_ca = cluster_raw.get("certificate-authority") or cluster_raw.get("certificate-authority-data")
    if has_ca and cluster_raw.get("insecure-skip-tls-verify") is True:
        raise fail(
            f"cluster '{cluster_name}' sets both a certificate authority and insecure-skip-tls-verify: true "
            "(kubectl refuses this too); remove one"
        )
    if cluster_raw.get("tls-server-name"):
        raise fail(f"cluster '{cluster_name}': tls-server-name is not supported; point server at that name")
    cluster = _convert(cluster_raw, Cluster, f"cluster '{cluster_name}'")
    user = _convert(user_raw, User, f"user '{context.get('user')}'")
    ctx_namespace = context.get("namespace")
    config = SingleConfig(
        context_name=str(name),
        context=Context(cluster=str(cluster_name), namespace=str(ctx_namespace) if ctx_namespace else None),
        cluster=cluster,
        user=user,
    )
    exec_spec = user_raw.get("exec") if isinstance(user_raw.get("exec"), dict) else None
    conn = Connection(
        config=config,
        source=source,
        namespace=str(ctx_namespace) if ctx_namespace else None,
        proxy=str(cluster_raw["proxy-url"]) if cluster_raw.get("proxy-url") else None,
        exec_spec=exec_spec,
        cluster=cluster_raw,
        plugin_env=dict(os.environ if plugin_env is None else plugin_env),
    )
    if exec_spec is not None and not (user.token or user.token_file):
        conn = refresh_exec(conn, fresh=False)
    return conn


def _in_cluster(env: Mapping[str, str] | None, sa_dir: Path) -> Connection | None:
    host, port = env_value(env, "KUBERNETES_SERVICE_HOST"), env_value(env, "KUBERNETES_SERVICE_PORT")
    token = sa_dir / "token"
    if not host or not token.exists():
        return None
    server = f"https://{f'[{host}]' if ':' in host else host}:{port or '443'}"
    namespace_file = sa_dir / "namespace"
    namespace = namespace_file.read_text().strip() if namespace_file.exists() else None
    # tokenFile: lightkube re-reads it on a 401, so the kubelet's token rotation is followed
    merged = {
        "clusters": [{"name": "in-cluster", "cluster": {"server": server,
                                                         "certificate-authority": str(sa_dir / "ca.crt")}}],
        "users": [{"name": "sa", "user": {"tokenFile": str(token)}}],
        "contexts": [{"name": "in-cluster", "context": {"cluster": "in-cluster", "user": "sa",
                                                        **({"namespace": namespace} if namespace else {})}}],
        "current-context": "in-cluster",
    }
    return from_merged(merged, "in-cluster service account")


def resolve(
    settings: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    *,
    sa_dir: Path | None = None,
    home: Path | None = None,
) -> Connection:
    """Find the API server and credentials; see the module docstring for the order."""
    try:
        return _resolve(settings, env, sa_dir or SA_DIR, home or Path("~").expanduser())
    except ConfigError as exc:
        raise fail(f"kubeconfig: {exc}") from exc
    except OSError as exc:  # e.g. a service-account file the bot may not read
        raise fail(f"cannot read {exc.filename or 'a credential file'}: {exc.strerror or exc}") from exc


def _resolve(settings: Mapping[str, Any], env: Mapping[str, str] | None, sa_dir: Path, home: Path) -> Connection:
    plugin_env = {**os.environ, **(env or {})}
    if settings.get("api_url"):
        token = env_value(env, "KUBERNETES_TOKEN")
        cluster: dict[str, Any] = {"server": str(settings["api_url"])}
        if settings.get("ca_file"):
            cluster["certificate-authority"] = str(Path(str(settings["ca_file"])).expanduser())
        if settings.get("insecure_skip_tls_verify") is True:
            cluster["insecure-skip-tls-verify"] = True
        merged = {
            "clusters": [{"name": "api_url", "cluster": cluster}],
            "users": [{"name": "env", "user": {"token": token} if token else {}}],
            "contexts": [{"name": "api_url", "context": {"cluster": "api_url", "user": "env"}}],
            "current-context": "api_url",
        }
        return from_merged(merged, "api_url", plugin_env)
    if settings.get("kubeconfig"):
        merged, source = load_files(str(settings["kubeconfig"]).split(os.pathsep), explicit=True)
        return from_merged(merged, source, plugin_env)
    listed = env_value(env, "KUBECONFIG")
    if listed:
        merged, source = load_files(listed.split(os.pathsep), explicit=False)
        return from_merged(merged, source, plugin_env)
    conn = _in_cluster(env, sa_dir)
    if conn is not None:
        return conn
    default = home / ".kube" / "config"
    if default.exists():
        merged, source = load_files([str(default)], explicit=True)
        return from_merged(merged, source, plugin_env)
    raise fail(
        "no credentials: set 'api_url' (+ KUBERNETES_TOKEN), 'kubeconfig' or KUBECONFIG, "
        "or run in a cluster with a service account"
    )


def settings_problems(settings: Mapping[str, Any], target: str) -> list[str]:
    """What ``check`` can say about the connection settings without reaching the cluster."""
    problems = []
    insecure = settings.get("insecure_skip_tls_verify")
    if insecure is not None and not isinstance(insecure, bool):
        problems.append(f"{target}: setting 'insecure_skip_tls_verify' must be true or false, not {insecure!r}")
    if insecure is True and settings.get("ca_file"):
        problems.append(f"{target}: set either 'ca_file' or 'insecure_skip_tls_verify = true', not both")
    for key in ("ca_file", "insecure_skip_tls_verify"):
        if settings.get(key) and not settings.get("api_url"):
            problems.append(f"{target}: setting '{key}' applies only with 'api_url' (a kubeconfig has its own)")
    timeout = settings.get("request_timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0):
        problems.append(f"{target}: setting 'request_timeout' must be a positive number of seconds")
    attempts = settings.get("attempts")
    if attempts is not None and (isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1):
        problems.append(f"{target}: setting 'attempts' must be a whole number, at least 1")
    return problems
