"""The layering rules docs/architecture.md states, read from the source: the product never imports the
development kit, the core imports no Slack, HTTP or SQL library, and adapters reach the product only through
the core."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import bot.demo

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE_WORLD = ("slack_bolt", "slack_sdk", "starlette", "httpx", "aiohttp", "sqlalchemy", "sqlmodel", "alembic",
                 "psycopg", "uvicorn", "lightkube", "bot.store", "bot.slack", "bot.web", "adapters")


def imports_in(text: str, package: str) -> Iterator[str]:
    """Every module an import statement names, relative imports resolved against ``package``."""
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            yield ".".join(p for p in (base, node.module or "") if p)


def imported(path: Path) -> list[str]:
    return list(imports_in(path.read_text(), ".".join(path.relative_to(ROOT).parts[:-1])))


def sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("path", sources("bot", "adapters"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_product_never_imports_the_devkit(path: Path) -> None:
    assert not [m for m in imported(path) if under(m, ("devkit",))]


@pytest.mark.parametrize("path", sources("bot/core"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_imports_no_slack_http_or_sql(path: Path) -> None:
    assert not [m for m in imported(path) if under(m, OUTSIDE_WORLD)]


@pytest.mark.parametrize("path", sources("adapters"), ids=lambda p: str(p.relative_to(ROOT)))
def test_adapters_reach_the_product_only_through_the_core(path: Path) -> None:
    product = [m for m in imported(path) if under(m, ("bot",))]
    assert all(under(m, ("bot.core", "bot.redact")) for m in product), product  # redact: secrets out of errors


def test_the_check_sees_every_form_of_import() -> None:
    text = "import devkit\nfrom devkit.signing import sign\nfrom . import fake_api\nfrom ..core import ports\n"
    found = list(imports_in(text, "bot.slack"))
    assert found == ["devkit", "devkit.signing", "bot.slack", "bot.core"]
    assert [m for m in found if under(m, ("devkit",))] == ["devkit", "devkit.signing"]


def test_demo_without_the_devkit_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    for name in [n for n in sys.modules if n == "devkit" or n.startswith("devkit.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "devkit", None)  # what an install without the kit finds
    assert bot.demo.run_demo() == 2
    err = capsys.readouterr().err
    assert "development kit" in err and "./scripts/demo" in err
