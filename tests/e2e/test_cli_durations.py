"""The CLI refuses an absurd duration with the accepted bound, as the API and the slash command do."""

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
