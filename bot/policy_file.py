"""Read the TOML policy file into typed core objects, collecting every problem with file, key and reason."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from adapters.alerts.errors import MappingError
from adapters.alerts.generic import mapping_from_dict
from bot.core.durations import parse_duration
from bot.core.policy import DEFAULT_VERSION_LABEL, AlertSource, ModelPolicy, NoData, OnTimeout, Policy
from bot.core.severity import ALERT_SEVERITIES, ALIASES, Severity, default_table, is_known_severity, parse_severity
from bot.policy_audit import parse_audit
from bot.slack.directory import is_group_id

# The default list; the composition root passes the registry's names (adapters/targets/TARGET_FACTORIES).
TARGETS = ("local", "webhook", "mlflow", "kubernetes", "argo-rollouts", "kserve", "unleash", "launchdarkly")
DURATION_KEYS = ("approval_timeout", "cooldown", "stable_after", "verify_after")
POLICY_KEYS = (
    "channel", "min_severity", "auto_rollback_severity", "auto_abort_canary_severity", "approvers",
    "required_approvals", "undo_approvals",
    "allow_self_approval", "approval_timeout", "on_timeout", "escalate_to", "cooldown", "stable_after",
    "dry_run", "verify_after", "no_data",
)
MODEL_ONLY_KEYS = ("target", "match", "metrics")
ALERT_SOURCES = ("alertmanager", "grafana", "datadog", "generic")  # the /alerts/<source> paths

TargetValidator = Callable[[Mapping[str, Any]], list[str]]


@dataclass(frozen=True)
class Problem:
    file: str
    key: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.problem}"


@dataclass
class PolicyLoad:
    policy: Policy | None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sources: dict[str, Any] = field(default_factory=dict)


class PolicyFileError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


SOURCE_KEYS = ("version_label", "severity")  # what every [sources.NAME] takes (generic: its mapping too)
SEVERITY_WORDS = tuple(str(s) for s in ALERT_SEVERITIES)


def _check_sources(sources: Mapping[str, Any], bad: Callable[[str, str], None]) -> dict[str, AlertSource]:
    """[sources.NAME]: a known alert source, its version label and severity table; the generic field
    mapping checked key by key. Every source gets settings (the defaults when it has no table)."""
    read = {name: AlertSource(name, severity=default_table(name)) for name in ALERT_SOURCES}
    for source, table in sources.items():
        key = f"sources.{source}"
        if source not in ALERT_SOURCES:
            bad(key, f"unknown alert source; use one of {', '.join(ALERT_SOURCES)}")
        elif not isinstance(table, dict):
            bad(key, "must be a table")
        else:
            read[source] = _source_settings(source, table, key, bad)
            if source == "generic":
                try:
                    mapping_from_dict(table, key)
                except MappingError as exc:
                    for problem in exc.problems:
                        where, _, what = problem.partition(": ")
                        bad(where, what)
            else:
                for name in table:
                    if name not in SOURCE_KEYS:
                        bad(f"{key}.{name}", f"unknown key; allowed keys: {', '.join(SOURCE_KEYS)}")
    return read


def _source_settings(source: str, table: Mapping[str, Any], key: str,
                     bad: Callable[[str, str], None]) -> AlertSource:
    label = table.get("version_label", DEFAULT_VERSION_LABEL)
    if not isinstance(label, str) or not label.strip():
        bad(f"{key}.version_label", "must be the name of a label (or Datadog tag), such as \"version\"")
        label = DEFAULT_VERSION_LABEL
    entries: dict[str, Severity] = {}
    raw = table.get("severity")
    if isinstance(raw, dict):
        for word, value in raw.items():
            if not isinstance(value, str) or value.strip().lower() not in SEVERITY_WORDS:
                bad(f"{key}.severity.{word}", f"must be one of {', '.join(SEVERITY_WORDS)}")
                continue
            entries[word] = parse_severity(value)
    elif raw is not None and source != "generic":  # generic: a string is the field's path (its mapping)
        bad(f"{key}.severity", 'must be a table of sender value = "info" | "warning" | "critical"')
    return AlertSource(source, label.strip(), default_table(source).with_entries(entries))


def severity_tables(policy: Policy) -> list[str]:
    """The effective mapping of each source, one line each, for ``rollback-bot check``."""
    lines = []
    for name in ALERT_SOURCES:
        source = policy.alert_source(name)
        what = "severity tag and listed priorities" if name == "datadog" else "severity"
        lines.append(f"{name}: version label {source.version_label!r}; {what}: {source.severity.describe()}")
        if name == "datadog":
            lines.append("datadog: the transition decides first: Triggered/Re-Triggered of an error alert → "
                         "critical, Warn/Re-Warn → warning, No Data → the model's no_data (fail → critical, "
                         "inconclusive → warning, pass → info), Recovered → resolved; a severity tag or a "
                         "listed priority can only lower that")
    return lines


def severity_note() -> str:
    aliases = ", ".join(f"{k}→{v}" for k, v in sorted(ALIASES.items()) if k != str(v))
    return (f"severities low to high: info < warning < critical; aliases: {aliases}; "
            "unknown severities read as warning")


def load_policy(path: str | Path, target_validators: Mapping[str, TargetValidator] | None = None,
                known_targets: Collection[str] = TARGETS) -> PolicyLoad:
    """Parse and validate; never raises for content problems (they are all returned)."""
    name = str(path)
    file = Path(path)
    if not file.is_file():
        return PolicyLoad(None, [Problem(name, "(file)", "not found; set ROLLBACK_POLICY or create the file "
                                              "(see the README's policy section)")])
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        return PolicyLoad(None, [Problem(name, "(syntax)", f"not valid TOML: {exc}")])
    except UnicodeDecodeError:
        return PolicyLoad(None, [Problem(name, "(file)", "not UTF-8 text")])
    return parse_policy(data, name, target_validators, known_targets)


def parse_policy(data: Mapping[str, Any], name: str = "<policy>",
                 target_validators: Mapping[str, TargetValidator] | None = None,
                 known_targets: Collection[str] = TARGETS) -> PolicyLoad:
    problems: list[Problem] = []
    notes: list[str] = [severity_note()]

    def bad(key: str, problem: str) -> None:
        problems.append(Problem(name, key, problem))

    for key in data:
        if key not in ("defaults", "models", "sources", "audit"):
            bad(key, "unknown top-level table; expected [defaults], [models.NAME], [sources.NAME] or [audit]")
    defaults_raw = data.get("defaults", {})
    if not isinstance(defaults_raw, dict):
        bad("defaults", "must be a table")
        defaults_raw = {}
    defaults = _policy_fields(defaults_raw, "defaults", bad, notes, allow_model_keys=False)
    models_raw = data.get("models", {})
    if not isinstance(models_raw, dict):
        bad("models", "must be a table of [models.NAME] tables")
        models_raw = {}
    if not models_raw:
        bad("models", "no model is configured; add a [models.NAME] table for each model the bot manages")
    models: dict[str, ModelPolicy] = {}
    for model_name, raw in models_raw.items():
        prefix = f"models.{model_name}"
        if not isinstance(raw, dict):
            bad(prefix, "must be a table")
            continue
        fields = {**defaults, **_policy_fields(raw, prefix, bad, notes, allow_model_keys=True)}
        for key, value in raw.items():
            if isinstance(value, dict) and key not in MODEL_ONLY_KEYS and key not in known_targets:
                bad(f"{prefix}.{key}", f"unknown table; target settings go in [{prefix}.<target>] with a "
                                       f"target of {', '.join(known_targets)}")
        target = raw.get("target", "local")
        if target not in known_targets:
            bad(f"{prefix}.target", f"'{target}' is not a target; use one of {', '.join(known_targets)}")
            target = "local"
        settings = raw.get(target, {})
        if not isinstance(settings, dict):
            bad(f"{prefix}.{target}", "must be a table of the target's settings")
            settings = {}
        for other in known_targets:
            if other != target and other in raw:
                bad(f"{prefix}.{other}", f"settings for target '{other}' but target is '{target}'")
        if target_validators and target in target_validators:
            for msg in target_validators[target](settings):
                bad(f"{prefix}.{target}", msg)
        match = raw.get("match", {"model": model_name})
        if not isinstance(match, dict) or not all(isinstance(v, str) for v in match.values()) or not match:
            bad(f"{prefix}.match", "must be a non-empty inline table of label = \"value\" strings")
            match = {"model": model_name}
        metrics = raw.get("metrics", {})
        if not isinstance(metrics, dict) or not all(isinstance(v, str) for v in metrics.values()):
            bad(f"{prefix}.metrics", "must be a table of name = 'PromQL expression' strings")
            metrics = {}
        for count_key in ("required_approvals", "undo_approvals"):
            if fields.get(count_key, 1) > max(1, len(fields.get("approvers", ()))) and not any(
                is_group_id(a) for a in fields.get("approvers", ())
            ):
                bad(f"{prefix}.{count_key}",
                    f"needs {fields[count_key]} distinct approvers but only "
                    f"{len(fields.get('approvers', ()))} are listed")
        if not fields.get("channel"):
            bad(f"{prefix}.channel", "no Slack channel; set channel in [defaults] or in this model's table")
        models[model_name] = ModelPolicy(
            name=model_name, target=target, target_settings=dict(settings), match=dict(match),
            metrics=dict(metrics), **fields,
        )
    sources = data.get("sources", {})
    if not isinstance(sources, dict):
        bad("sources", "must be a table of [sources.NAME] tables")
        sources = {}
    alert_sources = _check_sources(sources, bad)
    audit = parse_audit(data.get("audit", {}), bad)
    if problems:
        return PolicyLoad(None, problems, notes, dict(sources))
    policy = Policy(models=models, source=name, sources=dict(sources), alert_sources=alert_sources, audit=audit)
    return PolicyLoad(policy, [], notes, dict(sources))


def _policy_fields(raw: Mapping[str, Any], prefix: str, bad: Callable[[str, str], None],
                   notes: list[str], *, allow_model_keys: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        full = f"{prefix}.{key}"
        if key in POLICY_KEYS:
            try:
                out[key] = _convert(key, value, notes, full)
            except ValueError as exc:
                bad(full, str(exc))
        elif allow_model_keys and (key in MODEL_ONLY_KEYS or isinstance(value, dict)):
            continue
        else:
            allowed = POLICY_KEYS + (MODEL_ONLY_KEYS if allow_model_keys else ())
            bad(full, f"unknown key; allowed keys: {', '.join(allowed)}")
    return out


def _convert(key: str, value: Any, notes: list[str], full: str) -> Any:
    if key in DURATION_KEYS:
        if not isinstance(value, str):
            raise ValueError("must be a duration string such as \"15m\" or \"2h\"")
        delta: timedelta = parse_duration(value)
        if delta.total_seconds() <= 0 and key != "cooldown":
            raise ValueError("must be longer than 0s")
        return delta
    never_ok = ("auto_rollback_severity", "auto_abort_canary_severity")
    if key in never_ok and isinstance(value, str) and value.strip().lower() == "never":
        return Severity.NEVER  # every incident asks a person, however severe
    if key in ("min_severity", *never_ok):
        also = " or never" if key in never_ok else ""
        if not isinstance(value, str):
            raise ValueError(f"must be a severity string: info, warning or critical{also}")
        if not is_known_severity(value):
            raise ValueError(f"unknown severity '{value}'; use info, warning or critical{also}")
        sev: Severity = parse_severity(value)
        if value.lower() != str(sev):
            notes.append(f"{full}: '{value}' reads as {sev}")
        return sev
    if key in ("approvers", "escalate_to"):
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ValueError("must be a list of Slack user IDs (U…/W…) and user-group IDs (S…)")
        wrong = [v for v in value if v[:1] not in ("U", "W", "S")]
        if wrong:
            raise ValueError(f"{', '.join(wrong)}: not a Slack user ID (U…/W…) or user-group ID (S…)")
        return tuple(value)
    if key in ("required_approvals", "undo_approvals"):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError("must be a whole number of at least 1")
        return value
    if key in ("allow_self_approval", "dry_run"):
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if key == "on_timeout":
        try:
            return OnTimeout(value)
        except ValueError:
            raise ValueError(f"'{value}' is not one of escalate, rollback, expire") from None
    if key == "no_data":
        try:
            return NoData(value)
        except ValueError:
            raise ValueError(f"'{value}' is not one of fail, pass, inconclusive") from None
    if key == "channel":
        if not isinstance(value, str) or not value:
            raise ValueError("must be a Slack channel ID such as \"C0ALERTS\"")
        return value
    raise ValueError("unknown key")
