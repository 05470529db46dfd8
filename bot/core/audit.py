"""Audit events and the keyed hash chain that makes edits, rewrites and deletions visible.

Each row's hash is an HMAC-SHA256 over the previous hash and every field, keyed with a secret the database
does not hold (``AUDIT_HMAC_KEY``). Someone who can write to the database can still edit a row, but cannot
recompute the hashes after it: that needs the key. Each row names the id of the key that signed it, so keys
can be rotated while older rows keep verifying with the retired key.

Rows written before keys existed (or by a bot running without a key, e.g. the SQLite demo) carry no key id
and a plain SHA-256 hash; they still verify, and verification counts them as "unkeyed". Once a keyed row
appears, an unkeyed row after it is a downgrade (someone re-hashing rows without the key) and fails.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.core.errors import RollbackError

GENESIS = "0" * 64
KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,40}$")
MIN_KEY_BYTES = 16


@dataclass(frozen=True)
class AuditEvent:
    """One thing that happened, as it will be written (append-only) to the audit table."""

    actor: str
    action: str
    model: str | None = None
    proposal_id: int | None = None
    from_version: str | None = None
    to_version: str | None = None
    reason: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # An AuditAction member is stored (and hashed) as its plain text, exactly as before the enum existed.
        object.__setattr__(self, "action", str(self.action))


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    action: str
    model: str | None
    proposal_id: int | None
    from_version: str | None
    to_version: str | None
    reason: str | None
    inputs: dict[str, Any]
    prev_hash: str
    hash: str
    key_id: str | None = None

    def event(self) -> AuditEvent:
        return AuditEvent(actor=self.actor, action=self.action, model=self.model, proposal_id=self.proposal_id,
                          from_version=self.from_version, to_version=self.to_version, reason=self.reason,
                          inputs=self.inputs)


class AuditKeyError(RollbackError):
    """A key ring that cannot be built from the configuration (the message never contains a key)."""


@dataclass(frozen=True)
class KeyRing:
    """The key new rows are signed with, and every key verification accepts, by key id."""

    current_id: str | None = None
    keys: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def current(self) -> bytes | None:
        return self.keys.get(self.current_id) if self.current_id else None

    @property
    def keyed(self) -> bool:
        return self.current is not None

    def sign(self, payload: Mapping[str, Any]) -> str | None:
        """HMAC of a JSON document (anchors, export manifests) with the current key; None without a key."""
        key = self.current
        if key is None:
            return None
        return hmac.new(key, _canonical(payload), hashlib.sha256).hexdigest()

    def check(self, payload: Mapping[str, Any], key_id: str | None, signature: str | None) -> str | None:
        """None when ``signature`` is right for ``payload`` under ``key_id``; otherwise what is wrong."""
        if not signature or not key_id:
            return "it is not signed"
        key = self.keys.get(key_id)
        if key is None:
            return f"it is signed with key id '{key_id}', which is not configured (AUDIT_HMAC_KEYS)"
        expected = hmac.new(key, _canonical(payload), hashlib.sha256).hexdigest()
        return None if hmac.compare_digest(expected, signature) else "its signature does not match"


def default_key_id(key: bytes) -> str:
    """A stable id for a key nobody named: a one-way fingerprint (never the key or a reversible part of it)."""
    return "k-" + hmac.new(key, b"rollback-bot audit key id", hashlib.sha256).hexdigest()[:10]


def key_ring_from(env: Mapping[str, str]) -> KeyRing:
    """AUDIT_HMAC_KEY (+ optional AUDIT_HMAC_KEY_ID) signs; AUDIT_HMAC_KEYS="id:key,…" adds retired keys."""
    keys: dict[str, bytes] = {}
    for n, item in enumerate(x for x in (env.get("AUDIT_HMAC_KEYS") or "").split(",") if x.strip()):
        key_id, sep, secret = item.strip().partition(":")
        if not sep or not secret:
            raise AuditKeyError(f"AUDIT_HMAC_KEYS: entry {n + 1} is not id:key")
        if not KEY_ID_PATTERN.match(key_id):
            raise AuditKeyError(f"AUDIT_HMAC_KEYS: entry {n + 1}: key id must be 1-40 of A-Z a-z 0-9 . _ -")
        if len(secret.encode()) < MIN_KEY_BYTES:
            raise AuditKeyError(f"AUDIT_HMAC_KEYS: key '{key_id}' is shorter than {MIN_KEY_BYTES} bytes")
        keys[key_id] = secret.encode()
    current = (env.get("AUDIT_HMAC_KEY") or "").strip()
    if not current:
        return KeyRing(None, keys)
    if len(current.encode()) < MIN_KEY_BYTES:
        raise AuditKeyError(f"AUDIT_HMAC_KEY: shorter than {MIN_KEY_BYTES} bytes; use e.g. `openssl rand -hex 32`")
    current_id = (env.get("AUDIT_HMAC_KEY_ID") or "").strip() or default_key_id(current.encode())
    if not KEY_ID_PATTERN.match(current_id):
        raise AuditKeyError("AUDIT_HMAC_KEY_ID: must be 1-40 of A-Z a-z 0-9 . _ -")
    if current_id in keys and keys[current_id] != current.encode():
        raise AuditKeyError(f"AUDIT_HMAC_KEYS: key id '{current_id}' names a different key than AUDIT_HMAC_KEY")
    keys[current_id] = current.encode()
    return KeyRing(current_id, keys)


def canonical_time(at: datetime) -> str:
    """Microsecond ISO time in UTC: the same string whichever database returned it."""
    if at.tzinfo is not None and at.utcoffset() is not None:
        at = at.astimezone(UTC)
    return at.replace(tzinfo=None).isoformat(timespec="microseconds")


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)  # built once: hot loop


def _canonical(doc: Mapping[str, Any]) -> bytes:
    return _ENCODER.encode(doc).encode()


def _body(prev_hash: str, at: datetime, event: AuditEvent | AuditRecord) -> dict[str, Any]:
    return {
        "prev": prev_hash,
        "at": canonical_time(at),
        "actor": event.actor,
        "action": event.action,
        "model": event.model,
        "proposal_id": event.proposal_id,
        "from_version": event.from_version,
        "to_version": event.to_version,
        "reason": event.reason,
        "inputs": event.inputs,
    }


def chain_hash(prev_hash: str, at: datetime, event: AuditEvent | AuditRecord) -> str:
    """The unkeyed SHA-256 of rows written before keys existed (anyone can recompute it: legacy only)."""
    return hashlib.sha256(_canonical(_body(prev_hash, at, event))).hexdigest()


def keyed_hash(key: bytes, key_id: str, prev_hash: str, at: datetime, event: AuditEvent | AuditRecord) -> str:
    """HMAC-SHA256 over the same fields plus the key id, so swapping a row's key id is caught too."""
    mac = _mac_for(key).copy()
    mac.update(_canonical({**_body(prev_hash, at, event), "key_id": key_id}))
    return mac.hexdigest()


