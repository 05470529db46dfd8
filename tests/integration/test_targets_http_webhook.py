"""The shared HTTP helper and the webhook target against a real loopback server."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.targets import TARGET_FACTORIES
from adapters.targets.common import CheckableTarget
from adapters.targets.http import HttpClient
from adapters.targets.webhook import WebhookTarget, verify_signature
from bot.core.errors import TargetError
from bot.core.ports import DeploymentTarget, SwitchRequest
from tests.fakes.httpserver import LoopbackServer, Request, Response

SECRET = "whsec-test-secret"


class Script:
    """Answers with the queued statuses, then 200."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.version = "1.4.0"

    def __call__(self, req: Request) -> Response:
        status = self.statuses.pop(0) if self.statuses else 200
        if status != 200:
            return Response(status, {"message": f"scripted {status}", "token_echo": "nothing"})
        if req.method == "POST":
            self.version = req.json()["to_version"]
            return Response(200, {"version": self.version, "accepted": True})
        return Response(200, {"version": self.version})


@pytest.fixture
def server() -> Iterator[tuple[LoopbackServer, Script]]:
    script = Script()
    with LoopbackServer(script) as srv:
        yield srv, script


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def client(srv: LoopbackServer, sleeps: list[float], **kw: Any) -> HttpClient:
    return HttpClient(
        "testsys", base_url=srv.url, headers={"Authorization": "Bearer s3cr3t"}, sleep=sleeps.append, **kw
    )


def test_5xx_retried_with_growing_backoff_then_success(server: tuple[LoopbackServer, Script]) -> None:
    srv, script = server
    script.statuses = [503, 502]
    sleeps: list[float] = []
    response = client(srv, sleeps).request("GET", "/status", operation="read status")
    assert response.status_code == 200 and len(srv.requests) == 3
    assert len(sleeps) == 2 and 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0


def test_5xx_exhausted_keeps_status_and_body(server: tuple[LoopbackServer, Script]) -> None:
    srv, script = server
    script.statuses = [500, 500, 500]
    with pytest.raises(TargetError) as info:
        client(srv, []).request("POST", "/x", operation="do the thing")
    err = info.value
    assert err.status == 500 and err.retryable and "scripted 500" in (err.body or "")
    assert str(err).startswith("testsys: do the thing failed after 3 attempts: HTTP 500")
    assert "s3cr3t" not in str(err)


def test_4xx_not_retried(server: tuple[LoopbackServer, Script]) -> None:
    srv, script = server
    script.statuses = [403]
    sleeps: list[float] = []
    with pytest.raises(TargetError) as info:
        client(srv, sleeps).request("GET", "/x", operation="read")
    assert info.value.status == 403 and not info.value.retryable
    assert len(srv.requests) == 1 and sleeps == []


def test_long_body_truncated(server: tuple[LoopbackServer, Script]) -> None:
    srv, _ = server
    srv.handler = lambda req: Response(400, raw=b"x" * 10000, headers={"Content-Type": "text/plain"})
    with pytest.raises(TargetError) as info:
        client(srv, []).request("GET", "/x", operation="read")
    assert len(info.value.body or "") < 2100 and "more chars" in (info.value.body or "")


def test_connection_refused_retried_then_target_error() -> None:
    sleeps: list[float] = []
    http = HttpClient("testsys", base_url=f"http://127.0.0.1:{free_port()}", sleep=sleeps.append, attempts=3)
    with pytest.raises(TargetError) as info:
        http.request("GET", "/x", operation="reach it")
    assert len(sleeps) == 2 and info.value.retryable and info.value.status is None
    assert "cannot connect" in str(info.value) and "testsys: reach it" in str(info.value)


def test_timeout_retried(server: tuple[LoopbackServer, Script]) -> None:
    srv, _ = server

    def slow(req: Request) -> Response:
        time.sleep(0.3)
        return Response(200, {})

    srv.handler = slow
    with pytest.raises(TargetError, match="timed out"):
        client(srv, [], timeout=0.05, attempts=2).request("GET", "/x", operation="read")
    assert len(srv.requests) == 2


