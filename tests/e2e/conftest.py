"""Fixtures of the end-to-end tests: the headless browser for the incident pages."""

from tests.e2e.browser import chromium, pages

__all__ = ["chromium", "pages"]
