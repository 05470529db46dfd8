"""The CLI end to end: deploy, break-glass rollback, check, and audit list/verify/export."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.e2e.cli import run_cli

POLICY = '''
[defaults]
channel = "C0ALERTS"
approvers = ["U0LEAD"]
cooldown = "30m"

[models.fraud-detector]
target = "local"
'''


@pytest.fixture
def workdir(tmp_path: Path, db_url: str) -> tuple[Path, dict[str, str]]:
    (tmp_path / "rollback.toml").write_text(POLICY)
    return tmp_path, {"DATABASE_URL": db_url, "ALERT_WEBHOOK_TOKEN": "t0ken-for-tests"}


def cli(workdir: tuple[Path, dict[str, str]], *args: str) -> Any:
    return run_cli(*args, env=workdir[1], cwd=workdir[0])


def test_deploy_rollback_and_audit(workdir: tuple[Path, dict[str, str]]) -> None:
    assert cli(workdir, "deploy", "fraud-detector", "6", "--by", "ci", "--stable").returncode == 0
    out = cli(workdir, "deploy", "fraud-detector", "7", "--by", "ci")
    assert out.returncode == 0 and "recorded: fraud-detector version 7" in out.stdout
    rb = cli(workdir, "rollback", "fraud-detector", "--reason", "error rate 40%")
    assert rb.returncode == 0, rb.stderr
    assert "rolled back fraud-detector from 7 to 6" in rb.stdout
    again = cli(workdir, "rollback", "fraud-detector", "--reason", "again")
    assert again.returncode == 1 and "refused:" in again.stderr
    listing = cli(workdir, "audit", "list", "--model", "fraud-detector")
    assert "rollback.succeeded" in listing.stdout and "cli:" in listing.stdout
    exported = json.loads(cli(workdir, "audit", "export", "--format", "json").stdout)
    assert [r["action"] for r in exported][-1] == "rollback.refused"
    rows = list(csv.DictReader(io.StringIO(cli(workdir, "audit", "export", "--format", "csv",
                                               "--since", "1d").stdout)))
    assert rows[0]["action"] == "deploy" and len(rows) == len(exported)
    verify = cli(workdir, "audit", "verify")
    assert verify.returncode == 0 and f"audit chain intact: {len(exported)} rows verified" in verify.stdout


def test_editing_an_audit_row_is_named_by_verify(workdir: tuple[Path, dict[str, str]], db_url: str) -> None:
    for version in ("5", "6", "7"):
        assert cli(workdir, "deploy", "fraud-detector", version).returncode == 0
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit SET reason = 'deployed by nobody' WHERE id = 2"))
    out = cli(workdir, "audit", "verify")
    assert out.returncode == 1
    assert "TAMPERED: row 2 was edited: its content does not match its hash" in out.stdout
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit WHERE id = 3"))
    out = cli(workdir, "audit", "verify")
    assert "rows after row 2 were deleted (the newest row was 3)" in out.stdout
    engine.dispose()


def test_check_reports_every_problem(tmp_path: Path) -> None:
    (tmp_path / "rollback.toml").write_text("[defaults]\nchannel = 'C1'\ncooldown = 'soon'\n"
                                            "[models.x]\ntarget = 'nowhere'\n")
    out = run_cli("check", env={"DATABASE_URL": "sqlite:///x.db"}, cwd=tmp_path)
    assert out.returncode == 1
    assert "rollback.toml: defaults.cooldown: 'soon' is not a duration" in out.stderr
    assert "rollback.toml: models.x.target: 'nowhere' is not a target" in out.stderr
    assert "environment: ALERT_WEBHOOK_TOKEN: not set" in out.stderr
    assert "environment: SLACK_BOT_TOKEN: not set" in out.stderr
    (tmp_path / "rollback.toml").write_text(POLICY)
    good = run_cli("check", env={"DATABASE_URL": "sqlite:///x.db", "ALERT_WEBHOOK_TOKEN": "abcd",
                                 "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s1"}, cwd=tmp_path)
    assert good.returncode == 0 and "configuration OK" in good.stdout
    assert "page→critical" in good.stdout


def test_database_unreachable_is_a_clear_message(tmp_path: Path) -> None:
    (tmp_path / "rollback.toml").write_text(POLICY)
    out = run_cli("deploy", "fraud-detector", "1", env={
        "DATABASE_URL": "postgresql+psycopg://rb:secret-pw@127.0.0.1:1/none"}, cwd=tmp_path)
    assert out.returncode == 1
    assert "database unreachable at postgresql+psycopg://rb:***@127.0.0.1:1/none" in out.stderr
    assert "secret-pw" not in out.stderr + out.stdout


def test_unknown_model_is_refused_and_audited(workdir: tuple[Path, dict[str, str]]) -> None:
    out = cli(workdir, "rollback", "nope", "--reason", "x")
    assert out.returncode == 1 and "unknown model 'nope'" in out.stderr
    assert "rollback.refused" in cli(workdir, "audit", "list").stdout


def test_check_prints_each_sources_effective_severity_mapping(tmp_path: Path) -> None:
    (tmp_path / "rollback.toml").write_text(
        POLICY + "\n[sources.alertmanager]\nversion_label = 'app_version'\n"
        "[sources.alertmanager.severity]\npage = 'warning'\nsev1 = 'critical'\n"
        "[sources.datadog.severity]\nP4 = 'info'\n")
    env = {"DATABASE_URL": "sqlite:///x.db", "ALERT_WEBHOOK_TOKEN": "abcd", "SLACK_BOT_TOKEN": "xoxb-1",
           "SLACK_SIGNING_SECRET": "s1"}
    good = run_cli("check", env=env, cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    lines = good.stdout.splitlines()
    [am] = [line for line in lines if line.startswith("source alertmanager:")]
    assert am.startswith("source alertmanager: version label 'app_version'; severity: critical, high, sev1 → ")
    assert "page, warn, warning → warning" in am and am.endswith("anything else → warning")
    assert any(line.startswith("source datadog: version label 'version'; severity tag and listed priorities: ")
               and "p4 → info" in line for line in lines)
    assert any("Warn/Re-Warn → warning" in line for line in lines)
    never_policy = POLICY.replace("[defaults]", "[defaults]\nauto_rollback_severity = 'never'")
    (tmp_path / "rollback.toml").write_text(never_policy)
    never = run_cli("check", env=env, cwd=tmp_path)
    assert never.returncode == 0, never.stderr
    assert "auto-rollback never (every incident asks)" in never.stdout


def test_deploying_a_rolled_back_version_needs_an_override(workdir: tuple[Path, dict[str, str]], db_url: str) -> None:
    assert cli(workdir, "deploy", "fraud-detector", "6", "--stable").returncode == 0
    assert cli(workdir, "deploy", "fraud-detector", "7").returncode == 0
    assert cli(workdir, "rollback", "fraud-detector", "--reason", "error rate 40%").returncode == 0
    refused = cli(workdir, "deploy", "fraud-detector", "7", "--by", "ci")
    assert refused.returncode == 1
    assert "version 7 of fraud-detector was rolled back by cli:" in refused.stderr
    assert "error rate 40%" in refused.stderr and "--override REASON" in refused.stderr
    empty = cli(workdir, "deploy", "fraud-detector", "7", "--override", " ")
    assert empty.returncode == 1 and "override.reason" in empty.stderr
    done = cli(workdir, "deploy", "fraud-detector", "7", "--by", "ci", "--override", "hotfix verified")
    assert done.returncode == 0, done.stderr
    assert "recorded: fraud-detector version 7" in done.stdout and "with an override" in done.stdout
    listing = cli(workdir, "audit", "list", "--model", "fraud-detector").stdout
    assert "deployment.refused_blocked" in listing and "deployment.override" in listing
    engine = create_engine(db_url)
    with engine.connect() as conn:  # the channel post waits in the outbox for the server's Slack sender
        owed = conn.execute(text("SELECT event, detail FROM slack_outbox ORDER BY id DESC")).first()
    engine.dispose()
    assert owed is not None and owed[0] == "override" and "hotfix verified" in owed[1]
