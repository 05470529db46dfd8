"""Kubeconfig shapes from upstream, read through lightkube, against the fake API server (HTTP and HTTPS).

Shapes come from: Kubernetes docs "Organizing Cluster Access Using kubeconfig Files"
(kubernetes.io/docs/concepts/configuration/organize-cluster-access-kubeconfig/: merging KUBECONFIG files,
proxy-url), "Client Authentication (v1)" (kubernetes.io/docs/reference/config-api/client-authentication.v1/:
ExecCredential), and lightkube's tests (gtsystem/lightkube tests/test_config_exec.yaml,
tests/data/auth_script.sh).
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from adapters.targets.kubernetes import KubernetesTarget
from bot.core.errors import TargetError
from tests.fakes.kube_api import FakeKube

DEPLOY = {"deployment": "ranker", "image": "repo/ranker:{version}", "namespace": "ml"}


def self_signed(tmp: Path, name: str) -> tuple[str, str, bytes]:
    """A certificate for 127.0.0.1 signed by itself: (cert file, key file, cert PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp / f"{name}.crt").write_bytes(pem)
    (tmp / f"{name}.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(tmp / f"{name}.crt"), str(tmp / f"{name}.key"), pem


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with FakeKube() as fake:
        fake.add_deployment("ml", "ranker", "repo/ranker:1.4.0")
        yield fake


@pytest.fixture
def tls_kube(tmp_path: Path) -> Iterator[tuple[FakeKube, bytes]]:
    cert, key, pem = self_signed(tmp_path, "server")
    with FakeKube(tls=(cert, key)) as fake:
        fake.add_deployment("ml", "ranker", "repo/ranker:1.4.0")
        yield fake, pem


def write(tmp: Path, name: str, text: str) -> str:
    path = tmp / name
    path.write_text(text)
    return str(path)


def config(server: str, cluster_extra: str = "", user: str = "    token: test-token\n") -> str:
    return (
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: dev\n  cluster:\n    server: {server}\n{cluster_extra}"
        "contexts:\n- name: dev\n  context:\n    cluster: dev\n    user: bot\n    namespace: ml\n"
        "current-context: dev\n"
        f"users:\n- name: bot\n  user:\n{user}"
    )


def connect(path: str, env: dict[str, str] | None = None) -> str:
    return KubernetesTarget(env=env or {}).check_connection("ranker", {"kubeconfig": path, **DEPLOY})


def one_line_error(exc: pytest.ExceptionInfo[TargetError]) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text
    return text


# -- TLS and YAML 1.1 booleans -------------------------------------------------------------------------------
def test_yaml_11_no_keeps_verification_on(tls_kube: tuple[FakeKube, bytes], tmp_path: Path) -> None:
    fake, _ = tls_kube
    path = write(tmp_path, "c", config(fake.url, "    insecure-skip-tls-verify: no\n"))
    with pytest.raises(TargetError) as info:
        connect(path)
    text = one_line_error(info)
    assert "TLS" in text and "certificate verify failed" in text and "verification stays on" in text
    assert not info.value.retryable and fake.requests == []  # refused at the handshake, nothing sent


def test_yaml_11_yes_skips_verification(tls_kube: tuple[FakeKube, bytes], tmp_path: Path) -> None:
    fake, _ = tls_kube
    path = write(tmp_path, "c", config(fake.url, "    insecure-skip-tls-verify: yes\n"))
    assert "deployment ml/ranker found" in connect(path)


def test_matching_ca_verifies(tls_kube: tuple[FakeKube, bytes], tmp_path: Path) -> None:
    fake, pem = tls_kube
    ca = base64.b64encode(pem).decode()
    path = write(tmp_path, "c", config(fake.url, f"    certificate-authority-data: {ca}\n"))
    assert "running 1.4.0" in connect(path)
    # a relative certificate-authority file resolves against the kubeconfig's folder
    (tmp_path / "ca.pem").write_bytes(pem)
    path = write(tmp_path, "c2", config(fake.url, "    certificate-authority: ca.pem\n"))
    assert "running 1.4.0" in connect(path)


def test_ca_that_does_not_match(tls_kube: tuple[FakeKube, bytes], tmp_path: Path) -> None:
    fake, _ = tls_kube
    _, _, other = self_signed(tmp_path, "other-ca")
    ca = base64.b64encode(other).decode()
    path = write(tmp_path, "c", config(fake.url, f"    certificate-authority-data: {ca}\n"))
    with pytest.raises(TargetError) as info:
        connect(path)
    assert "certificate verify failed" in one_line_error(info)


def test_ca_with_insecure_true_is_refused_not_guessed(tls_kube: tuple[FakeKube, bytes], tmp_path: Path) -> None:
    fake, pem = tls_kube
    ca = base64.b64encode(pem).decode()
    extra = f"    certificate-authority-data: {ca}\n    insecure-skip-tls-verify: true\n"
    with pytest.raises(TargetError, match="kubectl refuses this too"):
        connect(write(tmp_path, "c", config(fake.url, extra)))


def test_quoted_boolean_is_an_error_not_true(kube: FakeKube, tmp_path: Path) -> None:
    path = write(tmp_path, "c", config(kube.url, '    insecure-skip-tls-verify: "no"\n'))
    with pytest.raises(TargetError) as info:
        connect(path)
    assert "Expected `bool`" in one_line_error(info)


def test_api_url_with_ca_file(tls_kube: tuple[FakeKube, bytes], tmp_path: Path) -> None:
    fake, pem = tls_kube
    (tmp_path / "ca.pem").write_bytes(pem)
    env = {"KUBERNETES_TOKEN": "test-token"}
    s = {"api_url": fake.url, "ca_file": str(tmp_path / "ca.pem"), **DEPLOY}
    assert "(api_url)" in KubernetesTarget(env=env).check_connection("ranker", s)
    with pytest.raises(TargetError, match="certificate verify failed"):
        KubernetesTarget(env=env).check_connection("ranker", {"api_url": fake.url, **DEPLOY})
    insecure = {"api_url": fake.url, "insecure_skip_tls_verify": True, **DEPLOY}
    assert "running 1.4.0" in KubernetesTarget(env=env).check_connection("ranker", insecure)


# -- scalars, merging, proxy ---------------------------------------------------------------------------------
def test_block_scalar_token(kube: FakeKube, tmp_path: Path) -> None:
    path = write(tmp_path, "c", config(kube.url, user="    token: >-\n      test-token\n"))
    assert "running 1.4.0" in connect(path)


def test_kubeconfig_files_merged_first_wins(kube: FakeKube, tmp_path: Path) -> None:
    # first file: current-context, the context and the right user; second: the cluster, plus a user of the
    # same name with a wrong token and another current-context, both ignored (the first file to set them wins)
    first = write(
        tmp_path,
        "a",
        "current-context: dev\ncontexts:\n- name: dev\n  context: {cluster: dev, user: bot, namespace: ml}\n"
        "users:\n- name: bot\n  user:\n    token: test-token\n",
    )
    second = write(
        tmp_path,
        "b",
        f"current-context: other\nclusters:\n- name: dev\n  cluster:\n    server: {kube.url}\n"
        "users:\n- name: bot\n  user:\n    token: wrong\n",
    )
    listed = f"{tmp_path / 'missing'}:{first}:{second}"  # a missing file in KUBECONFIG is skipped
    text = KubernetesTarget(env={"KUBECONFIG": listed}).check_connection("ranker", DEPLOY)
    assert "running 1.4.0" in text and first in text and second in text
    assert {r.headers["authorization"] for r in kube.requests} == {"Bearer test-token"}


def test_proxy_url(kube: FakeKube, tmp_path: Path) -> None:
    # the server name does not resolve: only the proxy (the fake, which answers what it is sent) can reach it
    path = write(
        tmp_path, "c", config("http://kube.invalid:6443", f"    proxy-url: {kube.url}\n")
    )
    assert "running 1.4.0" in connect(path)
    assert kube.requests and all(r.headers["host"] == "kube.invalid:6443" for r in kube.requests)


# -- exec plugins --------------------------------------------------------------------------------------------
def plugin(tmp: Path, body: str, name: str = "plugin.sh") -> Path:
    path = tmp / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def exec_user(command: str, api: str = "client.authentication.k8s.io/v1beta1", extra: str = "") -> str:
    return f"    exec:\n      apiVersion: {api}\n      command: {command}\n{extra}"


def test_exec_plugin_v1beta1_from_lightkube_tests(kube: FakeKube, tmp_path: Path) -> None:
    # gtsystem/lightkube tests/data/auth_script.sh, with the fake's token
    plugin(
        tmp_path,
        """echo '{"apiVersion":"client.authentication.k8s.io/v1beta1", "kind":"ExecCredential",'"""
        """'"status":{"token":"test-token"}}'\n""",
    )
    path = write(tmp_path, "c", config(kube.url, user=exec_user("./plugin.sh")))  # relative to the kubeconfig
    assert "running 1.4.0" in connect(path)


def test_exec_plugin_v1_with_env_and_exec_info(kube: FakeKube, tmp_path: Path) -> None:
    # env entries as in lightkube tests/test_config_exec.yaml (execuser2); v1 ExecCredential with expiry
    out = tmp_path / "exec-info.json"
    plugin(
        tmp_path,
        f'echo "$KUBERNETES_EXEC_INFO" > {out}\n'
        """echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'"""
        """'"status":{"token":"'"$MYTOKEN"'","expirationTimestamp":"2030-01-01T00:00:00Z"}}'\n""",
    )
    extra = "      env:\n      - name: MYTOKEN\n        value: test-token\n      interactiveMode: Never\n"
    user = exec_user(str(tmp_path / "plugin.sh"), "client.authentication.k8s.io/v1", extra)
    path = write(tmp_path, "c", config(kube.url, user=user))
    assert "running 1.4.0" in connect(path)
    assert '"interactive": false' in out.read_text() and "client.authentication.k8s.io/v1" in out.read_text()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("echo 'token expired, log in again' >&2\nexit 1\n", "exited with status 1: token expired, log in again"),
        ("echo 'Hello, I am not JSON'\n", "not JSON"),
        ("""echo '{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential"}'\n""",
         "without status"),
        ("""echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{}}'\n""",
         "answered apiVersion"),
    ],
)
def test_exec_plugin_that_fails_or_prints_garbage(kube: FakeKube, tmp_path: Path, body: str, expected: str) -> None:
    plugin(tmp_path, body)
    path = write(tmp_path, "c", config(kube.url, user=exec_user(str(tmp_path / "plugin.sh"))))
    with pytest.raises(TargetError) as info:
        connect(path)
    assert expected in one_line_error(info)
    assert kube.requests == []  # nothing sent without a credential


