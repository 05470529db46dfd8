"""A local stand-in for Slack's Web API, for tests and the offline demo.

No package provides one, and slack-sdk's async client talks through aiohttp (which HTTP mocking
libraries cannot see), so this is a real HTTP server on 127.0.0.1: point ``WebClient(base_url=...)``
or ``SLACK_API_URL`` at :attr:`FakeSlackApi.base_url`. It answers the methods the bot uses the way
Slack does (form or JSON bodies, ``ok``/``error`` envelopes, 429 with ``Retry-After``), records every
call, and keeps each message's current content so a test can read a card after ``chat.update``.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from copy import deepcopy
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

# Fields Slack accepts as JSON text inside a form-encoded body.
_JSON_FIELDS = ("blocks", "attachments", "view", "files", "metadata", "users")
_NO_TOKEN_METHODS = frozenset({"api.test"})

Handler = Callable[["FakeSlackApi", dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Call:
    """One request the server received.

    ``method`` is the Web API method name, ``response_url`` for posts to a response URL, or
    ``file_upload`` for the upload step of the external file upload. Header names are lower case.
    """

    method: str
    body: dict[str, Any]
    headers: dict[str, str]
    path: str
    status: int
    at: float = field(default_factory=time.time)


@dataclass
class _Fault:
    error: str | None = None  # ok: false with this error
    retry_after: int | None = None  # HTTP 429 with this Retry-After
    status: int | None = None  # this HTTP status with an HTML body (a 500 from a proxy)
    hang: float | None = None  # wait this long before answering (Slack hanging)
    lose_answer: bool = False  # do the work, then answer 500 as if the answer was lost on the way


class FakeSlackApi:
    """A threaded local Slack Web API. Use as a context manager or call :meth:`start`/:meth:`stop`."""

    def __init__(
        self,
        *,
        usergroups: Mapping[str, list[str]] | None = None,
        users: Mapping[str, Mapping[str, Any]] | None = None,
        channels: Mapping[str, Mapping[str, Any]] | None = None,
        valid_tokens: set[str] | None = None,
        require_token: bool = True,
        team_id: str = "T0FAKE",
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
    ) -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.valid_tokens = valid_tokens
        self.require_token = require_token
        self._usergroups: dict[str, list[str]] = {k: list(v) for k, v in (usergroups or {}).items()}
        self._users: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (users or {}).items()}
        self._channels: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (channels or {}).items()}
        self._lock = threading.Condition()
        self._calls: list[Call] = []
        self._faults: dict[str, deque[_Fault]] = {}
        self._messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._ephemerals: list[dict[str, Any]] = []
        self._views: dict[str, dict[str, Any]] = {}
        self._files: dict[str, dict[str, Any]] = {}
        self._responses: dict[str, tuple[str | None, str | None]] = {}
        self._seq = itertools.count(1)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._methods: dict[str, Handler] = {
            "api.test": FakeSlackApi._api_test,
            "auth.test": FakeSlackApi._auth_test,
            "chat.postMessage": FakeSlackApi._post_message,
            "chat.update": FakeSlackApi._update,
            "chat.postEphemeral": FakeSlackApi._post_ephemeral,
            "chat.getPermalink": FakeSlackApi._permalink,
            "views.open": FakeSlackApi._views_open,
            "usergroups.users.list": FakeSlackApi._usergroup_users,
            "users.info": FakeSlackApi._users_info,
            "conversations.info": FakeSlackApi._conversations_info,
            "files.getUploadURLExternal": FakeSlackApi._upload_url,
            "files.completeUploadExternal": FakeSlackApi._complete_upload,
            "apps.connections.open": FakeSlackApi._connections_open,
            "conversations.history": FakeSlackApi._history,
        }
        self.socket_url: str | None = None  # the WebSocket URL apps.connections.open hands out (Socket Mode)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeSlackApi:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _RequestHandler)
        server.api = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-slack-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeSlackApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeSlackApi is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The server root, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What ``WebClient(base_url=...)`` and ``SLACK_API_URL`` need (ends with ``/api/``)."""
        return f"{self.url}/api/"

    # ------------------------------------------------------------------ test controls

    def response_url(self, channel: str | None = None, message_ts: str | None = None) -> str:
        """A response URL for a payload; bound to a message so ``replace_original`` edits it."""
        rid = f"R{next(self._seq):06d}"
        with self._lock:
            self._responses[rid] = (channel, message_ts)
        return f"{self.url}/response/{rid}"

    def fail(self, method: str, error: str = "internal_error", times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with ``{"ok": false, "error": error}``."""
        with self._lock:
            self._faults.setdefault(method, deque()).extend(_Fault(error=error) for _ in range(times))

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with HTTP 429 and ``Retry-After``."""
        with self._lock:
            self._faults.setdefault(method, deque()).extend(
                _Fault(retry_after=retry_after) for _ in range(times)
            )

    def server_error(self, method: str, times: int = 1, status: int = 500) -> None:
        """Answer the next ``times`` calls of ``method`` with this HTTP status and no JSON."""
        with self._lock:
            self._faults.setdefault(method, deque()).extend(_Fault(status=status) for _ in range(times))

    def hang(self, method: str, seconds: float, times: int = 1) -> None:
        """Hold the next ``times`` calls of ``method`` for ``seconds`` before answering normally."""
        with self._lock:
            self._faults.setdefault(method, deque()).extend(_Fault(hang=seconds) for _ in range(times))

    def lose_answer(self, method: str, times: int = 1) -> None:
        """Carry out the next ``times`` calls, then answer HTTP 500: the caller cannot know it worked."""
        with self._lock:
            self._faults.setdefault(method, deque()).extend(_Fault(lose_answer=True) for _ in range(times))

    def set_usergroup(self, group_id: str, members: list[str]) -> None:
        with self._lock:
            self._usergroups[group_id] = list(members)

    def set_user(self, user_id: str, **fields: Any) -> None:
        with self._lock:
            self._users[user_id] = {"id": user_id, **fields}

    def set_channel(self, channel_id: str, **fields: Any) -> None:
        with self._lock:
            self._channels[channel_id] = {"id": channel_id, **fields}

    def clear_faults(self) -> None:
        """Slack is back: drop every pending fault, keep calls and messages."""
        with self._lock:
            self._faults.clear()

    def reset(self) -> None:
        """Forget calls, messages and pending faults (configuration stays)."""
        with self._lock:
            self._calls.clear()
            self._faults.clear()
            self._messages.clear()
            self._ephemerals.clear()
            self._views.clear()
            self._files.clear()

    # ------------------------------------------------------------------ inspection

    def calls(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def last(self, method: str) -> Call | None:
        found = self.calls(method)
        return found[-1] if found else None

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Block until ``count`` calls of ``method`` arrived; raise TimeoutError naming what did arrive."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [c for c in self._calls if c.method == method]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [c.method for c in self._calls]
                    raise TimeoutError(
                        f"waited {timeout}s for {count} x {method}, got {len(found)}; calls: {seen}"
                    )
                self._lock.wait(left)

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """The current content of a message (after any chat.update), or None."""
        with self._lock:
            msg = self._messages.get((channel, ts))
            return deepcopy(msg) if msg else None

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Top-level messages (not thread replies), oldest first."""
        with self._lock:
            found = [
                m
                for (ch, _), m in self._messages.items()
                if (channel is None or ch == channel) and m.get("thread_ts") in (None, m["ts"])
            ]
            return deepcopy(sorted(found, key=lambda m: float(m["ts"])))

    def replies(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """Messages posted in the thread of ``thread_ts``, oldest first."""
        with self._lock:
            found = [
                m
                for (ch, ts), m in self._messages.items()
                if ch == channel and m.get("thread_ts") == thread_ts and ts != thread_ts
            ]
            return deepcopy(sorted(found, key=lambda m: float(m["ts"])))

    def ephemerals(self, user: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return deepcopy([e for e in self._ephemerals if user is None or e.get("user") == user])

    def views(self) -> list[dict[str, Any]]:
        with self._lock:
            return deepcopy(list(self._views.values()))

    def file(self, file_id: str) -> dict[str, Any] | None:
        """An uploaded file: its ``content`` bytes, ``title``, ``channel``, ``thread_ts``…"""
        with self._lock:
            f = self._files.get(file_id)
            return deepcopy(f) if f else None

    # ------------------------------------------------------------------ request handling

    def _record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)
            self._lock.notify_all()

    def _next_fault(self, method: str) -> _Fault | None:
        with self._lock:
            queue = self._faults.get(method)
            return queue.popleft() if queue else None

    def _new_ts(self) -> str:
        return f"{int(time.time())}.{next(self._seq):06d}"

    def handle_api(
        self, method: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, str], Any]:
        """Answer one Web API call: (HTTP status, extra headers, JSON body)."""
        fault = self._next_fault(method)
        if fault is not None and fault.hang is not None:
            time.sleep(fault.hang)  # a stand-in for a hanging server; the caller's timeout decides
            fault = None
        if fault is not None and fault.status is not None:
            return fault.status, {}, "<html>upstream error</html>"
        if fault is not None and fault.lose_answer:
            handler = self._methods.get(method)
            if handler is not None:
                handler(self, body)
            return 500, {}, "<html>upstream error</html>"
        if fault is not None and fault.retry_after is not None:
            return 429, {"Retry-After": str(fault.retry_after)}, {"ok": False, "error": "ratelimited"}
        if fault is not None:
            return 200, {}, {"ok": False, "error": fault.error}
        if method not in _NO_TOKEN_METHODS:
            token = _token(body, headers)
            if token is None and self.require_token:
                return 200, {}, {"ok": False, "error": "not_authed"}
            if self.valid_tokens is not None and token not in self.valid_tokens:
                return 200, {}, {"ok": False, "error": "invalid_auth"}
        handler = self._methods.get(method)
        if handler is None:
            return 200, {}, {"ok": False, "error": "unknown_method"}
        return 200, {}, handler(self, body)

    def handle_response_url(self, rid: str, body: dict[str, Any]) -> None:
        """What Slack does with a response_url post: edit, delete, or add a message."""
        with self._lock:
            channel, ts = self._responses.get(rid, (None, None))
            key = (channel or "", ts or "")
            target = self._messages.get(key)
            if body.get("delete_original") and target is not None:
                del self._messages[key]
            elif body.get("replace_original") and target is not None:
                for name in ("text", "blocks", "attachments"):
                    if name in body:
                        target[name] = body[name]
                target["edited"] = {"user": self.bot_user_id, "ts": self._new_ts()}
            elif body.get("response_type") == "in_channel" and channel:
                ts_new = self._new_ts()
                self._messages[(channel, ts_new)] = {
                    "type": "message",
                    "channel": channel,
                    "ts": ts_new,
                    "user": self.bot_user_id,
                    "text": body.get("text", ""),
                    "blocks": body.get("blocks", []),
                    "thread_ts": body.get("thread_ts"),
                }
            else:
                self._ephemerals.append({"channel": channel, "user": None, **body, "via": "response_url"})

    def handle_upload(self, file_id: str, data: bytes) -> bool:
        with self._lock:
            f = self._files.get(file_id)
            if f is None:
                return False
            f["content"] = data
            f["size"] = len(data)
            f["uploaded"] = True
            return True

    # ------------------------------------------------------------------ methods

    def _api_test(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "args": {k: v for k, v in body.items() if k != "token"}}

    def _auth_test(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"{self.url}/",
            "team": "Fake Workspace",
            "user": "rollback-bot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _post_message(self, body: dict[str, Any]) -> dict[str, Any]:
        channel = body.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not body.get("text") and not body.get("blocks") and not body.get("attachments"):
            return {"ok": False, "error": "no_text"}
        ts = self._new_ts()
        msg = {
            "type": "message",
            "channel": channel,
            "ts": ts,
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "text": body.get("text", ""),
            "blocks": body.get("blocks") or [],
            "attachments": body.get("attachments") or [],
            "thread_ts": body.get("thread_ts"),
            "metadata": body.get("metadata"),
        }
        with self._lock:
            self._messages[(channel, ts)] = msg
            if msg["thread_ts"]:
                parent = self._messages.get((channel, msg["thread_ts"]))
                if parent is not None:
                    parent["reply_count"] = parent.get("reply_count", 0) + 1
        return {"ok": True, "channel": channel, "ts": ts, "message": deepcopy(msg)}

    def _update(self, body: dict[str, Any]) -> dict[str, Any]:
        channel, ts = body.get("channel"), body.get("ts")
        with self._lock:
            msg = self._messages.get((str(channel), str(ts)))
            if msg is None:
                return {"ok": False, "error": "message_not_found"}
            for key in ("text", "blocks", "attachments", "metadata"):
                if key in body:
                    msg[key] = body[key]
            msg["edited"] = {"user": self.bot_user_id, "ts": self._new_ts()}
            msg["edits"] = msg.get("edits", 0) + 1
            return {"ok": True, "channel": channel, "ts": ts, "text": msg["text"], "message": deepcopy(msg)}

    def _history(self, body: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages of a channel, newest first; metadata only with include_all_metadata."""
        channel = str(body.get("channel") or "")
        with_meta = str(body.get("include_all_metadata", "")).lower() in ("1", "true")
        limit = int(body.get("limit") or 100)
        with self._lock:
            found = [deepcopy(m) for (ch, ts), m in self._messages.items()
                     if ch == channel and not m.get("thread_ts")]
        found.sort(key=lambda m: float(m["ts"]), reverse=True)
        for m in found:
            if not with_meta or not m.get("metadata"):
                m.pop("metadata", None)
        return {"ok": True, "messages": found[:limit], "has_more": len(found) > limit}

    def _post_ephemeral(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not body.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        ts = self._new_ts()
        with self._lock:
            self._ephemerals.append({**body, "message_ts": ts})
        return {"ok": True, "message_ts": ts}

    def _permalink(self, body: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(body.get("channel", "")), str(body.get("message_ts", ""))
        with self._lock:
            if (channel, ts) not in self._messages:
                return {"ok": False, "error": "message_not_found"}
        return {
            "ok": True,
            "channel": channel,
            "permalink": f"{self.url}/archives/{channel}/p{ts.replace('.', '')}",
        }

    def _views_open(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        view = body.get("view")
        if not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        vid = f"V{next(self._seq):08d}"
        stored = {
            **view,
            "id": vid,
            "team_id": self.team_id,
            "app_id": "A0FAKE",
            "bot_id": self.bot_id,
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{vid}",
        }
        with self._lock:
            self._views[vid] = stored
        return {"ok": True, "view": deepcopy(stored)}

    def _usergroup_users(self, body: dict[str, Any]) -> dict[str, Any]:
        group = str(body.get("usergroup", ""))
        with self._lock:
            members = self._usergroups.get(group)
        if members is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(members)}

    def _users_info(self, body: dict[str, Any]) -> dict[str, Any]:
        uid = str(body.get("user", ""))
        if not uid:
            return {"ok": False, "error": "user_not_found"}
        with self._lock:
            known = self._users.get(uid, {})
        name = str(known.get("name", uid.lower()))
        user = {
            "id": uid,
            "team_id": self.team_id,
            "name": name,
            "real_name": known.get("real_name", name),
            "deleted": False,
            "is_bot": False,
            "tz": "UTC",
            "profile": {"real_name": known.get("real_name", name), "display_name": name},
            **known,
        }
        return {"ok": True, "user": user}

    def _conversations_info(self, body: dict[str, Any]) -> dict[str, Any]:
        cid = str(body.get("channel", ""))
        if not cid:
            return {"ok": False, "error": "channel_not_found"}
        with self._lock:
            known = self._channels.get(cid, {})
        channel = {
            "id": cid,
            "name": cid.lower(),
            "is_channel": True,
            "is_private": False,
            "is_member": True,
            "is_archived": False,
            **known,
        }
        return {"ok": True, "channel": channel}

    def _connections_open(self, body: dict[str, Any]) -> dict[str, Any]:
        if not self.socket_url:
            return {"ok": False, "error": "not_allowed_token_type"}
        return {"ok": True, "url": self.socket_url}

    def _upload_url(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("filename") or not body.get("length"):
            return {"ok": False, "error": "invalid_arguments"}
        fid = f"F{next(self._seq):08d}"
        with self._lock:
            self._files[fid] = {
                "id": fid,
                "name": body["filename"],
                "length": int(body["length"]),
                "uploaded": False,
            }
        return {"ok": True, "upload_url": f"{self.url}/upload/{fid}", "file_id": fid}

    def _complete_upload(self, body: dict[str, Any]) -> dict[str, Any]:
        items = body.get("files")
        if not isinstance(items, list) or not items:
            return {"ok": False, "error": "invalid_arguments"}
        channel = body.get("channel_id") or body.get("channels")
        thread_ts = body.get("thread_ts")
        done: list[dict[str, Any]] = []
        with self._lock:
            for item in items:
                f = self._files.get(str(item.get("id")))
                if f is None or not f.get("uploaded"):
                    return {"ok": False, "error": "file_not_found"}
                f.update(
                    title=item.get("title") or f["name"],
                    channel=channel,
                    thread_ts=thread_ts,
                    initial_comment=body.get("initial_comment"),
                )
                done.append({"id": f["id"], "name": f["name"], "title": f["title"], "size": f["size"]})
            if channel:
                ts = self._new_ts()
                self._messages[(str(channel), ts)] = {
                    "type": "message",
                    "channel": channel,
                    "ts": ts,
                    "user": self.bot_user_id,
                    "text": body.get("initial_comment", ""),
                    "blocks": [],
                    "files": deepcopy(done),
                    "thread_ts": thread_ts,
                }
        return {"ok": True, "files": done}


def _token(body: Mapping[str, Any], headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    token = body.get("token")
    return str(token) if token else None


def parse_body(raw: bytes, content_type: str, query: str = "") -> dict[str, Any]:
    """Parse a request body the way Slack accepts it: JSON, or form fields with JSON-valued fields."""
    body: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    text = raw.decode("utf-8", errors="replace")
    if "json" in content_type.lower() or text.lstrip().startswith("{"):
        if text.strip():
            parsed = json.loads(text)
            if isinstance(parsed, dict):
                body.update(parsed)
        return body
    body.update(parse_qsl(text, keep_blank_values=True))
    for key in _JSON_FIELDS:
        value = body.get(key)
        if isinstance(value, str) and value[:1] in "[{":
            try:
                body[key] = json.loads(value)
            except ValueError:
                pass
    return body


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: FakeSlackApi


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeSlack/1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read the recorded calls instead of the access log."""

    @property
    def api(self) -> FakeSlackApi:
        return cast(_Server, self.server).api

    def do_GET(self) -> None:
        self._dispatch(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._dispatch(self.rfile.read(length) if length else b"")

    def _dispatch(self, raw: bytes) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        headers = {k.lower(): v for k, v in self.headers.items()}
        content_type = headers.get("content-type", "")
        if path.startswith("/upload/"):
            file_id = path.rsplit("/", 1)[-1]
            ok = self.api.handle_upload(file_id, raw)
            status = 200 if ok else 404
            self.api._record(
                Call("file_upload", {"file_id": file_id, "size": len(raw)}, headers, path, status)
            )
            self._send(status, {}, f"OK - {len(raw)}" if ok else "not found", "text/plain")
            return
        try:
            body = parse_body(raw, content_type, parts.query)
        except ValueError:
            self.api._record(Call("invalid", {"raw": raw.decode("utf-8", "replace")}, headers, path, 400))
            self._send(400, {}, {"ok": False, "error": "invalid_json"})
            return
        if path.startswith("/response/"):
            rid = path.rsplit("/", 1)[-1]
            self.api.handle_response_url(rid, body)
            self.api._record(Call("response_url", body, headers, path, 200))
            self._send(200, {}, {"ok": True})
            return
        if path.startswith("/api/"):
            method = path[len("/api/") :].strip("/")
            status, extra, answer = self.api.handle_api(method, body, headers)
            self.api._record(Call(method, body, headers, path, status))
            self._send(status, extra, answer)
            return
        self.api._record(Call("not_found", body, headers, path, 404))
        self._send(404, {}, {"ok": False, "error": "not_found"})

    def _send(
        self, status: int, headers: Mapping[str, str], payload: Any, ctype: str = "application/json"
    ) -> None:
        data = (payload if isinstance(payload, str) else json.dumps(payload)).encode("utf-8")
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", f"{ctype}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
