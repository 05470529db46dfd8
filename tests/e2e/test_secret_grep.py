"""No configured secret in any output: a full run (db upgrade, check, deploy, alert, approve in Slack, rollback,
audit list/verify/export, failures) with distinctive secret values, then a grep of every CLI output, the
server's log, every database row and everything the bot sent to Slack and to the deploy webhook."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, inspect, text

from adapters.targets.webhook import verify_signature
from devkit.fake_api import FakeSlackApi
from devkit.signing import find_button, payload_body, post, press_button_payload, sign
from tests.components import require
from tests.conftest import PG_ADMIN_URL, _pg_available
from tests.e2e.cli import run_cli
from tests.e2e.serve_process import free_port, scratch_postgres, serving
from tests.fakes.httpserver import LoopbackServer, Request, Response
from tests.integration.alert_helpers import am_alert, am_body

DB_PASSWORD = "grepDbPassw0rd-q7Zk"
URL_TOKEN = "grepUrlT0ken-Vb3x"
SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-grep-B0tT0ken-8Jd2",
    "SLACK_SIGNING_SECRET": "grepSigningS3cret-Lm4p",
    "ALERT_WEBHOOK_TOKEN": "grepAlertT0ken-Qa9w",
    "GRAFANA_WEBHOOK_SECRET": "grepGrafanaS3cret-Hy6t",
    "AUDIT_HMAC_KEY": "grepAuditHmacK3y-Pz1r",
    "MLFLOW_TRACKING_TOKEN": "grepMlflowT0ken-Wc5n",
    "MLFLOW_TRACKING_PASSWORD": "grepMlflowPassw0rd-Ke2s",
    "UNLEASH_API_TOKEN": "grepUnleashT0ken-Rb8v",
    "LAUNCHDARKLY_API_TOKEN": "grepLdT0ken-Nf3g",
    "KUBERNETES_TOKEN": "grepKubeT0ken-Dx7m",
    "PROMETHEUS_TOKEN": "grepPromT0ken-Uj4c",
}
DOTENV_ONLY = {"ROLLBACK_WEBHOOK_SECRET": "grepWebhookS3cret-Gt6y"}
EVERY_SECRET = [*SECRETS.values(), *DOTENV_ONLY.values(), DB_PASSWORD, URL_TOKEN]


def policy(receiver: str) -> str:
    return f'''
[defaults]
channel = "C0ALERTS"
approvers = ["U0LEAD"]
auto_rollback_severity = "critical"

[models.churn]
target = "webhook"
[models.churn.webhook]
url = "{receiver}/rollback?token={URL_TOKEN}"

[models.ranker]
target = "webhook"
[models.ranker.webhook]
url = "{receiver}/rollback?token={URL_TOKEN}"

[models.scorer]
target = "webhook"
[models.scorer.webhook]
url = "{receiver}/refuse?token={URL_TOKEN}"

[models.shadow]
target = "webhook"
dry_run = true
[models.shadow.webhook]
url = "{receiver}/rollback?token={URL_TOKEN}"
'''


def receiver() -> LoopbackServer:
    served = {"churn": "2", "ranker": "2", "scorer": "2", "shadow": "2"}

    def handle(req: Request) -> Response:
        if req.path == "/refuse":
            return Response(422, {"message": "version 1 is not in the registry"})
        if req.method == "POST":
            body = req.json()
            served[body["model"]] = body["to_version"]
            return Response(200, {"version": body["to_version"], "accepted": True})
        return Response(200, {"version": "2"})

    return LoopbackServer(handle)


def card_with_button(slack: FakeSlackApi, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in slack.messages("C0ALERTS"):
            if find_button(message.get("blocks") or [], "rollback_approve"):
                return {**message, "channel": "C0ALERTS"}
        time.sleep(0.1)
    raise AssertionError(f"no proposal card; Slack saw {[c.method for c in slack.calls()]}")


def dump_tables(url: str) -> str:
    engine = create_engine(url)
    try:
        out = []
        with engine.connect() as conn:
            for table in inspect(conn).get_table_names():
                out += [repr(tuple(row)) for row in conn.execute(text(f'SELECT * FROM "{table}"'))]
        return "\n".join(out)
    finally:
        engine.dispose()


def test_no_configured_secret_in_any_output(tmp_path: Path) -> None:
    require(_pg_available(), "PostgreSQL at 127.0.0.1:5432", "start it or set TEST_POSTGRES_URL")
    seen: list[str] = []

    with scratch_postgres(PG_ADMIN_URL, password=DB_PASSWORD) as (name, db_url), FakeSlackApi() as slack, \
            receiver() as hook:
        (tmp_path / "rollback.toml").write_text(policy(hook.url))
        (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in DOTENV_ONLY.items()))
        env = {**SECRETS, "DATABASE_URL": db_url, "SLACK_API_URL": slack.base_url}

        def cli(*args: str, code: int | None = 0, **extra: str) -> str:
            out = run_cli(*args, env={**env, **extra}, cwd=tmp_path)
            seen.append(f"$ {' '.join(args)}\n{out.stdout}{out.stderr}")
            if code is not None:
                assert out.returncode == code, (args, out.stdout, out.stderr)
            return out.stdout + out.stderr

        assert "upgraded" in cli("db", "upgrade")
        assert "configuration OK" in cli("check", "--connect")
        cli("check", LOG_FORMAT="json")
        for model in ("churn", "ranker", "scorer", "shadow"):
            cli("deploy", model, "1", "--stable")
            cli("deploy", model, "2")

        with serving(env, tmp_path) as bot:
            auth = {"Authorization": f"Bearer {SECRETS['ALERT_WEBHOOK_TOKEN']}", "Content-Type": "application/json"}
            body = json.dumps(am_body(am_alert("churn", "fp-grep", severity="warning"))).encode()
            request = urllib.request.Request(f"{bot.url}/alerts/alertmanager", data=body, headers=auth, method="POST")
            with urllib.request.urlopen(request, timeout=10) as resp:
                seen.append(resp.read().decode())
            wrong = urllib.request.Request(f"{bot.url}/api/audit", headers={"Authorization": "Bearer nope"})
            try:
                urllib.request.urlopen(wrong, timeout=10)
            except urllib.error.HTTPError as exc:
                seen.append(exc.read().decode())
            card = card_with_button(slack)
            payload = press_button_payload(card, "rollback_approve", user_id="U0LEAD",
                                           response_url=slack.response_url("C0ALERTS", card["ts"]))
            pressed = post(f"{bot.url}/slack/events", sign(SECRETS["SLACK_SIGNING_SECRET"], payload_body(payload)))
            assert pressed.status == 200, pressed.body
            bot.wait_log("rollback.succeeded")
            listing = urllib.request.Request(f"{bot.url}/api/audit?limit=100", headers=auth)
            with urllib.request.urlopen(listing, timeout=10) as resp:
                seen.append(resp.read().decode())
            seen.append(bot.get("/readyz")[1])
        seen.append(bot.log())
        approved = hook.requests[-1]
        assert verify_signature(DOTENV_ONLY["ROLLBACK_WEBHOOK_SECRET"], approved.body,
                                approved.headers["x-rollback-timestamp"], approved.headers["x-rollback-signature"])
        assert "rollback.succeeded" in bot.log() and "model=churn" in bot.log()

        assert "rolled back ranker from 2 to 1" in cli("rollback", "ranker", "--reason", "errors up")
        failed = cli("rollback", "scorer", "--reason", "errors up", code=1)
        assert "HTTP 422" in failed and "token=***" in failed
        assert "token=***" in cli("rollback", "shadow", "--reason", "rehearsal")
        assert "rollback.succeeded" in cli("audit", "list")
        assert "intact" in cli("audit", "verify")
        cli("audit", "export", "--format", "json")
        cli("audit", "export", "--format", "csv", "--since", "1d")
        cli("audit", "list", "--since", "forever", code=2)
        # Failures print the URL too: masked, password and query token alike.
        down = f"postgresql+psycopg://rb:{DB_PASSWORD}@127.0.0.1:1/x?password={DB_PASSWORD}&sslpassword={DB_PASSWORD}"
        assert "database unreachable at" in cli("deploy", "churn", "3", code=1, DATABASE_URL=down)
        missing = db_url.replace(f"/{name}?", f"/{name}_gone?")
        assert "does not exist" in cli("serve", "--port", str(free_port()), code=1, DATABASE_URL=missing)
        cli("db", "upgrade", code=1, DATABASE_URL=down)
        seen.append(dump_tables(db_url))
        seen += [json.dumps(c.body) for c in slack.calls()]
        seen += [r.body.decode(errors="replace") + r.path for r in hook.requests]

    everything = "\n".join(seen)
    assert "password=***" in everything  # the URLs were printed, masked
    leaks = {s: everything.count(s) for s in [*EVERY_SECRET, quote(DB_PASSWORD)] if s in everything}
    assert not leaks, [everything[max(0, i - 300):i + 50] for s in leaks for i in [everything.find(s)]]
