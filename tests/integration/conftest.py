"""Session fixtures for integration tests against real servers on loopback (MLflow, Unleash, Prometheus)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.components import require
from tests.integration import realservers
from tests.integration.promstack import INSTALL_HINT, PromStack, missing_binaries, start_promstack


@pytest.fixture(scope="session")
def mlflow_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with realservers.mlflow_server(tmp_path_factory.mktemp("mlflow")) as url:
        yield url


@pytest.fixture(scope="session")
def unleash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with realservers.unleash_server(tmp_path_factory.mktemp("unleash")) as info:
        yield info


@pytest.fixture(scope="session")
def promstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromStack]:
    """Prometheus + Alertmanager + exporter + recording receiver, once per session (see promstack.py)."""
    missing = missing_binaries()
    require(not missing, ", ".join(missing), f"install the Debian packages: {INSTALL_HINT}")
    stack = start_promstack(tmp_path_factory.mktemp("promstack"))
    try:
        yield stack
    finally:
        stack.stop()
