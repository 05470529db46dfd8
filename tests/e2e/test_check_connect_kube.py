"""`rollback-bot check --connect` with kubeconfigs users get wrong: one line per problem, never a traceback."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

from devkit.fake_api import FakeSlackApi
from tests.e2e.cli import run_cli
from tests.fakes.kube_api import FakeKube
from tests.integration.test_kubeconfig import self_signed


def test_bad_kubeconfigs_give_one_line_reasons(tmp_path: Path) -> None:
    plugins = {"garbage.sh": "echo 'not json at all'\n", "fails.sh": "echo 'session expired' >&2; exit 3\n"}
    for name, body in plugins.items():
        plugin = tmp_path / name
        plugin.write_text("#!/bin/sh\n" + body)
        plugin.chmod(plugin.stat().st_mode | stat.S_IEXEC)
    cert, key, _ = self_signed(tmp_path, "server")
    _, _, other_ca = self_signed(tmp_path, "other")
    with FakeKube(tls=(cert, key)) as kube, FakeSlackApi() as slack:
        kube.add_deployment("ml", "ranker", "repo/ranker:1.4.0")
        context = "contexts:\n- name: c\n  context: {cluster: c, user: u, namespace: ml}\ncurrent-context: c\n"
        exec_user = "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: {}\n"
        users = {
            "good": "    token: test-token\n",
            "garbage": exec_user.format(tmp_path / "garbage.sh"),
            "fails": exec_user.format(tmp_path / "fails.sh"),
            "provider": "    auth-provider:\n      name: gcp\n",
            "wrongca": "    token: test-token\n",
        }
        policy = '[defaults]\nchannel = "C0ALERTS"\n'
        for name, user in users.items():
            ca = Path(cert).read_bytes() if name != "wrongca" else other_ca
            cluster = (
                f"clusters:\n- name: c\n  cluster:\n    server: {kube.url}\n"
                f"    certificate-authority-data: {base64.b64encode(ca).decode()}\n"
            )
            (tmp_path / name).write_text(cluster + context + f"users:\n- name: u\n  user:\n{user}")
            policy += (
                f'[models.{name}]\ntarget = "kubernetes"\n[models.{name}.kubernetes]\n'
                f'kubeconfig = "{tmp_path / name}"\ndeployment = "ranker"\nimage = "repo/ranker:{{version}}"\n'
            )
        policy += (
            '[models.missing]\ntarget = "kubernetes"\n[models.missing.kubernetes]\n'
            f'kubeconfig = "{tmp_path / "nope"}"\ndeployment = "ranker"\nimage = "repo/ranker:{{version}}"\n'
        )
        (tmp_path / "rollback.toml").write_text(policy)
        env = {"ALERT_WEBHOOK_TOKEN": "abcd", "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s1",
               "SLACK_API_URL": slack.base_url}  # `check` validates what `serve` needs, Slack included
        out = run_cli("check", "--connect", env=env, cwd=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stdout + out.stderr
    assert "connect good: kubernetes (kubeconfig" in out.stdout and "running 1.4.0" in out.stdout
    problems = [line for line in out.stderr.splitlines() if line.startswith("problem: ")]
    assert len(problems) == 5, out.stderr
    assert any("models.garbage.kubernetes:" in p and "not JSON" in p for p in problems)
    assert any("models.provider.kubernetes:" in p and "auth-provider 'gcp'" in p for p in problems)
    assert any("models.missing.kubernetes:" in p and "does not exist" in p for p in problems)
    assert any("models.fails.kubernetes:" in p and "exited with status 3: session expired" in p for p in problems)
    assert any("models.wrongca.kubernetes:" in p and "certificate verify failed" in p for p in problems)