@functools.lru_cache(maxsize=16)
def _mac_for(key: bytes) -> hmac.HMAC:
    """The keyed state before any message; copying it skips re-deriving the inner and outer pads per row."""
    return hmac.new(key, digestmod=hashlib.sha256)


def row_hash(ring: KeyRing, prev_hash: str, at: datetime, event: AuditEvent) -> tuple[str, str | None]:
    """The hash and key id a new row gets: keyed with the current key when there is one."""
    key = ring.current
    if key is None or ring.current_id is None:
        return chain_hash(prev_hash, at, event), None
    return keyed_hash(key, ring.current_id, prev_hash, at, event), ring.current_id


@dataclass(frozen=True)
class ChainProblem:
    row_id: int
    problem: str


@dataclass
class ChainWalk:
    """What a verification pass has seen so far; filled while rows stream through `walk_chain`."""

    rows: int = 0
    keyed: int = 0
    unkeyed: int = 0
    last_id: int = 0
    last_hash: str = GENESIS
    keys_used: dict[str, int] = field(default_factory=dict)
    missing_keys: set[str] = field(default_factory=set)
    problems: list[ChainProblem] = field(default_factory=list)


MAX_PROBLEMS = 1000  # a wholesale rewrite is named by its first rows; the count says the rest


def walk_chain(records: Iterable[AuditRecord], ring: KeyRing, walk: ChainWalk | None = None) -> Iterator[AuditRecord]:
    """Check each row as it streams past (memory flat in the row count), yielding it on for other checks."""
    w = walk if walk is not None else ChainWalk()
    seen_keyed = False

    def problem(row_id: int, text: str) -> None:
        if len(w.problems) < MAX_PROBLEMS:
            w.problems.append(ChainProblem(row_id, text))

    for rec in records:
        if rec.id != w.last_id + 1:
            missing = (f"row {w.last_id + 1}" if rec.id == w.last_id + 2
                       else f"rows {w.last_id + 1}-{rec.id - 1}")
            problem(rec.id, f"{missing} deleted before row {rec.id}")
        event = rec  # a record carries the event's fields under the same names: no copy in the hot loop
        if rec.key_id is None:
            expected = chain_hash(rec.prev_hash, rec.at, event)
            w.unkeyed += 1
            if seen_keyed:
                problem(rec.id, f"row {rec.id} is unkeyed after keyed rows: it was re-hashed without the key")
        else:
            seen_keyed = True
            w.keyed += 1
            w.keys_used[rec.key_id] = w.keys_used.get(rec.key_id, 0) + 1
            key = ring.keys.get(rec.key_id)
            expected = "" if key is None else keyed_hash(key, rec.key_id, rec.prev_hash, rec.at, event)
            if key is None and rec.key_id not in w.missing_keys:
                w.missing_keys.add(rec.key_id)
                problem(rec.id, f"row {rec.id} (and every later row signed with key id '{rec.key_id}') cannot be "
                                "checked: that key is not configured (AUDIT_HMAC_KEY or AUDIT_HMAC_KEYS)")
        if expected and not hmac.compare_digest(expected, rec.hash):
            problem(rec.id, f"row {rec.id} was edited: its content does not match its hash")
        elif rec.prev_hash != w.last_hash:
            problem(rec.id, f"row {rec.id} does not follow row {w.last_id}: the chain is broken there")
        w.rows += 1
        w.last_id = rec.id
        w.last_hash = rec.hash
        yield rec


def verify_chain(records: Iterable[AuditRecord], ring: KeyRing | None = None) -> list[ChainProblem]:
    """Name every row whose content no longer matches its hash, and every gap left by a deletion."""
    walk = ChainWalk()
    for _ in walk_chain(records, ring or KeyRing(), walk):
        pass
    return walk.problems
