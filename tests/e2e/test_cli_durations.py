"""The CLI refuses an absurd duration or deployment with the bound the API uses, as a message, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.cli import run_cli


@pytest.mark.parametrize("since", ["3000000d", "99999999999d", "9" * 5000 + "d"])
def test_audit_since_is_bounded(tmp_path: Path, since: str) -> None:
    (tmp_path / "rollback.toml").write_text('[defaults]\nchannel = "C0ALERTS"\n[models.m]\ntarget = "local"\n')
    out = run_cli("audit", "list", "--since", since, env={"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"},
                  cwd=tmp_path)
    assert out.returncode == 2
    assert "argument --since:" in out.stderr and "longest duration accepted, 3650d" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(("args", "words"), [
    (("m", "7" * 201), "argument 'version'"),
    (("m" * 201, "7"), "argument 'model'"),
    (("m", "7", "--by", "x" * 101), "argument 'deployed_by'"),
    (("m", " 7"), "argument 'version'"),
])
def test_deploy_refuses_what_the_api_refuses(tmp_path: Path, args: tuple[str, ...], words: str) -> None:
    (tmp_path / "rollback.toml").write_text('[defaults]\nchannel = "C0ALERTS"\n[models.m]\ntarget = "local"\n')
    out = run_cli("deploy", *args, env={"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}, cwd=tmp_path)
    assert out.returncode == 1 and f"refused: {words}" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
