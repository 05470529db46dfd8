"""deploy/grafana/rollback-bot.json: every panel's expression parses (the real `promtool check rules`) and
names only metrics the bot's /metrics really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from bot.report.metrics import RollbackCollector
from bot.store.report_queries import ReportQueries
from tests.components import require

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "rollback-bot.json"
# Grafana fills these in before Prometheus sees the query.
VARIABLES = {"$__range": "7d", "$__rate_interval": "5m", "$model": ".*"}


def expressions() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = []
    for panel in dashboard["panels"]:
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            expr = target["expr"]
            for name, value in VARIABLES.items():
                expr = expr.replace(name, value)
            found.append((f"{panel['title']} {target['refId']}", expr))
    return found


def test_every_panel_expression_parses(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    require(promtool is not None, "promtool", "apt-get install prometheus (it ships promtool)")
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:panel_{i}", "expr": expr} for i, (_, expr) in enumerate(expressions())]}]}
    path = tmp_path / "rules.yml"
    path.write_text(json.dumps(rules))  # JSON is YAML
    proc = subprocess.run([str(promtool), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(rules['groups'][0]['rules'])} rules found" in proc.stdout


def test_panels_name_only_exported_metrics(container: Any) -> None:
    registry = CollectorRegistry()
    registry.register(RollbackCollector(ReportQueries(container.engine)))
    exported = generate_latest(registry).decode()
    names = set(re.findall(r"^# TYPE (\S+) (\S+)$", exported, flags=re.M))
    known = set()
    for name, kind in names:
        known.add(name)
        if kind == "counter":
            known.add(f"{name}_total")
        if kind == "histogram":
            known |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    for title, expr in expressions():
        for metric in re.findall(r"\b(rollback_bot_[a-z_]+)", expr):
            assert metric in known, f"{title}: {metric} is not exported"
