"""Headless Debian Chromium driven by Playwright (pointed at the system browser, never a downloaded one),
with axe-core injected for the accessibility check. Screenshots go to ``test-artifacts/pages/``."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.components import require
from tests.integration.realservers import cache_dir

CHROMIUM = os.environ.get("ROLLBACK_BOT_TEST_CHROMIUM", "/usr/bin/chromium")
AXE_VERSION = "4.14.1"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "pages"


def axe_script() -> Path:
    """axe-core from npm, installed once into the test cache."""
    target = cache_dir() / f"axe-core-{AXE_VERSION}"
    script = target / "node_modules" / "axe-core" / "axe.min.js"
    if script.exists():
        return script
    npm = shutil.which("npm")
    require(npm is not None, "npm", "install Debian's npm (for the axe-core accessibility engine)")
    assert npm is not None
    target.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(target),
                           f"axe-core@{AXE_VERSION}"], capture_output=True, text=True, timeout=300, check=False)
    require(proc.returncode == 0 and script.exists(), "axe-core", f"npm install failed: {proc.stderr[-800:]}")
    return script


@pytest.fixture
def chromium() -> Iterator[Any]:
    """Per test: Playwright's sync API runs an event loop on this thread while it is open, which would break
    later tests that call asyncio.run()."""
    require(Path(CHROMIUM).exists(), "chromium", "apt-get install chromium (Debian's package)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "playwright", "install the test extras (pip install -e '.[test]')")
        raise
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


class Pages:
    """One browser context per test: no state shared; CSP bypassed only so axe can be injected."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(bypass_csp=True, java_script_enabled=True)
        self.page = self.context.new_page()
        self.axe = axe_script()

    def open(self, url: str) -> int:
        response = self.page.goto(url)
        assert response is not None
        return int(response.status)

    def text(self) -> str:
        return str(self.page.inner_text("body"))

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def serious_violations(self) -> list[str]:
        """axe-core's serious and critical violations of the open page, as 'rule: target' lines."""
        self.page.add_script_tag(path=str(self.axe))
        found = self.page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
            ".map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))")
        return [str(v) for v in found]

    def links(self) -> list[str]:
        return [str(h) for h in self.page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def pages(chromium: Any) -> Iterator[Pages]:
    opened = Pages(chromium)
    try:
        yield opened
    finally:
        opened.close()
