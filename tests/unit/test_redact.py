"""One mask for every printed URL: user-info passwords and query-string credentials alike."""

from __future__ import annotations

import pytest

from bot.redact import mask_url, redact, url_secrets


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql+psycopg://rb:pw@db:5432/rb", "postgresql+psycopg://rb:***@db:5432/rb"),
    ("postgresql://db/rb?password=pw&sslmode=require", "postgresql://db/rb?password=***&sslmode=require"),
    ("postgresql://db/rb?sslpassword=pw&PASSWORD=pw2", "postgresql://db/rb?sslpassword=***&PASSWORD=***"),
    ("https://hooks.example/deploy?token=t&api_key=k&x-sig=s&model=m",
     "https://hooks.example/deploy?token=***&api_key=***&x-sig=s&model=m"),
    ("https://ghp_abc@github.example/x", "https://***@github.example/x"),
    ("sqlite:///./rollback-bot.db", "sqlite:///./rollback-bot.db"),
    ("sqlite:////var/lib/rb/x.db", "sqlite:////var/lib/rb/x.db"),
    ("postgresql://rb@db/rb", "postgresql://rb@db/rb"),
    ("http://127.0.0.1:9090", "http://127.0.0.1:9090"),
])
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_url_secrets_include_percent_decoded_values() -> None:
    assert set(url_secrets("postgresql://u:a%40b@h/d?password=c%2Fd")) >= {"a%40b", "a@b", "c%2Fd", "c/d"}


def test_redact_masks_urls_inside_text_and_known_values() -> None:
    text = "connect to postgresql://u:pw1@h/d?password=pw2 failed; token tok-123 rejected"
    assert redact(text, ["tok-123"]) == (
        "connect to postgresql://u:***@h/d?password=*** failed; token *** rejected")
