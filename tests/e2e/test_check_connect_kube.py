"""`rollback-bot check --connect` with kubeconfigs users get wrong: one line per problem, never a traceback."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.e2e.cli import run_cli
from tests.fakes.kube_api import FakeKube


def test_bad_kubeconfigs_give_one_line_reasons(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin.sh"
    plugin.write_text("#!/bin/sh\necho 'not json at all'\n")
    plugin.chmod(plugin.stat().st_mode | stat.S_IEXEC)
    with FakeKube() as kube:
        kube.add_deployment("ml", "ranker", "repo/ranker:1.4.0")
        cluster = f"clusters:\n- name: c\n  cluster:\n    server: {kube.url}\n"
        context = "contexts:\n- name: c\n  context: {cluster: c, user: u, namespace: ml}\ncurrent-context: c\n"
        users = {
            "good": "    token: test-token\n",
            "garbage": f"    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: {plugin}\n",
            "provider": "    auth-provider:\n      name: gcp\n",
        }
        policy = '[defaults]\nchannel = "C0ALERTS"\n'
        for name, user in users.items():
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
        out = run_cli("check", "--connect", env={"ALERT_WEBHOOK_TOKEN": "abcd"}, cwd=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stdout + out.stderr
    assert "connect good: kubernetes (kubeconfig" in out.stdout and "running 1.4.0" in out.stdout
    problems = [line for line in out.stderr.splitlines() if line.startswith("problem: ")]
    assert len(problems) == 3, out.stderr
    assert any("models.garbage.kubernetes:" in p and "not JSON" in p for p in problems)
    assert any("models.provider.kubernetes:" in p and "auth-provider 'gcp'" in p for p in problems)
    assert any("models.missing.kubernetes:" in p and "does not exist" in p for p in problems)
