"""Shared pieces for the alert intake tests: a policy with alert-matched models, payload builders, counts."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from bot.bootstrap import Container, build
from bot.config import settings_from
from bot.core.clock import Clock
from bot.policy_file import TARGETS, parse_policy
from bot.store.db import make_engine
from tests.fakes.ports import FakeTarget, RecordingNotifier

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "alerts"
TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

POLICY: dict[str, Any] = {
    "defaults": {
        "channel": "C0ALERTS", "approvers": ["U0LEAD", "U0BOB"], "approval_timeout": "15m",
        "cooldown": "30m", "min_severity": "warning", "auto_rollback_severity": "critical",
    },
    "models": {
        "fraud": {"target": "fake"},
        "fraud-detector": {"target": "fake"},
        "ranker": {"target": "fake", "match": {"service": "ranking", "team": "search"}},
    },
    "sources": {"generic": {"alerts": "events", "status": "state", "firing": ["open"], "resolved": ["closed"],
                            "labels": "tags", "name": "title", "severity": "priority", "starts_at": "opened",
                            "fingerprint": "id"}},
}


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def policy(models: dict[str, Any] | None = None) -> Any:
    data = copy.deepcopy(POLICY)
    if models is not None:
        data["models"] = models
    loaded = parse_policy(data, "test-policy.toml", known_targets=(*TARGETS, "fake"))
    assert loaded.policy is not None, loaded.problems
    return loaded.policy


def make_container(db_url: str, clock: Clock, target: FakeTarget, notifier: RecordingNotifier,
                   env: dict[str, str] | None = None, pol: Any = None) -> Container:
    settings = settings_from({"DATABASE_URL": db_url, "ALERT_WEBHOOK_TOKEN": TOKEN, **(env or {})})
    return build(settings, policy=pol or policy(), clock=clock, engine=make_engine(db_url),
                 targets={"fake": target}, notifier=notifier)


def deploy(container: Container, model: str, versions: tuple[str, ...] = ("5", "6", "7")) -> None:
    for version in versions:
        container.service.deploy(model, version, actor="api:ci", stable=version != versions[-1])


def am_alert(model: str, fingerprint: str, *, severity: str = "warning", status: str = "firing",
             starts: str = "2026-11-02T11:58:00Z", ends: str = "0001-01-01T00:00:00Z",
             name: str = "ModelErrorRateHigh", **labels: str) -> dict[str, Any]:
    """One alert shaped like the captured Alertmanager body (tests/fixtures/alerts/alertmanager-firing.json)."""
    alert: dict[str, Any] = copy.deepcopy(load("alertmanager-firing.json")["alerts"][0])
    alert.update(status=status, fingerprint=fingerprint, startsAt=starts, endsAt=ends)
    alert["labels"] = {"alertname": name, "model": model, "severity": severity, **labels}
    alert["annotations"]["summary"] = f"{name} for {model} ({fingerprint})"
    return alert


def am_body(*alerts: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = load("alertmanager-firing.json")
    body["alerts"] = list(alerts)
    body["status"] = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return body


def table_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())
                for t in ("alerts", "proposals", "audit", "deployments")}
