"""Session fixtures for integration tests against real servers on loopback (MLflow, Unleash)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration import realservers


@pytest.fixture(scope="session")
def mlflow_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with realservers.mlflow_server(tmp_path_factory.mktemp("mlflow")) as url:
        yield url


@pytest.fixture(scope="session")
def unleash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with realservers.unleash_server(tmp_path_factory.mktemp("unleash")) as info:
        yield info
