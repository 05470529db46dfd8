"""`rollback-bot audit` as an auditor runs it: keyed chain, anchors, jsonl export, verify --against."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.e2e.cli import run_cli

POLICY = '''
[defaults]
channel = "C0ALERTS"
approvers = ["U0LEAD"]

[models.fraud-detector]
target = "local"
'''
KEY = "0123456789abcdef-audit-key-for-tests"


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> dict[str, str]:
    (tmp_path / "rollback.toml").write_text(POLICY)
    return {"DATABASE_URL": db_url, "ALERT_WEBHOOK_TOKEN": "t0ken-for-tests", "AUDIT_HMAC_KEY": KEY,
            "AUDIT_HMAC_KEY_ID": "2026-11", "AUDIT_ANCHOR_PATH": str(tmp_path / "anchors.jsonl")}


def test_anchor_export_and_verify_against_after_a_deletion(tmp_path: Path, env: dict[str, str],
                                                           db_url: str) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        out = run_cli(*args, env=env, cwd=tmp_path)
        assert KEY not in out.stdout + out.stderr
        return out

    for version in ("5", "6", "7"):
        assert cli("deploy", "fraud-detector", version).returncode == 0
    anchored = cli("audit", "anchor")
    assert anchored.returncode == 0 and "anchored head row #3 (3 rows)" in anchored.stdout
    listed = [json.loads(line) for line in cli("audit", "list", "--format", "jsonl").stdout.splitlines()]
    assert [r["id"] for r in listed] == [1, 2, 3] and {r["key_id"] for r in listed} == {"2026-11"}
    exported = cli("audit", "export", "--format", "jsonl")
    assert exported.returncode == 0, exported.stderr
    dump = next(tmp_path.glob("audit-*.jsonl"))
    manifest = json.loads(Path(str(dump) + ".manifest.json").read_text())
    assert (manifest["rows"], manifest["head_id"], manifest["key_id"]) == (3, 3, "2026-11")
    ok = cli("audit", "verify", "--against", dump.name)
    assert ok.returncode == 0, ok.stdout
    assert "checked against anchor:" in ok.stdout and "line 1 (head row #3" in ok.stdout
    assert "audit chain intact: 3 rows verified" in ok.stdout
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit WHERE id = 2"))
    engine.dispose()
    bad = cli("audit", "verify", "--against", dump.name)
    assert bad.returncode == 1
    assert "TAMPERED: exported row 2 (deploy) is no longer in the database" in bad.stdout


def test_bad_keys_and_options_get_a_clear_error(tmp_path: Path, env: dict[str, str]) -> None:
    short = run_cli("audit", "verify", env={**env, "AUDIT_HMAC_KEY": "short-key"}, cwd=tmp_path)
    assert short.returncode == 1 and "AUDIT_HMAC_KEY: shorter than 16 bytes" in short.stderr
    assert "Traceback" not in short.stderr and "short-key" not in short.stderr
    deploy = run_cli("deploy", "fraud-detector", "1", env={**env, "AUDIT_HMAC_KEY": "short-key"}, cwd=tmp_path)
    assert deploy.returncode == 1 and "Traceback" not in deploy.stderr
    missing = run_cli("audit", "verify", "--against", "nope.jsonl", env=env, cwd=tmp_path)
    assert missing.returncode == 1 and "--against: nope.jsonl is not a file" in missing.stdout


def test_serve_refuses_postgres_without_an_audit_key(tmp_path: Path, pg_database: str) -> None:
    out = run_cli("serve", "--port", "1", env={"DATABASE_URL": pg_database, "SLACK_BOT_TOKEN": "xoxb-1",
                                                "SLACK_SIGNING_SECRET": "s3cret"}, cwd=tmp_path)
    assert out.returncode == 1
    assert "cannot start: AUDIT_HMAC_KEY: not set" in out.stderr
