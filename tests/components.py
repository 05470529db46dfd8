"""Real components the tests need: skip when one is missing on a developer's machine, fail under CI."""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require(available: bool, what: str, how: str) -> None:
    """Skip (or, in CI, fail) a test whose real component is missing, saying how to get it."""
    if available:
        return
    message = f"{what} is not available: {how}"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)
