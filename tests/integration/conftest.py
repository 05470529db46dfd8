"""Session fixtures for integration tests against real servers on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.integration.promstack import INSTALL_HINT, PromStack, missing_binaries, start_promstack


@pytest.fixture(scope="session")
def promstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromStack]:
    """Prometheus + Alertmanager + exporter + recording receiver, once per session (see promstack.py).

    Missing binaries skip the tests locally; with CI=true they fail, naming the packages to install.
    """
    if missing := missing_binaries():
        message = f"{', '.join(missing)} not installed; install the Debian packages: {INSTALL_HINT}"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    stack = start_promstack(tmp_path_factory.mktemp("promstack"))
    try:
        yield stack
    finally:
        stack.stop()
