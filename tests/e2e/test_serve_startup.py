"""`rollback-bot serve` fails fast, with a reason a person can act on, when Slack is misconfigured."""

from __future__ import annotations

from pathlib import Path

from devkit.fake_api import FakeSlackApi
from tests.e2e.cli import run_cli

POLICY = '[defaults]\nchannel = "C0ALERTS"\n[models.fraud-detector]\ntarget = "local"\n'


def serve(tmp_path: Path, env: dict[str, str]) -> tuple[int, str]:
    (tmp_path / "rollback.toml").write_text(POLICY)
    out = run_cli("serve", "--port", "1", env={"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", **env},
                  cwd=tmp_path)
    return out.returncode, out.stderr


def test_missing_token_and_signing_secret(tmp_path: Path) -> None:
    code, err = serve(tmp_path, {})
    assert code == 1
    assert "cannot start: SLACK_BOT_TOKEN: not set" in err
    assert "cannot start: SLACK_SIGNING_SECRET: not set" in err


def test_auth_test_refusing_the_token(tmp_path: Path) -> None:
    with FakeSlackApi() as slack:
        slack.fail("auth.test", "invalid_auth", times=5)
        code, err = serve(tmp_path, {"SLACK_BOT_TOKEN": "xoxb-revoked-token-123", "SLACK_SIGNING_SECRET": "s3cret",
                                     "SLACK_API_URL": slack.base_url})
    assert code == 1
    assert "Slack refused SLACK_BOT_TOKEN (auth.test: invalid_auth)" in err
    assert "xoxb-revoked-token-123" not in err and "s3cret" not in err


def test_slack_unreachable(tmp_path: Path) -> None:
    code, err = serve(tmp_path, {"SLACK_BOT_TOKEN": "xoxb-x", "SLACK_SIGNING_SECRET": "s",
                                 "SLACK_API_URL": "http://127.0.0.1:1/api/"})
    assert code == 1 and "cannot reach Slack's Web API at http://127.0.0.1:1/api/" in err


def test_a_worker_process_on_sqlite_is_refused_with_what_to_do(tmp_path: Path) -> None:
    code, err = serve(tmp_path, {"WORKER_MODE": "process"})
    assert code == 1
    assert "cannot start: WORKER_MODE=process needs PostgreSQL" in err and "WORKER_MODE=auto or thread" in err


def test_an_unknown_worker_mode_names_the_variable(tmp_path: Path) -> None:
    code, err = serve(tmp_path, {"WORKER_MODE": "fibers"})
    assert code == 2 and "WORKER_MODE" in err and "Traceback" not in err
