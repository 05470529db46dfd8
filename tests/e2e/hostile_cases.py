"""Malformed and hostile requests to the HTTP and Slack surface, one row each: what is sent, the status it must
get, the field the answer must name, and the tables it may change (none, but for two noted rows).

The first rows reproduce the 500s of issue 15 (values over the column length, NUL, lone surrogates, NaN and
Infinity, metadata 2,000 deep, ``{"version": true}``, ``/api/proposals/²``, ids past the integer column,
``model=%00``, ``since=99999999999d``, a non-numeric Slack timestamp, bodies past the cap); the rest probe
each field and header around its bounds.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devkit.signing import event_callback_body, signature, slash_command_body

SECRET = "e2e-signing-secret"  # tests/e2e/slackbot.py
TOKEN = "e2e-alert-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json"}
FORM = "application/x-www-form-urlencoded"

Body = bytes | Callable[[], Iterator[bytes]] | None


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    status: int
    field: str | None = None  # the answer's "field" must be this
    words: str = ""  # and its "error" must contain this
    body: Body = None
    headers: dict[str, str] | Callable[[], dict[str, str]] = dataclasses.field(default_factory=dict)
    auth: bool = True
    changes: frozenset[str] = frozenset()  # tables this request may change
    replay_first: bool = False  # send the same request once before (it must pass), then assert on the replay
    key: str = "error"  # the answer's key that carries the message ("text" for a Slack command's ack)


def deployment(**fields: Any) -> bytes:
    return json.dumps({"model": "fraud-detector", "version": "9", **fields}).encode()


def raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def nested(depth: int, kind: str = "dict") -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value} if kind == "dict" else [value]
    return value


def chunked(total: int, chunk: int = 64 * 1024) -> Callable[[], Iterator[bytes]]:
    def gen() -> Iterator[bytes]:
        sent = 0
        while sent < total:
            yield b"x" * chunk
            sent += chunk
    return gen


def d(case_id: str, body: bytes, status: int, fld: str | None, words: str = "", **kw: Any) -> Case:
    return Case(case_id, "POST", "/deployments", status, fld, words, body, headers=dict(JSON), **kw)


def slack(case_id: str, headers: Callable[[], dict[str, str]], status: int = 401,
          fld: str | None = "X-Slack-Request-Timestamp", words: str = "", body: bytes | None = None,
          **kw: Any) -> Case:
    return Case(case_id, "POST", "/slack/events", status, fld, words, body if body is not None else SLASH,
                headers=headers, auth=False, **kw)


SLASH = slash_command_body("status", user_id="U0BOB", trigger_id="1.2.fixed").encode()
MENTION = event_callback_body({"type": "app_mention", "user": "U0BOB", "text": "<@U0BOT> help", "ts": "1.000100",
                               "channel": "C0ALERTS"}, event_id="Ev0REPLAY").encode()


def signed(body: bytes = SLASH, *, ts: int | None = None, secret: str = SECRET, sig: str | None = None,
           ts_header: str | None = None) -> Callable[[], dict[str, str]]:
    def build() -> dict[str, str]:
        stamp = int(time.time()) if ts is None else int(time.time()) + ts
        ctype = "application/json" if body.lstrip().startswith(b"{") else FORM
        return {"Content-Type": ctype, "X-Slack-Request-Timestamp": ts_header if ts_header is not None else str(stamp),
                "X-Slack-Signature": sig if sig is not None else signature(secret, stamp, body)}
    return build


def only(headers: dict[str, str]) -> Callable[[], dict[str, str]]:
    return lambda: {"Content-Type": FORM, **headers}


LONG = "x" * 201
MIB = 1024 * 1024

DEPLOYMENTS: list[Case] = [
    # the version field
    d("version-true", deployment(version=True), 422, "version", "string or a whole number"),
    d("version-false", deployment(version=False), 422, "version"),
    d("version-null", deployment(version=None), 422, "version"),
    d("version-fraction", deployment(version=1.5), 422, "version"),
    d("version-object", deployment(version={"v": 1}), 422, "version"),
    d("version-list", deployment(version=["7"]), 422, "version"),
    d("version-empty", deployment(version=""), 422, "version"),
    d("version-blank", deployment(version="   "), 422, "version"),
    d("version-trailing-space", deployment(version="7 "), 422, "version"),
    d("version-newline", deployment(version="7\n"), 422, "version"),
    d("version-over-column", deployment(version=LONG), 422, "version"),
    d("version-nul", deployment(version="7\u0000"), 422, "version", "control characters"),
    d("version-only-nul", deployment(version="\u0000"), 422, "version"),
    d("version-lone-surrogate", raw('{"model": "fraud-detector", "version": "\\ud800"}'), 400, "body",
      "not valid JSON"),
    d("version-lone-low-surrogate", raw('{"model": "fraud-detector", "version": "a\\udc00"}'), 400, "body"),
    d("version-negative", deployment(version=-1), 422, "version"),
    d("version-huge-int", deployment(version=2**64), 422, "version"),
    d("version-1e400", raw('{"model": "fraud-detector", "version": 1e400}'), 422, "version"),
    d("version-nan", raw('{"model": "fraud-detector", "version": NaN}'), 422, "version"),
    d("version-infinity", raw('{"model": "fraud-detector", "version": Infinity}'), 422, "version"),
    d("version-missing", json.dumps({"model": "fraud-detector"}).encode(), 422, "version", "is required"),
    # the model field
    d("model-over-column", deployment(model=LONG), 422, "model"),
    d("model-empty", deployment(model=""), 422, "model"),
    d("model-nul", deployment(model="\u0000"), 422, "model"),
    d("model-inner-nul", deployment(model="fraud\u0000detector"), 422, "model"),
    d("model-tab", deployment(model="\t"), 422, "model"),
    d("model-escape", deployment(model="fraud\u001bdetector"), 422, "model"),
    d("model-del", deployment(model="fraud\u007f"), 422, "model"),
    d("model-number", deployment(model=123), 422, "model", "must be a string"),
    d("model-null", deployment(model=None), 422, "model"),
    d("model-list", deployment(model=["fraud-detector"]), 422, "model"),
    d("model-bool", deployment(model=True), 422, "model"),
    d("model-lone-surrogate", raw('{"model": "\\udfff", "version": "9"}'), 400, "body"),
    d("model-missing", json.dumps({"version": "9"}).encode(), 422, "model", "is required"),
    d("model-and-version-missing", b"{}", 422, "model"),
    # the optional fields
    d("deployed-by-over-limit", deployment(deployed_by="x" * 101), 422, "deployed_by"),
    d("deployed-by-nul", deployment(deployed_by="ci\u0000"), 422, "deployed_by"),
    d("deployed-by-number", deployment(deployed_by=5), 422, "deployed_by"),
    d("deployed-by-object", deployment(deployed_by={"name": "ci"}), 422, "deployed_by"),
    d("source-over-limit", deployment(source="x" * 101), 422, "source"),
    d("source-object", deployment(source={"a": 1}), 422, "source"),
    d("source-newline", deployment(source="argo\r\nX-Injected: 1"), 422, "source"),
    d("stable-string", deployment(stable="yes"), 422, "stable", "true or false"),
    d("stable-number", deployment(stable=1), 422, "stable"),
    d("stable-null", deployment(stable=None), 422, "stable"),
    d("unknown-field", deployment(modle="typo"), 422, "modle", "not a field"),
    d("override-not-an-object", deployment(override="please"), 422, "override"),
    # metadata
    d("metadata-list", deployment(metadata=[]), 422, "metadata", "JSON object"),
    d("metadata-string", deployment(metadata="x"), 422, "metadata"),
    d("metadata-number", deployment(metadata=5), 422, "metadata"),
    d("metadata-nan", raw('{"model": "fraud-detector", "version": "9", "metadata": {"a": NaN}}'), 422, "metadata",
      "NaN"),
    d("metadata-infinity", raw('{"model": "fraud-detector", "version": "9", "metadata": {"a": Infinity}}'), 422,
      "metadata"),
    d("metadata-minus-infinity", raw('{"model": "fraud-detector", "version": "9", "metadata": {"a": -Infinity}}'),
      422, "metadata"),
    d("metadata-1e999", raw('{"model": "fraud-detector", "version": "9", "metadata": {"a": 1e999}}'), 422,
      "metadata"),
    d("metadata-2000-deep-lists", raw('{"model": "fraud-detector", "version": "9", "metadata": {"a": '
                                      + "[" * 2000 + "]" * 2000 + "}}"), 400, "body", "recursion"),
    d("metadata-2000-deep-objects", raw('{"model": "fraud-detector", "version": "9", "metadata": '
                                        + '{"a": ' * 2000 + "1" + "}" * 2000 + "}"), 400, "body"),
    d("metadata-150-deep", deployment(metadata=nested(150)), 422, "metadata", "deeper"),
    d("metadata-9-deep", deployment(metadata=nested(9)), 422, "metadata", "deeper"),
    d("metadata-9-deep-lists", deployment(metadata={"a": nested(9, "list")}), 422, "metadata"),
    d("metadata-nul-value", deployment(metadata={"a": "\u0000"}), 422, "metadata", "NUL"),
    d("metadata-nul-key", deployment(metadata={"\u0000": 1}), 422, "metadata", "NUL"),
    d("metadata-long-string", deployment(metadata={"a": "x" * 10_001}), 422, "metadata"),
    d("metadata-too-many-keys", deployment(metadata={f"k{i}": i for i in range(201)}), 422, "metadata"),
    d("metadata-too-many-items", deployment(metadata={"a": list(range(201))}), 422, "metadata"),
    d("metadata-huge-int", deployment(metadata={"a": 2**64}), 422, "metadata"),
    d("metadata-huge-float", deployment(metadata={"a": 1e300}), 422, "metadata"),
    d("metadata-lone-surrogate", raw('{"model": "fraud-detector", "version": "9", "metadata": {"a": "\\ud83d"}}'),
      400, "body"),
    # bodies that are not a JSON object
    d("body-list", b"[]", 400, "body", "JSON object"),
    d("body-string", b'"fraud-detector"', 400, "body"),
    d("body-number", b"7", 400, "body"),
    d("body-null", b"null", 400, "body"),
    d("body-true", b"true", 400, "body"),
    d("body-nan", b"NaN", 400, "body"),
    d("body-empty", b"", 400, "body", "empty body"),
    d("body-whitespace", b" \n\t ", 400, "body"),
    d("body-truncated", b'{"model": "fraud', 400, "body", "not valid JSON"),
    d("body-not-utf8", b"\xff\xfe\x00{", 400, "body"),
    d("body-latin1", '{"model": "fraud-detector", "version": "é"}'.encode("latin-1"), 400, "body"),
    d("body-trailing-garbage", deployment() + b"}", 400, "body"),
    d("body-form-encoded", b"model=fraud-detector&version=9", 400, "body"),
    d("body-nul-byte", b"\x00", 400, "body"),
    # sizes
    d("body-over-cap-declared", b"{" + b" " * (128 * 1024) + b"}", 413, "body", "131072-byte limit"),
    Case("body-over-cap-chunked", "POST", "/deployments", 413, "body", "131072-byte limit", chunked(2 * MIB),
         headers=dict(JSON)),
    # a model no policy names: refused, and the refusal is audited (the one change allowed)
    d("model-unknown", deployment(model="nope"), 404, None, "unknown model 'nope'",
      changes=frozenset({"audit", "audit_head"})),
]

TOKENS: list[Case] = [
    Case(f"no-token-{m}-{p.strip('/').replace('/', '-')}", m, p, 401, None, "missing bearer token", b, auth=False,
         headers=dict(JSON))
    for m, p, b in (("POST", "/deployments", deployment()), ("GET", "/api/models/fraud-detector", None),
                    ("GET", "/api/audit", None), ("GET", "/api/proposals/1", None),
                    ("POST", "/alerts/alertmanager", b"{}"), ("POST", "/alerts/generic", b"{}"))
] + [
    Case("wrong-token", "POST", "/deployments", 401, None, "wrong bearer token", deployment(), auth=False,
         headers={**JSON, "Authorization": "Bearer nope"}),
    Case("basic-auth", "POST", "/deployments", 401, None, "missing bearer token", deployment(), auth=False,
         headers={**JSON, "Authorization": "Basic ZTJlOmUyZQ=="}),
    Case("bearer-empty", "GET", "/api/audit", 401, None, "missing bearer token", auth=False,
         headers={"Authorization": "Bearer "}),
    Case("token-prefix", "GET", "/api/audit", 401, None, "wrong bearer token", auth=False,
         headers={"Authorization": f"Bearer {TOKEN[:-1]}"}),
    Case("token-longer", "GET", "/api/audit", 401, None, "wrong bearer token", auth=False,
         headers={"Authorization": f"Bearer {TOKEN}x"}),
    Case("token-in-query", "GET", f"/api/audit?token={TOKEN}", 401, None, "missing bearer token", auth=False),
]

PROPOSALS: list[Case] = [
    Case(f"proposal-id-{name}", "GET", f"/api/proposals/{raw_id}", status, "id" if status == 400 else None,
         "whole number" if status == 400 else "")
    for name, raw_id, status in (
        ("superscript-two", "%C2%B2", 400), ("twenty-digits", "99999999999999999999", 400),
        ("past-int32", "2147483648", 400), ("zero", "0", 400), ("negative", "-1", 400),
        ("fraction", "1.5", 400), ("word", "abc", 400), ("nul", "%00", 400), ("space", "%201", 400),
        ("arabic-digit", "%D9%A1", 400), ("exponent", "1e3", 400), ("hex", "0x10", 400),
        ("five-thousand-digits", "1" * 5000, 400), ("fullwidth-digit", "%EF%BC%91", 400),
        ("unknown", "999", 404), ("max-int32-unknown", "2147483647", 404),
    )
]

MODELS: list[Case] = [
    Case(f"model-path-{name}", "GET", f"/api/models/{raw_model}", status, "model" if status == 400 else None,
         words)
    for name, raw_model, status, words in (
        ("nul", "%00", 400, "control characters"), ("over-column", LONG, 400, ""), ("space", "%20", 400, ""),
        ("newline", "a%0Ab", 400, ""), ("escape", "%1B%5B31m", 400, ""), ("unknown", "nope", 404, "unknown model"),
        ("surrogate-bytes", "%ED%A0%80", 404, "unknown model"), ("slash", "a%2Fb", 404, "no endpoint"),
        ("dot-dot", "..%2F..%2Fetc", 404, "no endpoint"),
    )
]

AUDIT: list[Case] = [
    Case(f"audit-{name}", "GET", f"/api/audit?{query}", 400, fld, words)
    for name, query, fld, words in (
        ("model-nul", "model=%00", "model", "control characters"), ("model-over-column", f"model={LONG}", "model", ""),
        ("since-overflow", "since=99999999999d", "since", "longest duration"),
        ("since-3000000d", "since=3000000d", "since", "3650d"), ("since-word", "since=abc", "since", "not a duration"),
        ("since-5000-digits", "since=" + "9" * 5000 + "d", "since", ""), ("since-nul", "since=%00", "since", ""),
        ("since-negative", "since=-5d", "since", ""), ("limit-zero", "limit=0", "limit", ""),
        ("limit-1001", "limit=1001", "limit", ""), ("limit-negative", "limit=-1", "limit", ""),
        ("limit-word", "limit=abc", "limit", ""), ("limit-huge", "limit=99999999999999999999999", "limit", ""),
        ("limit-fraction", "limit=1.5", "limit", ""), ("limit-nul", "limit=%00", "limit", ""),
        ("unknown-parameter", "limt=5", "limt", "not a field"),
    )
]

SLACK: list[Case] = [
    slack("slack-no-timestamp", only({"X-Slack-Signature": "v0=" + "0" * 64}), words="missing"),
    slack("slack-timestamp-word", signed(ts_header="abc"), words="whole seconds"),
    slack("slack-timestamp-empty", signed(ts_header=""), words="whole seconds"),
    slack("slack-timestamp-exponent", signed(ts_header="1e9")),
    slack("slack-timestamp-negative", signed(ts_header="-5")),
    slack("slack-timestamp-fraction", signed(ts_header="1700000000.5")),
    slack("slack-timestamp-20-digits", signed(ts_header="9" * 20)),
    slack("slack-timestamp-old", signed(ts=-301), words="five minutes"),
    slack("slack-timestamp-future", signed(ts=400), words="five minutes"),
    slack("slack-timestamp-zero", signed(ts_header="0"), words="five minutes"),
    slack("slack-no-signature", lambda: {"Content-Type": FORM, "X-Slack-Request-Timestamp": str(int(time.time()))},
          fld="X-Slack-Signature", words="missing X-Slack-Signature"),
    slack("slack-wrong-secret", signed(secret="not-the-secret"), fld="X-Slack-Signature", words="wrong"),
    slack("slack-signature-garbage", signed(sig="v0=zzz"), fld="X-Slack-Signature"),
    slack("slack-signature-v1", signed(sig="v1=" + "0" * 64), fld="X-Slack-Signature"),
    slack("slack-signature-5000-chars", signed(sig="v0=" + "a" * 5000), fld="X-Slack-Signature"),
    slack("slack-body-altered", signed(body=SLASH), fld="X-Slack-Signature", body=SLASH.replace(b"status", b"help")),
    slack("slack-unsigned-interaction", only({}), body=b'payload={"type":"block_actions"}'),
    slack("slack-replayed", signed(), fld="X-Slack-Signature", words="already received", replay_first=True),
    slack("slack-replayed-json-event", signed(body=MENTION), fld="X-Slack-Signature", words="already received",
          body=MENTION, replay_first=True),
    slack("slack-over-cap-declared", only({}), status=413, fld="body", words="1048576-byte limit",
          body=b"payload=" + b"x" * MIB),
    Case("slack-over-cap-chunked", "POST", "/slack/events", 413, "body", "1048576-byte limit", chunked(8 * MIB),
         headers={"Content-Type": FORM}, auth=False),
    Case("slack-get", "GET", "/slack/events", 405, None, "not allowed", auth=False),
]



def command(case_id: str, text: str, words: str) -> Case:
    """A correctly signed slash command with hostile text: Slack gets 200 and the usage, nothing is stored."""
    body = slash_command_body(text, user_id="U0BOB", trigger_id=f"1.2.{case_id}").encode()
    return Case(case_id, "POST", "/slack/events", 200, None, words, body, headers=signed(body), auth=False,
                changes=frozenset({"slack_signatures"}), key="text")


def button(case_id: str, action_id: str, value: str) -> Case:
    """A correctly signed button press whose value is not a proposal id: acknowledged, nothing changes."""
    from devkit.signing import block_actions_payload, payload_body

    body = payload_body(block_actions_payload(action_id, value, user_id="U0LEAD", trigger_id=f"1.2.{case_id}"))
    raw_body = body.encode()
    return Case(case_id, "POST", "/slack/events", 200, None, "", raw_body, headers=signed(raw_body), auth=False,
                changes=frozenset({"slack_signatures"}), key="")


SLACK_SIGNED: list[Case] = [
    command("slash-freeze-3000000d", "freeze fraud-detector for 3000000d", "longest duration accepted, 3650d"),
    command("slash-freeze-40-digits", "freeze fraud-detector for " + "9" * 40 + "s", "longest duration"),
    command("slash-audit-since-overflow", "audit since=99999999999d", "longest duration accepted"),
    command("slash-history-20-digits", "history fraud-detector 99999999999999999999", "from 1 to 100"),
    command("slash-history-superscript", "history fraud-detector ²", "whole number"),
    command("slash-status-nul", "status fraud\x00detector", "not a model name"),
    command("slash-versions-5000-chars", "versions " + "x" * 5000, "not a model name"),
    command("slash-rollback-to-nul", "fraud-detector to 7\x00", "not a version"),
    command("slash-freeze-nul-duration", "freeze fraud-detector for 1\x00h",
            "not a duration"),
    button("button-approve-superscript", "rollback_approve", "²"),
    button("button-approve-20-digits", "rollback_approve", "99999999999999999999"),
    button("button-deny-past-int32", "rollback_deny", "2147483648"),
    button("button-undo-nul", "rollback_undo", "1\x00"),
]



FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "alerts"


def alertmanager(labels: dict[str, str], fingerprint: str = "f0", starts: str = "2026-11-02T11:00:00Z",
                 annotations: dict[str, str] | None = None) -> bytes:
    """A real Alertmanager webhook body (tests/fixtures/alerts/alertmanager-firing.json, captured from
    Alertmanager) with one alert's labels, fingerprint, start or annotations made hostile."""
    body = json.loads((FIXTURES / "alertmanager-firing.json").read_text())
    first = body["alerts"][0]
    first["labels"] = {**first["labels"], "model": "fraud-detector", **labels}
    first.update(fingerprint=fingerprint, startsAt=starts)
    if annotations is not None:
        first["annotations"] = annotations
    body["alerts"] = [first]
    return json.dumps(body).encode()


