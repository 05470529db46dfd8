"""Anchors: the audit chain's head written outside the database, so deleting the newest rows shows.

An anchor is one JSON line ``{"head_id", "hash", "count", "at", "key_id", "sig"}`` appended to
``AUDIT_ANCHOR_PATH`` (and posted to ``AUDIT_ANCHOR_CHANNEL`` in Slack when set). ``sig`` is an HMAC with the
current audit key over the other fields, so the file cannot be rewritten to match a shortened database
without the key either. `audit verify` checks every row an anchor names still carries the anchored hash.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.core.audit import KeyRing, canonical_time
from bot.store.audit_log import AuditLog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Anchor:
    head_id: int
    hash: str
    count: int
    at: str
    key_id: str | None
    sig: str | None = None

    def payload(self) -> dict[str, Any]:
        doc = asdict(self)
        doc.pop("sig")
        return doc


@dataclass(frozen=True)
class AnchorLine:
    """One line of the anchor file: the anchor, whether its signature holds, or why it is unreadable."""

    line: int
    anchor: Anchor | None
    problem: str | None = None


def make_anchor(head_id: int, head_hash: str, count: int, now: datetime, ring: KeyRing) -> Anchor:
    unsigned = Anchor(head_id, head_hash, count, canonical_time(now) + "Z", ring.current_id)
    return Anchor(**{**asdict(unsigned), "sig": ring.sign(unsigned.payload())})


def append_anchor(path: str | Path, anchor: Anchor) -> None:
    """Append one line and fsync it: the file is append-only by how it is written (and chattr +a, ideally)."""
    line = (json.dumps(asdict(anchor), sort_keys=True, separators=(",", ":")) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def iter_anchors(path: str | Path, ring: KeyRing) -> Iterator[AnchorLine]:
    """Every line of the anchor file, checked, one at a time (the file grows for years)."""
    p = Path(path)
    if not p.exists():
        return
    with p.open(encoding="utf-8") as fh:
        for n, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                doc = json.loads(raw)
                anchor = Anchor(head_id=int(doc["head_id"]), hash=str(doc["hash"]), count=int(doc["count"]),
                                at=str(doc["at"]), key_id=doc.get("key_id"), sig=doc.get("sig"))
            except (ValueError, KeyError, TypeError):
                yield AnchorLine(n, None, f"anchor line {n} is not a valid anchor")
                continue
            wrong = None
            if anchor.sig or ring.keyed:
                wrong = ring.check(anchor.payload(), anchor.key_id, anchor.sig)
            yield AnchorLine(n, anchor, f"anchor line {n}: {wrong}" if wrong else None)


def read_anchors(path: str | Path, ring: KeyRing) -> list[AnchorLine]:
    return list(iter_anchors(path, ring))


class Anchorer:
    """Writes an anchor when the head moved since the last one (run periodically by the scheduler)."""

    def __init__(self, audit: AuditLog, now: Callable[[], datetime], *, path: str | None = None,
                 post: Callable[[str], object] | None = None) -> None:
        self.audit = audit
        self.now = now
        self.path = path
        self.post = post
        self.last_id: int | None = None
        if path:
            for line in iter_anchors(path, audit.ring):
                if line.anchor is not None:
                    self.last_id = line.anchor.head_id

    def anchor(self, *, force: bool = False) -> Anchor | None:
        with self.audit.snapshot() as snap:
            head_id, head_hash = snap.head()
            count = snap.count()
        if not force and head_id == self.last_id:
            return None
        anchor = make_anchor(head_id, head_hash, count, self.now(), self.audit.ring)
        if self.path:
            append_anchor(self.path, anchor)
        self.last_id = head_id
        if self.post is not None:
            try:
                self.post(slack_text(anchor))
            except Exception:  # Slack being down must not stop the file anchors; the next one is posted
                log.warning("posting the audit anchor for row %s to Slack failed", head_id, exc_info=True)
        return anchor


def slack_text(anchor: Anchor) -> str:
    signed = f"key `{anchor.key_id}`" if anchor.sig else "unsigned (no AUDIT_HMAC_KEY)"
    return (f"audit anchor: head row #{anchor.head_id}, {anchor.count} rows, {anchor.at}, {signed}\n"
            f"```{json.dumps(asdict(anchor), sort_keys=True, separators=(',', ':'))}```")


def slack_poster(token: str, api_url: str, channel: str) -> Callable[[str], object]:
    from bot.slack.client import web_client

    client = web_client(token, api_url)

    def post(text: str) -> object:
        return client.chat_postMessage(channel=channel, text=text)

    return post


def anchor_job(container: Any) -> tuple[Callable[[], object], float] | None:
    """The scheduler job writing anchors, when AUDIT_ANCHOR_PATH or AUDIT_ANCHOR_CHANNEL is set."""
    from bot.audit_config import anchor_settings, slack_token

    settings = container.settings
    cfg = anchor_settings(settings)
    if not cfg.enabled:
        return None
    post = None
    token = slack_token(settings)
    if cfg.channel and token:
        post = slack_poster(token, settings.slack_api_url, cfg.channel)
    anchorer = Anchorer(container.store.audit_log, container.clock.now, path=cfg.path, post=post)
    return anchorer.anchor, cfg.interval