def test_authorization_never_logged(server: tuple[LoopbackServer, Script], caplog: Any) -> None:
    srv, script = server
    script.statuses = [500]
    with caplog.at_level(logging.DEBUG, logger="adapters.targets.http"):
        client(srv, []).request("GET", "/x", operation="read")
    assert "s3cr3t" not in caplog.text and "<redacted>" in caplog.text
    assert "s3cr3t" not in repr(client(srv, []))


def request(url: str, **extra: Any) -> SwitchRequest:
    return SwitchRequest("churn", "2.0", "1.9", 42, "error rate 12%", {"url": url, **extra})


def test_webhook_posts_signed_idempotent_payload(server: tuple[LoopbackServer, Script]) -> None:
    srv, _ = server
    target = WebhookTarget(env={"ROLLBACK_WEBHOOK_SECRET": SECRET})
    result = target.switch(request(f"{srv.url}/rollback"))
    post = srv.requests[-1]
    assert json.loads(post.body) == {
        "model": "churn",
        "from_version": "2.0",
        "to_version": "1.9",
        "proposal_id": 42,
        "reason": "error rate 12%",
    }
    assert post.headers["idempotency-key"] == "rollback-42-1.9"
    assert post.headers["x-rollback-signature"].startswith("sha256=")
    assert verify_signature(
        SECRET, post.body, post.headers["x-rollback-timestamp"], post.headers["x-rollback-signature"]
    )
    assert not verify_signature(
        "wrong", post.body, post.headers["x-rollback-timestamp"], post.headers["x-rollback-signature"]
    )
    assert not verify_signature(
        SECRET, post.body + b" ", post.headers["x-rollback-timestamp"], post.headers["x-rollback-signature"]
    )
    stale = str(int(post.headers["x-rollback-timestamp"]) - 600)
    assert not verify_signature(SECRET, post.body, stale, post.headers["x-rollback-signature"])
    assert result.served_version == "1.9"


def test_webhook_retries_5xx_with_same_idempotency_key(server: tuple[LoopbackServer, Script]) -> None:
    srv, script = server
    script.statuses = [502]
    WebhookTarget(env={"ROLLBACK_WEBHOOK_SECRET": SECRET}, sleep=lambda s: None).switch(request(srv.url))
    keys = {r.headers["idempotency-key"] for r in srv.requests}
    assert len(srv.requests) == 2 and keys == {"rollback-42-1.9"}


def test_webhook_4xx_not_retried(server: tuple[LoopbackServer, Script]) -> None:
    srv, script = server
    script.statuses = [422]
    with pytest.raises(TargetError) as info:
        WebhookTarget(env={"ROLLBACK_WEBHOOK_SECRET": SECRET}).switch(request(srv.url))
    assert info.value.status == 422 and len(srv.requests) == 1
    assert SECRET not in str(info.value)


def test_webhook_status_url_and_dry_run(server: tuple[LoopbackServer, Script]) -> None:
    srv, _ = server
    target = WebhookTarget(env={"ROLLBACK_WEBHOOK_SECRET": SECRET})
    settings = {"url": srv.url, "status_url": f"{srv.url}/status"}
    assert target.current_version("churn", settings) == "1.4.0"
    assert target.current_version("churn", {"url": srv.url}) is None
    text = target.describe(request(srv.url))
    assert "POST" in text and "rollback-42-1.9" in text and SECRET not in text
    assert len(srv.requests) == 1
    assert target.validate(settings) == []
    assert any("ROLLBACK_WEBHOOK_SECRET" in p for p in WebhookTarget(env={}).validate(settings))
    with pytest.raises(TargetError, match="ROLLBACK_WEBHOOK_SECRET"):
        WebhookTarget(env={}).switch(request(srv.url))
    assert "1.4.0" in target.check_connection("churn", settings)


def test_registry_products_are_checkable_targets() -> None:
    assert set(TARGET_FACTORIES) == {
        "webhook",
        "mlflow",
        "kubernetes",
        "argo-rollouts",
        "kserve",
        "unleash",
        "launchdarkly",
    }
    for name, factory in TARGET_FACTORIES.items():
        target = factory()
        assert isinstance(target, DeploymentTarget) and isinstance(target, CheckableTarget)
        assert target.name == name
        assert target.validate({}), f"{name} accepts empty settings"