def test_exec_plugin_missing_names_install_hint(kube: FakeKube, tmp_path: Path) -> None:
    extra = "      installHint: install it with your package manager\n"
    path = write(tmp_path, "c", config(kube.url, user=exec_user("no-such-plugin-xyz", extra=extra)))
    with pytest.raises(TargetError) as info:
        connect(path)
    assert "not found (install it with your package manager)" in one_line_error(info)


def test_exec_plugin_rerun_on_401(kube: FakeKube, tmp_path: Path) -> None:
    # the first run hands out an expired token, the second a good one: a 401 asks the plugin once more
    counter = tmp_path / "runs"
    plugin(
        tmp_path,
        f'n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}\n'
        'if [ $n = 1 ]; then t=expired; else t=test-token; fi\n'
        """echo '{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential",'"""
        """'"status":{"token":"'$t'"}}'\n""",
    )
    path = write(tmp_path, "c", config(kube.url, user=exec_user(str(tmp_path / "plugin.sh"))))
    assert "running 1.4.0" in connect(path)
    assert counter.read_text().strip() == "2"
    # the good credential has no expiry: it is kept (client-go does the same) until a 401
    assert "running 1.4.0" in connect(path)
    assert counter.read_text().strip() == "2"


def test_exec_credential_kept_until_it_expires(kube: FakeKube, tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    soon = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    later = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for expiry, runs in ((later, "1"), (soon, "2")):
        counter.unlink(missing_ok=True)
        plugin(
            tmp_path,
            f'n=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}\n'
            """echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'"""
            f"""'"status":{{"token":"test-token","expirationTimestamp":"{expiry}"}}}}'\n""",
            name=f"plugin-{runs}.sh",
        )
        user = exec_user(str(tmp_path / f"plugin-{runs}.sh"), "client.authentication.k8s.io/v1")
        path = write(tmp_path, f"c{runs}", config(kube.url, user=user))
        connect(path)
        connect(path)
        assert counter.read_text().strip() == runs  # within a minute of expiry: asked again


# -- other bad input -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("    auth-provider:\n      name: oidc\n      config: {}\n", "auth-provider 'oidc'"),
        ("    exec:\n      apiVersion: client.authentication.k8s.io/v2\n      command: x\n", "apiVersion"),
    ],
)
def test_unsupported_auth(kube: FakeKube, tmp_path: Path, user: str, expected: str) -> None:
    with pytest.raises(TargetError) as info:
        connect(write(tmp_path, "c", config(kube.url, user=user)))
    assert expected in one_line_error(info)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, "does not exist"),
        ("binary", "is not UTF-8 text"),
        ("users:\n- name: u\n  user:\n    token: 12345\n", "no current-context"),
        ("clusters: [\n", "not valid YAML (line"),
        ("- a list\n", "not a mapping"),
        ("current-context: nope\ncontexts: []\nclusters: []\n", "no context named 'nope'"),
        (config("https://127.0.0.1:1", "    certificate-authority: missing-ca.pem\n"), "cannot set up TLS"),
    ],
)
def test_bad_kubeconfig_files(tmp_path: Path, text: str | None, expected: str) -> None:
    path = str(tmp_path / "c") if text is None else write(tmp_path, "c", text)
    if text == "binary":
        Path(path).write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(TargetError) as info:
        connect(path)
    assert expected in one_line_error(info)