def alert(case_id: str, body: bytes, fld: str, words: str) -> Case:
    return Case(case_id, "POST", "/alerts/alertmanager", 400, fld, words, body, headers=dict(JSON))


ALERTS_AND_ROUTES: list[Case] = [
    alert("alert-label-nul", alertmanager({"alertname": "A\u0000", "model": "fraud-detector"}),
          "alerts[0].labels.alertname", "NUL"),
    alert("alert-model-nul", alertmanager({"model": "fraud\u0000"}), "alerts[0].labels.model", "NUL"),
    alert("alert-name-5000", alertmanager({"alertname": "A" * 5000, "model": "fraud-detector"}),
          "alerts[0].labels.alertname", "at most"),
    alert("alert-fingerprint-5000", alertmanager({"model": "fraud-detector"}, fingerprint="f" * 5000),
          "alerts[0].fingerprint", "at most"),
    alert("alert-year-99999", alertmanager({"model": "fraud-detector"}, starts="99999-01-01T00:00:00Z"),
          "alerts[0].startsAt", "not an ISO 8601 time"),
    alert("alert-annotation-nul", alertmanager({"model": "fraud-detector"}, annotations={"summary": "x\u0000"}),
          "alerts[0].annotations.summary", "NUL"),
    Case("alert-source-unknown", "POST", "/alerts/nagios", 404, None, "unknown alert source", b"{}", headers=JSON),
    Case("alert-over-cap-declared", "POST", "/alerts/alertmanager", 413, "body", "1048576-byte limit",
         b"{" + b" " * MIB + b"}", headers=JSON),
    Case("alert-over-cap-chunked", "POST", "/alerts/grafana", 413, "body", "1048576-byte limit", chunked(4 * MIB),
         headers=JSON),
    Case("alert-truncated-json", "POST", "/alerts/alertmanager", 400, None, "", b'{"alerts": [', headers=JSON),
    Case("alert-not-an-object", "POST", "/alerts/datadog", 400, None, "", b"[1, 2]", headers=JSON),
    Case("alert-empty-body", "POST", "/alerts/generic", 400, None, "", b"", headers=JSON),
    Case("route-unknown", "GET", "/nope", 404, None, "no endpoint", auth=False),
    Case("route-wrong-method", "DELETE", "/deployments", 405, None, "not allowed"),
    Case("healthz-with-a-body", "GET", "/healthz", 413, "body", "16384-byte limit", b"x" * (17 * 1024),
         auth=False),
    Case("readyz-with-chunked-body", "GET", "/readyz", 413, "body", "16384-byte limit", chunked(MIB), auth=False),
    Case("openapi-with-a-body", "GET", "/openapi.json", 413, "body", "", b"x" * (17 * 1024), auth=False),
]

CASES: list[Case] = [*DEPLOYMENTS, *TOKENS, *PROPOSALS, *MODELS, *AUDIT, *SLACK, *SLACK_SIGNED, *ALERTS_AND_ROUTES]

__all__ = ["AUTH", "CASES", "Case"]
