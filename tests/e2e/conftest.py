"""End-to-end fixtures: the real Prometheus + Alertmanager stack (see tests/integration/promstack.py)."""

from tests.integration.conftest import promstack

__all__ = ["promstack"]