def test_in_cluster_service_account(
    tls_kube: tuple[FakeKube, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters.targets import kubeconfig

    fake, pem = tls_kube
    (tmp_path / "token").write_text("test-token\n")
    (tmp_path / "namespace").write_text("ml")
    (tmp_path / "ca.crt").write_bytes(pem)
    port = fake.url.rsplit(":", 1)[1]
    env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": port}
    conn = kubeconfig.resolve({}, env, sa_dir=tmp_path, home=tmp_path)
    assert conn.source == "in-cluster service account" and conn.namespace == "ml"
    monkeypatch.setattr(kubeconfig, "SA_DIR", tmp_path)
    settings = {"deployment": "ranker", "image": "repo/ranker:{version}"}  # namespace from the pod's
    text = KubernetesTarget(env=env).check_connection("ranker", settings)
    assert "(in-cluster service account): deployment ml/ranker found" in text  # verified with the SA's ca.crt


def test_retries_5xx_not_4xx(kube: FakeKube, tmp_path: Path) -> None:
    kube.fail_next = [503, 429]
    s: dict[str, Any] = {"api_url": kube.url, **DEPLOY}
    target = KubernetesTarget(env={"KUBERNETES_TOKEN": "test-token"}, sleep=lambda _: None)
    assert target.current_version("ranker", s) == "1.4.0"
    assert len(kube.requests) == 3
    kube.fail_next = [503, 503, 503]
    with pytest.raises(TargetError) as info:
        target.current_version("ranker", s)
    assert info.value.status == 503 and info.value.retryable and "after 3 attempts" in str(info.value)
    assert "injected 503" in str(info.value)


def test_exec_plugin_client_certificate_is_loaded(tmp_path: Path) -> None:
    from adapters.targets.kube import KubeClient

    cert, key, _ = self_signed(tmp_path, "client")
    status = {"clientCertificateData": Path(cert).read_text(), "clientKeyData": Path(key).read_text()}
    plugin(
        tmp_path,
        "cat <<'JSON'\n"
        + json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": status})
        + "\nJSON\n",
    )
    user = exec_user(str(tmp_path / "plugin.sh"), "client.authentication.k8s.io/v1")
    path = write(tmp_path, "c", config("https://127.0.0.1:1", user=user))
    with KubeClient("kubernetes", {"kubeconfig": path}, env={}) as client:
        assert client.conn.config.user is not None and client.conn.config.user.client_cert_data
        assert client.conn.config.user.token is None


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"api_url": "https://k", "insecure_skip_tls_verify": "no"}, "must be true or false"),
        ({"api_url": "https://k", "insecure_skip_tls_verify": True, "ca_file": "ca.pem"}, "not both"),
        ({"kubeconfig": "x", "ca_file": "ca.pem"}, "applies only with 'api_url'"),
        ({"api_url": "https://k", "attempts": 0}, "at least 1"),
        ({"api_url": "https://k", "request_timeout": "10s"}, "positive number of seconds"),
    ],
)
def test_connection_settings_checked(settings: dict[str, Any], expected: str) -> None:
    problems = KubernetesTarget().validate({**DEPLOY, **settings})
    assert any(expected in p for p in problems), problems


