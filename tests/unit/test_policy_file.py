from datetime import timedelta
from pathlib import Path

from bot.core.policy import NoData, OnTimeout
from bot.core.severity import Severity
from bot.policy_file import load_policy

GOOD = '''
[defaults]
channel = "C0ALERTS"
min_severity = "warning"
auto_rollback_severity = "page"
approvers = ["U0LEAD", "S0ONCALL"]
required_approvals = 2
approval_timeout = "15m"
on_timeout = "escalate"
escalate_to = ["S0SRE"]
cooldown = "30m"
stable_after = "1h30m"
verify_after = "5m"
no_data = "fail"

[models.fraud-detector]
target = "local"
match = { model = "fraud-detector", team = "risk" }
[models.fraud-detector.metrics]
error_rate = 'sum(rate(model_errors_total{model="fraud-detector"}[5m]))'

[models.churn]
target = "webhook"
dry_run = true
required_approvals = 1
[models.churn.webhook]
url = "https://deployer.example/rollback"
'''


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rollback.toml"
    path.write_text(text)
    return path


def test_a_good_file_becomes_typed_objects(tmp_path: Path) -> None:
    loaded = load_policy(write(tmp_path, GOOD))
    assert loaded.problems == []
    assert loaded.policy is not None
    fraud = loaded.policy.models["fraud-detector"]
    assert fraud.auto_rollback_severity is Severity.CRITICAL
    assert fraud.stable_after == timedelta(minutes=90)
    assert fraud.on_timeout is OnTimeout.ESCALATE and fraud.no_data is NoData.FAIL
    assert fraud.required_approvals == 2 and fraud.approvers == ("U0LEAD", "S0ONCALL")
    assert fraud.matches({"model": "fraud-detector", "team": "risk", "x": "y"})
    assert not fraud.matches({"model": "fraud-detector"})
    churn = loaded.policy.models["churn"]
    assert churn.target == "webhook" and churn.dry_run and churn.required_approvals == 1
    assert churn.target_settings == {"url": "https://deployer.example/rollback"}
    assert churn.match == {"model": "churn"}
    assert any("'page' reads as critical" in n for n in loaded.notes)


def test_every_problem_is_reported_with_file_key_and_reason(tmp_path: Path) -> None:
    bad = '''
[defaults]
channel = "C0ALERTS"
approval_timeout = "soon"
on_timeout = "panic"
approvers = ["lead"]
colour = "blue"

[models.a]
target = "teleport"
min_severity = "bad"

[models.b]
target = "local"
required_approvals = 0
[models.b.webhok]
url = "x"
'''
    path = write(tmp_path, bad)
    loaded = load_policy(path)
    assert loaded.policy is None
    text = [str(p) for p in loaded.problems]
    expected = [
        f"{path}: defaults.approval_timeout: 'soon' is not a duration",
        f"{path}: defaults.on_timeout: 'panic' is not one of escalate, rollback, expire",
        f"{path}: defaults.approvers: lead: not a Slack user ID",
        f"{path}: defaults.colour: unknown key",
        f"{path}: models.a.target: 'teleport' is not a target",
        f"{path}: models.a.min_severity: unknown severity 'bad'",
        f"{path}: models.b.required_approvals: must be a whole number of at least 1",
        f"{path}: models.b.webhok: unknown table",
    ]
    for line in expected:
        assert any(t.startswith(line) for t in text), (line, text)


def test_syntax_errors_and_missing_files(tmp_path: Path) -> None:
    loaded = load_policy(write(tmp_path, "[defaults\nchannel = 1"))
    assert loaded.policy is None and "(syntax): not valid TOML" in str(loaded.problems[0])
    missing = load_policy(tmp_path / "nope.toml")
    assert "not found; set ROLLBACK_POLICY" in str(missing.problems[0])


def test_no_models_and_no_channel(tmp_path: Path) -> None:
    loaded = load_policy(write(tmp_path, "[defaults]\ncooldown = '1h'\n[models.x]\n"))
    assert any("models.x.channel: no Slack channel" in str(p) for p in loaded.problems)
    empty = load_policy(write(tmp_path, "[defaults]\nchannel='C1'\n"))
    assert any("models: no model is configured" in str(p) for p in empty.problems)


def test_more_required_approvals_than_approvers(tmp_path: Path) -> None:
    loaded = load_policy(write(tmp_path, "[defaults]\nchannel='C1'\napprovers=['U1']\n"
                                          "required_approvals=2\n[models.x]\n"))
    assert any("needs 2 distinct approvers but only 1 are listed" in str(p) for p in loaded.problems)
