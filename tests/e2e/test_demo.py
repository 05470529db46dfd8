"""The README's run command: `rollback-bot demo` completes the whole loop offline."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.cli import run_cli


def test_demo_runs_the_whole_loop(tmp_path: Path) -> None:
    out = run_cli("demo", env={}, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "POST /alerts/alertmanager → 202" in text
    assert "[ Approve ] [ Deny ]" in text
    assert "POST /slack/events (block_actions) → 200" in text
    assert "Rolled back to `6`" in text and "served_version=6" in text
    for action in ("deploy", "proposal.created", "approval.added", "rollback.succeeded"):
        assert action in text
    assert "demo finished" in text
    assert list(tmp_path.iterdir()) == []  # the demo leaves nothing behind
