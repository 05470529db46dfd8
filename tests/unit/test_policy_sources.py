"""[sources.NAME] in the policy file: a bad generic mapping is reported with file, key and problem."""

from __future__ import annotations

from pathlib import Path

from bot.policy_file import load_policy

POLICY = """
[defaults]
channel = "C0ALERTS"
[models.fraud]
target = "local"
"""


def test_bad_generic_mapping_is_reported_key_by_key(tmp_path: Path) -> None:
    file = tmp_path / "rollback.toml"
    file.write_text(POLICY + """
[sources.generic]
alerts = 3
status = "state"
firing = ["open"]
resolved = ["open"]
colour = "red"
[sources.nagios]
""")
    loaded = load_policy(file)
    assert loaded.policy is None
    shown = [str(p) for p in loaded.problems]
    assert f"{file}: sources.generic.alerts: expected a dotted path string, got number" in shown
    assert any(s.startswith(f"{file}: sources.generic.colour: unknown key") for s in shown)
    assert f"{file}: sources.generic: open listed as both firing and resolved" in shown
    assert any(s.startswith(f"{file}: sources.nagios: unknown alert source") for s in shown)


def test_good_generic_mapping_reaches_the_policy(tmp_path: Path) -> None:
    file = tmp_path / "rollback.toml"
    file.write_text(POLICY + '[sources.generic]\nalerts = "events"\nextra_labels = { model = "service" }\n')
    loaded = load_policy(file)
    assert loaded.policy is not None, loaded.problems
    assert loaded.policy.sources["generic"]["alerts"] == "events"