def test_exec_plugin_sees_the_targets_environment(kube: FakeKube, tmp_path: Path) -> None:
    # what the bot was given as its environment (a .env file included) reaches the plugin, as kubectl's does
    plugin(
        tmp_path,
        """echo '{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential",'"""
        """'"status":{"token":"'"$CLOUD_SESSION"'"}}'\n""",
    )
    path = write(tmp_path, "c", config(kube.url, user=exec_user(str(tmp_path / "plugin.sh"))))
    assert "running 1.4.0" in connect(path, env={"CLOUD_SESSION": "test-token"})


def test_client_certificate_files_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    cert, key, pem = self_signed(tmp_path, "server")
    client_cert, _, _ = self_signed(tmp_path, "client")
    with FakeKube(tls=(cert, key), client_ca=client_cert) as fake:
        fake.add_deployment("ml", "ranker", "repo/ranker:1.4.0")
        ca = base64.b64encode(pem).decode()
        user = "    token: test-token\n    client-certificate: client.crt\n    client-key: client.key\n"
        path = write(tmp_path, "c", config(fake.url, f"    certificate-authority-data: {ca}\n", user=user))
        assert "running 1.4.0" in connect(path)
        without = write(tmp_path, "c2", config(fake.url, f"    certificate-authority-data: {ca}\n"))
        with pytest.raises(TargetError) as info:
            connect(without)
        assert "CERTIFICATE_REQUIRED (the server refused the TLS handshake)" in one_line_error(info)
