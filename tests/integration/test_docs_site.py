"""The documentation: the mkdocs site builds with --strict, the README's links resolve, the policy reference
names every key the loader accepts and its examples load, and the README stays short."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from adapters.alerts.generic import GenericMapping
from bot.policy_file import MODEL_ONLY_KEYS, POLICY_KEYS, TARGETS, parse_policy

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def test_mkdocs_builds_the_site_strictly(tmp_path: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    for page in ("index.html", "policy/index.html", "operations/index.html", "deployment/kubernetes/index.html",
                 "targets/index.html", "targets/webhook/index.html", "architecture/index.html"):
        assert (tmp_path / page).is_file(), page


def test_every_path_the_architecture_page_names_exists() -> None:
    page = (DOCS / "architecture.md").read_text()
    paths = set(re.findall(r"`((?:bot|adapters|devkit|tests|migrations|docs)/[\w/.-]*)`", page))
    assert len(paths) > 30
    assert not [p for p in sorted(paths) if not (ROOT / p).exists()]


def test_mkdocs_lists_every_page_without_a_hand_written_nav() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    assert not re.search(r"^nav:", config, re.M), "pages added later must appear without editing mkdocs.yml"


def test_every_relative_link_in_the_readme_resolves() -> None:
    readme = (ROOT / "README.md").read_text()
    targets = [t for t in LINK.findall(readme) if not t.startswith(("http://", "https://", "#", "mailto:"))]
    assert targets
    for target in targets:
        assert (ROOT / target.split("#")[0]).exists(), f"README links to missing {target}"


def test_the_readme_is_short_and_keeps_its_sections() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 350
    for heading in ("## The two commands", "## Five minutes to a real Slack workspace", "## Benchmarks",
                    "## Limitations"):
        assert heading in readme
    assert "./scripts/demo" in readme and "./scripts/test" in readme
    assert "kubectl apply -k deploy/kubernetes/overlays/" in readme
    assert "CREATEDB" in readme and "TEST_POSTGRES_URL" in readme


def test_the_policy_reference_names_every_key_the_loader_accepts() -> None:
    page = (DOCS / "policy.md").read_text()
    mapping_keys = [f.name for f in dataclasses.fields(GenericMapping)]
    for key in (*POLICY_KEYS, *MODEL_ONLY_KEYS, *mapping_keys, *TARGETS):
        assert f"`{key}`" in page, f"docs/policy.md does not document {key}"


def test_the_policy_reference_examples_load() -> None:
    blocks = re.findall(r"```toml\n(.*?)```", (DOCS / "policy.md").read_text(), re.S)
    assert len(blocks) >= 3
    for block in blocks:
        data = tomllib.loads(block)
        if "models" in data:
            loaded = parse_policy(data, "docs/policy.md")
            assert loaded.policy is not None, loaded.problems


def test_each_target_page_names_its_settings_table_and_credentials() -> None:
    credentials = {"local": None, "webhook": "ROLLBACK_WEBHOOK_SECRET", "mlflow": "MLFLOW_TRACKING_TOKEN",
                   "unleash": "UNLEASH_API_TOKEN", "launchdarkly": "LAUNCHDARKLY_API_TOKEN"}
    for target, variable in credentials.items():
        page = (DOCS / "targets" / f"{target}.md").read_text()
        assert f'target = "{target}"' in page
        assert variable is None or variable in page


def test_the_first_run_says_what_it_installs_before_installing() -> None:
    script = (ROOT / "scripts" / "_venv.sh").read_text()
    announce = script.index('echo "== first run')
    assert announce < script.index('"${pip[@]}"')
    assert "requirements-dev.lock" in script
